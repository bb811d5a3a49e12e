//! What a view keeps about its stream in its own database, beside its
//! tables: the checkpoint (the last stream sequence applied), the life of
//! the stream it follows, and whether that stream was created anew under
//! it (see [`crate::started_over`]).

use sqlx::Row;

use crate::db::{Db, Tx};

/// The stored checkpoint of a projection (0 when it never ran).
pub async fn checkpoint(db: &Db, name: &str) -> Result<u64, sqlx::Error> {
    let row = sqlx::query("SELECT last_seq FROM platform_checkpoint WHERE projection = $1")
        .bind(name)
        .fetch_optional(&mut *db.conn().await?)
        .await?;
    Ok(match row {
        Some(row) => u64::try_from(row.try_get::<i64, _>("last_seq")?).unwrap_or(0),
        None => 0,
    })
}

/// Moves the checkpoint to `seq` inside `tx`; false when the view already
/// has it (another instance applied it), in which case the caller skips.
pub(super) async fn advance(tx: &mut Tx, name: &str, seq: u64) -> Result<bool, sqlx::Error> {
    let seq = i64::try_from(seq).unwrap_or(i64::MAX);
    // One statement: inserts the checkpoint, or moves it only forwards (an
    // upsert whose update does not match changes no row).
    let moved = sqlx::query(
        "INSERT INTO platform_checkpoint (projection, last_seq) VALUES ($1, $2)
         ON CONFLICT (projection) DO UPDATE SET last_seq = excluded.last_seq
         WHERE platform_checkpoint.last_seq < excluded.last_seq",
    )
    .bind(name)
    .bind(seq)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(moved == 1)
}

/// The checkpoint (0 when it never ran), read inside a transaction with
/// its row locked until commit: see [`claim`].
pub(crate) async fn checkpoint_in(tx: &mut Tx, name: &str) -> Result<u64, sqlx::Error> {
    claim(tx, name).await
}

/// Sets the checkpoint inside a transaction, backwards or forwards. On
/// PostgreSQL this locks the checkpoint's row until commit, so another
/// instance's follower (which moves it first) waits instead of interleaving.
pub(crate) async fn set_in(tx: &mut Tx, name: &str, seq: u64) -> Result<(), sqlx::Error> {
    let seq = i64::try_from(seq).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO platform_checkpoint (projection, last_seq) VALUES ($1, $2)
         ON CONFLICT (projection) DO UPDATE SET last_seq = $2",
    )
    .bind(name)
    .bind(seq)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// When the projection's stream was last found created anew (RFC 3339),
/// unless a replay from the start has rebuilt the view since: until then
/// the view holds rows made from events the stream no longer has.
pub async fn stream_restarted_at(db: &Db, name: &str) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT noticed_at FROM platform_stream_restart WHERE projection = $1")
        .bind(name)
        .fetch_optional(&mut *db.conn().await?)
        .await?;
    row.map(|r| r.try_get::<String, _>(0)).transpose()
}

/// The life of the stream the view last followed ([`Incarnation::key`]).
pub(crate) async fn stored_incarnation(db: &Db, name: &str) -> Result<Option<String>, sqlx::Error> {
    let row =
        sqlx::query("SELECT stream_created FROM platform_stream_incarnation WHERE projection = $1")
            .bind(name)
            .fetch_optional(&mut *db.conn().await?)
            .await?;
    row.map(|r| r.try_get::<String, _>(0)).transpose()
}

/// Stores the life of the stream the view follows, inside `tx`.
pub(crate) async fn store_incarnation_in(
    tx: &mut Tx,
    name: &str,
    incarnation: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO platform_stream_incarnation (projection, stream_created) VALUES ($1, $2)
         ON CONFLICT (projection) DO UPDATE SET stream_created = excluded.stream_created",
    )
    .bind(name)
    .bind(incarnation)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Forgets that the stream was created anew, inside a replay from the
/// start that was told to discard the lost history.
pub(crate) async fn forget_restart_in(tx: &mut Tx, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM platform_stream_restart WHERE projection = $1")
        .bind(name)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The first sequence the projection's stream held when the view was last
/// rebuilt from the start; 1 if it never was (built as the stream grew).
pub(crate) async fn rebuilt_floor(db: &Db, name: &str) -> Result<u64, sqlx::Error> {
    let row = sqlx::query("SELECT first_seq FROM platform_stream_floor WHERE projection = $1")
        .bind(name)
        .fetch_optional(&mut *db.conn().await?)
        .await?;
    let first: i64 = match row {
        Some(r) => r.try_get(0)?,
        None => 1,
    };
    Ok(u64::try_from(first).unwrap_or(1).max(1))
}

/// Stores [`rebuilt_floor`], inside a replay from the start.
pub(crate) async fn store_floor_in(
    tx: &mut Tx,
    name: &str,
    first_seq: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO platform_stream_floor (projection, first_seq) VALUES ($1, $2)
         ON CONFLICT (projection) DO UPDATE SET first_seq = excluded.first_seq",
    )
    .bind(name)
    .bind(i64::try_from(first_seq).unwrap_or(i64::MAX))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Sets the checkpoint (a replay from `seq + 1`), outside any view change.
pub async fn reset(db: &Db, name: &str, seq: u64) -> Result<(), sqlx::Error> {
    let seq = i64::try_from(seq).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO platform_checkpoint (projection, last_seq) VALUES ($1, $2)
         ON CONFLICT (projection) DO UPDATE SET last_seq = $2",
    )
    .bind(name)
    .bind(seq)
    .execute(&mut *db.conn().await?)
    .await?;
    Ok(())
}

/// The checkpoint, read inside `tx` with its row locked until commit (on
/// PostgreSQL; SQLite's `BEGIN IMMEDIATE` already holds the database), so
/// another instance's follower waits instead of applying the same events.
pub(super) async fn claim(tx: &mut Tx, name: &str) -> Result<u64, sqlx::Error> {
    // An upsert locks the row whether it inserted it or found it.
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO platform_checkpoint (projection, last_seq) VALUES ($1, 0)
         ON CONFLICT (projection) DO UPDATE SET last_seq = platform_checkpoint.last_seq
         RETURNING last_seq",
    )
    .bind(name)
    .fetch_one(&mut **tx)
    .await?;
    Ok(u64::try_from(seq).unwrap_or(0))
}

/// Stores that the view's stream started over, in one transaction: the
/// checkpoint back to 0, the new life of the stream, and the note that the
/// view holds rows this stream cannot rebuild (which a replay from the
/// start must not empty unasked).
pub(super) async fn start_over(db: &Db, name: &str, incarnation: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    set_in(&mut tx, name, 0).await?;
    store_incarnation_in(&mut tx, name, incarnation).await?;
    sqlx::query(
        "INSERT INTO platform_stream_restart (projection, noticed_at) VALUES ($1, $2)
         ON CONFLICT (projection) DO UPDATE SET noticed_at = excluded.noticed_at",
    )
    .bind(name)
    .bind(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
