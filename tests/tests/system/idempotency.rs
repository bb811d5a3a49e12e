//! `Idempotency-Key` through the edge (DESIGN §4, §7): a key answers with
//! its first outcome only when the same caller repeats the same request;
//! reused for another request it is refused (422, naming the header) and
//! nothing happens, never answered with another request's outcome.

use bazaar_testkit::api::{NewOrder, Order, Problem, Product};
use bazaar_testkit::Shop;
use contracts::subjects::evt;
use reqwest::Method;
use serde_json::json;

use crate::SETTLE;

fn names_the_key(problem: &Problem) -> bool {
    problem
        .errors
        .iter()
        .flatten()
        .any(|e| e.field == "Idempotency-Key")
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_refused_and_does_nothing() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let lamp = shop.stocked_product("IDEM-LAMP", 1200, 50).await;
    let alice = shop.customer_api("alice");
    let first: Order = alice
        .place_order(&NewOrder::of(lamp.id, 1, "tok_visa"), Some("first-order"))
        .await
        .expect_one_of(&[201, 202])
        .json();

    // The same key, the same request: the first order again.
    let again: Order = alice
        .place_order(&NewOrder::of(lamp.id, 1, "tok_visa"), Some("first-order"))
        .await
        .expect_one_of(&[201, 202])
        .json();
    assert_eq!(again.id, first.id);

    // The same key, another quantity: refused, no second order.
    let other_body = alice
        .place_order(&NewOrder::of(lamp.id, 2, "tok_visa"), Some("first-order"))
        .await
        .expect(422)
        .problem();
    assert!(names_the_key(&other_body), "{other_body:?}");

    // The same key on another endpoint, cancelling another order: refused,
    // and that order can still be cancelled with a key of its own.
    let second = alice.place_order_of(lamp.id, 1, "tok_visa").await;
    let cancel = |key: &'static str| {
        let request = alice
            .request(
                Method::POST,
                &format!("/api/v1/orders/{}/cancel", second.id),
            )
            .header("Idempotency-Key", key);
        alice.send(request)
    };
    let reused = cancel("first-order").await.expect(422).problem();
    assert!(names_the_key(&reused), "{reused:?}");
    let cancelled: Order = cancel("cancel-second").await.expect(202).json();
    assert_eq!(
        cancelled.id, second.id,
        "the cancel answers with its own order"
    );

    // Every command commits its events with it, so a refused one left none.
    shop.wait_consumers_idle(SETTLE).await;
    let streams = shop.streams().await;
    assert_eq!(
        streams.count(evt::ORDER_PLACED_V2).await,
        2,
        "two orders placed, no more"
    );

    // A product edit under a create's key changes nothing.
    let admin = shop.admin_api();
    let created: Product = admin
        .send(
            admin
                .request(Method::POST, "/api/v1/products")
                .header("Idempotency-Key", "p-1")
                .json(
                    &json!({"sku": "IDEM-NEW", "name": "New", "description": "d",
                    "category": "tests", "price": {"amount_minor": 500, "currency": "EUR"}}),
                ),
        )
        .await
        .expect_one_of(&[201, 202])
        .json();
    assert_ne!(created.id, lamp.id);
    let renamed = admin
        .send(
            admin
                .request(Method::PATCH, &format!("/api/v1/products/{}", lamp.id))
                .header("Idempotency-Key", "p-1")
                .json(&json!({"name": "Renamed under p-1"})),
        )
        .await
        .expect(422)
        .problem();
    assert!(names_the_key(&renamed), "{renamed:?}");
    let still: Product = admin.product(lamp.id).await.expect(200).json();
    assert_eq!(still.name, lamp.name);
}

#[tokio::test]
async fn no_customer_can_spell_another_customers_key() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let lamp = shop.stocked_product("IDEM-SUB", 1200, 50).await;
    let alice = shop.customer_api("alice");
    let mallory = shop.customer_api("alice:x");

    let alices: Order = alice
        .place_order(&NewOrder::of(lamp.id, 1, "tok_visa"), Some("x:y"))
        .await
        .expect_one_of(&[201, 202])
        .json();
    let theirs: Order = mallory
        .place_order(&NewOrder::of(lamp.id, 3, "tok_visa"), Some("y"))
        .await
        .expect_one_of(&[201, 202])
        .json();

    assert_ne!(theirs.id, alices.id, "a new order, not alice's");
    assert_eq!(theirs.lines[0].quantity, 3);
    mallory.order(alices.id).await.expect(404);
    mallory.order(theirs.id).await.expect(200);
}

#[tokio::test]
async fn a_repeated_write_answers_its_own_outcome_not_a_later_writes() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let lamp = shop.stocked_product("IDEM-LATER", 1200, 50).await;
    let admin = shop.admin_api();
    // A write, with an Idempotency-Key or without.
    let write = |method: Method, path: String, body: serde_json::Value, key: Option<&str>| {
        let mut request = admin.request(method, &path).json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        admin.send(request)
    };
    let patch = |key: Option<&'static str>, amount: i64| {
        let body = json!({"price": {"amount_minor": amount, "currency": "EUR"}});
        write(
            Method::PATCH,
            format!("/api/v1/products/{}", lamp.id),
            body,
            key,
        )
    };
    let stock = |key: Option<&'static str>, on_hand: i64| {
        let body = json!({ "on_hand": on_hand });
        write(
            Method::PUT,
            format!("/api/v1/products/{}/stock", lamp.id),
            body,
            key,
        )
    };

    // A keyed write, a later one without the key, then the keyed repeat.
    let first: Product = patch(Some("price-111"), 111).await.expect(200).json();
    patch(None, 222).await.expect(200);
    let repeat: Product = patch(Some("price-111"), 111).await.expect(200).json();
    stock(Some("stock-10"), 10).await.expect(200);
    stock(None, 20).await.expect(200);
    let stock_repeat = stock(Some("stock-10"), 10).await.expect(200).value();

    // The repeats answer what the first requests did; nothing changed back.
    assert_eq!(first.price.amount_minor, 111);
    assert_eq!(repeat.price.amount_minor, 111, "{repeat:?}");
    assert_eq!(stock_repeat["on_hand"], json!(10), "{stock_repeat}");
    let now: Product = admin.product(lamp.id).await.expect(200).json();
    assert_eq!(now.price.amount_minor, 222, "the repeat changed nothing");
    assert_eq!(now.available, 20, "the repeat changed nothing");

    // A customer's basket line, the same way.
    let alice = shop.customer_api("alice");
    let line = |key: Option<&'static str>, quantity: i64| {
        let path = format!("/api/v1/basket/items/{}", lamp.id);
        let mut request = alice
            .request(Method::PUT, &path)
            .json(&json!({ "quantity": quantity }));
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        alice.send(request)
    };
    line(Some("basket-1"), 1).await.expect(200);
    line(None, 5).await.expect(200);
    let basket_repeat = line(Some("basket-1"), 1).await.expect(200).value();
    assert_eq!(
        basket_repeat["items"][0]["quantity"],
        json!(1),
        "{basket_repeat}"
    );
    let basket = alice.basket().await.expect(200).value();
    assert_eq!(basket["items"][0]["quantity"], json!(5), "{basket}");
}
