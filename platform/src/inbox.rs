//! The inbox: a reaction records the id of the event it handles in the same
//! transaction as its effect, so a redelivered event is skipped.

use sqlx::any::AnyRow;

use crate::db::{now_text, Db, Tx};
use crate::script::{Done, Script, Statement};

/// Opens the transaction for handling `event_id` by `consumer`, or returns
/// `None` when that event was already handled (the caller acks and skips).
pub async fn begin(db: &Db, consumer: &str, event_id: &str) -> Result<Option<Tx>, sqlx::Error> {
    let mut tx = db.begin().await?;
    if claim(&mut tx, consumer, event_id).await? {
        Ok(Some(tx))
    } else {
        tx.rollback().await?;
        Ok(None)
    }
}

/// Records `event_id` as handled by `consumer` inside `tx`; false when it
/// already was (the caller then changes nothing).
pub async fn claim(tx: &mut Tx, consumer: &str, event_id: &str) -> Result<bool, sqlx::Error> {
    let claimed = claim_statement(consumer, event_id).execute(tx).await?;
    Ok(counted(consumer, claimed))
}

/// [`claim`], and `read` in the same round trip (on SQLite): the rows of
/// `read` when the event is claimed, `None` when it was handled before.
/// `read` runs either way, so it must change nothing a repeat would mind
/// (a row lock, a no-op update).
pub async fn claim_and(
    tx: &mut Tx,
    consumer: &str,
    event_id: &str,
    read: Statement,
) -> Result<Option<Vec<AnyRow>>, sqlx::Error> {
    let done = claim_with(tx, consumer, event_id, [read]).await?;
    Ok(done
        .and_then(|done| done.into_iter().next())
        .map(|d| d.rows))
}

/// [`claim`], then `statements`, in one round trip (on SQLite): what each
/// statement did when the event is claimed, `None` when it was handled
/// before. They run either way, so they must change nothing a repeat
/// would mind (row locks, reads, writes that do nothing the second time).
pub async fn claim_with(
    tx: &mut Tx,
    consumer: &str,
    event_id: &str,
    statements: impl IntoIterator<Item = Statement>,
) -> Result<Option<Vec<Done>>, sqlx::Error> {
    let mut script = Script::new();
    script.push(claim_statement(consumer, event_id));
    for statement in statements {
        script.push(statement);
    }
    let mut done = script.run(tx).await?.into_iter();
    let claimed = done.next().map_or(0, |d| d.rows_affected);
    if !counted(consumer, claimed) {
        return Ok(None);
    }
    Ok(Some(done.collect()))
}

fn claim_statement(consumer: &str, event_id: &str) -> Statement {
    Statement::new(
        "INSERT INTO platform_inbox (consumer, event_id, handled_at) VALUES ($1, $2, $3)
         ON CONFLICT (consumer, event_id) DO NOTHING",
    )
    .bind(consumer)
    .bind(event_id)
    .bind(now_text())
}

/// Whether the claim took (one row inserted); counts the repeats.
fn counted(consumer: &str, claimed: u64) -> bool {
    if claimed != 1 {
        crate::metrics::duplicate_skipped(consumer);
    }
    claimed == 1
}
