//! The broker restarts (same port and store): the live views and the
//! search index follow again as soon as the services are connected, so a
//! customer does not see a new product missing or an order pending for the
//! ten seconds and more async-nats takes to notice a lost ordered consumer.

use std::time::Duration;

use bazaar_testkit::api::{Answer, NewProduct, Product};
use bazaar_testkit::{wait_for, wait_until, Api, Shop};
use reqwest::Method;
use serde_json::json;

use crate::SETTLE;

/// How soon after the restart the services must have noticed that they
/// are connected again (about a second; the broker is back at once).
const NOTICED: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_and_search_show_what_happens_right_after_a_broker_restart() {
    // Arrange: a shop whose views and index have taken a first product.
    let mut shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let admin = shop.admin_api();
    let searchable = |sku: &'static str| {
        let api = admin.anonymous();
        move || {
            let api = api.clone();
            async move {
                let found = api.get(&format!("/api/v1/products?q={sku}")).await.value();
                (found["total"] == 1).then_some(())
            }
        }
    };
    admin.stocked_product("BEFORE-1", 1999, 5).await;
    wait_for(SETTLE, "the first product is found", searchable("BEFORE-1")).await;

    // Act: the broker restarts.
    shop.nats_mut().kill();
    shop.nats_mut().restart();

    // Assert: the edge's views and the search feeds follow again once
    // connected (they do not wait for missed heartbeats)…
    for (instance, what) in [
        ("edge-api-0", "the edge's views follow again"),
        ("product-svc-0", "the search feeds follow again"),
    ] {
        wait_until(NOTICED, what, || async {
            shop.log_of(instance)
                .contains("connected to NATS again; following anew")
        })
        .await;
    }
    // …so a product created now is found, and an order placed now settles
    // in the edge's view. The writes are retried under one Idempotency-Key
    // while the services connect again.
    let product: Product = written(
        &admin,
        Method::POST,
        "/api/v1/products",
        json!(NewProduct::sample("AFTER-1", 2999)),
    )
    .await
    .json();
    written(
        &admin,
        Method::PUT,
        &format!("/api/v1/products/{}/stock", product.id),
        json!({ "on_hand": 5 }),
    )
    .await;
    wait_for(SETTLE, "the new product is found", searchable("AFTER-1")).await;
    let alice = shop.customer_api("alice");
    let order = alice.place_order_of(product.id, 1, "tok_visa").await;
    alice.wait_for_status(order.id, "confirmed", SETTLE).await;
}

/// A write answered with success within [`SETTLE`], asked again under the
/// same Idempotency-Key until then (it happens once).
async fn written(api: &Api, method: Method, path: &str, body: serde_json::Value) -> Answer {
    let key = uuid::Uuid::now_v7().to_string();
    wait_for(SETTLE, &format!("{method} {path} succeeds"), || {
        let request = api
            .request(method.clone(), path)
            .header("Idempotency-Key", &key)
            .json(&body);
        async move {
            let answer = api.send(request).await;
            (200..300).contains(&answer.status()).then_some(answer)
        }
    })
    .await
}

/// With the broker gone for good, a service told to stop still stops on
/// its own (it used to wait for the broker forever, outliving `bazaar up`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_stops_on_sigterm_while_the_broker_is_gone() {
    let mut shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    shop.nats_mut().kill();

    let asked = std::time::Instant::now();
    shop.stop(bazaar_testkit::Service::Finance);

    let log = shop.log_of("finance-svc-0");
    assert!(
        log.contains("INFO platform::runtime: stopped"),
        "finance-svc was killed after its 10 s of grace, not stopped ({:?}):\n{log}",
        asked.elapsed()
    );
}
