//! The edge keeps rendered product and order answers in memory
//! (`edge-api/src/read_cache.rs`): a read right after a write that the edge
//! answered as visible must show that write, however often the old answer
//! was read before.

use bazaar_testkit::api::{Order, Product};
use bazaar_testkit::{Service, Shop};
use serde_json::json;

use crate::SETTLE;

/// Enough reads that the answer is served from the cache, if it is kept.
const READS: usize = 20;

#[tokio::test]
async fn a_product_read_right_after_a_price_change_shows_the_new_price() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("FRESH-1", 1000, 5).await;
    let admin = shop.admin_api();
    let anyone = shop.api();
    for _ in 0..READS {
        let seen: Product = anyone.product(product.id).await.expect(200).json();
        assert_eq!(seen.price.amount_minor, 1000);
    }

    admin
        .patch(
            &format!("/api/v1/products/{}", product.id),
            &json!({"price": {"amount_minor": 1250, "currency": "EUR"}}),
        )
        .await
        .expect(200);

    let after: Product = anyone.product(product.id).await.expect(200).json();
    assert_eq!(after.price.amount_minor, 1250);
}

#[tokio::test]
async fn a_product_read_right_after_a_stock_change_shows_the_new_availability() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("FRESH-2", 1000, 5).await;
    let admin = shop.admin_api();
    for _ in 0..READS {
        assert_eq!(admin.available(product.id).await, 5);
    }

    admin.set_stock(product.id, 9).await.expect(200);

    assert_eq!(admin.available(product.id).await, 9);
}

#[tokio::test]
async fn an_order_read_right_after_its_cancellation_shows_it_cancelled() {
    let shop = Shop::builder()
        .env_for(Service::Warehouse, "BAZAAR_DISPATCH_DELAY_MS", "600000")
        .start()
        .await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("FRESH-3", 1000, 5).await;
    let hana = shop.customer_api("hana");
    let order = hana.place_order_of(product.id, 1, "tok_visa").await;
    hana.wait_for_status(order.id, "confirmed", SETTLE).await;
    for _ in 0..READS {
        let seen: Order = hana.order(order.id).await.expect(200).json();
        assert_eq!(seen.status, "confirmed");
    }

    let cancelled: Order = hana.cancel_order(order.id).await.expect(202).json();
    assert_eq!(cancelled.status, "cancelled");

    let after: Order = hana.order(order.id).await.expect(200).json();
    assert_eq!(after.status, "cancelled");
    assert_eq!(after.reason.as_deref(), Some("cancelled_by_customer"));
    // Another customer still finds nothing, cached answer or not.
    shop.customer_api("ivan").order(order.id).await.expect(404);
}
