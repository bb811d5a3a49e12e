//! `bazaar streams apply`: the broker's streams and durable consumers made
//! what the code declares, and `--dry-run` telling what has drifted.

use std::time::Duration;

use async_nats::jetstream::stream;
use bazaar_testkit::{wait_until, Shop, Streams};
use contracts::subjects::{durable, DLQ_STREAM};
use contracts::Team;
use serde_json::Value;

use crate::support::{bazaar, bazaar_into_closed_pipe, expect_code, json, stderr, stdout};

/// The items of a report that are not `unchanged`, as `(name, action)`.
fn changed(report: &Value) -> Vec<(String, String)> {
    report["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["action"] != "unchanged")
        .map(|i| {
            (
                i["name"].as_str().unwrap_or_default().to_owned(),
                i["action"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// A stream's configuration as the broker holds it now.
async fn stream_config(js: &async_nats::jetstream::Context, name: &str) -> stream::Config {
    js.get_stream(name)
        .await
        .expect("the stream")
        .info()
        .await
        .expect("its info")
        .config
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_restores_what_drifted_and_a_dry_run_only_tells() {
    let shop = Shop::builder().start().await;
    let streams = Streams::connect(shop.nats()).await;
    let js = streams.js();
    let checkout = Team::Checkout.stream();
    let durable_name = durable::WAREHOUSE;

    // A reader declares its durable once the stream's owner has created
    // the stream, which may be after the reader answered `/readyz`.
    wait_until(
        Duration::from_secs(30),
        "every service has declared its durable consumers",
        || async {
            for spec in platform::streams::declared_durables() {
                let Ok(stream) = js.get_stream(spec.stream).await else {
                    return false;
                };
                if stream.consumer_info(spec.durable.as_str()).await.is_err() {
                    return false;
                }
            }
            true
        },
    )
    .await;

    // What the services declared at start-up is what the code declares.
    let fresh = json(&bazaar(&shop, &["streams", "apply", "--dry-run", "--json"]).await);
    assert_eq!(changed(&fresh), [], "{fresh:#}");
    let items = fresh["items"].as_array().expect("items").len();
    assert!(
        items >= 5 + 5,
        "four team streams, the DLQ and five durables: {fresh:#}"
    );

    // Drift: an operator's hand edit of a stream and a consumer, and the DLQ gone.
    let mut config = stream_config(js, checkout).await;
    config.max_age = Duration::from_secs(3600);
    js.update_stream(config).await.expect("edit the stream");
    let stream = js.get_stream(checkout).await.expect("checkout stream");
    let mut consumer = stream
        .consumer_info(durable_name)
        .await
        .expect("warehouse's durable")
        .config;
    consumer.max_ack_pending = 7;
    js.update_consumer_on_stream(consumer, checkout)
        .await
        .expect("edit the consumer");
    js.delete_stream(DLQ_STREAM).await.expect("delete the DLQ");
    // Limits too: a per-subject cap would delete history.
    let product = Team::Product.stream();
    let mut limited = stream_config(js, product).await;
    limited.max_messages_per_subject = 100_000;
    limited.max_bytes = 500_000_000;
    limited.discard = async_nats::jetstream::stream::DiscardPolicy::New;
    js.update_stream(limited).await.expect("limit the stream");

    // `streams` names a declared stream the broker lacks.
    let listed = json(&bazaar(&shop, &["streams", "--json"]).await);
    assert_eq!(
        listed["missing"],
        serde_json::json!([DLQ_STREAM]),
        "{listed:#}"
    );
    let table = stdout(&bazaar(&shop, &["streams"]).await);
    assert!(
        table.contains(&format!("MISSING: {DLQ_STREAM}")) && table.contains("streams apply"),
        "{table}"
    );

    let dry = json(&bazaar(&shop, &["streams", "apply", "--dry-run", "--json"]).await);
    let text = bazaar(&shop, &["streams", "apply", "--dry-run"]).await;
    // Read by a pipe that closes early: a quiet end, not a panic.
    let headless = bazaar_into_closed_pipe(&shop, &["streams", "apply", "--dry-run"]).await;
    expect_code(&headless, 0);
    assert!(
        !stderr(&headless).contains("panicked"),
        "{}",
        stderr(&headless)
    );

    let consumer_name = format!("{checkout}/{durable_name}");
    assert_eq!(
        changed(&dry),
        [
            (product.to_owned(), "would update".to_owned()),
            (checkout.to_owned(), "would update".to_owned()),
            (DLQ_STREAM.to_owned(), "would create".to_owned()),
            (consumer_name.clone(), "would update".to_owned()),
        ],
        "{dry:#}"
    );
    expect_code(&text, 0);
    let shown = stdout(&text);
    assert!(shown.contains("dry run: nothing changed"), "{shown}");
    assert!(shown.contains("max_ack_pending: 7 → 1000"), "{shown}");
    assert!(shown.contains("max_age: 3600s → unlimited"), "{shown}");
    for limit in [
        "max_msgs_per_subject: 100000 → unlimited",
        "max_bytes: 500000000 → unlimited",
        "discard: New → Old",
    ] {
        assert!(shown.contains(limit), "{limit} missing from:\n{shown}");
    }
    // Nothing changed.
    assert!(
        js.get_stream(DLQ_STREAM).await.is_err(),
        "the dry run created the DLQ"
    );
    let still = stream
        .consumer_info(durable_name)
        .await
        .expect("warehouse's durable");
    assert_eq!(still.config.max_ack_pending, 7);

    // Apply: back to the declaration; then nothing is left to do.
    let applied = json(&bazaar(&shop, &["streams", "apply", "--json"]).await);
    assert_eq!(
        changed(&applied),
        [
            (product.to_owned(), "updated".to_owned()),
            (checkout.to_owned(), "updated".to_owned()),
            (DLQ_STREAM.to_owned(), "created".to_owned()),
            (consumer_name, "updated".to_owned()),
        ],
        "{applied:#}"
    );
    assert_eq!(stream_config(js, checkout).await.max_age, Duration::ZERO);
    let unlimited = stream_config(js, product).await;
    assert!(
        unlimited.max_messages_per_subject <= 0
            && unlimited.max_bytes <= 0
            && unlimited.discard == async_nats::jetstream::stream::DiscardPolicy::Old,
        "{unlimited:?}"
    );
    assert!(js.get_stream(DLQ_STREAM).await.is_ok(), "the DLQ is back");
    let again = json(&bazaar(&shop, &["streams", "apply", "--dry-run", "--json"]).await);
    assert_eq!(changed(&again), [], "{again:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_refuses_a_bad_replica_count_and_changes_nothing() {
    let shop = Shop::builder().start().await;

    let zero = bazaar(&shop, &["streams", "apply", "--replicas", "0"]).await;
    let words = bazaar(&shop, &["streams", "apply", "--replicas", "three"]).await;
    // One node cannot hold three replicas: refused before anything, and a
    // dry run does not promise what the broker would refuse.
    let three = bazaar(&shop, &["streams", "apply", "--replicas", "3", "--json"]).await;
    let three_dry = bazaar(&shop, &["streams", "apply", "--replicas", "3", "--dry-run"]).await;

    expect_code(&zero, 2);
    expect_code(&words, 2);
    for refused in [&three, &three_dry] {
        expect_code(refused, 2);
        assert!(
            stderr(refused).contains("single node"),
            "{}",
            stderr(refused)
        );
    }
    let still = json(&bazaar(&shop, &["streams", "apply", "--dry-run", "--json"]).await);
    assert_eq!(changed(&still), [], "{still:#}");
}
