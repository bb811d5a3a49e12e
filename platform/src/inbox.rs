//! The inbox: a reaction records the id of the event it handles in the same
//! transaction as its effect, so a redelivered event is skipped.

use crate::db::{now_text, Db, Tx};

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
    let claimed = sqlx::query(
        "INSERT INTO platform_inbox (consumer, event_id, handled_at) VALUES ($1, $2, $3)
         ON CONFLICT (consumer, event_id) DO NOTHING",
    )
    .bind(consumer)
    .bind(event_id)
    .bind(now_text())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if claimed != 1 {
        crate::metrics::duplicate_skipped(consumer);
    }
    Ok(claimed == 1)
}
