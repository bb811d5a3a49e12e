//! `contracts/asyncapi.yaml`: generated from the catalogue and the consumer
//! declarations, committed, and never edited by hand. (CI also runs a real
//! AsyncAPI parser over it: `contracts/asyncapi-check`.)

use contracts::asyncapi::{document, render};
use contracts::consumers::CONSUMERS;
use contracts::EVENTS;
use serde_json::Value;

use crate::support::{bless_once, read, ASYNCAPI};

#[test]
fn the_committed_asyncapi_document_is_the_one_generated_from_the_contracts() {
    bless_once();
    let generated = render();
    let Some(committed) = read(ASYNCAPI) else {
        panic!(
            "contracts/{ASYNCAPI} is missing: run `BAZAAR_BLESS=1 cargo test -p contracts` to \
             write it, and commit it"
        );
    };
    if committed != generated {
        let first = committed
            .lines()
            .zip(generated.lines())
            .position(|(c, g)| c != g)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "contracts/{ASYNCAPI} differs from the document generated from the contracts \
             (first at line {}):\n  committed: {:?}\n  generated: {:?}\n  \
             It is generated, never edited: run `BAZAAR_BLESS=1 cargo test -p contracts` to \
             regenerate it (after an event or consumer change), review the diff and commit it.",
            first + 1,
            committed.lines().nth(first).unwrap_or("(end of file)"),
            generated.lines().nth(first).unwrap_or("(end of file)"),
        );
    }
}

#[test]
fn every_event_has_a_channel_and_every_declared_reader_a_receive_operation() {
    let doc = document();
    for d in EVENTS {
        let id = d.file_stem();
        assert_eq!(
            doc["channels"][&id]["address"],
            Value::from(d.subject),
            "{id}"
        );
        assert_eq!(doc["channels"][&id]["x-owner"], Value::from(d.team.name()));
        let send = &doc["operations"][format!("{}.send.{id}", d.team.service())];
        assert_eq!(
            send.is_object(),
            !d.is_superseded(),
            "{id}: sent by its owner unless superseded"
        );
    }
    for consumer in CONSUMERS {
        for subject in consumer.subjects() {
            let stem = subject.strip_prefix("evt.").unwrap_or(subject);
            let op = &doc["operations"][format!("{}.receive.{stem}", consumer.service)];
            assert_eq!(
                op["action"], "receive",
                "{} reads {subject}",
                consumer.service
            );
        }
    }
}

#[test]
fn every_message_payload_is_the_committed_envelope_schema_of_its_event() {
    let doc = document();
    for d in EVENTS {
        let id = d.file_stem();
        let message = &doc["components"]["messages"][&id];
        assert_eq!(message["contentType"], "application/cloudevents+json");
        assert_eq!(
            message["payload"]["$ref"],
            Value::from(format!("#/components/schemas/{id}"))
        );
        // The same schema, with its `$ref`s moved into the document.
        let embedded = doc["components"]["schemas"][&id].to_string();
        let committed = (d.envelope_schema)()
            .to_string()
            .replace("\"#/$defs/", &format!("\"#/components/schemas/{id}/$defs/"));
        assert_eq!(embedded, committed, "{id}");
    }
}
