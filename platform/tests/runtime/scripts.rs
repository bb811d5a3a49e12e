//! Statements run together (`platform::script`) and the inbox claim that
//! rides with a read (`platform::inbox::claim_and`).

use bazaar_testkit::Backend;
use platform::script::{Script, Statement};
use sqlx::Row as _;

use crate::support::{database, execute, on_every_backend, scalar};

#[tokio::test]
async fn a_script_runs_every_statement_in_order_and_says_what_each_did() {
    on_every_backend(|backend: Backend| async move {
        // Arrange
        let (_fresh, db) = database(backend).await;
        execute(
            &db,
            "CREATE TABLE t (k TEXT PRIMARY KEY, n BIGINT NOT NULL)",
        )
        .await;
        execute(&db, "INSERT INTO t (k, n) VALUES ('a', 1), ('b', 2)").await;

        // Act: a write, a multi-row write with anonymous parameters, a
        // read that sees both, and a write that matches nothing.
        let mut tx = db.begin().await.expect("begin");
        let mut script = Script::new();
        let update = script.push(Statement::new("UPDATE t SET n = n + $1").bind(10_i64));
        let insert = script.push(
            Statement::new(match backend {
                Backend::Sqlite => "INSERT INTO t (k, n) VALUES (?, ?), (?, ?)",
                Backend::Postgres => "INSERT INTO t (k, n) VALUES ($1, $2), ($3, $4)",
            })
            .bind("c")
            .bind(3_i64)
            .bind("d")
            .bind(4_i64),
        );
        let read =
            script.push(Statement::new("SELECT k, n FROM t WHERE n > $1 ORDER BY k").bind(5_i64));
        let none = script.push(Statement::new("DELETE FROM t WHERE k = $1").bind("zz"));
        let done = script.run(&mut tx).await.expect("the script");
        tx.commit().await.expect("commit");

        // Assert
        assert_eq!(done.len(), 4, "{backend:?}");
        assert_eq!(done[update].rows_affected, 2, "{backend:?}: update");
        assert_eq!(done[insert].rows_affected, 2, "{backend:?}: insert");
        assert_eq!(done[none].rows_affected, 0, "{backend:?}: delete");
        let read: Vec<(String, i64)> = done[read]
            .rows
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
            .collect();
        assert_eq!(
            read,
            vec![("a".to_owned(), 11), ("b".to_owned(), 12)],
            "{backend:?}: the read sees the earlier statements"
        );
        assert_eq!(
            scalar(&db, "SELECT CAST(SUM(n) AS BIGINT) FROM t").await,
            30,
            "{backend:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_failing_statement_stops_the_script_and_its_transaction_keeps_nothing() {
    on_every_backend(|backend: Backend| async move {
        // Arrange
        let (_fresh, db) = database(backend).await;
        execute(&db, "CREATE TABLE t (k TEXT PRIMARY KEY)").await;
        execute(&db, "INSERT INTO t (k) VALUES ('taken')").await;

        // Act: the second statement breaks the key, the third never runs.
        let mut tx = db.begin().await.expect("begin");
        let mut script = Script::new();
        script.push(Statement::new("INSERT INTO t (k) VALUES ($1)").bind("first"));
        script.push(Statement::new("INSERT INTO t (k) VALUES ($1)").bind("taken"));
        script.push(Statement::new("INSERT INTO t (k) VALUES ($1)").bind("third"));
        let result = script.run(&mut tx).await;
        drop(tx);

        // Assert
        let error = result.err().expect("the duplicate key fails the script");
        assert!(
            error
                .as_database_error()
                .is_some_and(|e| e.is_unique_violation()),
            "{backend:?}: {error}"
        );
        assert_eq!(
            scalar(&db, "SELECT COUNT(*) FROM t").await,
            1,
            "{backend:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_claim_with_a_read_gives_the_rows_once_and_nothing_on_a_repeat() {
    on_every_backend(|backend: Backend| async move {
        // Arrange
        let (_fresh, db) = database(backend).await;
        execute(
            &db,
            "CREATE TABLE orders (id TEXT PRIMARY KEY, status TEXT)",
        )
        .await;
        execute(&db, "INSERT INTO orders (id, status) VALUES ('o1', 'open')").await;
        let read = || {
            Statement::new("UPDATE orders SET status = status WHERE id = $1 RETURNING status")
                .bind("o1")
        };

        // Act: the same event twice, each in its own transaction.
        let mut first = db.begin().await.expect("begin");
        let once = platform::inbox::claim_and(&mut first, "c", "e1", read())
            .await
            .expect("first claim");
        first.commit().await.expect("commit");
        let mut second = db.begin().await.expect("begin");
        let again = platform::inbox::claim_and(&mut second, "c", "e1", read())
            .await
            .expect("second claim");
        second.commit().await.expect("commit");

        // Assert
        let rows = once.expect("the first delivery is claimed");
        assert_eq!(rows.len(), 1, "{backend:?}");
        assert_eq!(rows[0].get::<String, _>("status"), "open", "{backend:?}");
        assert!(again.is_none(), "{backend:?}: a repeat is not claimed");
        assert_eq!(
            scalar(&db, "SELECT COUNT(*) FROM platform_inbox").await,
            1,
            "{backend:?}"
        );
    })
    .await;
}
