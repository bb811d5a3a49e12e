//! The split of the catalog into shards never shows in the results.

use std::time::Duration;

use crate::harness::{ids, params, search, search_until, Bazaar, NewProduct};

/// A small catalog with realistic overlaps: shared words, equal names.
fn catalog() -> Vec<(String, String, &'static str)> {
    let adjectives = [
        "compact",
        "wireless",
        "ergonomic",
        "vintage",
        "smart",
        "solid",
    ];
    let things = [
        "keyboard", "lamp", "chair", "speaker", "kettle", "backpack", "monitor",
    ];
    let uses = ["office", "kitchen", "travel", "gaming", "garden"];
    let categories = ["Computers", "Home", "Outdoor"];
    let mut seed: u64 = 42;
    let mut pick = |n: usize| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        ((seed >> 33) % n as u64) as usize
    };
    (0..120)
        .map(|_| {
            let name = format!(
                "{} {} for {}",
                adjectives[pick(adjectives.len())],
                things[pick(things.len())],
                uses[pick(uses.len())]
            );
            let description = format!(
                "A {} {} that suits any {}; pairs well with a {}.",
                adjectives[pick(adjectives.len())],
                things[pick(things.len())],
                uses[pick(uses.len())],
                things[pick(things.len())]
            );
            (name, description, categories[pick(categories.len())])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_identical_for_one_and_three_shards() {
    let shop = Bazaar::start().await;
    for (name, description, category) in catalog() {
        shop.product(NewProduct {
            name: &name,
            description: &description,
            category,
        })
        .await;
    }
    // Both layouts run side by side on one broker: each gatherer takes the
    // answers of its own layout only.
    let _one = shop.shards(1, "one").await;
    let _three = shop.shards(3, "three").await;
    let one = shop.gatherer(1, Duration::from_secs(2)).await;
    let three = shop.gatherer(3, Duration::from_secs(2)).await;
    for gatherer in [&one, &three] {
        search_until(
            gatherer,
            &params("", None, 1, 0),
            "the catalog is indexed",
            |r| r.total == 120,
        )
        .await;
    }

    let queries = [
        params("keyboard", None, 20, 0),
        params("wireless keyboard", None, 20, 0),
        params("compact lamp for office", None, 20, 0),
        params("office", Some("computers"), 15, 5),
        params("kitchen", None, 10, 30),
        params("", Some("home"), 25, 0),
        params("", None, 20, 100),
        params("nothing-like-this", None, 20, 0),
    ];
    for query in &queries {
        let a = search(&one, query).await;
        let b = search(&three, query).await;

        assert_eq!(a.total, b.total, "{query:?}");
        assert_eq!(ids(&a.items), ids(&b.items), "{query:?}");
        let scores = |r: &edge_api::search::SearchResults| {
            r.items
                .iter()
                .map(|h| h.score.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(scores(&a), scores(&b), "{query:?}");
        assert!(b.missing_shards.is_empty());
    }
    let keyboards = search(&one, &queries[0]).await;
    assert!(
        keyboards.total > 5,
        "the catalog should have several keyboards"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_of_one_shard_share_a_data_directory_and_either_answers() {
    let shop = Bazaar::start().await;
    let first = shop.shard("0/1", "data").await;
    let second = shop.shard("0/1", "data").await;
    let gatherer = shop.gatherer(1, Duration::from_secs(2)).await;
    shop.product(NewProduct {
        name: "Tent",
        description: "Two persons",
        category: "outdoor",
    })
    .await;
    // Every query is answered by one of them; both must have indexed it
    // for this to hold on every try.
    for _ in 0..10 {
        search_until(
            &gatherer,
            &params("tent", None, 20, 0),
            "the tent is found",
            |r| r.total == 1,
        )
        .await;
    }

    first.stop().await;
    let results = search(&gatherer, &params("tent", None, 20, 0)).await;

    assert_eq!((results.total, results.missing_shards.len()), (1, 0));
    assert!(second.data_dir.join("search/shard-0-of-1.1").is_dir());
    second.stop().await;
}
