//! The committed schemas: valid, one per event version, none left over.
//! (Whether they are in step with the Rust types: `compatibility.rs`.)

use std::collections::BTreeSet;

use contracts::EVENTS;

use crate::manifest;
use crate::support::{
    committed_text, entries, generated_schemas, json_files, samples_dir, schemas_dir,
};

#[test]
fn every_committed_schema_is_a_valid_json_schema() {
    for stem in generated_schemas().into_keys() {
        let Some(text) = committed_text(&stem) else {
            continue;
        };
        let schema = serde_json::from_str(&text).expect("a committed schema is JSON");
        if let Err(e) = jsonschema::meta::validate(&schema) {
            panic!("schemas/{stem}.json is not a valid JSON Schema: {e}");
        }
    }
}

#[test]
fn every_event_in_the_catalogue_has_a_committed_schema_and_a_sample() {
    let mut failures = Vec::new();
    for d in EVENTS {
        let stem = d.file_stem();
        if committed_text(&stem).is_none() {
            failures.push(format!(
                "{stem} has no schemas/{stem}.json: run `BAZAAR_BLESS=1 cargo test -p contracts`"
            ));
        }
        if json_files(&samples_dir().join(&stem)).is_empty() {
            failures.push(format!(
                "{stem} has no golden sample: add samples/{stem}/<name>.json, a whole envelope \
                 as it goes on the wire"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn no_schema_is_committed_for_an_event_missing_from_the_catalogue() {
    let known: BTreeSet<String> = generated_schemas().into_keys().collect();
    let strays: Vec<String> = entries(&schemas_dir())
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| {
            name.strip_suffix(".json")
                .is_none_or(|stem| !known.contains(stem))
        })
        .collect();
    assert!(
        strays.is_empty(),
        "contracts/schemas holds {strays:?}, which no event in contracts::EVENTS generates. \
         Event versions are never removed from the catalogue while their history can be \
         replayed: restore the entry, or delete the file if it was never published."
    );
}

#[test]
fn no_sample_directory_exists_for_an_event_missing_from_the_catalogue() {
    let known: BTreeSet<String> = EVENTS.iter().map(|d| d.file_stem()).collect();
    let strays: Vec<String> = entries(&samples_dir())
        .into_iter()
        .filter(|(name, is_dir)| !is_dir || !known.contains(name))
        .filter(|(name, _)| format!("samples/{name}") != manifest::FILE)
        .map(|(name, _)| name)
        .collect();
    assert!(
        strays.is_empty(),
        "contracts/samples holds {strays:?}, which is not the directory of any event in \
         contracts::EVENTS. Samples are never deleted: an event version with history in a \
         stream keeps its catalogue entry (and its upcaster) for replay. Restore the entry, \
         or fix the directory name to the event's file stem (e.g. checkout.order.placed.v1)."
    );
}
