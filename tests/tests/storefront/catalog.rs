//! The catalog the storefront tests shop in, and what they read back
//! through the API.

use std::time::Duration;

use bazaar_testkit::api::{Money, NewProduct, Order, Product};
use bazaar_testkit::{wait_until, Shop};
use serde_json::json;

use super::SETTLE;

/// A shop whose catalog has a stocked keyboard and a lamp, once search
/// finds the keyboard with its stock (the index is eventually consistent)
/// and every service has taken both in.
pub async fn shop_with_a_keyboard() -> (Shop, Product) {
    keyboard_in(Shop::builder().start().await).await
}

/// [`shop_with_a_keyboard`] on a shop already started.
pub async fn keyboard_in(shop: Shop) -> (Shop, Product) {
    let admin = shop.admin_api();
    let mut created = Vec::new();
    for (sku, name, category, price, stock) in [
        ("KB-001", "Mechanical keyboard", "computers", 8999, 5),
        ("LA-001", "Desk lamp", "home", 2999, 3),
    ] {
        let product: Product = admin
            .create_product(&NewProduct {
                sku: sku.to_owned(),
                name: name.to_owned(),
                description: format!("A {} for the tests", name.to_lowercase()),
                category: category.to_owned(),
                price: Money::eur(price),
            })
            .await
            .expect(201)
            .json();
        admin.set_stock(product.id, stock).await.expect(200);
        created.push(product);
    }
    let keyboard = created.swap_remove(0);
    wait_until(SETTLE, "search finds the keyboard in stock", || async {
        let page = shop.api().get("/api/v1/products?q=keyboard").await;
        let items = page.value()["items"].clone();
        items.as_array().is_some_and(|items| {
            items.len() == 1
                && items[0]["id"] == json!(keyboard.id)
                && items[0]["available"] == json!(5)
        })
    })
    .await;
    shop.wait_consumers_idle(Duration::from_secs(20)).await;
    (shop, keyboard)
}

/// The newest order of `customer`, as the API shows it.
pub async fn latest_order(shop: &Shop, customer: &str) -> Order {
    let page = shop.customer_api(customer).orders(Some(1), None).await;
    let mut orders: Vec<Order> = serde_json::from_value(page.expect(200).value()["items"].clone())
        .unwrap_or_else(|e| panic!("the orders page is not a list of orders: {e}"));
    assert!(!orders.is_empty(), "{customer} has no order");
    orders.swap_remove(0)
}

/// Euros as the page shows them in US English: `€1,234.50`.
pub fn money(m: &Money) -> String {
    assert_eq!(m.currency, "EUR", "the test formats euros only");
    let (units, cents) = (m.amount_minor / 100, m.amount_minor % 100);
    let digits = units.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("€{grouped}.{cents:02}")
}
