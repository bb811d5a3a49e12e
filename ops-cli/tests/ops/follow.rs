//! `bazaar tail --follow` rides out a broker restart.

use std::time::Duration;

use bazaar_testkit::{wait_until, Api, Shop, Streams};
use contracts::Team;

use crate::support::{publish_updates, spawn_bazaar, stocked};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follow_carries_on_after_the_broker_restarts() {
    // Arrange: a shop, and a tail following its product events.
    let mut shop = Shop::builder().start().await;
    let admin = Api::new(shop.http_url()).with_token(shop.admin_token());
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("tail.out");
    let err_path = dir.path().join("tail.err");
    let mut tail = spawn_bazaar(
        &shop,
        &[
            "tail",
            Team::Product.event_prefix(),
            "--follow",
            "--since",
            "1h",
        ],
        std::fs::File::create(&out_path).expect("out file"),
        std::fs::File::create(&err_path).expect("err file"),
    );
    let printed = || std::fs::read_to_string(&out_path).unwrap_or_default();
    let lamp = stocked(&admin, "FOLLOW-1", 5).await;
    wait_until(
        Duration::from_secs(30),
        "the tail prints the product",
        || async { printed().contains("FOLLOW-1") },
    )
    .await;

    // Act: the broker restarts (same port and store), and more happens.
    shop.nats_mut().restart();
    let streams = Streams::connect(shop.nats()).await;
    publish_updates(&streams, &lamp, 1).await;

    // Assert: the tail prints it soon, still running. Its consumer went
    // with the broker; waiting for async-nats's missed heartbeats took
    // 15 s and more, a reconnect is noticed within a second.
    wait_until(
        Duration::from_secs(10),
        "the tail prints the event published after the restart",
        || async { printed().contains("last name") },
    )
    .await;
    assert!(
        tail.try_wait().expect("tail's status").is_none(),
        "the tail ended: {}",
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    let _ = tail.kill().await;
}
