//! `GET /api/v1/products` as clients see it.

use crate::harness::{Bazaar, NewProduct, PATIENCE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_answers_products_with_scores_total_and_timing() {
    let shop = Bazaar::start().await;
    let _shards = shop.shards(2, "data").await;
    let edge = shop.edge(2, 1000).await;
    let id = shop
        .product(NewProduct {
            name: "Rain jacket",
            description: "Waterproof",
            category: "Clothing",
        })
        .await;
    shop.stock(id, 3, 2).await;

    let body = bazaar_testkit::wait_for(PATIENCE, "the jacket with its stock", || async {
        let (status, body) = edge.search("q=jacket&category=clothing&limit=5").await;
        (status == 200 && body["items"][0]["available"] == 2).then_some(body)
    })
    .await;

    let item = &body["items"][0];
    assert_eq!(item["id"], id.to_string());
    assert_eq!(item["category"], "Clothing");
    assert_eq!(item["status"], "active");
    assert!(item["score"].as_f64().unwrap_or_default() > 0.0);
    assert_eq!(body["total"], 1);
    assert_eq!(body["partial"], false);
    assert_eq!(body["missing_shards"], serde_json::json!([]));
    assert!(body["took_ms"].as_f64().is_some_and(|t| t > 0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_limit_offset_or_long_text_is_a_422_problem() {
    let shop = Bazaar::start().await;
    let edge = shop.edge(1, 250).await;
    let long_q = "q".repeat(201);

    for (query, field) in [
        ("limit=0".to_owned(), "limit"),
        ("limit=101".to_owned(), "limit"),
        ("limit=many".to_owned(), "limit"),
        ("offset=10001".to_owned(), "offset"),
        ("offset=-1".to_owned(), "offset"),
        (format!("q={long_q}"), "q"),
        ("page=2".to_owned(), "page"),
        ("limit=1&limit=2".to_owned(), "limit"),
    ] {
        let response = edge
            .http
            .get(format!("{}/api/v1/products?{query}", edge.url))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 422, "{query}");
        let content_type = response.headers()["content-type"].to_str().unwrap_or("");
        assert_eq!(content_type, "application/problem+json");
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["errors"][0]["field"], field, "{query}");
    }
    let openapi: serde_json::Value = edge
        .http
        .get(format!("{}/api/openapi.json", edge.url))
        .send()
        .await
        .expect("GET openapi")
        .json()
        .await
        .expect("json");
    assert!(openapi["paths"]["/api/v1/products"]["get"].is_object());
    assert!(openapi["paths"]["/api/v1/products"]["post"].is_object());
}
