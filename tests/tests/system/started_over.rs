//! A stream deleted and created again (by hand, by `bazaar streams apply`,
//! or by a broker that lost its store) starts its sequences over, below
//! the checkpoints of the views and the search index that read it. They
//! read it again from its start, keeping what they hold, instead of
//! waiting for sequences they believe they have applied.

use bazaar_testkit::api::Product;
use bazaar_testkit::{wait_until, Service, Shop};
use contracts::money::Money;
use contracts::product::ProductCreatedV1;
use contracts::subjects::PRODUCT_SVC;
use contracts::Team;
use serde_json::Value;
use uuid::Uuid;

use crate::SETTLE;

#[tokio::test]
async fn views_and_search_follow_streams_that_started_over() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let alice = shop.customer_api("alice");
    let before = shop.stocked_product("OVER-1", 1000, 50).await;
    // Enough orders that the views' checkpoints are well past what one
    // more order puts on a new stream.
    for _ in 0..4 {
        let order = alice.place_order_of(before.id, 1, "tok_visa").await;
        alice.wait_for_status(order.id, "shipped", SETTLE).await;
    }

    let streams = shop.streams().await;
    for team in [Team::Product, Team::Checkout] {
        let js = streams.js();
        js.delete_stream(team.stream())
            .await
            .expect("stream deleted");
        platform::streams::ensure(js, platform::streams::event_stream(team, 1))
            .await
            .expect("stream created again");
    }

    // A new product and an order of it: their events get sequences the
    // views and the index have seen before.
    let admin = shop.admin_api();
    let after: Product = admin
        .create_product(&bazaar_testkit::api::NewProduct::sample("OVER-2", 1500))
        .await
        .expect_one_of(&[201, 202])
        .json();
    wait_until(SETTLE, "the new product is shown", || async {
        alice.product(after.id).await.status() == 200
    })
    .await;
    admin.set_stock(after.id, 10).await.expect(200);
    // The durables of the streams created anew are declared again after a
    // back-off; on a loaded machine that and the product event take a while.
    shop.wait_consumers_idle(SETTLE).await;
    let order = alice.place_order_of(after.id, 2, "tok_visa").await;
    alice.wait_for_status(order.id, "shipped", SETTLE).await;

    // What the views held before is still there.
    let kept: Product = alice.product(before.id).await.expect(200).json();
    assert_eq!(kept.available, 46);
    wait_until(SETTLE, "search finds the new product", || async {
        let found: Value = alice
            .anonymous()
            .get("/api/v1/products?q=OVER-2")
            .await
            .expect(200)
            .value();
        found["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|p| p["id"] == after.id.to_string()))
    })
    .await;
}

/// The edge and product-svc are away while the stream is created anew and
/// fills up past the view's and the search index's checkpoints: the number
/// of events cannot tell, the stream's creation time, stored with the view
/// and in the index's commit, does.
#[tokio::test]
async fn a_view_and_search_follow_a_stream_created_anew_while_their_services_were_away() {
    let mut shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let alice = shop.customer_api("alice");
    let before = shop.stocked_product("AWAY-1", 1000, 5).await;
    shop.stop(Service::Edge);
    shop.stop(Service::Product);

    let streams = shop.streams().await;
    let js = streams.js();
    js.delete_stream(Team::Product.stream())
        .await
        .expect("stream deleted");
    platform::streams::ensure(js, platform::streams::event_stream(Team::Product, 1))
        .await
        .expect("stream created again");
    // More events than the view had applied (one product).
    let mut created = Vec::new();
    for n in 0..5 {
        let data = ProductCreatedV1 {
            product_id: Uuid::now_v7(),
            sku: format!("AWAY-NEW-{n}"),
            name: format!("Away {n}"),
            description: "published while the edge was away".to_owned(),
            category: "tests".to_owned(),
            price: Money::eur(1200),
        };
        created.push(data.product_id);
        streams.publish_event(PRODUCT_SVC, data).await;
    }
    shop.start(Service::Product).await;
    shop.start(Service::Edge).await;

    for id in &created {
        wait_until(SETTLE, "a product of the new stream is shown", || async {
            alice.product(*id).await.status() == 200
        })
        .await;
    }
    alice.product(before.id).await.expect(200);
    wait_until(
        SETTLE,
        "search finds every product of the new stream",
        || async {
            let found: Value = alice
                .anonymous()
                .get("/api/v1/products?q=away&limit=50")
                .await
                .expect(200)
                .value();
            let ids: Vec<&str> = found["items"]
                .as_array()
                .map(|items| items.iter().filter_map(|p| p["id"].as_str()).collect())
                .unwrap_or_default();
            created
                .iter()
                .all(|id| ids.contains(&id.to_string().as_str()))
        },
    )
    .await;
}
