//! Rejects orders that stay pending past their deadline (`timeout`), so a
//! team that is down cannot leave a customer waiting forever.

use std::time::Duration;

use contracts::EventContext;
use tokio_util::sync::CancellationToken;

use super::{apply, Handlers};
use crate::domain::Input;
use crate::store;

/// Orders swept per tick, at most.
const BATCH: i64 = 100;

/// Runs until `stop`: every half second, rejects overdue pending orders.
pub async fn sweep_overdue(handlers: Handlers, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        match sweep_once(&handlers).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(orders = n, "pending orders timed out"),
            Err(error) => tracing::warn!(%error, "timeout sweep failed; will retry"),
        }
    }
}

async fn sweep_once(handlers: &Handlers) -> Result<usize, sqlx::Error> {
    let overdue = store::overdue(&handlers.db, BATCH).await?;
    let mut rejected = 0;
    for order_id in overdue {
        let ctx = EventContext::root(format!("timeout:{order_id}"), None);
        let mut tx = handlers.db.begin().await?;
        match apply(&mut tx, order_id, Input::TimedOut, &ctx).await {
            Ok(Ok(_)) => {
                tx.commit().await?;
                rejected += 1;
            }
            // Settled meanwhile, or moved by another instance: nothing to do.
            Ok(Err(_)) | Err(_) => tx.rollback().await?,
        }
    }
    if rejected > 0 {
        handlers.outbox.notify();
    }
    Ok(rejected)
}
