//! The AsyncAPI 3.0 description of every event, generated from the
//! catalogue and the consumer declarations: what `contracts/asyncapi.yaml`
//! holds, for teams and tools outside this workspace. One channel per event
//! subject; one message per event version whose payload is the envelope
//! schema also committed under `schemas/`; a `send` operation by the owning
//! team's service and a `receive` operation by each declared consumer.

mod yaml;

use serde_json::{json, Map, Value};

use crate::catalog::{EventDescriptor, EVENTS};
use crate::consumers::CONSUMERS;
use crate::subjects::Team;

/// Structured-mode CloudEvents in JSON.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// The document, as YAML text (what is committed).
pub fn render() -> String {
    yaml::render(&document(), &TOP_LEVEL_ORDER)
}

/// The AsyncAPI spec's own order of the root fields, for a readable file.
const TOP_LEVEL_ORDER: [&str; 7] = [
    "asyncapi",
    "info",
    "defaultContentType",
    "servers",
    "channels",
    "operations",
    "components",
];

/// The document as a JSON value.
pub fn document() -> Value {
    let mut channels = Map::new();
    let mut messages = Map::new();
    let mut schemas = Map::new();
    let mut operations = Map::new();
    for d in EVENTS {
        let id = d.file_stem();
        channels.insert(id.clone(), channel(d));
        messages.insert(id.clone(), message(d));
        schemas.insert(id.clone(), rebase((d.envelope_schema)(), &id));
        if !d.is_superseded() {
            // A superseded version is only read from history: nobody sends it.
            let op = operation("send", d.team.service(), d, Some(d.team));
            operations.insert(format!("{}.send.{id}", d.team.service()), op);
        }
    }
    for consumer in CONSUMERS {
        for subject in consumer.subjects() {
            let Some(d) = crate::catalog::by_subject(subject) else {
                // Reported by the contract tests; the document stays valid.
                continue;
            };
            let op = operation("receive", consumer.service, d, consumer.team);
            let id = format!("{}.receive.{}", consumer.service, d.file_stem());
            operations.insert(id, op);
        }
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Bazaar events",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every event the Bazaar teams publish on NATS JetStream, generated \
                from the `contracts` crate. Each team alone publishes on `evt.<team>.>`; \
                within a major version events only gain optional fields, and a breaking change \
                is a new major version with its own subject (see contracts/README.md).",
            "tags": Team::ALL.iter().map(|t| team_tag(*t)).collect::<Vec<_>>(),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "local": {
                "host": "localhost:4222",
                "protocol": "nats",
                "description": "the broker `bazaar up` starts (JetStream; one stream per team)",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages, "schemas": schemas },
    })
}

fn team_tag(team: Team) -> Value {
    json!({
        "name": team.name(),
        "description": format!(
            "owned by the {} team: published by {} on stream {}",
            team.name(),
            team.service(),
            team.stream()
        ),
    })
}

fn channel(d: &EventDescriptor) -> Value {
    let id = d.file_stem();
    let mut channel = json!({
        "address": d.subject,
        "title": d.event_type(),
        "description": describe(d),
        "messages": { message_name(d): { "$ref": format!("#/components/messages/{id}") } },
        "tags": [{ "name": d.team.name() }],
        "x-owner": d.team.name(),
        "x-stream": d.team.stream(),
    });
    superseded(&mut channel, d);
    channel
}

fn message(d: &EventDescriptor) -> Value {
    let id = d.file_stem();
    let mut message = json!({
        "name": message_name(d),
        "title": d.event_type(),
        "summary": payload_description(d),
        "description": describe(d),
        "contentType": CONTENT_TYPE,
        "payload": { "$ref": format!("#/components/schemas/{id}") },
        "tags": [{ "name": d.team.name() }],
        "x-owner": d.team.name(),
    });
    superseded(&mut message, d);
    message
}

fn operation(action: &str, service: &str, d: &EventDescriptor, team: Option<Team>) -> Value {
    let id = d.file_stem();
    let verb = if action == "send" {
        "publishes"
    } else {
        "reads"
    };
    let team = team.map_or("platform", Team::name);
    json!({
        "action": action,
        "channel": { "$ref": format!("#/channels/{id}") },
        "messages": [{ "$ref": format!("#/channels/{id}/messages/{}", message_name(d)) }],
        "summary": format!("{service} {verb} {}", d.event_type()),
        "tags": [{ "name": team }],
        "x-service": service,
    })
}

/// The Rust payload type's name, e.g. `OrderPlacedV1`: the `data` ref.
fn message_name(d: &EventDescriptor) -> String {
    (d.schema)()
        .get("title")
        .and_then(Value::as_str)
        .map_or_else(|| d.file_stem(), str::to_owned)
}

fn payload_description(d: &EventDescriptor) -> String {
    (d.schema)()
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn describe(d: &EventDescriptor) -> String {
    let mut text = format!(
        "{} Owned by the {} team; schema urn:bazaar:schema:{}.",
        payload_description(d),
        d.team.name(),
        d.subject
    );
    if let Some(upcast) = &d.upcast {
        text.push_str(&format!(
            " No longer published: superseded by {}. History in the stream still holds it, \
             and consumers read it through the upcaster into that version.",
            upcast.to
        ));
    }
    text
}

fn superseded(object: &mut Value, d: &EventDescriptor) {
    if let (Some(upcast), Some(object)) = (&d.upcast, object.as_object_mut()) {
        object.insert("x-deprecated".into(), Value::Bool(true));
        object.insert("x-superseded-by".into(), Value::String(upcast.to.into()));
    }
}

/// Moves a standalone schema under `#/components/schemas/<id>`: its local
/// references (`#/$defs/X`) must point into the document that holds it.
fn rebase(schema: Value, id: &str) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => {
                        let target = match target.strip_prefix('#') {
                            Some(pointer) => format!("#/components/schemas/{id}{pointer}"),
                            None => target,
                        };
                        (key, Value::String(target))
                    }
                    (_, value) => (key, rebase(value, id)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| rebase(v, id)).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_local_reference_points_into_the_document() {
        let doc = document();
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for target in refs {
            let pointer = target.strip_prefix('#').unwrap_or(&target);
            assert!(doc.pointer(pointer).is_some(), "dangling $ref {target}");
        }
    }

    fn collect_refs(value: &Value, refs: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    match (key.as_str(), child) {
                        ("$ref", Value::String(target)) => refs.push(target.clone()),
                        _ => collect_refs(child, refs),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
            _ => {}
        }
    }
}
