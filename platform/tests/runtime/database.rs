//! The database layer itself.

use bazaar_testkit::{Backend, TestDb};
use platform::{Db, Durability, Secret};

use crate::support::{database, execute, on_every_backend};

#[tokio::test]
async fn instances_starting_together_on_a_fresh_database_all_start() {
    on_every_backend(|backend: Backend| async move {
        // Arrange: a database no instance has touched yet.
        let fresh = TestDb::new(backend).await;
        let url = Secret::new(fresh.url());

        // Act: six instances connect (and create the platform tables) at once.
        let attempts: Vec<_> = (0..6)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { Db::connect(&url).await.map(|_| ()) })
            })
            .collect();

        // Assert: every one of them started.
        for attempt in attempts {
            if let Err(error) = attempt.await.expect("connect task panicked") {
                panic!("{backend:?}: an instance failed to start: {error:#}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_relaxed_statement_lands_and_later_commits_still_wait_for_the_disk() {
    on_every_backend(|backend: Backend| async move {
        // Arrange
        let (_fresh, db) = database(backend).await;
        execute(&db, "CREATE TABLE relaxed (n BIGINT NOT NULL)").await;

        // Act
        db.execute_relaxed(sqlx::query("INSERT INTO relaxed (n) VALUES ($1)").bind(7_i64))
            .await
            .expect("a relaxed insert");

        // Assert: the row is there, and the connection syncs again (FULL = 2
        // on SQLite; PostgreSQL's setting was local to its transaction).
        let n: i64 = sqlx::query_scalar("SELECT n FROM relaxed")
            .fetch_one(&mut *db.conn().await.expect("a database connection"))
            .await
            .expect("reading the row");
        assert_eq!(n, 7, "{backend:?}");
        let sync = sync_setting(&db, backend).await;
        let expected = match backend {
            Backend::Sqlite => "2",
            Backend::Postgres => "on",
        };
        assert_eq!(
            sync, expected,
            "{backend:?}: synchronous after a relaxed statement"
        );
    })
    .await;
}

#[tokio::test]
async fn a_relaxed_statement_that_fails_changes_nothing_and_leaves_commits_durable() {
    on_every_backend(|backend: Backend| async move {
        // Arrange
        let (_fresh, db) = database(backend).await;
        execute(&db, "CREATE TABLE relaxed (n BIGINT NOT NULL UNIQUE)").await;
        execute(&db, "INSERT INTO relaxed (n) VALUES (1)").await;

        // Act: the second row breaks the unique constraint.
        let result = db
            .execute_relaxed(
                sqlx::query("INSERT INTO relaxed (n) VALUES ($1), ($2)")
                    .bind(2_i64)
                    .bind(1_i64),
            )
            .await;

        // Assert: an error, no row added, and the connection syncs again.
        assert!(result.is_err(), "{backend:?}: a duplicate must fail");
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM relaxed")
            .fetch_one(&mut *db.conn().await.expect("a database connection"))
            .await
            .expect("counting");
        assert_eq!(count, 1, "{backend:?}");
        let expected = match backend {
            Backend::Sqlite => "2",
            Backend::Postgres => "on",
        };
        assert_eq!(
            sync_setting(&db, backend).await,
            expected,
            "{backend:?}: synchronous after a failed relaxed statement"
        );
    })
    .await;
}

#[tokio::test]
async fn a_transaction_dropped_or_cancelled_before_its_commit_leaves_nothing_and_frees_the_writer()
{
    on_every_backend(|backend: Backend| async move {
        // Arrange: a database and a second instance on it.
        let (fresh, db) = database(backend).await;
        let other = Db::connect(&Secret::new(fresh.url()))
            .await
            .expect("a second instance");
        execute(&db, "CREATE TABLE dropped (n BIGINT NOT NULL)").await;
        let insert = |n: i64| sqlx::query("INSERT INTO dropped (n) VALUES ($1)").bind(n);
        // The other instance writes at once: on SQLite it would wait for
        // the write lock (busy_timeout, 10 s) if a dropped transaction
        // still held it.
        let other_writes = |n: i64| {
            let other = other.clone();
            async move {
                let wrote = tokio::time::timeout(std::time::Duration::from_secs(3), async {
                    let mut tx = other.begin().await?;
                    insert(n).execute(&mut *tx).await?;
                    tx.commit().await
                })
                .await;
                assert!(
                    matches!(wrote, Ok(Ok(()))),
                    "{backend:?}: the other instance could not write {n} at once: {wrote:?}"
                );
            }
        };

        // Act: one transaction is dropped after its insert (an error path),
        // one is cancelled while it waits (a timed-out request); after each
        // the other instance writes; then one commits here.
        {
            let mut tx = db.begin().await.expect("a transaction");
            insert(1).execute(&mut *tx).await.expect("inserting 1");
        }
        other_writes(10).await;
        let cancelled = tokio::time::timeout(std::time::Duration::from_millis(200), async {
            let mut tx = db.begin().await.expect("a transaction");
            insert(2).execute(&mut *tx).await.expect("inserting 2");
            std::future::pending::<()>().await;
        })
        .await;
        assert!(
            cancelled.is_err(),
            "{backend:?}: the second transaction never ends"
        );
        other_writes(20).await;
        let mut tx = db.begin().await.expect("a transaction after those");
        insert(3).execute(&mut *tx).await.expect("inserting 3");
        tx.commit().await.expect("committing 3");

        // Assert: only the committed rows, for the writer and for a reader.
        for (who, db) in [("writer", db.clone()), ("reader", db.reader())] {
            let rows: Vec<i64> = sqlx::query_scalar("SELECT n FROM dropped ORDER BY n")
                .fetch_all(&mut *db.conn().await.expect("a database connection"))
                .await
                .expect("reading the rows");
            assert_eq!(rows, [3, 10, 20], "{backend:?}: rows the {who} sees");
        }
    })
    .await;
}

/// What a commit on `db`'s writer waits for: SQLite's `synchronous` (2 FULL,
/// 1 NORMAL), PostgreSQL's `synchronous_commit`.
async fn sync_setting(db: &Db, backend: Backend) -> String {
    match backend {
        Backend::Sqlite => sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
            .fetch_one(&mut *db.conn().await.expect("a database connection"))
            .await
            .expect("reading the pragma")
            .to_string(),
        Backend::Postgres => sqlx::query_scalar("SELECT current_setting('synchronous_commit')")
            .fetch_one(&mut *db.conn().await.expect("a database connection"))
            .await
            .expect("reading the setting"),
    }
}

#[tokio::test]
async fn a_rebuildable_database_commits_without_waiting_for_the_disk_and_stays_so() {
    on_every_backend(|backend: Backend| async move {
        // Arrange
        let fresh = TestDb::new(backend).await;
        let url = Secret::new(fresh.url());
        let db = Db::connect_with(&url, Durability::Rebuildable)
            .await
            .expect("connecting");
        let relaxed = match backend {
            Backend::Sqlite => "1",
            Backend::Postgres => "off",
        };
        assert_eq!(sync_setting(&db, backend).await, relaxed, "{backend:?}");

        // Act: a relaxed statement must not turn the sync back on.
        db.execute_relaxed(sqlx::query("SELECT 1"))
            .await
            .expect("a relaxed statement");

        // Assert
        assert_eq!(
            sync_setting(&db, backend).await,
            relaxed,
            "{backend:?}: after a relaxed statement"
        );
        let durable = Db::connect(&url).await.expect("connecting durably");
        let full = match backend {
            Backend::Sqlite => "2",
            Backend::Postgres => "on",
        };
        assert_eq!(sync_setting(&durable, backend).await, full, "{backend:?}");
    })
    .await;
}
