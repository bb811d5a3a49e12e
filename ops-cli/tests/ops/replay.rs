//! `bazaar replay`: the edge's views rebuilt from history, row for row,
//! while traffic flows and readers keep reading; reactions never re-run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bazaar_testkit::api::Product;
use bazaar_testkit::{Api, Service, Shop, Streams};
use contracts::product::{ProductDiscontinuedV1, ProductPriceChangedV1, ProductUpdatedV1};
use contracts::Team;

use crate::support::{
    bazaar, expect_code, json, order, publish_product_event, publish_updates, settle, stderr,
    stdout, stocked, wait_settled, EdgeDb,
};

pub(crate) async fn shop() -> Shop {
    // Shipments leave at once, so orders reach their final state quickly.
    Shop::builder()
        .env_for(Service::Warehouse, "BAZAAR_DISPATCH_DELAY_MS", "0")
        .start()
        .await
}

/// The first line where two dumps differ, for a readable failure.
fn first_difference(a: &[String], b: &[String]) -> String {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return format!("live:    {x}\nrebuilt: {y}");
        }
    }
    format!("{} rows live, {} rebuilt", a.len(), b.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_from_the_start_rebuilds_every_edge_view_row_for_row_while_orders_flow() {
    // Arrange: history with shipped, rejected and cancelled orders, a
    // basket, and one product updated two thousand times.
    let shop = shop().await;
    let streams = Streams::connect(shop.nats()).await;
    let edge = EdgeDb::open(&shop).await;
    let api = Api::new(shop.http_url());
    let admin = api.with_token(shop.admin_token());
    let alice = api.with_token(shop.customer_token("alice"));
    let bob = api.with_token(shop.customer_token("bob"));
    let lamp = stocked(&admin, "LAMP-1", 1000).await;
    let desk = stocked(&admin, "DESK-1", 10).await;
    publish_updates(&streams, &desk, 2000).await;
    let mut alices = Vec::new();
    for token in ["tok_visa", "tok_declined", "tok_mastercard"] {
        alices.extend(order(&alice, lamp.id, token).await);
    }
    let bobs: Vec<_> = order(&bob, lamp.id, "tok_visa").await.into_iter().collect();
    for id in &bobs {
        // Cancelled, or shipped first: either is a final state.
        bob.cancel_order(*id).await;
    }
    alice.put_basket_item(desk.id, 2).await.expect(200);
    wait_settled(&alice, &alices).await;
    wait_settled(&bob, &bobs).await;
    settle(&streams, &edge).await;

    // Act: orders keep coming and readers keep reading while the edge
    // rebuilds every view from the start.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = tokio::spawn({
        let (bob, stop, lamp) = (bob.clone(), stop.clone(), lamp.id);
        async move {
            let mut ids = Vec::new();
            while !stop.load(Ordering::Relaxed) && ids.len() < 200 {
                ids.extend(order(&bob, lamp, "tok_visa").await);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ids
        }
    });
    let readers = tokio::spawn({
        let (api, stop, desk) = (api.clone(), stop.clone(), desk.id);
        async move {
            let (mut reads, mut odd) = (0, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let answer = api.product(desk).await;
                reads += 1;
                let name = (answer.status() == 200).then(|| answer.json::<Product>().name);
                if name.as_deref() != Some("last name") {
                    odd.push(format!("{} {:?}", answer.status(), name));
                }
                // Under the edge's anonymous rate limit (50/s, burst 100):
                // a reader that outruns it is answered 429, which says
                // nothing about the replay.
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            (reads, odd)
        }
    });
    // The edge's readiness while its views are paused for the replay.
    let readiness = tokio::spawn({
        let (url, stop) = (format!("{}/readyz", shop.http_url()), stop.clone());
        async move {
            let http = reqwest::Client::new();
            let mut paused_seen = false;
            while !stop.load(Ordering::Relaxed) {
                if let Ok(answer) = http.get(&url).send().await {
                    let status = answer.status().as_u16();
                    let body = answer.text().await.unwrap_or_default();
                    paused_seen |= status == 503 && body.contains("paused by a replay");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            paused_seen
        }
    });
    let replayed = bazaar(&shop, &["replay", "edge-api", "--from-start", "--json"]).await;
    stop.store(true, Ordering::Relaxed);
    let during = traffic.await.expect("traffic");
    let (reads, odd_reads) = readers.await.expect("readers");
    assert!(
        readiness.await.expect("readiness"),
        "/readyz never said the views were paused by the replay"
    );
    let ready_url = format!("{}/readyz", shop.http_url());
    bazaar_testkit::wait_until(
        Duration::from_secs(30),
        "the edge is ready again after the replay",
        || async {
            reqwest::get(&ready_url)
                .await
                .is_ok_and(|a| a.status().as_u16() == 200)
        },
    )
    .await;

    // Assert: the replay ran over all four streams, readers never saw a
    // half-built view, and once traffic settled, a second rebuild from the
    // start gives exactly the view that was kept live.
    let report = json(&replayed);
    assert_eq!(report["dry_run"], false, "{report}");
    let names: Vec<&str> = report["plan"]["projections"]
        .as_array()
        .expect("projections")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "edge.product",
            "edge.checkout",
            "edge.warehouse",
            "edge.finance"
        ]
    );
    assert!(report["applied"].as_u64().unwrap_or(0) > 2000, "{report}");
    assert!(
        odd_reads.is_empty(),
        "{} of {reads} reads during the replay saw another view: {:?}",
        odd_reads.len(),
        &odd_reads[..odd_reads.len().min(5)]
    );
    assert!(!during.is_empty(), "no order was placed during the replay");
    wait_settled(&bob, &during).await;
    settle(&streams, &edge).await;
    let live = edge.dump().await;
    let events_before: Vec<u64> = stream_counts(&streams).await;

    let rebuilt_output = bazaar(&shop, &["replay", "edge-api", "--from-start"]).await;
    expect_code(&rebuilt_output, 0);
    assert!(
        stdout(&rebuilt_output).contains("replayed edge-api from the start"),
        "{}",
        stdout(&rebuilt_output)
    );
    let rebuilt = edge.dump().await;
    assert!(
        live == rebuilt,
        "the rebuilt views differ from the live ones:\n{}",
        first_difference(&live, &rebuilt)
    );
    assert!(
        live.iter().any(|l| l.starts_with("invoice_view")),
        "no invoice in the views"
    );
    assert!(
        live.iter().any(|l| l.starts_with("basket_view")),
        "no basket in the views"
    );
    // No reaction ran again: no stock reserved, no payment taken, no order
    // event published by the two replays.
    streams.wait_consumers_idle(crate::support::SETTLE).await;
    assert_eq!(stream_counts(&streams).await, events_before);
}

/// Messages per team stream.
async fn stream_counts(streams: &Streams) -> Vec<u64> {
    let mut counts = Vec::new();
    for team in Team::ALL {
        counts.push(streams.message_count(team.stream()).await);
    }
    counts
}

/// `bazaar replay edge-api --projection edge.product --from-seq SEQ --json`
/// and `extra`.
async fn replay_products_from(shop: &Shop, seq: u64, extra: &[&str]) -> std::process::Output {
    let seq = seq.to_string();
    let mut args = vec![
        "replay",
        "edge-api",
        "--projection",
        "edge.product",
        "--from-seq",
        &seq,
        "--json",
    ];
    args.extend_from_slice(extra);
    bazaar(shop, &args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_from_a_sequence_or_a_time_reapplies_the_tail_and_changes_no_view() {
    // Arrange
    let shop = shop().await;
    let streams = Streams::connect(shop.nats()).await;
    let edge = EdgeDb::open(&shop).await;
    let api = Api::new(shop.http_url());
    let admin = api.with_token(shop.admin_token());
    let alice = api.with_token(shop.customer_token("alice"));
    let chair = stocked(&admin, "CHAIR-2", 5).await;
    let lamp = stocked(&admin, "LAMP-2", 100).await;
    let updated = publish_updates(&streams, &lamp, 50).await;
    let last = publish_chair_history(&streams, &chair).await;
    let placed: Vec<_> = order(&alice, lamp.id, "tok_visa")
        .await
        .into_iter()
        .collect();
    wait_settled(&alice, &placed).await;
    settle(&streams, &edge).await;
    let views = edge.dump().await;
    let checkpoints = edge.checkpoints().await;
    // The tail re-applies updates of a product and all kinds of product
    // events about rows that exist (or not) before the replay.
    let from = updated - 10;

    // Act
    let from_seq = replay_products_from(&shop, from, &[]).await;
    let from_time = bazaar(
        &shop,
        &[
            "replay",
            "edge-api",
            "--from-time",
            &(chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339(),
            "--json",
        ],
    )
    .await;

    // A sequence without --projection would mean another point in each
    // stream the edge reads: refused, naming the projections.
    let ambiguous = bazaar(
        &shop,
        &["replay", "edge-api", "--from-seq", "2", "--dry-run"],
    )
    .await;
    expect_code(&ambiguous, 2);
    assert!(
        stderr(&ambiguous).contains("--projection"),
        "{}",
        stderr(&ambiguous)
    );

    // Past the stream's end of a view that has applied all of it: nothing
    // to re-apply, and the plan says so (not that the view's checkpoint
    // moved the start).
    let past_the_end = replay_products_from(&shop, 99_999, &["--dry-run"]).await;
    expect_code(&past_the_end, 0);
    let planned = &json(&past_the_end)["plan"]["projections"][0];
    assert_eq!(planned["events"], 0, "{planned}");
    assert!(
        planned["note"]
            .as_str()
            .is_some_and(|n| n.contains("the stream ends at") && n.contains("nothing from 99999")),
        "{planned}"
    );

    // Assert: only the tail was re-applied, up to the head, and every view
    // is as it was (the views are idempotent by content).
    let report = json(&from_seq);
    let projections = report["plan"]["projections"]
        .as_array()
        .expect("projections");
    assert_eq!(projections.len(), 1, "{report}");
    let p = &projections[0];
    assert_eq!(p["name"], "edge.product");
    assert_eq!(p["from_seq"], from);
    let head = p["to_seq"].as_u64().expect("to_seq");
    assert!(head >= last, "{report}");
    assert_eq!(p["events"], head - from + 1, "{report}");
    assert_eq!(report["applied"], head - from + 1, "{report}");
    assert_eq!(p["clears"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        edge.dump().await,
        views,
        "a replay from a sequence changed the views"
    );

    let report = json(&from_time);
    let projections = report["plan"]["projections"]
        .as_array()
        .expect("projections");
    assert_eq!(projections.len(), 4, "{report}");
    assert!(projections.iter().all(|p| p["from_seq"] == 1), "{report}");
    assert_eq!(
        edge.dump().await,
        views,
        "a replay from a time changed the views"
    );
    assert_eq!(edge.checkpoints().await, checkpoints);

    // And the views the live followers built event by event are what a
    // rebuild from the start (a batch at a time) builds.
    json(&bazaar(&shop, &["replay", "edge-api", "--from-start", "--json"]).await);
    let rebuilt = edge.dump().await;
    assert!(
        rebuilt == views,
        "a rebuild differs from the live views:\n{}",
        first_difference(&views, &rebuilt)
    );
    assert!(
        views
            .iter()
            .any(|l| l.contains("Chair, second edition") && l.contains("discontinued")),
        "the chair was not updated and discontinued: {views:?}"
    );
}

/// A price change, a discontinuation and an update of `chair`, and a price
/// change and a discontinuation of a product nobody created; the last
/// sequence.
async fn publish_chair_history(streams: &Streams, chair: &Product) -> u64 {
    let eur = |amount_minor| contracts::Money {
        amount_minor,
        currency: "EUR".to_owned(),
    };
    let price = ProductPriceChangedV1 {
        product_id: chair.id,
        old_price: eur(chair.price.amount_minor),
        new_price: eur(2500),
    };
    publish_product_event(streams, price).await;
    let discontinued = ProductDiscontinuedV1 {
        product_id: chair.id,
        reason: Some("replaced".to_owned()),
    };
    publish_product_event(streams, discontinued).await;
    let update = ProductUpdatedV1 {
        product_id: chair.id,
        sku: chair.sku.clone(),
        name: "Chair, second edition".to_owned(),
        description: chair.description.clone(),
        category: chair.category.clone(),
        price: eur(2600),
        changed: vec!["name".to_owned(), "price".to_owned()],
    };
    publish_product_event(streams, update).await;
    let nobody = uuid::Uuid::now_v7();
    let price = ProductPriceChangedV1 {
        product_id: nobody,
        old_price: eur(1),
        new_price: eur(2),
    };
    publish_product_event(streams, price).await;
    let discontinued = ProductDiscontinuedV1 {
        product_id: nobody,
        reason: None,
    };
    publish_product_event(streams, discontinued).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_plans_shared_tables_together_and_reactions_are_never_replayed() {
    // Arrange
    let shop = Shop::builder().start().await;
    let streams = Streams::connect(shop.nats()).await;
    let edge = EdgeDb::open(&shop).await;
    let api = Api::new(shop.http_url());
    let admin = api.with_token(shop.admin_token());
    stocked(&admin, "LAMP-3", 5).await;
    settle(&streams, &edge).await;
    let views = edge.dump().await;
    let checkpoints = edge.checkpoints().await;

    // Act
    let dry = bazaar(
        &shop,
        &[
            "replay",
            "edge-api",
            "--projection",
            "edge.checkout",
            "--from-start",
            "--dry-run",
            "--json",
        ],
    )
    .await;
    let dry_text = bazaar(&shop, &["replay", "edge-api", "--from-start", "--dry-run"]).await;
    let reactions = bazaar(&shop, &["replay", "checkout-svc", "--from-start"]).await;
    let unknown = bazaar(
        &shop,
        &[
            "replay",
            "edge-api",
            "--projection",
            "edge.nope",
            "--from-start",
        ],
    )
    .await;
    let no_start = bazaar(&shop, &["replay", "edge-api"]).await;

    // Assert: the orders' tables are fed by three streams, so rebuilding one
    // of them from the start rebuilds all three; nothing changed.
    let report = json(&dry);
    assert_eq!(report["dry_run"], true);
    let planned: Vec<(&str, bool)> = report["plan"]["projections"]
        .as_array()
        .expect("projections")
        .iter()
        .map(|p| (p["name"].as_str().unwrap_or(""), p["note"].is_string()))
        .collect();
    assert_eq!(
        planned,
        [
            ("edge.checkout", false),
            ("edge.warehouse", true),
            ("edge.finance", true)
        ],
        "{report}"
    );
    assert!(report.to_string().contains("orders_view"), "{report}");
    expect_code(&dry_text, 0);
    assert!(
        stdout(&dry_text).contains("dry run, nothing changed"),
        "{}",
        stdout(&dry_text)
    );
    assert_eq!(edge.dump().await, views);
    assert_eq!(edge.checkpoints().await, checkpoints);

    expect_code(&reactions, 2);
    assert!(
        stderr(&reactions).contains("reactions are never replayed"),
        "{}",
        stderr(&reactions)
    );
    expect_code(&unknown, 2);
    assert!(
        stderr(&unknown).contains("edge.product"),
        "{}",
        stderr(&unknown)
    );
    expect_code(&no_start, 2);
}
