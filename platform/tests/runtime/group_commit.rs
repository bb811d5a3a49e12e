//! Group commit on SQLite: work that queues behind the writer shares one
//! transaction, each piece in a savepoint of its own; and commands keep
//! their own outcomes inside a shared transaction on every backend.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bazaar_testkit::Backend;
use contracts::commands::{ErrorKind, Reply};
use futures::future::BoxFuture;
use platform::command;
use platform::group_commit::NotCommitted;
use platform::outbox::Outbox;
use platform::Tx;
use tokio::sync::oneshot;

use crate::support::{
    asked, broker, create_product, create_products_table, database, execute, on_every_backend,
    product_created, scalar, stream_len, PRODUCT_STREAM,
};

/// What a piece of the lot answers: the rows it saw inside its transaction
/// and those another connection saw committed.
type Answer = Result<(i64, i64), NotCommitted<anyhow::Error>>;

async fn insert(tx: &mut Tx, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO test_row (id) VALUES ($1)")
        .bind(id)
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_queued_behind_the_writer_commits_in_one_transaction_and_a_failed_piece_leaves_nothing(
) {
    // Arrange: a piece that holds the writer until told, so that the
    // pieces after it queue up.
    let (_test_db, db) = database(Backend::Sqlite).await;
    execute(&db, "CREATE TABLE test_row (id TEXT PRIMARY KEY)").await;
    let group = db
        .group_commit()
        .expect("SQLite has a group commit")
        .clone();
    let (started, running) = oneshot::channel::<()>();
    let (release, released) = oneshot::channel::<()>();
    let holder = tokio::spawn({
        let group = group.clone();
        async move {
            group
                .run(move |tx| {
                    Box::pin(async move {
                        insert(tx, "holder").await?;
                        let _ = started.send(());
                        let _ = released.await;
                        Ok::<_, sqlx::Error>(())
                    })
                })
                .await
        }
    });
    running.await.expect("the holding piece runs");

    // Act: ten pieces queue behind it (each sends on its first poll, and
    // `join_all` polls them all before the last future lets the holder go).
    // Piece 3 writes its row and then fails; piece 7 panics after writing.
    let readers = db.reader();
    let pieces = (0..10).map(|i| {
        let group = group.clone();
        let readers = readers.clone();
        async move {
            group
                .run(move |tx| {
                    Box::pin(async move {
                        insert(tx, &format!("piece-{i}")).await?;
                        if i == 3 {
                            return Err(anyhow::anyhow!("piece 3 refuses"));
                        }
                        if i == 7 {
                            panic!("piece 7 panics");
                        }
                        // What this transaction sees against what another
                        // connection sees of the committed database.
                        let inside: i64 = sqlx::query_scalar(
                            "SELECT COUNT(*) FROM test_row WHERE id LIKE 'piece-%'",
                        )
                        .fetch_one(&mut **tx)
                        .await?;
                        let committed: i64 = sqlx::query_scalar(
                            "SELECT COUNT(*) FROM test_row WHERE id LIKE 'piece-%'",
                        )
                        .fetch_one(&mut *readers.conn().await.expect("a database connection"))
                        .await?;
                        Ok((inside, committed))
                    })
                })
                .await
        }
    });
    let go = async move {
        let _ = release.send(());
        Ok((0, 0))
    };
    let mut all: Vec<BoxFuture<'_, Answer>> =
        pieces.map(|p| Box::pin(p) as BoxFuture<'_, _>).collect();
    all.push(Box::pin(go));
    let mut answers = futures::future::join_all(all).await;
    answers.pop();

    // Assert
    assert!(
        matches!(holder.await, Ok(Ok(()))),
        "the holding piece commits"
    );
    for (i, answer) in answers.iter().enumerate() {
        match (i, answer) {
            (3, Err(NotCommitted::Failed(_))) | (7, Err(NotCommitted::Lost)) => {}
            (3 | 7, other) => panic!("piece {i} should not commit: {other:?}"),
            (_, Ok((inside, committed))) => {
                // Pieces 0..=i of this lot wrote (less the failed and the
                // panicked one), and none of them is committed yet.
                let expected = i as i64 + 1 - i64::from(i > 3) - i64::from(i > 7);
                assert_eq!(*inside, expected, "piece {i} sees its lot's rows before it");
                assert_eq!(*committed, 0, "piece {i}: its lot is one transaction");
            }
            (_, Err(error)) => panic!("piece {i} did not commit: {error:?}"),
        }
    }
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM test_row").await,
        9,
        "the holder and eight pieces are stored, not the failed or the panicked one"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM test_row WHERE id IN ('piece-3', 'piece-7')"
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_placed_together_keep_their_own_outcomes() {
    on_every_backend(commands_keep_their_own_outcomes).await;
}

/// Every fourth command writes its product and is then refused.
async fn commands_keep_their_own_outcomes(backend: Backend) {
    // Arrange
    let broker = broker().await;
    let (_test_db, db) = database(backend).await;
    create_products_table(&db).await;
    let outbox = Outbox::new(db.clone(), broker.js.clone());
    let runs = Arc::new(AtomicUsize::new(0));

    // Act: 40 commands at once.
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (db, outbox, runs) = (db.clone(), outbox.clone(), runs.clone());
            tokio::spawn(async move {
                let event = product_created(&format!("stool-{i}"));
                let decide = create_product(runs, event, i % 4 == 3);
                let id = format!("cmd-{i:04}");
                (
                    i,
                    command::execute(&db, &outbox, asked("create-product", &id, &i), decide).await,
                )
            })
        })
        .collect();

    // Assert
    for task in tasks {
        let (i, reply) = task.await.expect("command task panicked");
        if i % 4 == 3 {
            assert!(
                matches!(&reply, Reply::Error { error } if error.kind == ErrorKind::Conflict),
                "[{backend}] command {i} is refused: {reply:?}"
            );
        } else {
            assert!(
                matches!(&reply, Reply::Ok { value, stream_seq: Some(_) } if *value == format!("SKU-stool-{i}")),
                "[{backend}] command {i} succeeds with its own value: {reply:?}"
            );
        }
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        40,
        "[{backend}] each decided once"
    );
    for (table, what) in [
        ("test_product", "products"),
        ("platform_outbox", "outbox rows"),
        ("platform_command_log", "recorded commands"),
    ] {
        assert_eq!(
            scalar(&db, &format!("SELECT COUNT(*) FROM {table}")).await,
            30,
            "[{backend}] {what}: the refused commands left none"
        );
    }
    assert_eq!(
        stream_len(&broker.js, PRODUCT_STREAM).await,
        30,
        "[{backend}] events published"
    );
}
