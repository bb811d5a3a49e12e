//! Loading, blessing and checking schemas and samples: the one place the
//! tests touch files, so each test reads as a sentence.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use contracts::catalog::envelope_schema;
use contracts::envelope::DecodeError;
use contracts::{EventDescriptor, EVENTS};
use serde_json::{Map, Value};

use crate::{compat, manifest};

/// The file stem of the schema of any envelope, `data` left open.
pub const ENVELOPE: &str = "envelope";

pub fn schemas_dir() -> PathBuf {
    contracts_dir().join("schemas")
}

pub fn samples_dir() -> PathBuf {
    contracts_dir().join("samples")
}

pub fn blessing() -> bool {
    std::env::var("BAZAAR_BLESS").is_ok_and(|v| v == "1")
}

/// Says something the developer must see even though libtest captures
/// the output of passing tests (it captures `print!`, not raw stderr).
pub fn announce(message: &str) {
    // Best effort: a closed stderr is no reason to fail a test.
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// Every schema the Rust types generate, by file stem: one per event
/// version, plus the generic envelope.
pub fn generated_schemas() -> BTreeMap<String, Value> {
    let mut schemas: BTreeMap<String, Value> = EVENTS
        .iter()
        .map(|d| (d.file_stem(), canonical((d.envelope_schema)())))
        .collect();
    schemas.insert(ENVELOPE.to_owned(), canonical(envelope_schema()));
    schemas
}

/// The committed text of `schemas/<stem>.json`, after blessing when
/// asked; `None` when there is no such file.
pub fn committed_text(stem: &str) -> Option<String> {
    bless_once();
    std::fs::read_to_string(schemas_dir().join(format!("{stem}.json"))).ok()
}

/// What `BAZAAR_BLESS=1` did to the committed files.
#[derive(Debug, Default)]
pub struct Blessed {
    /// Files rewritten from the Rust types (relative to `contracts/`).
    pub written: Vec<String>,
    /// Schemas left alone because the change would break consumers.
    pub refused: Vec<String>,
}

/// Blesses once per test binary (nothing unless `BAZAAR_BLESS=1`), before
/// any test reads a committed file, so tests of new samples see the
/// schemas they are blessed together with. Blessing accepts additive
/// changes only: a schema whose change breaks consumers is left as it is,
/// and the compatibility test says why.
pub fn bless_once() -> &'static Blessed {
    static BLESSED: OnceLock<Blessed> = OnceLock::new();
    BLESSED.get_or_init(|| {
        let mut blessed = Blessed::default();
        if !blessing() {
            return blessed;
        }
        std::fs::create_dir_all(schemas_dir()).expect("create contracts/schemas");
        for (stem, schema) in generated_schemas() {
            let path = schemas_dir().join(format!("{stem}.json"));
            let text = render(&schema);
            let current = std::fs::read_to_string(&path).ok();
            if current.as_deref() == Some(text.as_str()) {
                continue;
            }
            let committed = current.and_then(|t| serde_json::from_str::<Value>(&t).ok());
            if committed.is_some_and(|c| !compat::compare(&c, &schema).breaking.is_empty()) {
                blessed.refused.push(format!("schemas/{stem}.json"));
                continue;
            }
            std::fs::write(&path, text).expect("write a blessed schema");
            blessed.written.push(format!("schemas/{stem}.json"));
        }
        if manifest::bless() {
            blessed.written.push(manifest::FILE.to_owned());
        }
        // The document embeds the schemas: never ahead of a refused one.
        let asyncapi = contracts::asyncapi::render();
        if blessed.refused.is_empty() && read(ASYNCAPI).as_deref() != Some(asyncapi.as_str()) {
            std::fs::write(contracts_dir().join(ASYNCAPI), asyncapi).expect("write asyncapi");
            blessed.written.push(ASYNCAPI.to_owned());
        }
        blessed
    })
}

/// The AsyncAPI document, relative to `contracts/`.
pub const ASYNCAPI: &str = "asyncapi.yaml";

pub fn contracts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file under `contracts/` as it is now (call [`bless_once`] first).
pub fn read(relative: &str) -> Option<String> {
    std::fs::read_to_string(contracts_dir().join(relative)).ok()
}

/// Pretty-printed with a trailing newline; keys are sorted by
/// [`canonical`], so diffs stay readable.
pub fn render(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a JSON value serialises");
    text.push('\n');
    text
}

/// The value with every object's keys in sorted order, whether or not
/// serde_json's `preserve_order` feature is on in this build.
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// Where `after` differs from `before`, as JSON pointers, e.g.
/// `added /$defs/OrderPlacedV1/properties/coupon`.
pub fn differences(before: &Value, after: &Value) -> Vec<String> {
    let mut found = Vec::new();
    diff(before, after, String::new(), &mut found);
    found
}

fn diff(before: &Value, after: &Value, path: String, found: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let keys: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
            for key in keys {
                let at = format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"));
                match (b.get(key), a.get(key)) {
                    (Some(b), Some(a)) => diff(b, a, at, found),
                    (None, Some(_)) => found.push(format!("added {at}")),
                    (Some(_), None) => found.push(format!("removed {at}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(b), Value::Array(a)) if b.len() == a.len() => {
            for (i, (b, a)) in b.iter().zip(a).enumerate() {
                diff(b, a, format!("{path}/{i}"), found);
            }
        }
        (b, a) if b != a => found.push(format!("changed {path}: {b} -> {a}")),
        _ => {}
    }
}

/// One golden sample: a whole envelope as it was on the wire.
pub struct Sample {
    pub descriptor: &'static EventDescriptor,
    /// `<file_stem>/<name>.json`, for messages.
    pub name: String,
    pub bytes: Vec<u8>,
    pub json: Value,
}

/// Every sample of an event in the catalogue (directories without one
/// are reported by their own test).
pub fn samples() -> &'static [Sample] {
    static SAMPLES: OnceLock<Vec<Sample>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let mut samples = Vec::new();
        for descriptor in EVENTS {
            let stem = descriptor.file_stem();
            for file in json_files(&samples_dir().join(&stem)) {
                let name = format!("{stem}/{file}");
                let bytes = std::fs::read(samples_dir().join(&stem).join(&file))
                    .unwrap_or_else(|e| panic!("cannot read samples/{name}: {e}"));
                let json = serde_json::from_slice(&bytes)
                    .unwrap_or_else(|e| panic!("samples/{name} is not JSON: {e}"));
                samples.push(Sample {
                    descriptor,
                    name,
                    bytes,
                    json,
                });
            }
        }
        samples
    })
}

/// The names of the `.json` files in a directory, sorted; none if it is missing.
pub fn json_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = entries(dir)
        .into_iter()
        .filter(|(name, is_dir)| !is_dir && name.ends_with(".json"))
        .map(|(name, _)| name)
        .collect();
    names.sort();
    names
}

/// `(name, is_dir)` of every entry of a directory; none if it is missing.
pub fn entries(dir: &Path) -> Vec<(String, bool)> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    read.map(|entry| {
        let entry = entry.expect("list a directory entry");
        let is_dir = entry.file_type().expect("stat a directory entry").is_dir();
        (entry.file_name().to_string_lossy().into_owned(), is_dir)
    })
    .collect()
}

/// The committed schema of a stem, compiled, with formats (`uuid`,
/// `date-time`) asserted rather than merely annotated.
pub fn validator(stem: &str) -> Option<&'static jsonschema::Validator> {
    static VALIDATORS: OnceLock<BTreeMap<String, jsonschema::Validator>> = OnceLock::new();
    VALIDATORS
        .get_or_init(|| {
            let mut validators = BTreeMap::new();
            for stem in generated_schemas().into_keys() {
                let Some(text) = committed_text(&stem) else {
                    continue;
                };
                let schema: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("schemas/{stem}.json is not JSON: {e}"));
                let validator = jsonschema::options()
                    .should_validate_formats(true)
                    .build(&schema)
                    .unwrap_or_else(|e| panic!("schemas/{stem}.json is not a JSON Schema: {e}"));
                validators.insert(stem, validator);
            }
            validators
        })
        .get(stem)
}

/// Validates a document against the committed schema of `stem`.
pub fn validate(stem: &str, doc: &Value) -> Result<(), Vec<String>> {
    let Some(validator) = validator(stem) else {
        return Err(vec![format!("there is no committed schemas/{stem}.json")]);
    };
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("at {:?}: {e}", e.instance_path().to_string()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// What the Rust type (through the descriptor's `check`) and the
/// committed schema make of one document.
pub struct Verdict {
    pub decoded: Result<(), DecodeError>,
    pub validated: Result<(), Vec<String>>,
}

pub fn check(descriptor: &EventDescriptor, doc: &Value) -> Verdict {
    let bytes = serde_json::to_vec(doc).expect("a JSON value serialises");
    Verdict {
        decoded: (descriptor.check)(&bytes),
        validated: validate(&descriptor.file_stem(), doc),
    }
}

impl Verdict {
    pub fn assert_accepted(&self, what: &str) {
        if let Err(e) = &self.decoded {
            panic!("{what}: the Rust type rejects it: {e}");
        }
        if let Err(errors) = &self.validated {
            panic!(
                "{what}: the committed schema rejects it:\n  {}",
                errors.join("\n  ")
            );
        }
    }

    /// Asserts that both the type and the schema reject the document,
    /// and returns the type's reason.
    pub fn assert_rejected(self, what: &str) -> DecodeError {
        assert!(
            self.validated.is_err(),
            "{what}: the committed schema accepts it"
        );
        match self.decoded {
            Err(e) => e,
            Ok(()) => panic!("{what}: the Rust type accepts it"),
        }
    }
}
