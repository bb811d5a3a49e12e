//! The golden samples: every one still decodes, validates and round-trips,
//! and damaged copies of them are refused.

use contracts::envelope::DecodeError;
use contracts::EVENTS;
use serde_json::{json, Value};

use crate::support::{check, differences, samples, validate, ENVELOPE};

#[test]
fn every_sample_decodes_as_its_type_and_validates_against_its_committed_schema() {
    assert!(!samples().is_empty(), "no golden samples were found");
    for sample in samples() {
        check(sample.descriptor, &sample.json).assert_accepted(&sample.name);
    }
}

#[test]
fn every_sample_validates_against_the_schema_of_any_envelope() {
    for sample in samples() {
        if let Err(errors) = validate(ENVELOPE, &sample.json) {
            panic!(
                "{}: schemas/envelope.json rejects it:\n  {}",
                sample.name,
                errors.join("\n  ")
            );
        }
    }
}

#[test]
fn every_sample_survives_a_round_trip_through_its_rust_type() {
    for sample in samples() {
        let again = (sample.descriptor.reencode)(&sample.bytes)
            .unwrap_or_else(|e| panic!("{}: does not decode: {e}", sample.name));
        assert!(
            again == sample.json,
            "{}: decoding and encoding it again changes it (sample -> re-encoded):\n    {}\n  \
             Within a major version a field is never removed or renamed, and a field added to \
             it needs `#[serde(default, skip_serializing_if = ...)]` so that old events come \
             out as they went in. (A sample must not hold an explicit null either.)",
            sample.name,
            differences(&sample.json, &again).join("\n    ")
        );
    }
}

#[test]
fn consumers_ignore_unknown_fields_in_the_envelope_and_in_data() {
    for sample in samples() {
        let mut doc = sample.json.clone();
        doc["x_newer_attribute"] = json!("from a newer producer");
        doc["data"]["x_newer_field"] = json!({ "nested": [1, 2, 3] });

        check(sample.descriptor, &doc)
            .assert_accepted(&format!("{} with unknown fields", sample.name));
    }
}

#[test]
fn a_sample_with_another_event_type_is_rejected() {
    for sample in samples() {
        let others = EVENTS
            .iter()
            .filter(|d| d.subject != sample.descriptor.subject)
            .map(|d| d.event_type());
        for wrong in others.chain([next_major(&sample.descriptor.event_type())]) {
            let mut doc = sample.json.clone();
            doc["type"] = json!(wrong);

            let what = format!("{} as {wrong}", sample.name);
            let error = check(sample.descriptor, &doc).assert_rejected(&what);
            assert!(
                matches!(error, DecodeError::WrongType { .. }),
                "{what}: {error}"
            );
        }
    }
}

/// `bazaar.x.y.z.v1` -> `bazaar.x.y.z.v2`.
fn next_major(event_type: &str) -> String {
    let (unversioned, major) = event_type
        .rsplit_once(".v")
        .expect("an event type ends in .v<major>");
    let major: u32 = major.parse().expect("a major version is a number");
    format!("{unversioned}.v{}", major + 1)
}

#[test]
fn a_sample_with_specversion_0_3_is_rejected() {
    for sample in samples() {
        let mut doc = sample.json.clone();
        doc["specversion"] = json!("0.3");

        let what = format!("{} with specversion 0.3", sample.name);
        let error = check(sample.descriptor, &doc).assert_rejected(&what);
        assert!(
            matches!(&error, DecodeError::SpecVersion(v) if v == "0.3"),
            "{what}: {error}"
        );
    }
}

/// The CloudEvents attributes every Bazaar event must carry; the
/// `traceparent` extension is the one optional attribute.
const REQUIRED_ATTRIBUTES: [&str; 11] = [
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
    "data",
    "correlationid",
    "causationid",
];

/// Removes each field of each sample in turn, at any depth: the type and
/// the schema must agree on whether it may be missing, and the envelope's
/// attributes must be required.
#[test]
fn a_sample_missing_a_required_field_is_rejected_by_the_type_and_the_schema_alike() {
    for sample in samples() {
        let mut rejected = Vec::new();
        for pointer in field_pointers(&sample.json, "") {
            let mut doc = sample.json.clone();
            remove(&mut doc, &pointer);

            let what = format!("{} without {pointer}", sample.name);
            let verdict = check(sample.descriptor, &doc);
            if verdict.decoded.is_ok() {
                verdict.assert_accepted(&format!("{what} (optional in the Rust type)"));
            } else {
                verdict.assert_rejected(&format!("{what} (required by the Rust type)"));
                rejected.push(pointer);
            }
        }
        for attribute in REQUIRED_ATTRIBUTES {
            assert!(
                rejected.contains(&format!("/{attribute}")),
                "{}: an envelope without `{attribute}` is accepted",
                sample.name
            );
        }
    }
}

/// The JSON pointer of every object member in `value`, at any depth.
fn field_pointers(value: &Value, at: &str) -> Vec<String> {
    match value {
        Value::Object(map) => map
            .iter()
            .flat_map(|(key, child)| {
                let here = format!("{at}/{key}");
                let mut pointers = vec![here.clone()];
                pointers.extend(field_pointers(child, &here));
                pointers
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, item)| field_pointers(item, &format!("{at}/{i}")))
            .collect(),
        _ => Vec::new(),
    }
}

fn remove(doc: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer has a parent");
    doc.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .and_then(|object| object.remove(key))
        .unwrap_or_else(|| panic!("{pointer} is not a field"));
}

/// History of a superseded version stays in the stream: each of its
/// samples must still reach the newest version through the upcasters, and
/// come out as a valid event of that version.
#[test]
fn every_sample_of_a_superseded_version_upcasts_into_the_newest_version() {
    for sample in samples().iter().filter(|s| s.descriptor.is_superseded()) {
        let mut descriptor = sample.descriptor;
        let mut doc = sample.json.clone();
        while let Some(upcast) = &descriptor.upcast {
            let bytes = serde_json::to_vec(&doc).expect("a JSON value serialises");
            doc = (upcast.apply)(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{}: no longer decodes for its upcaster into {}: {e}\n  Samples record \
                     published history: fix the type or the upcaster, never the sample.",
                    sample.name, upcast.to
                )
            });
            descriptor = contracts::catalog::by_subject(upcast.to)
                .unwrap_or_else(|| panic!("{} upcasts to unknown {}", sample.name, upcast.to));
        }
        check(descriptor, &doc).assert_accepted(&format!(
            "{} upcast to {}",
            sample.name,
            descriptor.event_type()
        ));
        assert_eq!(doc["id"], sample.json["id"], "{}: identity", sample.name);
    }
}
