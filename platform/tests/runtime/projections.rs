//! Projections: they resume from their checkpoint without applying anything
//! twice, and rebuild to the same content after a reset.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_nats::jetstream::Context;
use bazaar_testkit::{wait_until, Backend, TestDb};
use contracts::product::ProductCreatedV1;
use platform::projection::{self, ProjectionHandle, ProjectionSpec, Projector};
use platform::replay::{self, Start, Target};
use platform::{Db, Delivery, HandlerError, Secret, Tx};
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::support::{
    broker, database, dead_letters, execute, join, on_every_backend, product_created, publish,
    publish_event, scalar, PRODUCT_CREATED, PRODUCT_STREAM, SERVICE, WAIT,
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

/// The view's table, empty.
async fn create_view(db: &Db) {
    execute(
        db,
        "CREATE TABLE test_product_names (seq BIGINT NOT NULL, name TEXT NOT NULL)",
    )
    .await;
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
    create_view(&db).await;
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
    create_view(&db).await;
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
    create_view(&db).await;
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

/// [`ProductNames`], declaring its table, so a replay from the start
/// empties it.
struct ClearedProductNames(ProductNames);

impl Projector for ClearedProductNames {
    async fn apply(&self, tx: &mut Tx, delivery: &Delivery) -> Result<(), HandlerError> {
        self.0.apply(tx, delivery).await
    }

    fn tables(&self) -> &'static [&'static str] {
        &["test_product_names"]
    }
}

/// Two instances share one PostgreSQL database (compose): one replays
/// while the other's live follower applies events published meanwhile.
/// The replay locks the checkpoint before it reads the stream's head, so
/// those events are either below the head (applied again by the replay)
/// or wait for its commit; none is cleared and then skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_another_instance_applies_during_a_replay_stay_in_the_view() {
    if !TestDb::backends().await.contains(&Backend::Postgres) {
        eprintln!("PostgreSQL is not reachable: skipped (CI requires it)");
        return;
    }
    let backend = Backend::Postgres;
    let broker = broker().await;
    let js = &broker.js;
    let (_test_db, db) = database(backend).await;
    create_view(&db).await;
    let first = publish_products(js, &["a", "b", "c"]).await;
    let running = Running::start(js, &db);
    running.wait_for(first, backend).await;
    running.stop().await;

    // The other instance's follower is inside its transaction: it has
    // claimed the checkpoint row, as a follower does first.
    let mut other = db.begin().await.expect("the other instance's transaction");
    sqlx::query("UPDATE platform_checkpoint SET last_seq = last_seq WHERE projection = $1")
        .bind(NAME)
        .execute(&mut *other)
        .await
        .expect("claiming the checkpoint");

    let target = Target {
        name: NAME.to_owned(),
        stream: PRODUCT_STREAM,
        filter_subjects: vec![PRODUCT_CREATED.to_owned()],
        projector: Arc::new(ClearedProductNames(ProductNames {
            applied: Arc::new(AtomicUsize::new(0)),
        })),
    };
    let replay = {
        let (js, db) = (js.clone(), db.clone());
        tokio::spawn(async move {
            replay::rebuild(&js, &db, &[target], &Start::Beginning, &|_| {}).await
        })
    };
    // The replay waits for that row's lock (wherever it takes it).
    wait_until(WAIT, "the replay waits for the checkpoint's lock", || async {
        scalar(
            &db,
            "SELECT COUNT(*) FROM pg_locks WHERE NOT granted AND locktype IN ('transactionid', 'tuple')",
        )
        .await
            > 0
    })
    .await;

    // Events published now; the other instance applies them and commits.
    let later = publish_products(js, &["d", "e"]).await;
    for (seq, name) in [(later - 1, "d"), (later, "e")] {
        sqlx::query("INSERT INTO test_product_names (seq, name) VALUES ($1, $2)")
            .bind(i64::try_from(seq).expect("a small sequence"))
            .bind(name)
            .execute(&mut *other)
            .await
            .expect("the other instance applies");
    }
    sqlx::query("UPDATE platform_checkpoint SET last_seq = $2 WHERE projection = $1")
        .bind(NAME)
        .bind(i64::try_from(later).expect("a small sequence"))
        .execute(&mut *other)
        .await
        .expect("the other instance moves the checkpoint");
    other.commit().await.expect("the other instance commits");

    let report = tokio::time::timeout(WAIT, replay)
        .await
        .expect("the replay ends")
        .expect("the replay task")
        .expect("the replay");
    assert!(report.applied >= 3, "{report:?}");

    // Every event is in the view once, and the checkpoint covers them: a
    // follower resuming from it applies nothing twice and skips nothing.
    let expected: Vec<(i64, String)> = ["a", "b", "c", "d", "e"]
        .iter()
        .zip(1..)
        .map(|(name, seq)| (seq, (*name).to_owned()))
        .collect();
    assert_eq!(view(&db).await, expected, "the view after the replay");
    let checkpoint = projection::checkpoint(&db, NAME).await.expect("checkpoint");
    assert!(checkpoint >= later, "checkpoint {checkpoint} < {later}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_that_cannot_apply_is_reported_interrupted_until_it_applies_again() {
    on_every_backend(interrupted_until_it_applies_again).await;
}

async fn interrupted_until_it_applies_again(backend: Backend) {
    // Arrange: events, and a view whose table is missing, so every apply
    // fails (as on a full disk or a broken database).
    let broker = broker().await;
    let js = &broker.js;
    let (_test_db, db) = database(backend).await;
    let last = publish_products(js, &["a", "b"]).await;

    // Act: the projection starts.
    let running = Running::start(js, &db);

    // Assert: its progress says why it is stuck (what /readyz reports).
    wait_until(WAIT, "the projection reports its interruption", || async {
        running.handle.progress().interrupted.is_some()
    })
    .await;
    let reason = running
        .handle
        .progress()
        .interrupted
        .map(|i| i.to_string())
        .unwrap_or_default();
    assert!(
        reason.contains("test_product_names"),
        "[{backend}] {reason}"
    );
    assert_eq!(running.applied(), 0);

    // Act: the database is fixed.
    create_view(&db).await;

    // Assert: it applies everything, and the interruption is cleared.
    running.wait_for(last, backend).await;
    assert_eq!(running.handle.progress().interrupted, None, "[{backend}]");
    assert_eq!(view(&db).await.len(), 2, "[{backend}]");
    running.stop().await;
}
