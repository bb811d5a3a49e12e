//! Projections: they resume from their checkpoint without applying anything
//! twice, and rebuild to the same content after a reset.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_nats::jetstream::Context;
use bazaar_testkit::Backend;
use contracts::product::ProductCreatedV1;
use platform::projection::{self, ProjectionHandle, ProjectionSpec, Projector};
use platform::{Db, Delivery, HandlerError, Secret, Tx};
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::support::{
    broker, database, dead_letters, execute, join, on_every_backend, product_created, publish,
    publish_event, PRODUCT_CREATED, PRODUCT_STREAM, SERVICE, WAIT,
};

const NAME: &str = "test-product-names";

/// A view with one row per product.created (no key, so that applying an
/// event twice shows up as a second row); counts how often it applies.
struct ProductNames {
    applied: Arc<AtomicUsize>,
}

impl Projector for ProductNames {
    async fn apply(&self, tx: &mut Tx, delivery: &Delivery) -> Result<(), HandlerError> {
        let event = delivery.decode::<ProductCreatedV1>()?;
        let seq = i64::try_from(delivery.stream_seq).map_err(anyhow::Error::from)?;
        sqlx::query("INSERT INTO test_product_names (seq, name) VALUES ($1, $2)")
            .bind(seq)
            .bind(event.data.name)
            .execute(&mut **tx)
            .await?;
        self.applied.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A running projection and how many events it applied.
struct Running {
    handle: ProjectionHandle,
    applied: Arc<AtomicUsize>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn start(js: &Context, db: &Db) -> Running {
        let applied = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let spec = ProjectionSpec {
            name: NAME.to_owned(),
            stream: PRODUCT_STREAM,
            filter_subjects: vec![PRODUCT_CREATED.to_owned()],
        };
        let projector = ProductNames {
            applied: applied.clone(),
        };
        let (handle, task) = projection::spawn(
            js.clone(),
            db.clone(),
            SERVICE,
            spec,
            projector,
            stop.clone(),
        );
        Running {
            handle,
            applied,
            stop,
            task,
        }
    }

    async fn wait_for(&self, seq: u64, backend: Backend) {
        assert!(
            self.handle.wait_for(seq, WAIT).await,
            "[{backend}] the projection did not apply up to {seq} within {WAIT:?}: {:?}",
            self.handle.progress()
        );
    }

    fn applied(&self) -> usize {
        self.applied.load(Ordering::SeqCst)
    }

    async fn stop(self) {
        self.stop.cancel();
        join(self.task, "the projection").await;
    }
}

async fn view(db: &Db) -> Vec<(i64, String)> {
    sqlx::query("SELECT seq, name FROM test_product_names ORDER BY seq, name")
        .fetch_all(&mut *db.conn().await.expect("a database connection"))
        .await
        .expect("reading the view")
        .iter()
        .map(|row| (row.get("seq"), row.get("name")))
        .collect()
}

async fn publish_products(js: &Context, names: &[&str]) -> u64 {
    let mut last = 0;
    for name in names {
        last = publish_event(js, &product_created(name)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_resumes_from_its_checkpoint_and_rebuilds_after_reset() {
    on_every_backend(projection_resumes_and_rebuilds).await;
}

async fn projection_resumes_and_rebuilds(backend: Backend) {
    // Arrange: a projection that has applied five events, then stopped.
    let broker = broker().await;
    let js = &broker.js;
    let (_test_db, db) = database(backend).await;
    execute(
        &db,
        "CREATE TABLE test_product_names (seq BIGINT NOT NULL, name TEXT NOT NULL)",
    )
    .await;
    let first_five = publish_products(js, &["a", "b", "c", "d", "e"]).await;
    let first = Running::start(js, &db);
    first.wait_for(first_five, backend).await;
    assert_eq!(first.applied(), 5, "[{backend}] applied by the first run");
    first.stop().await;
    assert_eq!(
        projection::checkpoint(&db, NAME).await.expect("checkpoint"),
        first_five,
        "[{backend}] checkpoint"
    );

    // Act: more events, and the projection starts again.
    let last = publish_products(js, &["f", "g", "h"]).await;
    let resumed = Running::start(js, &db);
    resumed.wait_for(last, backend).await;

    // Assert: only the new events were applied.
    assert_eq!(
        resumed.applied(),
        3,
        "[{backend}] applied after the restart"
    );
    let expected: Vec<(i64, String)> = ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(1..)
        .map(|(name, seq)| (seq, (*name).to_owned()))
        .collect();
    let built = view(&db).await;
    assert_eq!(built, expected, "[{backend}] the view after resuming");
    resumed.stop().await;

    // Act: reset to the beginning, clear the view, replay.
    projection::reset(&db, NAME, 0)
        .await
        .expect("resetting the checkpoint");
    execute(&db, "DELETE FROM test_product_names").await;
    let rebuilt = Running::start(js, &db);
    rebuilt.wait_for(last, backend).await;

    // Assert: the same content, every event applied once more.
    assert_eq!(rebuilt.applied(), 8, "[{backend}] applied by the rebuild");
    assert_eq!(view(&db).await, built, "[{backend}] the rebuilt view");
    assert_eq!(
        projection::checkpoint(&db, NAME).await.expect("checkpoint"),
        last,
        "[{backend}] checkpoint after the rebuild"
    );
    rebuilt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_of_a_projection_apply_each_event_once() {
    on_every_backend(two_instances_apply_each_event_once).await;
}

async fn two_instances_apply_each_event_once(backend: Backend) {
    // Arrange: twenty events, and two instances of the same projection on
    // the same database, each with its own connection pool (two processes).
    let broker = broker().await;
    let js = &broker.js;
    let (test_db, db) = database(backend).await;
    let other_db = Db::connect(&Secret::new(test_db.url()))
        .await
        .expect("a second connection pool");
    execute(
        &db,
        "CREATE TABLE test_product_names (seq BIGINT NOT NULL, name TEXT NOT NULL)",
    )
    .await;
    let names: Vec<String> = (0..20).map(|i| format!("item-{i:02}")).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let last = publish_products(js, &name_refs).await;

    // Act: both follow the stream at the same time.
    let one = Running::start(js, &db);
    let two = Running::start(js, &other_db);
    one.wait_for(last, backend).await;
    two.wait_for(last, backend).await;

    // Assert: every event was applied by exactly one of them.
    assert_eq!(
        one.applied() + two.applied(),
        20,
        "[{backend}] applications by both instances"
    );
    let expected: Vec<(i64, String)> = names
        .iter()
        .cloned()
        .zip(1..)
        .map(|(name, seq)| (seq, name))
        .collect();
    assert_eq!(view(&db).await, expected, "[{backend}] the view");

    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_inside_a_batch_is_dead_lettered_alone() {
    on_every_backend(poison_inside_a_batch).await;
}

async fn poison_inside_a_batch(backend: Backend) {
    // Arrange: forty events already in the stream, the twentieth of them
    // not JSON, so the follower receives them together and applies them
    // as one batch, which fails.
    let broker = broker().await;
    let js = &broker.js;
    let (_test_db, db) = database(backend).await;
    execute(
        &db,
        "CREATE TABLE test_product_names (seq BIGINT NOT NULL, name TEXT NOT NULL)",
    )
    .await;
    let mut good = Vec::new();
    let mut last = 0;
    for i in 0..40 {
        if i == 19 {
            last = publish(js, PRODUCT_CREATED, b"{not json".to_vec(), "poison-19").await;
        } else {
            let name = format!("item-{i:02}");
            last = publish_event(js, &product_created(&name)).await;
            good.push((i64::try_from(last).expect("a small sequence"), name));
        }
    }

    // Act
    let running = Running::start(js, &db);
    running.wait_for(last, backend).await;

    // Assert: every good event is in the view once, the poison is a dead
    // letter, and the checkpoint is past all of them.
    assert_eq!(view(&db).await, good, "[{backend}] the view");
    assert_eq!(
        dead_letters(js, NAME).await.len(),
        1,
        "[{backend}] dead letters"
    );
    assert_eq!(
        projection::checkpoint(&db, NAME).await.expect("checkpoint"),
        last,
        "[{backend}] checkpoint"
    );
    running.stop().await;
}
