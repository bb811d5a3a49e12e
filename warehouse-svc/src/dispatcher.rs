//! Dispatches shipments once they are due. Every instance runs a dispatcher;
//! each shipment is claimed by a conditional update inside the transaction
//! that ships it, so however many instances look at it, it leaves once.

use std::time::Duration;

use contracts::subjects::WAREHOUSE_SVC;
use contracts::Envelope;
use platform::db::now_text;
use platform::outbox::{self, Outbox};
use platform::Db;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::{self, OrderState};
use crate::store;

/// How often the dispatcher looks for due shipments.
const TICK: Duration = Duration::from_millis(200);

/// Shipments dispatched per tick, at most, so one tick stays short.
const BATCH: i64 = 64;

/// Runs until `stop`, dispatching what is due every tick.
pub async fn run(db: Db, outbox: Outbox, stop: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        match dispatch_due(&db, &outbox).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(shipments = n, "shipments dispatched"),
            Err(error) => tracing::warn!(%error, "dispatching failed; will retry"),
        }
    }
}

/// Dispatches the shipments due now; returns how many left.
pub async fn dispatch_due(db: &Db, outbox: &Outbox) -> Result<usize, sqlx::Error> {
    let due = store::due_shipments(db, &now_text(), BATCH).await?;
    let mut dispatched = 0;
    for order_id in due {
        if dispatch(db, order_id).await? {
            dispatched += 1;
        }
    }
    if dispatched > 0 {
        outbox.notify();
    }
    Ok(dispatched)
}

/// Ships one order in one transaction: claim, stock out, event.
async fn dispatch(db: &Db, order_id: Uuid) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    // The order row first, as every reaction does, so a release of the same
    // order waits for us (or we for it) instead of deadlocking.
    let state = store::lock_order(&mut tx, order_id).await?;
    if !domain::may_dispatch(state) {
        store::cancel_shipment(&mut tx, order_id).await?;
        tx.commit().await?;
        tracing::warn!(%order_id, state = state.as_str(), "shipment cancelled: order holds no stock");
        return Ok(false);
    }
    let now = chrono::Utc::now();
    let at = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let Some(shipment) = store::claim_shipment(&mut tx, order_id, &at).await? else {
        // Another instance dispatched it first.
        tx.rollback().await?;
        return Ok(false);
    };
    let held = domain::in_lock_order(store::held_for(&mut tx, order_id).await?);
    let mut lines = Vec::with_capacity(held.len());
    for d in held {
        lines.push((d, store::take_out(&mut tx, d).await?));
    }
    store::finish_reservations(&mut tx, order_id, store::SHIPPED).await?;
    store::set_order_state(&mut tx, order_id, OrderState::Shipped).await?;
    let event = domain::dispatched(order_id, shipment.shipment_id, &lines, now);
    outbox::push(
        &mut tx,
        &Envelope::new(WAREHOUSE_SVC, event, &shipment.cause),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(%order_id, shipment_id = %shipment.shipment_id, "shipment dispatched");
    Ok(true)
}
