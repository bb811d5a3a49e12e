//! How soon a change shows in search results.

use std::time::{Duration, Instant};

use crate::harness::{params, search_until, Bazaar, NewProduct, PATIENCE};

/// The longest a change may take to become searchable here: a commit every
/// 500 ms plus delivery, with room for a slow test machine.
const FRESH_WITHIN: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_created_through_the_api_is_searchable_within_a_bounded_time() {
    let shop = Bazaar::start().await;
    let _shards = shop.shards(2, "data").await;
    let edge = shop.edge(2, 1000).await;
    let created = edge
        .http
        .post(format!("{}/api/v1/products", edge.url))
        .bearer_auth(edge.admin_token())
        .json(&serde_json::json!({
            "sku": "TEL-1",
            "name": "Refracting telescope",
            "description": "70 mm aperture",
            "category": "optics",
            "price": {"amount_minor": 12900, "currency": "EUR"}
        }))
        .send()
        .await
        .expect("POST /api/v1/products");
    assert!(created.status().is_success(), "{}", created.status());
    let started = Instant::now();

    let found = bazaar_testkit::wait_for(PATIENCE, "the telescope is found", || async {
        let (status, body) = edge.search("q=telescope").await;
        (status == 200 && body["total"] == 1).then_some(body)
    })
    .await;

    let elapsed = started.elapsed();
    assert!(elapsed < FRESH_WITHIN, "searchable only after {elapsed:?}");
    assert_eq!(found["items"][0]["name"], "Refracting telescope");
    assert_eq!(found["items"][0]["price"]["amount_minor"], 12900);
    assert_eq!(found["partial"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stock_change_shows_in_results() {
    let shop = Bazaar::start().await;
    let _shards = shop.shards(2, "data").await;
    let gatherer = shop.gatherer(2, Duration::from_secs(2)).await;
    // Stock reported before the product exists is kept for it.
    let early = uuid::Uuid::now_v7();
    shop.stock(early, 4, 4).await;
    shop.product_with_id(
        early,
        NewProduct {
            name: "Bicycle bell",
            description: "",
            category: "bikes",
        },
    )
    .await;
    let lamp = shop
        .product(NewProduct {
            name: "Bicycle lamp",
            description: "",
            category: "bikes",
        })
        .await;
    let query = params("bicycle", None, 20, 0);
    search_until(&gatherer, &query, "both bicycle parts are found", |r| {
        r.total == 2
    })
    .await;

    shop.stock(lamp, 12, 9).await;
    let started = Instant::now();
    let results = search_until(&gatherer, &query, "the lamp's stock shows", |r| {
        r.items
            .iter()
            .any(|h| h.product_id == lamp && h.available == 9)
    })
    .await;

    assert!(started.elapsed() < FRESH_WITHIN);
    let bell = results.items.iter().find(|h| h.product_id == early);
    assert_eq!(bell.map(|h| (h.on_hand, h.available)), Some((4, 4)));
    let lamp = results.items.iter().find(|h| h.product_id == lamp);
    assert_eq!(lamp.map(|h| (h.on_hand, h.available)), Some((12, 9)));
}
