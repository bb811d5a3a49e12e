//! The consumers' side of the contracts: every golden sample of every event
//! version a service declares it reads (`contracts::consumers`) is taken by
//! that service without a dead letter. The contract tests prove that a
//! sample decodes; this proves the services accept it. A consumer that
//! starts to require what a producer may leave out (an optional field, a
//! field only a newer version carries, the shape of an upcast old event)
//! fails here, naming the sample and the service's error.

use std::path::PathBuf;

use async_nats::HeaderMap;
use bazaar_testkit::{wait_until, Shop, Streams};
use contracts::catalog::EVENTS;
use contracts::consumers::{Reading, CONSUMERS};
use contracts::subjects::DLQ_STREAM;
use platform::dlq::{H_ERROR, H_SEQ, H_SERVICE, H_STREAM};

use crate::SETTLE;

/// One published sample: where it went and which file it was.
struct Published {
    stream: &'static str,
    subject: &'static str,
    seq: u64,
    sample: String,
}

fn samples_of(stem: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../contracts/samples")
        .join(stem);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn every_consumer_takes_every_golden_sample_of_what_it_reads_without_a_dead_letter() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let streams = shop.streams().await;

    let mut published = Vec::new();
    for descriptor in EVENTS {
        for path in samples_of(&descriptor.file_stem()) {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut sample: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // A fresh id, so that no inbox takes it for one it has seen.
            sample["id"] = uuid::Uuid::now_v7().to_string().into();
            let payload = serde_json::to_vec(&sample).unwrap_or_default();
            let seq = streams
                .publish(descriptor.subject, HeaderMap::new(), payload)
                .await;
            published.push(Published {
                stream: descriptor.team.stream(),
                subject: descriptor.subject,
                seq,
                sample: format!("{}/{}", descriptor.file_stem(), file_name(&path)),
            });
        }
    }
    assert!(published.len() >= EVENTS.len(), "every event has samples");

    // Every durable reader has passed the last sample of each stream it
    // reads (acked it, or dead-lettered it).
    for consumer in CONSUMERS.iter().filter(|c| c.reading == Reading::Durable) {
        for reads in consumer.reads {
            let stream = reads.from.stream();
            let Some(last) = published
                .iter()
                .filter(|p| p.stream == stream)
                .map(|p| p.seq)
                .max()
            else {
                continue;
            };
            wait_until(
                SETTLE,
                &format!("{} passes the samples on {stream}", consumer.service),
                || streams.consumer_passed(stream, consumer.service, last),
            )
            .await;
        }
    }
    assert_none_refused(&streams, &published).await;

    // The ordered readers (the edge's views, the search feeds) have read
    // past them once a new order settles in the edge's view: its events
    // follow the samples on every stream the views read.
    let api = shop.customer_api("sampler");
    let product = shop.stocked_product("SAMPLES-AFTER-1", 900, 3).await;
    let order = api.place_order_of(product.id, 1, "tok_visa").await;
    api.wait_for_order(
        order.id,
        "an order after the samples confirms",
        SETTLE,
        |o| o.status == "confirmed" || o.status == "shipped",
    )
    .await;
    assert_none_refused(&streams, &published).await;
}

/// Fails naming every sample a service dead-lettered, with its error.
async fn assert_none_refused(streams: &Streams, published: &[Published]) {
    let letters: Vec<String> = streams
        .events(DLQ_STREAM)
        .await
        .iter()
        .filter_map(|letter| {
            let stream = letter.header(H_STREAM)?;
            let seq: u64 = letter.header(H_SEQ)?.parse().ok()?;
            let sample = published
                .iter()
                .find(|p| p.stream == stream && p.seq == seq)?;
            Some(format!(
                "{} dead-lettered {} ({}): {}",
                letter.header(H_SERVICE).unwrap_or_default(),
                sample.sample,
                sample.subject,
                letter.header(H_ERROR).unwrap_or_default()
            ))
        })
        .collect();
    assert!(
        letters.is_empty(),
        "\nconsumers refused golden samples of events they declare they read:\n  {}\n  \
         A sample is an event its producer may publish (contracts/samples). Make the consumer \
         take it (a field the producer may leave out must stay optional for it), or, if the \
         producer must now always send it, that is a new major version (contracts/README.md).",
        letters.join("\n  ")
    );
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
