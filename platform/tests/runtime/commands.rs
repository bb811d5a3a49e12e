//! Idempotent commands: a repeated command id gets the first reply back and
//! changes nothing; an id reused for another request is refused.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bazaar_testkit::{Backend, TestDb};
use contracts::commands::{ErrorKind, Reply};
use platform::command;
use platform::outbox::Outbox;

use crate::support::{
    asked, broker, create_product, create_products_table, database, on_every_backend,
    product_created, scalar, stream_len, Broker, PRODUCT_STREAM,
};

/// A broker and a database with the test's products table and an outbox;
/// counts the decisions that ran.
struct Products {
    broker: Broker,
    db: platform::Db,
    outbox: Outbox,
    runs: Arc<AtomicUsize>,
}

impl Products {
    async fn on(db: platform::Db) -> Products {
        let broker = broker().await;
        create_products_table(&db).await;
        let outbox = Outbox::new(db.clone(), broker.js.clone());
        Products {
            broker,
            db,
            outbox,
            runs: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The command `name` with id `id`, asking to create product `what`
    /// (which its decision does, if it runs).
    async fn create(&self, name: &'static str, id: &str, what: &str) -> Reply<String> {
        command::execute(
            &self.db,
            &self.outbox,
            asked(name, id, what),
            create_product(self.runs.clone(), product_created(what), false),
        )
        .await
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_command_returns_the_first_reply_and_changes_nothing() {
    on_every_backend(idempotent_command_returns_the_first_reply).await;
}

async fn idempotent_command_returns_the_first_reply(backend: Backend) {
    // Arrange
    let (_test_db, db) = database(backend).await;
    let products = Products::on(db.clone()).await;

    // Act: the same command id twice; the retry would create another
    // product (a new id) if it ran.
    let first = products.create("create-product", "cmd-0001", "sofa").await;
    let second = products.create("create-product", "cmd-0001", "sofa").await;

    // Assert
    assert!(
        matches!(&first, Reply::Ok { value, stream_seq: Some(1) } if value == "SKU-sofa"),
        "[{backend}] the first reply carries the value and the event's stream sequence: {first:?}"
    );
    assert_eq!(second, first, "[{backend}] the repeat gets the first reply");
    assert_eq!(products.runs(), 1, "[{backend}] the decision ran once");
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
        stream_len(&products.broker.js, PRODUCT_STREAM).await,
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
                    asked("create-product", &format!("cmd-{i:04}"), &i),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_id_reused_for_another_request_is_refused_and_changes_nothing() {
    on_every_backend(reused_command_id_is_refused).await;
}

async fn reused_command_id_is_refused(backend: Backend) {
    // Arrange: one product created under the id.
    let (_test_db, db) = database(backend).await;
    let products = Products::on(db.clone()).await;
    let command_id = "idem:5:alice:k-1";
    let first = products.create("create-product", command_id, "sofa").await;
    assert!(matches!(first, Reply::Ok { .. }), "[{backend}] {first:?}");

    // Act: the same id asking for another product, then for another command.
    let other_body = products.create("create-product", command_id, "table").await;
    let other_command = products.create("update-product", command_id, "sofa").await;

    // Assert: both refused as a reused key, neither ran nor stored a thing.
    for (what, reply) in [
        ("another body", &other_body),
        ("another command", &other_command),
    ] {
        assert!(
            matches!(reply, Reply::Error { error } if error.kind == ErrorKind::Invalid
                && error.errors.iter().any(|e| e.field == "Idempotency-Key")),
            "[{backend}] {what} under a used id is refused, naming the key: {reply:?}"
        );
    }
    assert_eq!(products.runs(), 1, "[{backend}] only the first ran");
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM test_product").await,
        1,
        "[{backend}] products stored"
    );
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM platform_command_log").await,
        1,
        "[{backend}] command log rows"
    );
    let repeat = products.create("create-product", command_id, "sofa").await;
    assert_eq!(
        repeat, first,
        "[{backend}] the true repeat still gets the first reply"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_recorded_before_digests_were_kept_is_still_answered_on_repeat() {
    on_every_backend(command_without_digest_is_answered).await;
}

async fn command_without_digest_is_answered(backend: Backend) {
    // Arrange: a database whose command log predates `request_digest`,
    // with one command in it.
    let test_db = TestDb::new(backend).await;
    let raw = sqlx_connect(&test_db).await;
    raw_execute(
        &raw,
        "CREATE TABLE platform_command_log (command_id TEXT PRIMARY KEY, \
         command TEXT NOT NULL, reply TEXT NOT NULL, created_at TEXT NOT NULL)",
    )
    .await;
    raw_execute(
        &raw,
        "INSERT INTO platform_command_log VALUES ('cmd-old', 'create-product', \
         '{\"status\":\"ok\",\"value\":\"SKU-old\"}', '2026-01-01T00:00:00Z')",
    )
    .await;
    raw.close().await;

    // Act: the service starts on it (adding the column), and the command
    // is repeated.
    let db = platform::Db::connect(&platform::Secret::new(test_db.url()))
        .await
        .unwrap_or_else(|e| panic!("[{backend}] starting on the old database: {e:#}"));
    let products = Products::on(db.clone()).await;
    let repeat = products
        .create("create-product", "cmd-old", "anything")
        .await;
    let fresh = products.create("create-product", "cmd-new", "new").await;

    // Assert
    assert!(
        matches!(&repeat, Reply::Ok { value, .. } if value == "SKU-old"),
        "[{backend}] the old command's reply: {repeat:?}"
    );
    assert!(
        matches!(fresh, Reply::Ok { .. }),
        "[{backend}] a new command runs: {fresh:?}"
    );
    assert_eq!(products.runs(), 1, "[{backend}] only the new command ran");
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM platform_command_log WHERE request_digest IS NOT NULL"
        )
        .await,
        1,
        "[{backend}] the new command's digest is kept"
    );
}

/// A plain sqlx connection to `test_db`, without the platform's tables.
async fn sqlx_connect(test_db: &TestDb) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(test_db.url())
        .await
        .expect("connecting to the test database")
}

async fn raw_execute(pool: &sqlx::AnyPool, sql: &str) {
    sqlx::query(sql)
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}
