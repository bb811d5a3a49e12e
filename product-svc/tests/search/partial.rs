//! A shard that does not answer makes the result partial, not an error.

use std::time::{Duration, Instant};

use contracts::search::Shard;
use contracts::subjects::qry;
use futures::StreamExt;

use crate::harness::{id_on_shard, Bazaar, NewProduct, PATIENCE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_shard_gives_a_partial_answer_within_the_deadline() {
    let shop = Bazaar::start().await;
    let deadline = Duration::from_millis(300);
    let _shard0 = shop.shard("0/2", "data").await;
    // Shard 1 is frozen: a member of its queue group takes every query and
    // never answers, as a stopped (SIGSTOP) process would.
    let frozen = shop.nats.connect_as("product-svc").await;
    let mut swallowed = frozen
        .queue_subscribe(
            qry::PRODUCT_SEARCH,
            Shard::new(1, 2).expect("shard").queue_group(),
        )
        .await
        .expect("subscribe");
    let edge = shop.edge(2, deadline.as_millis() as u64).await;
    for shard in [0, 1] {
        shop.product_with_id(
            id_on_shard(shard, 2),
            NewProduct {
                name: &format!("Compass {shard}"),
                description: "",
                category: "outdoor",
            },
        )
        .await;
    }
    bazaar_testkit::wait_until(PATIENCE, "shard 0 indexed its compass", || async {
        edge.search("q=compass").await.1["total"] == 1
    })
    .await;

    let started = Instant::now();
    let (status, body) = edge.search("q=compass").await;
    let elapsed = started.elapsed();

    assert_eq!(status, 200);
    assert_eq!(body["partial"], true);
    assert_eq!(body["missing_shards"], serde_json::json!([1]));
    assert_eq!(body["items"][0]["name"], "Compass 0");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1));
    let took_ms = body["took_ms"].as_f64().unwrap_or_default();
    assert!(
        took_ms >= deadline.as_millis() as f64,
        "took_ms {took_ms} is below the deadline"
    );
    assert!(
        elapsed < deadline + Duration::from_millis(700),
        "answered after {elapsed:?}"
    );
    assert!(
        swallowed.next().await.is_some(),
        "the frozen shard got queries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_shard_running_every_shard_is_missing_at_once() {
    let shop = Bazaar::start().await;
    let edge = shop.edge(3, 5_000).await;

    let started = Instant::now();
    let (status, body) = edge.search("q=anything").await;

    assert_eq!(status, 200);
    assert_eq!(body["partial"], true);
    assert_eq!(body["missing_shards"], serde_json::json!([0, 1, 2]));
    assert_eq!(body["total"], 0);
    // The broker reports "no responders" instead of letting it time out.
    assert!(started.elapsed() < Duration::from_secs(2));
}
