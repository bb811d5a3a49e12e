//! Search over shards, through the real processes.

use std::time::{Duration, Instant};

use bazaar_testkit::{wait_for, Shop};
use serde_json::Value;

/// The edge's default gathering deadline for search answers.
const DEADLINE_MS: u64 = 250;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_shard_gives_a_partial_answer_within_the_deadline_not_an_error() {
    // Arrange: two shards and a catalog spread over both.
    let mut shop = Shop::builder().shards(2).start().await;
    let api = shop.admin_api();
    // 16 products: the chance that a hash puts all on one shard is 2^-15.
    for i in 0..16 {
        api.stocked_product(&format!("LAMP-{i}"), 1999, 3).await;
    }
    let search = |api: bazaar_testkit::Api| async move {
        api.get("/api/v1/products?q=lamp&limit=20")
            .await
            .expect(200)
            .value()
    };
    wait_for(
        Duration::from_secs(20),
        "both shards index the lamps",
        || {
            let api = api.anonymous();
            async move {
                let answer = search(api).await;
                (answer["total"] == 16 && answer["partial"] == false).then_some(())
            }
        },
    )
    .await;

    // Act: shard 1 hangs (SIGSTOP), then we search.
    shop.freeze_instance("product-svc-1");
    let started = Instant::now();
    let answer: Value = search(api.anonymous()).await;
    let elapsed = started.elapsed();

    // Assert: an answer with what shard 0 holds, flagged partial and naming
    // the missing shard, in about the deadline.
    assert_eq!(answer["partial"], true, "{answer}");
    assert_eq!(answer["missing_shards"], serde_json::json!([1]), "{answer}");
    let found = answer["total"].as_u64().unwrap_or(0);
    assert!(
        found < 16,
        "a frozen shard's products cannot be found: {answer}"
    );
    assert!(
        elapsed < Duration::from_millis(DEADLINE_MS + 1500),
        "the partial answer took {elapsed:?}, deadline {DEADLINE_MS} ms"
    );

    // And once it wakes, answers are whole again.
    shop.thaw_instance("product-svc-1");
    wait_for(
        Duration::from_secs(20),
        "the thawed shard answers again",
        || {
            let api = api.anonymous();
            async move {
                let answer = search(api).await;
                (answer["total"] == 16 && answer["partial"] == false).then_some(())
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_category_list_names_every_category_on_sale_once_with_its_count() {
    let shop = Shop::builder().start().await;
    let admin = shop.admin_api();
    let create = |sku: &'static str, category: &'static str| {
        let admin = admin.clone();
        async move {
            let mut product = bazaar_testkit::api::NewProduct::sample(sku, 1000);
            product.category = category.to_owned();
            admin.create_product(&product).await.expect(201);
        }
    };
    let categories = || async {
        let answer = shop
            .api()
            .get("/api/v1/categories")
            .await
            .expect(200)
            .value();
        let items = answer["items"].as_array().cloned().unwrap_or_default();
        items
            .iter()
            .map(|c| {
                let name = c["name"].as_str().unwrap_or_default().to_owned();
                (name, c["products"].as_i64().unwrap_or(-1))
            })
            .collect::<Vec<_>>()
    };
    for (sku, category) in [
        ("C-1", "computers"),
        ("C-2", "Computers"),
        ("K-1", "kitchen"),
        ("K-2", " Kitchen "),
        ("K-3", "Kitchen"),
        ("E-1", "Épicerie"),
        ("E-2", "épicerie"),
    ] {
        create(sku, category).await;
    }
    let owned = |list: &[(&str, i64)]| -> Vec<(String, i64)> {
        list.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect()
    };
    assert_eq!(
        categories().await,
        owned(&[("Computers", 2), ("Kitchen", 3), ("Épicerie", 2)]),
        "one entry per name as the search filter compares them (trimmed, any \
         case, not only ASCII), spelled as most of its products spell it"
    );

    // A product created (201: the edge's view has it) is in the next list,
    // though the list was just read (and remembered).
    create("G-1", "garden").await;
    assert_eq!(
        categories().await,
        owned(&[
            ("Computers", 2),
            ("garden", 1),
            ("Kitchen", 3),
            ("Épicerie", 2)
        ])
    );
    // The list is not a product: its cache has no id a client can ask for.
    shop.api()
        .get(&format!("/api/v1/products/{}", uuid::Uuid::nil()))
        .await
        .expect(404);
}
