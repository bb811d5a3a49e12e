//! `bazaar replay --from-start` of a view whose stream lost events (it
//! was created anew, or cut from below by limits or a purge): refused,
//! changing nothing, unless the operator discards the lost history.

use std::time::Duration;

use bazaar_testkit::{Api, Shop, Streams};
use contracts::Team;
use uuid::Uuid;

use crate::replay::shop;
use crate::support::{bazaar, expect_code, order, stderr, stdout, stocked, wait_settled};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_whose_stream_was_created_anew_is_not_emptied_by_a_replay_unasked() {
    // Arrange: a shipped order, then its stream deleted and created again
    // (the broker lost it): the order's events are gone for good.
    let shop = shop().await;
    let _logs = shop.logs_on_failure();
    let (alice, id) = settled_order(&shop).await;
    let streams = Streams::connect(shop.nats()).await;
    let checkout = Team::Checkout.stream();
    streams.js().delete_stream(checkout).await.expect("deleted");
    platform::streams::ensure(
        streams.js(),
        platform::streams::event_stream(Team::Checkout, 1),
    )
    .await
    .expect("created again");
    bazaar_testkit::wait_until(
        Duration::from_secs(30),
        "the edge notices the new stream",
        || async { shop.log_of("edge-api-0").contains("created anew") },
    )
    .await;

    // Act + Assert: the dry run warns; the replay is refused and changes
    // nothing; --from-seq 1 is allowed and keeps the order.
    let dry = bazaar(&shop, &["replay", "edge-api", "--from-start", "--dry-run"]).await;
    expect_code(&dry, 0);
    assert!(stdout(&dry).contains("created anew"), "{}", stdout(&dry));
    let refused = bazaar(&shop, &["replay", "edge-api", "--from-start"]).await;
    expect_code(&refused, 2);
    assert!(
        stderr(&refused).contains("--discard-lost-history"),
        "{}",
        stderr(&refused)
    );
    alice.order(id).await.expect(200);
    assert!(
        stderr(&refused).contains("--projection edge.checkout --from-seq 1"),
        "{}",
        stderr(&refused)
    );
    let suffix = bazaar(
        &shop,
        &[
            "replay",
            "edge-api",
            "--projection",
            "edge.checkout",
            "--from-seq",
            "1",
        ],
    )
    .await;
    expect_code(&suffix, 0);
    alice.order(id).await.expect(200);

    // Asked for: rebuilt from the stream alone, the lost order goes, and a
    // second replay from the start is no longer refused.
    replays_from_start(&shop, &["--discard-lost-history"]).await;
    alice.order(id).await.expect(404);
    replays_from_start(&shop, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_whose_stream_was_cut_from_below_is_not_emptied_by_a_replay_unasked() {
    // Arrange: an invoiced order, then the finance stream purged (as limits
    // set by hand would cut it): its invoice's event is gone for good.
    let shop = shop().await;
    let _logs = shop.logs_on_failure();
    let (alice, id) = settled_order(&shop).await;
    bazaar_testkit::wait_until(Duration::from_secs(30), "the invoice is shown", || async {
        alice.invoice(id).await.status() == 200
    })
    .await;
    let streams = Streams::connect(shop.nats()).await;
    let finance = Team::Finance.stream();
    streams
        .js()
        .get_stream(finance)
        .await
        .expect("the finance stream")
        .purge()
        .await
        .expect("purged");

    // Act + Assert: the dry run warns; the replay is refused and keeps the
    // invoice; asked to discard, it rebuilds without it, and a later replay
    // from the start is not refused again.
    let dry = bazaar(&shop, &["replay", "edge-api", "--from-start", "--dry-run"]).await;
    expect_code(&dry, 0);
    assert!(
        stdout(&dry).contains("no longer holds events #1.."),
        "{}",
        stdout(&dry)
    );
    let refused = bazaar(&shop, &["replay", "edge-api", "--from-start"]).await;
    expect_code(&refused, 2);
    assert!(
        stderr(&refused).contains("removed by its limits or a purge")
            && stderr(&refused).contains("--discard-lost-history"),
        "{}",
        stderr(&refused)
    );
    alice.invoice(id).await.expect(200);
    replays_from_start(&shop, &["--discard-lost-history"]).await;
    alice.invoice(id).await.expect(404);
    replays_from_start(&shop, &[]).await;
}

/// Alice's order of a stocked lamp, settled: her client and the order.
async fn settled_order(shop: &Shop) -> (Api, Uuid) {
    let api = Api::new(shop.http_url());
    let admin = api.with_token(shop.admin_token());
    let alice = api.with_token(shop.customer_token("alice"));
    let lamp = stocked(&admin, "LAMP-1", 10).await;
    let placed: Vec<_> = order(&alice, lamp.id, "tok_visa")
        .await
        .into_iter()
        .collect();
    wait_settled(&alice, &placed).await;
    (alice, placed[0])
}

/// `bazaar replay edge-api --from-start` with `extra` flags succeeds.
async fn replays_from_start(shop: &Shop, extra: &[&str]) {
    let mut args = vec!["replay", "edge-api", "--from-start"];
    args.extend_from_slice(extra);
    expect_code(&bazaar(shop, &args).await, 0);
}
