//! Idempotent commands: a repeated command id gets the first reply back and
//! changes nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bazaar_testkit::Backend;
use contracts::commands::Reply;
use platform::command;
use platform::outbox::Outbox;

use crate::support::{
    broker, create_product, create_products_table, database, on_every_backend, product_created,
    scalar, stream_len, PRODUCT_STREAM,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_command_returns_the_first_reply_and_changes_nothing() {
    on_every_backend(idempotent_command_returns_the_first_reply).await;
}

async fn idempotent_command_returns_the_first_reply(backend: Backend) {
    // Arrange
    let broker = broker().await;
    let (_test_db, db) = database(backend).await;
    create_products_table(&db).await;
    let outbox = Outbox::new(db.clone(), broker.js.clone());
    let runs = Arc::new(AtomicUsize::new(0));
    let command_id = "cmd-0001";

    // Act: the same command id twice; the retry would create another
    // product (a new id) if it ran.
    let first = command::execute(
        &db,
        &outbox,
        "create-product",
        command_id,
        create_product(runs.clone(), product_created("sofa"), false),
    )
    .await;
    let second = command::execute(
        &db,
        &outbox,
        "create-product",
        command_id,
        create_product(runs.clone(), product_created("sofa"), false),
    )
    .await;

    // Assert
    assert!(
        matches!(&first, Reply::Ok { value, stream_seq: Some(1) } if value == "SKU-sofa"),
        "[{backend}] the first reply carries the value and the event's stream sequence: {first:?}"
    );
    assert_eq!(second, first, "[{backend}] the repeat gets the first reply");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "[{backend}] the decision ran once"
    );
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM test_product").await,
        1,
        "[{backend}] products stored"
    );
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM platform_outbox").await,
        1,
        "[{backend}] outbox rows"
    );
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM platform_command_log").await,
        1,
        "[{backend}] command log rows"
    );
    assert_eq!(
        stream_len(&broker.js, PRODUCT_STREAM).await,
        1,
        "[{backend}] events published"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_from_instances_sharing_one_database_all_succeed() {
    on_every_backend(commands_from_instances_all_succeed).await;
}

async fn commands_from_instances_all_succeed(backend: Backend) {
    // Arrange: three "instances" (pools) on one database, as `bazaar up
    // --shards 3` runs three product-svc processes on one SQLite file.
    let broker = broker().await;
    let (test_db, first) = database(backend).await;
    create_products_table(&first).await;
    let mut instances = vec![first];
    for _ in 0..2 {
        let db = platform::Db::connect(&platform::Secret::new(test_db.url()))
            .await
            .expect("another instance connects");
        instances.push(db);
    }

    // Act: 60 different commands, spread over the instances, all at once.
    let runs = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let db = instances[i % instances.len()].clone();
            let outbox = Outbox::new(db.clone(), broker.js.clone());
            let runs = runs.clone();
            tokio::spawn(async move {
                command::execute(
                    &db,
                    &outbox,
                    "create-product",
                    &format!("cmd-{i:04}"),
                    create_product(runs, product_created(&format!("chair-{i}")), false),
                )
                .await
            })
        })
        .collect();

    // Assert: none was refused for lack of the database's lock.
    for task in tasks {
        let reply = task.await.expect("command task panicked");
        assert!(
            matches!(reply, Reply::Ok { .. }),
            "[{backend}] a command failed: {reply:?}"
        );
    }
    assert_eq!(
        scalar(&instances[0], "SELECT COUNT(*) FROM test_product").await,
        60
    );
}
