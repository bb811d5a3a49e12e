//! The inbox: a reaction records the id of the event it handles in the same
//! transaction as its effect, so a redelivered event is skipped.

use crate::db::{now_text, Db, Tx};

/// Opens the transaction for handling `event_id` by `consumer`, or returns
/// `None` when that event was already handled (the caller acks and skips).
pub async fn begin(db: &Db, consumer: &str, event_id: &str) -> Result<Option<Tx>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let claimed = sqlx::query(
        "INSERT INTO platform_inbox (consumer, event_id, handled_at) VALUES ($1, $2, $3)
         ON CONFLICT (consumer, event_id) DO NOTHING",
    )
    .bind(consumer)
    .bind(event_id)
    .bind(now_text())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed == 1 {
        Ok(Some(tx))
    } else {
        tx.rollback().await?;
        crate::metrics::duplicate_skipped(consumer);
        Ok(None)
    }
}
