//! What a search finds and in which order.

use std::collections::HashSet;
use std::time::Duration;

use crate::harness::{ids, names, params, search, search_until, Bazaar, NewProduct};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_match_outranks_a_description_only_match_and_irrelevant_products_are_absent() {
    let shop = Bazaar::start().await;
    let _shards = shop.shards(2, "data").await;
    let gatherer = shop.gatherer(2, Duration::from_secs(2)).await;
    shop.product(NewProduct {
        name: "Desk lamp",
        description: "Bright enough to light up the computer corner of any room.",
        category: "home",
    })
    .await;
    shop.product(NewProduct {
        name: "Gaming computer with a very long name that goes on and on about its many features",
        description: "Fast.",
        category: "computers",
    })
    .await;
    shop.product(NewProduct {
        name: "Coffee mug",
        description: "Ceramic, 300 ml.",
        category: "kitchen",
    })
    .await;

    let results = search_until(
        &gatherer,
        &params("computers", None, 20, 0),
        "both computer products are found",
        |r| r.total == 2,
    )
    .await;

    assert_eq!(
        names(&results),
        [
            "Gaming computer with a very long name that goes on and on about its many features",
            "Desk lamp"
        ]
    );
    assert!(results.items[0].score > results.items[1].score);
    // The mug was created last: on a shard other than the computers' it
    // may be indexed a moment later, so it is waited for too.
    let mug = search_until(
        &gatherer,
        &params("mug", None, 20, 0),
        "the mug is found",
        |r| r.total >= 1,
    )
    .await;
    assert_eq!(names(&mug), ["Coffee mug"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_product_named_exactly_what_was_asked_for_comes_first() {
    let shop = Bazaar::start().await;
    let _shards = shop.shards(2, "data").await;
    let gatherer = shop.gatherer(2, Duration::from_secs(2)).await;
    // Both others say kettle again in their descriptions, which alone
    // would put them first.
    for (name, description) in [
        ("Kettle descaler", "Cleans any kettle; kettle, kettle."),
        ("Electric kettle", "A kettle that is electric."),
        ("Kettle", "Boils water fast."),
        ("Donaudampfschifffahrtskapitänsmütze", "A captain's cap."),
    ] {
        shop.product(NewProduct {
            name,
            description,
            category: "kitchen",
        })
        .await;
    }
    let kettles = search_until(
        &gatherer,
        &params("kettle", None, 20, 0),
        "the three kettle products are found",
        |r| r.total == 3,
    )
    .await;
    assert_eq!(names(&kettles)[0], "Kettle", "{:?}", names(&kettles));

    let electric = search(&gatherer, &params("ELECTRIC kettles", None, 20, 0)).await;
    assert_eq!(names(&electric), ["Electric kettle"]);
    let cap = search_until(
        &gatherer,
        &params("donaudampfschifffahrtskapitänsmütze", None, 20, 0),
        "a long compound word is found",
        |r| r.total == 1,
    )
    .await;
    assert_eq!(names(&cap), ["Donaudampfschifffahrtskapitänsmütze"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_word_must_match_and_a_discontinued_product_is_not_found() {
    let shop = Bazaar::start().await;
    let _shards = shop.shards(2, "data").await;
    let gatherer = shop.gatherer(2, Duration::from_secs(2)).await;
    let keyboard = shop
        .product(NewProduct {
            name: "Wireless keyboard",
            description: "Quiet keys",
            category: "computers",
        })
        .await;
    shop.product(NewProduct {
        name: "Wireless mouse",
        description: "Ergonomic",
        category: "computers",
    })
    .await;
    search_until(
        &gatherer,
        &params("wireless", None, 20, 0),
        "both wireless products are found",
        |r| r.total == 2,
    )
    .await;

    let both_words = search(&gatherer, &params("wireless keyboard", None, 20, 0)).await;
    assert_eq!(names(&both_words), ["Wireless keyboard"]);

    shop.discontinue(keyboard).await;
    let results = search_until(
        &gatherer,
        &params("wireless", None, 20, 0),
        "the discontinued keyboard is gone",
        |r| r.total == 1,
    )
    .await;
    assert_eq!(names(&results), ["Wireless mouse"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_category_filter_is_exact_and_case_insensitive() {
    let shop = Bazaar::start().await;
    let _shards = shop.shards(3, "data").await;
    let gatherer = shop.gatherer(3, Duration::from_secs(2)).await;
    for (name, category) in [
        ("USB cable", "Computers"),
        ("Laptop stand", "computers"),
        ("Cable tie", "Computer accessories"),
        ("Garden cable", "garden"),
    ] {
        shop.product(NewProduct {
            name,
            description: "",
            category,
        })
        .await;
    }
    search_until(
        &gatherer,
        &params("", None, 20, 0),
        "all four products are listed",
        |r| r.total == 4,
    )
    .await;

    let listed = search(&gatherer, &params("", Some("COMPUTERS"), 20, 0)).await;
    let cables = search(&gatherer, &params("cable", Some("computers"), 20, 0)).await;

    // Without text: sorted by name, every score 0.
    assert_eq!(names(&listed), ["Laptop stand", "USB cable"]);
    assert!(listed.items.iter().all(|h| h.score == 0.0));
    assert_eq!(names(&cables), ["USB cable"]);
    assert_eq!(cables.total, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_stable_with_no_duplicates_and_no_gaps() {
    let shop = Bazaar::start().await;
    let _shards = shop.shards(3, "data").await;
    let gatherer = shop.gatherer(3, Duration::from_secs(2)).await;
    // Many equal scores: the order must still be total and repeatable.
    for n in 0..47 {
        let name = format!("Widget {}", ["red", "blue", "green"][n % 3]);
        let description = if n % 2 == 0 { "widget widget" } else { "" };
        shop.product(NewProduct {
            name: &name,
            description,
            category: "parts",
        })
        .await;
    }
    let everything = search_until(
        &gatherer,
        &params("widget", None, 100, 0),
        "all 47 widgets are found",
        |r| r.total == 47,
    )
    .await;

    let mut paged = Vec::new();
    for offset in (0..50).step_by(10) {
        let page = search(&gatherer, &params("widget", None, 10, offset)).await;
        assert_eq!(page.total, 47);
        paged.extend(page.items);
    }

    assert_eq!(ids(&paged), ids(&everything.items));
    let unique: HashSet<_> = paged.iter().map(|h| h.product_id).collect();
    assert_eq!(unique.len(), 47);
    let again = search(&gatherer, &params("widget", None, 100, 0)).await;
    assert_eq!(ids(&again.items), ids(&everything.items));
}

/// Chinese and Japanese write no spaces between words, and emoji are not
/// letters: each such character is a word, so one of them finds the
/// products that have it, and several find those that have them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cjk_character_or_an_emoji_finds_the_products_that_contain_it() {
    let shop = Bazaar::start().await;
    let _shards = shop.shards(2, "data").await;
    let gatherer = shop.gatherer(2, Duration::from_secs(2)).await;
    for (name, description) in [
        ("Café crème ☕ 咖啡", "Dark roast."),
        ("Green tea 绿茶", "Loose leaves in a tin 🍵."),
        ("コーヒーカップ", "A cup."),
    ] {
        shop.product(NewProduct {
            name,
            description,
            category: "kitchen",
        })
        .await;
    }
    search_until(
        &gatherer,
        &params("", None, 20, 0),
        "all three products are listed",
        |r| r.total == 3,
    )
    .await;

    for (q, found) in [
        ("☕", vec!["Café crème ☕ 咖啡"]),
        ("咖", vec!["Café crème ☕ 咖啡"]),
        ("咖啡", vec!["Café crème ☕ 咖啡"]),
        ("cafe", vec!["Café crème ☕ 咖啡"]),
        ("茶", vec!["Green tea 绿茶"]),
        ("🍵", vec!["Green tea 绿茶"]),
        ("カップ", vec!["コーヒーカップ"]),
        ("啡茶", vec![]),
    ] {
        let results = search(&gatherer, &params(q, None, 20, 0)).await;
        assert_eq!(names(&results), found, "searching {q:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_word_may_be_the_start_of_a_word_and_whole_words_come_first() {
    let shop = Bazaar::start().await;
    let _shards = shop.shards(2, "data").await;
    let gatherer = shop.gatherer(2, Duration::from_secs(2)).await;
    for (name, description) in [
        ("Wireless keyboard", "Quiet keys."),
        ("Keyboard cover", "Keeps crumbs out."),
        ("Key ring", "Holds a keyboard key."),
        ("Wireless mouse", "Ergonomic."),
        ("Casserole dish", "Oven-proof."),
        ("Running shoes", "Light."),
    ] {
        shop.product(NewProduct {
            name,
            description,
            category: "computers",
        })
        .await;
    }
    search_until(
        &gatherer,
        &params("wireless", None, 20, 0),
        "every product is indexed",
        |r| r.total == 2,
    )
    .await;
    let typed = search_until(
        &gatherer,
        &params("keyb", None, 20, 0),
        "the start of keyboard finds every keyboard",
        |r| r.total == 3,
    )
    .await;
    // A name that starts the word outranks a description that does.
    assert_eq!(names(&typed)[2], "Key ring", "{:?}", names(&typed));

    // Only the last word is a start: the first must be whole.
    let two = search(&gatherer, &params("wireless keyb", None, 20, 0)).await;
    assert_eq!(names(&two), ["Wireless keyboard"]);
    let not_last = search(&gatherer, &params("wirel keyboard", None, 20, 0)).await;
    assert_eq!(not_last.total, 0, "{:?}", names(&not_last));

    // The whole word outranks words it starts.
    let key = search(&gatherer, &params("key", None, 20, 0)).await;
    assert_eq!(key.total, 3, "{:?}", names(&key));
    assert_eq!(names(&key)[0], "Key ring");

    // The start as typed, not as stemmed: "cas" stems to "ca", "runn" is
    // no start of the stem "run".
    let cas = search(&gatherer, &params("cas", None, 20, 0)).await;
    assert_eq!(names(&cas), ["Casserole dish"]);
    let runn = search(&gatherer, &params("runn", None, 20, 0)).await;
    assert_eq!(names(&runn), ["Running shoes"]);

    // Two letters are too few to be a start.
    let short = search(&gatherer, &params("ke", None, 20, 0)).await;
    assert_eq!(short.total, 0, "{:?}", names(&short));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_category_name_finds_what_it_holds_below_products_that_name_the_word() {
    let shop = Bazaar::start().await;
    let _shards = shop.shards(2, "data").await;
    let gatherer = shop.gatherer(2, Duration::from_secs(2)).await;
    for (name, description, category) in [
        ("Dune", "A novel of the desert planet.", "Books"),
        ("Moby Dick", "A whale of a tale.", "Books"),
        ("Book stand", "Holds an open book.", "home"),
        ("Coffee mug", "Ceramic.", "kitchen"),
    ] {
        shop.product(NewProduct {
            name,
            description,
            category,
        })
        .await;
    }
    let books = search_until(
        &gatherer,
        &params("books", None, 20, 0),
        "the category's products are found",
        |r| r.total == 3,
    )
    .await;
    assert_eq!(names(&books)[0], "Book stand", "{:?}", names(&books));
    let both = search(&gatherer, &params("whale books", None, 20, 0)).await;
    assert_eq!(names(&both), ["Moby Dick"]);
}
