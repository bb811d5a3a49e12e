//! Idempotent commands: a repeated command id gets the first reply back and
//! changes nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bazaar_testkit::Backend;
use contracts::commands::Reply;
use contracts::product::ProductCreatedV1;
use contracts::Envelope;
use futures::future::BoxFuture;
use platform::command::{self, Decided, Refusal};
use platform::outbox::{self, Outbox};
use platform::Tx;

use crate::support::{
    broker, database, execute, on_every_backend, product_created, scalar, stream_len,
    PRODUCT_STREAM,
};

/// The decision of a "create product" command: stores a row, writes its
/// event to the outbox and answers with the SKU; counts how often it runs.
fn create_product(
    runs: Arc<AtomicUsize>,
    event: Envelope<ProductCreatedV1>,
) -> impl for<'a> FnOnce(&'a mut Tx) -> BoxFuture<'a, Result<Decided<String>, Refusal>> {
    move |tx: &mut Tx| -> BoxFuture<'_, Result<Decided<String>, Refusal>> {
        Box::pin(async move {
            runs.fetch_add(1, Ordering::SeqCst);
            sqlx::query("INSERT INTO test_product (id, sku) VALUES ($1, $2)")
                .bind(event.data.product_id.to_string())
                .bind(event.data.sku.clone())
                .execute(&mut **tx)
                .await?;
            outbox::push(tx, &event).await?;
            Ok(Decided {
                value: event.data.sku.clone(),
                events: vec![event.id],
            })
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_command_returns_the_first_reply_and_changes_nothing() {
    on_every_backend(idempotent_command_returns_the_first_reply).await;
}

async fn idempotent_command_returns_the_first_reply(backend: Backend) {
    // Arrange
    let broker = broker().await;
    let (_test_db, db) = database(backend).await;
    execute(
        &db,
        "CREATE TABLE test_product (id TEXT PRIMARY KEY, sku TEXT NOT NULL)",
    )
    .await;
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
        create_product(runs.clone(), product_created("sofa")),
    )
    .await;
    let second = command::execute(
        &db,
        &outbox,
        "create-product",
        command_id,
        create_product(runs.clone(), product_created("sofa")),
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
    execute(
        &first,
        "CREATE TABLE test_product (id TEXT PRIMARY KEY, sku TEXT NOT NULL)",
    )
    .await;
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
                    create_product(runs, product_created(&format!("chair-{i}"))),
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
