//! Dispatches shipments once they are due. Every instance runs a dispatcher;
//! each shipment is claimed by a conditional update inside the transaction
//! that ships it, so however many instances look at it, it leaves once.

use std::time::Duration;

use contracts::subjects::WAREHOUSE_SVC;
use contracts::Envelope;
use platform::db::now_text;
use platform::db::Backend;
use platform::outbox::{self, Outbox};
use platform::{Db, Tx};
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

/// Dispatches the shipments due now; returns how many left. On SQLite,
/// where every write transaction queues for the one writer anyway, they
/// leave in one transaction (one commit, one fsync); if that fails, each
/// goes alone, so one bad shipment holds up no other. PostgreSQL ships
/// each in its own transaction: one across several orders would take their
/// rows' locks in no fixed order.
pub async fn dispatch_due(db: &Db, outbox: &Outbox) -> Result<usize, sqlx::Error> {
    let due = store::due_shipments(db, &now_text(), BATCH).await?;
    let together = due.len() > 1 && db.backend() == Backend::Sqlite;
    let dispatched = if together {
        match dispatch_together(db, &due).await {
            Ok(n) => n,
            Err(error) => {
                tracing::debug!(%error, shipments = due.len(),
                    "dispatching together failed; dispatching one by one");
                one_by_one(db, &due).await?
            }
        }
    } else {
        one_by_one(db, &due).await?
    };
    if dispatched > 0 {
        outbox.notify();
    }
    Ok(dispatched)
}

async fn one_by_one(db: &Db, due: &[Uuid]) -> Result<usize, sqlx::Error> {
    let mut dispatched = 0;
    for &order_id in due {
        let mut tx = db.begin().await?;
        let done = dispatch(&mut tx, order_id).await?;
        tx.commit().await?;
        dispatched += usize::from(done.report());
    }
    Ok(dispatched)
}

async fn dispatch_together(db: &Db, due: &[Uuid]) -> Result<usize, sqlx::Error> {
    let mut tx = db.begin().await?;
    let mut done = Vec::with_capacity(due.len());
    for &order_id in due {
        done.push(dispatch(&mut tx, order_id).await?);
    }
    tx.commit().await?;
    Ok(done.into_iter().map(|d| usize::from(d.report())).sum())
}

/// What became of a due shipment.
enum Done {
    Dispatched {
        order_id: Uuid,
        shipment_id: Uuid,
    },
    /// Its order holds no stock any more.
    Cancelled {
        order_id: Uuid,
        state: OrderState,
    },
    /// Another instance dispatched (or cancelled) it first.
    Taken,
}

impl Done {
    /// Logs what was committed; true when the shipment left.
    fn report(self) -> bool {
        match self {
            Done::Dispatched {
                order_id,
                shipment_id,
            } => {
                tracing::info!(%order_id, %shipment_id, "shipment dispatched");
                true
            }
            Done::Cancelled { order_id, state } => {
                tracing::warn!(%order_id, state = state.as_str(), "shipment cancelled: order holds no stock");
                false
            }
            Done::Taken => false,
        }
    }
}

/// Ships one order inside `tx`: claim, stock out, event. Changes nothing
/// when another instance shipped it first.
async fn dispatch(tx: &mut Tx, order_id: Uuid) -> Result<Done, sqlx::Error> {
    // The order row first, as every reaction does, so a release of the same
    // order waits for us (or we for it) instead of deadlocking.
    let state = store::lock_order(tx, order_id).await?;
    if !domain::may_dispatch(state) {
        // Only a shipment still scheduled is cancelled; none left means
        // another instance got to it first (it shipped, or cancelled it).
        return Ok(if store::cancel_shipment(tx, order_id).await? {
            Done::Cancelled { order_id, state }
        } else {
            Done::Taken
        });
    }
    let now = chrono::Utc::now();
    let at = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let Some(shipment) = store::claim_shipment(tx, order_id, &at).await? else {
        return Ok(Done::Taken);
    };
    let held = domain::in_lock_order(store::held_for(tx, order_id).await?);
    let mut lines = Vec::with_capacity(held.len());
    for d in held {
        lines.push((d, store::take_out(tx, d).await?));
    }
    store::finish_reservations(tx, order_id, store::SHIPPED).await?;
    store::set_order_state(tx, order_id, OrderState::Shipped).await?;
    let event = domain::dispatched(order_id, shipment.shipment_id, &lines, now);
    outbox::push(tx, &Envelope::new(WAREHOUSE_SVC, event, &shipment.cause)).await?;
    Ok(Done::Dispatched {
        order_id,
        shipment_id: shipment.shipment_id,
    })
}
