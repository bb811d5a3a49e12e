//! The basket through the edge (DESIGN §7): what it shows is what an order
//! of it is charged.

use bazaar_testkit::api::{Basket, NewOrder, Order};
use bazaar_testkit::{wait_until, Shop};
use serde_json::json;

use crate::SETTLE;

#[tokio::test]
async fn the_basket_shows_the_price_the_order_is_charged() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let keyboard = shop.stocked_product("BASKET-PRICE", 9300, 10).await;
    let alice = shop.customer_api("alice");
    alice.put_basket_item(keyboard.id, 2).await.expect(200);

    // The price changes after the line was added.
    let admin = shop.admin_api();
    admin
        .patch(
            &format!("/api/v1/products/{}", keyboard.id),
            &json!({"price": {"amount_minor": 9400, "currency": "EUR"}}),
        )
        .await
        .expect_one_of(&[200, 202]);
    shop.wait_consumers_idle(SETTLE).await;
    wait_until(SETTLE, "the new price shows in the basket", || async {
        let basket: Basket = alice.basket().await.expect(200).json();
        basket.items[0].unit_price.amount_minor == 9400
    })
    .await;

    let basket: Basket = alice.basket().await.expect(200).json();
    assert_eq!(basket.items[0].line_total.amount_minor, 18_800);
    assert_eq!(basket.total.amount_minor, 18_800);
    let order: Order = alice
        .place_order(&NewOrder::from_basket("tok_visa"), None)
        .await
        .expect_one_of(&[201, 202])
        .json();
    assert_eq!(
        order.net, basket.total,
        "the order is charged what the basket showed"
    );
}

#[tokio::test]
async fn each_basket_line_says_how_many_are_on_sale_now() {
    let shop = Shop::builder().start().await;
    let _logs = shop.logs_on_failure();
    let lamp = shop.stocked_product("BASKET-STOCK", 2500, 2).await;
    let alice = shop.customer_api("alice");

    // The PUT's answer and a later GET both say 2 of the 5 wanted.
    let answer = alice.put_basket_item(lamp.id, 5).await.expect(200).value();
    assert_eq!(answer["items"][0]["quantity"], 5, "{answer}");
    assert_eq!(answer["items"][0]["available"], 2, "{answer}");
    let basket = alice.basket().await.expect(200).value();
    assert_eq!(basket["items"][0]["available"], 2, "{basket}");

    // Stock arrives: the basket follows.
    shop.admin_api().set_stock(lamp.id, 7).await.expect(200);
    let basket = alice.basket().await.expect(200).value();
    assert_eq!(basket["items"][0]["available"], 7, "{basket}");
}
