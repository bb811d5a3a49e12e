//! The broker restarts (same port and store): the live views and the
//! search index follow again as soon as the services are connected, so a
//! customer does not see a new product missing or an order pending for the
//! ten seconds and more async-nats takes to notice a lost ordered consumer.

use std::time::{Duration, Instant};

use bazaar_testkit::api::{Answer, NewProduct, Product};
use bazaar_testkit::{wait_for, Api, Shop};
use reqwest::Method;
use serde_json::json;

/// How soon after the restart the views must show what happens next; they
/// took 15 s and more before the views followed again on reconnect.
const SOON: Duration = Duration::from_secs(10);

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
    wait_for(SOON, "the first product is found", searchable("BEFORE-1")).await;

    // Act: the broker restarts.
    shop.nats_mut().kill();
    shop.nats_mut().restart();
    let restarted = Instant::now();

    // Assert: a product created now is found, and an order placed now
    // settles in the edge's view, both soon. The writes are retried under
    // one Idempotency-Key while the services connect again.
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
    let left = SOON.saturating_sub(restarted.elapsed());
    wait_for(left, "the new product is found", searchable("AFTER-1")).await;
    let alice = shop.customer_api("alice");
    let order = alice.place_order_of(product.id, 1, "tok_visa").await;
    let left = SOON.saturating_sub(restarted.elapsed());
    alice.wait_for_status(order.id, "confirmed", left).await;
}

/// A write answered with success within [`SOON`], asked again under the
/// same Idempotency-Key until then (it happens once).
async fn written(api: &Api, method: Method, path: &str, body: serde_json::Value) -> Answer {
    let key = uuid::Uuid::now_v7().to_string();
    wait_for(SOON, &format!("{method} {path} succeeds"), || {
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
