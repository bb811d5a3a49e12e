//! Property-based fuzzing of envelope decoding: whatever arrives on the bus,
//! `RawEnvelope::parse` and `catalog::decode_any` answer `Ok` or a
//! `DecodeError`, and never panic. Consumers rely on that to dead-letter
//! poison instead of crashing. The case counts are modest so this runs in
//! seconds; raise `PROPTEST_CASES` for a longer hunt.

use std::path::{Path, PathBuf};

use contracts::catalog::decode_any;
use contracts::RawEnvelope;
use proptest::prelude::*;
use serde_json::Value;

/// Every golden sample (`samples/<event type>/<name>.json`), as bytes.
fn golden_samples() -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut samples = Vec::new();
    let Ok(types) = std::fs::read_dir(&root) else {
        panic!("cannot read {}", root.display());
    };
    for dir in types.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
        let Ok(files) = std::fs::read_dir(&dir) else {
            panic!("cannot read {}", dir.display());
        };
        for file in files.flatten().map(|e| e.path()) {
            if file.extension().is_some_and(|e| e == "json") {
                match std::fs::read(&file) {
                    Ok(bytes) => samples.push((file, bytes)),
                    Err(e) => panic!("cannot read {}: {e}", file.display()),
                }
            }
        }
    }
    samples.sort();
    assert!(samples.len() >= 10, "too few golden samples: {samples:?}");
    samples
}

/// Both decoders on `bytes`; a panic fails the property.
fn decode_both(bytes: &[u8]) {
    let _ = RawEnvelope::parse(bytes);
    let _ = decode_any(bytes);
}

/// Arbitrary JSON values, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
        Just(Value::String("1.0".into())),
        Just(Value::String("com.bazaar.checkout.order.placed.v2".into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("specversion".to_owned()),
                    Just("type".to_owned()),
                    Just("id".to_owned()),
                    Just("data".to_owned()),
                    Just("time".to_owned()),
                    Just("subject".to_owned()),
                    "[a-z_]{1,10}",
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One mutation of a sample's JSON: a field removed, replaced or added,
/// anywhere in the tree.
#[derive(Debug, Clone)]
enum Mutation {
    Remove(usize),
    Replace(usize, Value),
    Add(usize, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), json_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        (any::<usize>(), "[a-z_]{1,10}", json_value()).prop_map(|(i, k, v)| Mutation::Add(i, k, v)),
    ]
}

/// The objects of `value`, depth first (pointers as paths).
fn object_paths(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            out.push(at.clone());
            for (k, v) in map {
                object_paths(
                    v,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                object_paths(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn apply(mut value: Value, mutation: &Mutation) -> Value {
    let mut objects = Vec::new();
    object_paths(&value, String::new(), &mut objects);
    let pick = |i: usize| objects[i % objects.len()].clone();
    match mutation {
        Mutation::Remove(i) | Mutation::Replace(i, _) => {
            let path = pick(*i);
            if let Some(Value::Object(map)) = value.pointer_mut(&path) {
                let keys: Vec<String> = map.keys().cloned().collect();
                if !keys.is_empty() {
                    let key = &keys[i / objects.len().max(1) % keys.len()];
                    match mutation {
                        Mutation::Replace(_, v) => {
                            map.insert(key.clone(), v.clone());
                        }
                        _ => {
                            map.remove(key);
                        }
                    }
                }
            }
        }
        Mutation::Add(i, key, v) => {
            if let Some(Value::Object(map)) = value.pointer_mut(&pick(*i)) {
                map.insert(key.clone(), v.clone());
            }
        }
    }
    value
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_both(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics_the_decoders(value in json_value()) {
        let bytes = serde_json::to_vec(&value).unwrap_or_default();
        decode_both(&bytes);
    }

    #[test]
    fn mutated_golden_samples_decode_or_give_a_decode_error(
        index in any::<usize>(),
        mutations in prop::collection::vec(mutation(), 1..4),
        truncate in prop::option::of(any::<usize>()),
    ) {
        let samples = golden_samples();
        let (path, bytes) = &samples[index % samples.len()];
        let original: Value = serde_json::from_slice(bytes)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        prop_assert!(decode_any(bytes).is_ok(), "{} does not decode", path.display());
        let mutated = mutations.iter().fold(original, apply);
        let mut bytes = serde_json::to_vec(&mutated).unwrap_or_default();
        if let Some(cut) = truncate {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        // Either answer is fine; what matters is that there is one.
        match decode_any(&bytes) {
            Ok(raw) => prop_assert!(!raw.event_type.is_empty()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        let _ = RawEnvelope::parse(&bytes);
    }
}
