//! The structural compatibility check between two versions of an event's
//! envelope schema: the one committed (what consumers and the stream's
//! history were built against) and the one the Rust type generates now.
//!
//! Within a major version both directions must keep working, because
//! producers and consumers deploy in any order and old events stay in the
//! stream: new readers read old events, old readers read new ones. So the
//! only change allowed is a new optional field (plus documentation). The
//! walk follows `$ref`s, so a change deep inside a shared definition is
//! reported at the field path a consumer sees (`data.lines[].unit_price`).

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

/// Why a change breaks consumers or history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    RemovedField,
    NewlyRequired,
    MadeOptional,
    ChangedType,
    ChangedFormat,
    NarrowedEnum,
    WidenedEnum,
    ChangedConstraint,
    RemovedDefinition,
}

impl Rule {
    fn explain(self) -> &'static str {
        match self {
            Rule::RemovedField => {
                "removed field (a rename is a removal): events in the stream carry it and \
                 consumers read it"
            }
            Rule::NewlyRequired => {
                "newly required field: events already in the stream lack it, so a consumer \
                 built from the new type cannot decode history"
            }
            Rule::MadeOptional => {
                "field made optional: consumers built against the published version rely on it"
            }
            Rule::ChangedType => {
                "changed type: old events no longer decode as the new type, new ones not as the old"
            }
            Rule::ChangedFormat => "changed format: the same JSON type now means something else",
            Rule::NarrowedEnum => {
                "narrowed enum: events in the stream carry a value the new type rejects"
            }
            Rule::WidenedEnum => {
                "widened enum: consumers decode the set as closed and reject the new value"
            }
            Rule::ChangedConstraint => {
                "changed constraint: a value one side accepts, the other may reject"
            }
            Rule::RemovedDefinition => {
                "removed definition: tools generating code from the schema refer to it by name"
            }
        }
    }
}

/// One breaking change, at a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub path: String,
    pub rule: Rule,
    pub detail: String,
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.path, self.rule.explain())?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

/// What changed between two schemas.
#[derive(Debug, Default)]
pub struct Report {
    pub breaking: Vec<Break>,
    /// Changes that keep every reader working: new optional fields, new
    /// definitions, documentation.
    pub additive: Vec<String>,
}

/// Compares the `old` (committed) schema with the `new` (generated) one.
pub fn compare(old: &Value, new: &Value) -> Report {
    let mut walk = Walk {
        old_root: old,
        new_root: new,
        report: Report::default(),
        stack: Vec::new(),
        visited: BTreeSet::new(),
    };
    walk.node(old, new, "");
    walk.definitions();
    walk.report
}

/// Keywords that only document; a change to them is additive.
const ANNOTATIONS: [&str; 8] = [
    "description",
    "title",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
];

/// Keywords the walk handles itself; every other one is a constraint.
const STRUCTURE: [&str; 10] = [
    "$ref",
    "$defs",
    "type",
    "properties",
    "required",
    "items",
    "enum",
    "const",
    "anyOf",
    "oneOf",
];

struct Walk<'a> {
    old_root: &'a Value,
    new_root: &'a Value,
    report: Report,
    /// The `(old, new)` definitions being walked, against recursive types.
    stack: Vec<(String, String)>,
    /// Definitions compared through a field, under the same name.
    visited: BTreeSet<String>,
}

impl Walk<'_> {
    fn breaks(&mut self, path: &str, rule: Rule, detail: String) {
        let path = if path.is_empty() { "(root)" } else { path };
        self.report.breaking.push(Break {
            path: path.to_owned(),
            rule,
            detail,
        });
    }

    fn node(&mut self, old: &Value, new: &Value, path: &str) {
        let (old_ref, new_ref) = (reference(old), reference(new));
        let key = (old_ref.unwrap_or_default(), new_ref.unwrap_or_default());
        if (!key.0.is_empty() || !key.1.is_empty()) && self.stack.contains(&key) {
            return;
        }
        let old = resolve(self.old_root, old);
        let new = resolve(self.new_root, new);
        let (Some(old), Some(new)) = (old, new) else {
            self.breaks(
                path,
                Rule::ChangedType,
                "a reference no longer resolves".into(),
            );
            return;
        };
        if let (Some(o), Some(n)) = (
            key.0.strip_prefix("#/$defs/"),
            key.1.strip_prefix("#/$defs/"),
        ) {
            if o == n {
                self.visited.insert(o.to_owned());
            }
        }
        self.stack.push(key);
        self.keywords(&old, &new, path);
        self.stack.pop();
    }

    fn keywords(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, path: &str) {
        let (old_types, new_types) = (types(old), types(new));
        if old_types != new_types {
            let detail = format!("{old_types:?} -> {new_types:?}");
            self.breaks(path, Rule::ChangedType, detail);
        }
        self.enumeration(old, new, path);
        self.properties(old, new, path);
        match (old.get("items"), new.get("items")) {
            (Some(o), Some(n)) => self.node(o, n, &format!("{path}[]")),
            (None, None) => {}
            _ => self.breaks(path, Rule::ChangedType, "array items changed".into()),
        }
        for alternatives in ["anyOf", "oneOf"] {
            match (list(old, alternatives), list(new, alternatives)) {
                (Some(o), Some(n)) if o.len() == n.len() => {
                    for (o, n) in o.iter().zip(n) {
                        self.node(o, n, path);
                    }
                }
                (None, None) => {}
                _ => self.breaks(path, Rule::ChangedType, format!("`{alternatives}` changed")),
            }
        }
        let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        for key in keys {
            let (o, n) = (old.get(key.as_str()), new.get(key.as_str()));
            if o == n || STRUCTURE.contains(&key.as_str()) {
                continue;
            }
            if ANNOTATIONS.contains(&key.as_str()) {
                let at = if path.is_empty() { "(root)" } else { path };
                self.report.additive.push(format!("`{at}`: {key} changed"));
            } else if key == "format" {
                self.breaks(
                    path,
                    Rule::ChangedFormat,
                    format!("{} -> {}", show(o), show(n)),
                );
            } else {
                let detail = format!("{key}: {} -> {}", show(o), show(n));
                self.breaks(path, Rule::ChangedConstraint, detail);
            }
        }
    }

    fn enumeration(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, path: &str) {
        let (Some(old_values), Some(new_values)) = (values(old), values(new)) else {
            if values(old).is_some() != values(new).is_some() {
                let detail = "a closed set of values became open, or the reverse".into();
                self.breaks(path, Rule::ChangedConstraint, detail);
            }
            return;
        };
        // The values are JSON texts (`"card"`), printed as they are.
        let list = |a: &BTreeSet<String>, b: &BTreeSet<String>| {
            a.difference(b).cloned().collect::<Vec<_>>().join(", ")
        };
        let (removed, added) = (
            list(&old_values, &new_values),
            list(&new_values, &old_values),
        );
        if !removed.is_empty() {
            self.breaks(path, Rule::NarrowedEnum, format!("removed {removed}"));
        }
        if !added.is_empty() {
            self.breaks(path, Rule::WidenedEnum, format!("added {added}"));
        }
    }

    fn properties(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, path: &str) {
        let empty = Map::new();
        let old_props = old
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let new_props = new
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let (old_required, new_required) = (required(old), required(new));
        for (name, old_prop) in old_props {
            let at = join(path, name);
            match new_props.get(name) {
                None => self.breaks(&at, Rule::RemovedField, String::new()),
                Some(new_prop) => {
                    self.node(old_prop, new_prop, &at);
                    match (old_required.contains(name), new_required.contains(name)) {
                        (false, true) => self.breaks(&at, Rule::NewlyRequired, String::new()),
                        (true, false) => self.breaks(&at, Rule::MadeOptional, String::new()),
                        _ => {}
                    }
                }
            }
        }
        for name in new_props.keys().filter(|n| !old_props.contains_key(*n)) {
            let at = join(path, name);
            if new_required.contains(name) {
                self.breaks(
                    &at,
                    Rule::NewlyRequired,
                    "a new field must be optional".into(),
                );
            } else {
                self.report
                    .additive
                    .push(format!("`{at}`: new optional field"));
            }
        }
    }

    /// Definitions are compared by name too: one no longer generated is a
    /// removal even when nothing reaches it any more.
    fn definitions(&mut self) {
        let (old, new) = (defs(self.old_root), defs(self.new_root));
        for (name, old_def) in &old {
            match new.get(name) {
                None => {
                    let at = format!("$defs/{name}");
                    self.breaks(&at, Rule::RemovedDefinition, String::new());
                }
                // Reached through a field already, and reported at its path.
                Some(_) if self.visited.contains(name) => {}
                Some(new_def) => self.node(old_def, new_def, &format!("$defs/{name}")),
            }
        }
        for name in new.keys().filter(|n| !old.contains_key(*n)) {
            self.report
                .additive
                .push(format!("`$defs/{name}`: new definition"));
        }
        // A documentation change found through two fields is one change.
        let mut unique = BTreeSet::new();
        self.report.additive.retain(|a| unique.insert(a.clone()));
    }
}

fn reference(node: &Value) -> Option<String> {
    node.get("$ref").and_then(Value::as_str).map(str::to_owned)
}

/// The node with its `$ref` (a local `#/...` pointer) replaced by the
/// target, sibling keywords kept on top.
fn resolve(root: &Value, node: &Value) -> Option<Map<String, Value>> {
    let mut here = node.as_object().cloned().unwrap_or_default();
    let mut hops = 0;
    while let Some(target) = here.remove("$ref") {
        hops += 1;
        let pointer = target.as_str()?.strip_prefix('#')?;
        let mut resolved = root.pointer(pointer)?.as_object()?.clone();
        resolved.extend(here);
        here = resolved;
        if hops > 32 {
            return None;
        }
    }
    Some(here)
}

fn types(node: &Map<String, Value>) -> BTreeSet<String> {
    match node.get("type") {
        Some(Value::String(t)) => BTreeSet::from([t.clone()]),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// The closed set of values (`enum`, or a `const` as a set of one).
fn values(node: &Map<String, Value>) -> Option<BTreeSet<String>> {
    if let Some(Value::Array(items)) = node.get("enum") {
        return Some(items.iter().map(Value::to_string).collect());
    }
    node.get("const").map(|c| BTreeSet::from([c.to_string()]))
}

fn required(node: &Map<String, Value>) -> BTreeSet<String> {
    list(node, "required")
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn list<'a>(node: &'a Map<String, Value>, key: &str) -> Option<&'a Vec<Value>> {
    node.get(key).and_then(Value::as_array)
}

fn defs(root: &Value) -> Map<String, Value> {
    root.get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "(none)".to_owned(), Value::to_string)
}
