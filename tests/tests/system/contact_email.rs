//! The customer's contact e-mail (optional in `POST /api/v1/orders`): it
//! travels in `order.placed.v2`, and an invalid one is refused with 422 and
//! nothing stored.

use bazaar_testkit::api::{NewOrder, Order};
use bazaar_testkit::Shop;
use contracts::subjects::evt;
use contracts::Team;
use serde_json::json;

use crate::SETTLE;

#[tokio::test]
async fn a_contact_email_given_with_the_order_travels_in_order_placed_v2() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("MAIL-1", 1000, 5).await;
    let alice = shop.customer_api("alice");
    let mut body = serde_json::to_value(NewOrder::of(product.id, 1, "tok_visa")).expect("json");
    body["contact_email"] = json!("alice@example.org");

    let order: Order = alice
        .post("/api/v1/orders", &body)
        .await
        .expect_one_of(&[201, 202])
        .json();

    let streams = shop.streams().await;
    let placed = streams
        .wait_for_order_event(evt::ORDER_PLACED_V2, order.id, SETTLE)
        .await;
    let data = placed.data();
    assert_eq!(data["customer"]["id"], "alice");
    assert_eq!(data["customer"]["email"], "alice@example.org");
    assert_eq!(
        data["payment"],
        json!({ "method": "card", "token": "tok_visa" })
    );
    assert_eq!(
        streams.count(evt::ORDER_PLACED_V1).await,
        0,
        "v1 is history only"
    );
}

#[tokio::test]
async fn an_invalid_contact_email_is_refused_and_nothing_is_placed() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let product = shop.stocked_product("MAIL-2", 1000, 5).await;
    let alice = shop.customer_api("alice");
    let before = shop
        .streams()
        .await
        .message_count(Team::Checkout.stream())
        .await;

    for bad in [
        "alice.example.org",
        "alice@@example.org",
        "ali ce@example.org",
    ] {
        let mut body = serde_json::to_value(NewOrder::of(product.id, 1, "tok_visa")).expect("json");
        body["contact_email"] = json!(bad);

        let problem = alice
            .post("/api/v1/orders", &body)
            .await
            .expect(422)
            .problem();

        assert!(
            problem
                .errors
                .iter()
                .flatten()
                .any(|e| e.field == "contact_email"),
            "{bad:?}: {problem:?}"
        );
    }
    let after = shop
        .streams()
        .await
        .message_count(Team::Checkout.stream())
        .await;
    assert_eq!(after, before, "a refused order published nothing");
}
