//! The index keeps its checkpoint, and is rebuilt when it cannot be used.

use std::time::Duration;

use contracts::search::Shard;

use crate::harness::{names, params, search, search_until, Bazaar, NewProduct};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_shard_resumes_after_its_committed_checkpoint() {
    let shop = Bazaar::start().await;
    let gatherer = shop.gatherer(1, Duration::from_secs(2)).await;
    for name in ["Hammer", "Saw"] {
        shop.product(NewProduct {
            name,
            description: "tool",
            category: "tools",
        })
        .await;
    }
    let shard = shop.shard("0/1", "data").await;
    search_until(&gatherer, &params("tool", None, 20, 0), "both tools", |r| {
        r.total == 2
    })
    .await;
    let data_dir = shard.data_dir.clone();
    shard.stop().await;

    let stopped = product_svc::search::index::open(&data_dir, Shard::SINGLE).expect("open");
    assert_eq!(stopped.checkpoint.product, 2);
    drop(stopped);
    shop.product(NewProduct {
        name: "Drill",
        description: "tool",
        category: "tools",
    })
    .await;
    let _shard = shop.shard("0/1", "data").await;

    let results = search_until(
        &gatherer,
        &params("", Some("tools"), 20, 0),
        "three tools",
        |r| r.total == 3,
    )
    .await;
    assert_eq!(names(&results), ["Drill", "Hammer", "Saw"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_index_is_rebuilt_from_the_streams() {
    let shop = Bazaar::start().await;
    let gatherer = shop.gatherer(2, Duration::from_secs(2)).await;
    shop.product(NewProduct {
        name: "Kayak",
        description: "Sit-on-top",
        category: "water",
    })
    .await;
    let shards = shop.shards(2, "data").await;
    search_until(&gatherer, &params("kayak", None, 20, 0), "the kayak", |r| {
        r.total == 1
    })
    .await;
    let data_dir = shards[0].data_dir.clone();
    for shard in shards {
        shard.stop().await;
    }
    for i in 0..2 {
        let index = product_svc::search::index::dir_of(&data_dir, Shard::new(i, 2).expect("shard"));
        std::fs::write(index.join("meta.json"), b"{ not json").expect("corrupt the index");
    }

    let _shards = shop.shards(2, "data").await;
    let results = search_until(
        &gatherer,
        &params("kayak", None, 20, 0),
        "the kayak again",
        |r| r.total == 1,
    )
    .await;

    assert_eq!(names(&results), ["Kayak"]);
    let empty = search(&gatherer, &params("canoe", None, 20, 0)).await;
    assert_eq!(empty.total, 0);
}

#[test]
fn a_shard_outside_its_count_is_refused_with_a_clear_error() {
    use clap::Parser;
    for (shard, complaint) in [
        ("3/3", "below the count"),
        ("0/65", "1 to 64"),
        ("two", "i/K"),
    ] {
        let error = product_svc::Args::try_parse_from(["product-svc", "--shard", shard])
            .expect_err("refused");
        assert!(error.to_string().contains(complaint), "{shard}: {error}");
    }
}
