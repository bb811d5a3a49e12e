//! A small, deterministic YAML writer for JSON values: block style, keys
//! sorted (root keys in a given order), strings quoted unless plainly safe.
//! Enough for a generated document that people read in diffs, without a
//! YAML library in the one crate every team depends on.

use serde_json::{Map, Value};

/// Renders `value` (an object) as a YAML document ending in a newline.
pub fn render(value: &Value, root_order: &[&str]) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) => {
            let rank = |key: &str| root_order.iter().position(|k| *k == key);
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by_key(|k| (rank(k).unwrap_or(usize::MAX), k.as_str()));
            for key in keys {
                entry(&mut out, key, &map[key.as_str()], 0);
            }
        }
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

/// `key: value` at `indent`, nesting collections below it.
fn entry(out: &mut String, key: &str, value: &Value, indent: usize) {
    out.push_str(&" ".repeat(indent));
    out.push_str(&text(key));
    out.push(':');
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            mapping(out, map, indent + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            sequence(out, items, indent + 2);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn mapping(out: &mut String, map: &Map<String, Value>, indent: usize) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        entry(out, key, &map[key.as_str()], indent);
    }
}

fn sequence(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        // A collection item is written two deeper, then its first line's
        // indentation becomes the dash: `- first: …` / `  second: …`.
        let mut nested = String::new();
        match item {
            Value::Object(map) if !map.is_empty() => mapping(&mut nested, map, indent + 2),
            Value::Array(items) if !items.is_empty() => sequence(&mut nested, items, indent + 2),
            other => {
                out.push_str(&" ".repeat(indent));
                out.push_str("- ");
                out.push_str(&scalar(other));
                out.push('\n');
                continue;
            }
        }
        out.push_str(&" ".repeat(indent));
        out.push_str("- ");
        out.push_str(&nested[indent + 2..]);
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => text(s),
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
        // null, booleans and numbers read the same in YAML as in JSON.
        other => other.to_string(),
    }
}

/// A string as a plain scalar when nothing in YAML could read it as
/// anything else, otherwise double-quoted (JSON escapes are YAML escapes).
fn text(s: &str) -> String {
    let plain = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./+$".contains(c))
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_owned()
    } else {
        Value::String(s.to_owned()).to_string()
    }
}

/// Words some YAML reader takes for a boolean or null.
const RESERVED: [&str; 11] = [
    "true", "false", "null", "yes", "no", "on", "off", "y", "n", "nan", "inf",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_collections_are_written_in_block_style() {
        let doc = json!({
            "b": { "list": ["x", { "k": 1, "j": [true, null] }], "empty": {} },
            "a": "two words",
        });

        let yaml = render(&doc, &["b"]);

        assert_eq!(
            yaml,
            "b:\n  empty: {}\n  list:\n    - x\n    - j:\n        - true\n        - null\n      k: 1\n\
             a: \"two words\"\n"
        );
    }

    #[test]
    fn strings_that_could_read_as_something_else_are_quoted() {
        for (s, written) in [
            (
                "evt.checkout.order.placed.v1",
                "evt.checkout.order.placed.v1",
            ),
            (
                "application/cloudevents+json",
                "application/cloudevents+json",
            ),
            ("$ref", "$ref"),
            ("no", "\"no\""),
            ("3.0.0", "\"3.0.0\""),
            ("#/components/x", "\"#/components/x\""),
            ("a: b", "\"a: b\""),
            ("", "\"\""),
            ("Lindenstraße", "\"Lindenstraße\""),
        ] {
            assert_eq!(text(s), written, "{s}");
        }
    }
}
