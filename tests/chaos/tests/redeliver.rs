//! Chaos: duplicates, out of order. Orders flow over REST while, twice,
//! the last messages of every team's stream are published again as `ops`
//! in reverse order (each copy under a fresh `Nats-Msg-Id`, so the stream
//! keeps it), so every service's consumers are delivered events they have
//! handled already, newest first. Every consumer must ignore them: each
//! copy is delivered and acknowledged, the services count the duplicates
//! they skipped, every order settles and `bazaar check --settled --json`
//! (which reads a copy as a duplicate delivery of the same event) finds no
//! violation. `BAZAAR_CHAOS_ORDERS` orders (default 2,000).

use std::time::{Duration, Instant};

use async_nats::jetstream::Context;
use async_nats::HeaderMap;
use bazaar_testkit::{Service, Shop};
use chaos::{
    check_shop, metric_sum, orders_requested, settle, shop_builder, Client, Load, Products,
};
use contracts::Team;
use uuid::Uuid;

/// Messages copied from the end of each stream, each time.
const SLICE: u64 = 150;
const SETTLE: Duration = Duration::from_secs(180);
const LOAD_LIMIT: Duration = Duration::from_secs(900);
const SKIPPED: &str = "bazaar_duplicates_skipped_total";

/// Publishes copies of the last `SLICE` messages of `stream`, newest first;
/// how many.
async fn republish_reversed(js: &Context, stream: &str) -> u64 {
    let mut handle = js
        .get_stream(stream)
        .await
        .unwrap_or_else(|e| panic!("stream {stream}: {e}"));
    let state = handle
        .info()
        .await
        .unwrap_or_else(|e| panic!("stream {stream}: {e}"))
        .state
        .clone();
    let first = state
        .last_sequence
        .saturating_sub(SLICE - 1)
        .max(state.first_sequence);
    let mut copies = 0;
    for seq in (first..=state.last_sequence).rev() {
        let original = handle
            .get_raw_message(seq)
            .await
            .unwrap_or_else(|e| panic!("{stream} message {seq}: {e}"));
        // The original's Nats-Msg-Id would make the stream drop the copy
        // (duplicate window), and an expected-sequence header would make it
        // refuse it; every other header (trace context) stays.
        let mut headers = HeaderMap::new();
        for (name, values) in original.headers.iter() {
            if name.to_string().starts_with("Nats-") {
                continue;
            }
            for value in values {
                headers.append(name.clone(), value.as_str());
            }
        }
        headers.insert(
            "Nats-Msg-Id",
            format!("chaos-copy-{}", Uuid::now_v7()).as_str(),
        );
        let ack = js
            .publish_with_headers(original.subject.clone(), headers, original.payload.clone())
            .await
            .unwrap_or_else(|e| panic!("copy of {stream} {seq}: {e}"))
            .await
            .unwrap_or_else(|e| panic!("no ack for the copy of {stream} {seq}: {e}"));
        assert!(!ack.duplicate, "{stream} dropped the copy of {seq}");
        copies += 1;
    }
    copies
}

/// Duplicates every service instance has skipped so far.
async fn skipped(shop: &Shop) -> f64 {
    let mut total = 0.0;
    for instance in shop.instances() {
        if !instance.starts_with(Service::Edge.name()) {
            total += metric_sum(shop, instance, SKIPPED).await;
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumers_ignore_copies_of_events_delivered_again_in_reverse_order() {
    let orders = orders_requested();
    let shop = shop_builder().start().await;
    let streams = shop.streams().await;
    let products = Products::stock(&shop, streams.js(), orders).await;
    let client = Client::of(&shop);
    let skipped_before = skipped(&shop).await;
    let load = Load::start(&client, products, orders);

    let mut copies = 0;
    load.wait_for_fraction(0.5, LOAD_LIMIT).await;
    for team in Team::ALL {
        copies += republish_reversed(streams.js(), team.stream()).await;
    }
    let (placed, load_took) = load.finish(LOAD_LIMIT).await;
    for team in Team::ALL {
        copies += republish_reversed(streams.js(), team.stream()).await;
    }
    let last_fault = Instant::now();
    eprintln!("chaos: published {copies} copies, newest first");

    let deadline = Instant::now() + SETTLE;
    let outcomes = settle(&client, &placed, deadline).await;
    chaos::wait_quiet(&shop, streams.js(), deadline).await;
    let recovered_in = last_fault.elapsed();
    let skipped = skipped(&shop).await - skipped_before;
    assert!(
        skipped > 0.0,
        "the services skipped no duplicate, though {copies} copies were published"
    );
    let check = check_shop(&shop, streams.js(), placed.len()).await;
    assert_eq!(
        check.duplicates, copies,
        "bazaar check must read every copy as a duplicate: {}",
        check.report
    );
    println!(
        "{}",
        chaos::Summary {
            test: "redeliver",
            requested: orders,
            placed: placed.len(),
            outcomes,
            faults: format!(
                "{copies} copies of stream slices republished newest first; the services \
                 skipped {skipped} duplicates"
            ),
            recovered_in,
            load_took,
            check,
        }
    );
}
