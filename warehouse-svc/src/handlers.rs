//! Commands and checkout events → domain → store. The set-stock command runs
//! exactly once per command id (`platform::command`); each reaction runs
//! exactly once per event id (the inbox, in the same transaction as its
//! effect and its events). Nothing here acks: the outcome goes back to the
//! platform's consumer loop.

use std::time::Duration;

use contracts::checkout::{
    decode_order_placed, OrderCancellationRequestedV1, OrderCancelledV1, OrderConfirmedV1,
    OrderPlacedV2, OrderRejectedV1,
};
use contracts::commands::{
    CommandError, ErrorKind, FieldError, Reply, Request, SetStock, StockLevel,
};
use contracts::subjects::{durable, evt, WAREHOUSE_SVC};
use contracts::{Envelope, Event, EventContext};
use platform::command::{self, Decided, Refusal};
use platform::consumer::EventHandler;
use platform::delivery::{Delivery, HandlerError, Outcome};
use platform::outbox::{self, Outbox};
use platform::{Db, Tx};
use tracing::instrument;
use uuid::Uuid;

use crate::domain::{self, Close, LineResult, OrderState, SetStockError, Settlement};
use crate::store;

/// The inbox and dead letters know the reactions by the durable's name.
const CONSUMER: &str = durable::WAREHOUSE;

/// The set-stock command.
#[derive(Clone)]
pub struct Commands {
    db: Db,
    outbox: Outbox,
}

impl Commands {
    pub fn new(db: Db, outbox: Outbox) -> Self {
        Commands { db, outbox }
    }

    #[instrument(skip_all, fields(product_id = %req.body.product_id, on_hand = req.body.on_hand))]
    pub async fn set_stock(&self, req: Request<SetStock>) -> Reply<StockLevel> {
        // Role and range need no stored state: refuse before opening a transaction.
        if let Err(error) = domain::check_set_stock(req.actor.role, &req.body) {
            return Reply::Error {
                error: refusal(error),
            };
        }
        let ctx = EventContext::root(req.command_id.clone(), req.traceparent.clone());
        let SetStock {
            product_id,
            on_hand,
        } = req.body;
        command::execute(
            &self.db,
            &self.outbox,
            "set-stock",
            &req.command_id,
            move |tx| {
                Box::pin(async move {
                    let created = store::ensure_stock(tx, product_id).await?;
                    let current = store::lock_stock(tx, product_id).await?.ok_or_else(|| {
                        Refusal::Failed(anyhow::anyhow!("stock row of {product_id} missing"))
                    })?;
                    let adjusted = domain::set_stock(product_id, current, created, on_hand)
                        .map_err(refusal)?;
                    let mut events = Vec::new();
                    if let Some(event) = adjusted.event {
                        store::set_on_hand(tx, product_id, on_hand).await?;
                        let envelope = Envelope::new(WAREHOUSE_SVC, event, &ctx);
                        outbox::push(tx, &envelope).await?;
                        events.push(envelope.id);
                    }
                    Ok(Decided {
                        value: StockLevel {
                            product_id,
                            on_hand: adjusted.level.on_hand,
                            available: adjusted.level.available(),
                        },
                        events,
                    })
                })
            },
        )
        .await
    }
}

fn refusal(error: SetStockError) -> CommandError {
    match error {
        SetStockError::Forbidden => CommandError::new(ErrorKind::Forbidden, error.to_string()),
        SetStockError::OutOfRange => CommandError::invalid(vec![FieldError {
            field: "on_hand".to_owned(),
            message: error.to_string(),
        }]),
        SetStockError::BelowReserved { .. } => {
            CommandError::new(ErrorKind::Conflict, error.to_string())
        }
    }
}

/// The reactions to checkout's order events.
pub struct Reactions {
    db: Db,
    outbox: Outbox,
    dispatch_delay: Duration,
}

impl EventHandler for Reactions {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        self.react(delivery).await.into()
    }
}

impl Reactions {
    pub fn new(db: Db, outbox: Outbox, dispatch_delay: Duration) -> Self {
        Reactions {
            db,
            outbox,
            dispatch_delay,
        }
    }

    async fn react(&self, d: &Delivery) -> Result<(), HandlerError> {
        match d.subject.as_str() {
            // History still holds v1: both are read as v2.
            evt::ORDER_PLACED_V1 | evt::ORDER_PLACED_V2 => {
                self.placed(decode_order_placed(&d.payload)?).await
            }
            evt::ORDER_CONFIRMED_V1 => self.confirmed(d.decode()?).await,
            evt::ORDER_REJECTED_V1 => {
                let e: Envelope<OrderRejectedV1> = d.decode()?;
                self.closed(e.data.order_id, &e, domain::on_closed).await
            }
            evt::ORDER_CANCELLED_V1 => {
                let e: Envelope<OrderCancelledV1> = d.decode()?;
                self.closed(e.data.order_id, &e, domain::on_closed).await
            }
            evt::ORDER_CANCELLATION_REQUESTED_V1 => {
                let e: Envelope<OrderCancellationRequestedV1> = d.decode()?;
                self.closed(e.data.order_id, &e, domain::on_cancel_requested)
                    .await
            }
            other => Err(HandlerError::Poison(format!(
                "warehouse does not consume {other}"
            ))),
        }
    }

    /// Holds stock for every line of the order, or for none of it.
    #[instrument(skip_all, fields(order_id = %e.data.order_id, event_id = %e.id))]
    async fn placed(&self, e: Envelope<OrderPlacedV2>) -> Result<(), HandlerError> {
        let order_id = e.data.order_id;
        let demand =
            domain::demand(&e.data.lines).map_err(|err| HandlerError::Poison(err.to_string()))?;
        let ctx = EventContext::caused_by(&e);
        let Some(mut tx) = self.begin(&e).await? else {
            return Ok(());
        };
        if !domain::may_reserve(store::lock_order(&mut tx, order_id).await?) {
            // A repeat, or an order rejected before it reached us: the
            // inbox record is all there is to keep.
            tx.commit().await?;
            return Ok(());
        }
        let mut results = Vec::with_capacity(demand.len());
        let mut refused = false;
        for want in &demand {
            let result = if refused {
                LineResult::Skipped(store::level(&mut tx, want.product_id).await?)
            } else if let Some(level) = store::try_reserve(&mut tx, *want).await? {
                LineResult::Held(level)
            } else {
                refused = true;
                LineResult::Refused(store::level(&mut tx, want.product_id).await?)
            };
            results.push((*want, result));
        }
        match domain::settle(order_id, &results) {
            Settlement::Reserved(event) => {
                store::insert_reservations(&mut tx, order_id, &demand).await?;
                store::set_order_state(&mut tx, order_id, OrderState::Held).await?;
                self.commit_with(tx, event, &ctx).await?;
                tracing::info!("stock reserved");
            }
            Settlement::Failed(event) => {
                // Give back the lines held so far (and their row locks) at
                // once, then record the failure on its own.
                tx.rollback().await?;
                let Some(mut tx) = self.begin(&e).await? else {
                    return Ok(());
                };
                if !domain::may_reserve(store::lock_order(&mut tx, order_id).await?) {
                    // A twin of this event decided meanwhile; its answer stands.
                    tx.commit().await?;
                    return Ok(());
                }
                store::set_order_state(&mut tx, order_id, OrderState::Failed).await?;
                let reason = event.reason.clone();
                self.commit_with(tx, event, &ctx).await?;
                tracing::info!(%reason, "stock reservation failed");
            }
        }
        Ok(())
    }

    /// Schedules the shipment of a confirmed order.
    #[instrument(skip_all, fields(order_id = %e.data.order_id, event_id = %e.id))]
    async fn confirmed(&self, e: Envelope<OrderConfirmedV1>) -> Result<(), HandlerError> {
        let order_id = e.data.order_id;
        let Some(mut tx) = self.begin(&e).await? else {
            return Ok(());
        };
        let state = store::lock_order(&mut tx, order_id).await?;
        if domain::may_schedule(state) {
            // The delay is bounded by the command line, so this cannot fail
            // in practice; date arithmetic still must not panic.
            let due_at = chrono::Duration::from_std(self.dispatch_delay)
                .ok()
                .and_then(|delay| chrono::Utc::now().checked_add_signed(delay))
                .ok_or_else(|| {
                    HandlerError::Transient(anyhow::anyhow!("dispatch delay out of range"))
                })?
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let ctx = EventContext::caused_by(&e);
            store::schedule_shipment(&mut tx, order_id, Uuid::now_v7(), &due_at, &ctx).await?;
        } else {
            tracing::warn!(
                state = state.as_str(),
                "confirmed order holds no stock; nothing to ship"
            );
        }
        tx.commit().await?;
        Ok(())
    }

    /// Releases what a rejected or cancelled order holds and cancels its
    /// shipment, or marks an order holding nothing closed, as `rule` says
    /// for the order's state. The order row is locked first, so a release
    /// and the dispatcher's claim of the same shipment take turns: exactly
    /// one of `stock.released` and `shipment.dispatched` is published.
    #[instrument(skip_all, fields(%order_id, event_id = %e.id))]
    async fn closed<T: Event>(
        &self,
        order_id: Uuid,
        e: &Envelope<T>,
        rule: fn(OrderState) -> Close,
    ) -> Result<(), HandlerError> {
        let Some(mut tx) = self.begin(e).await? else {
            return Ok(());
        };
        match rule(store::lock_order(&mut tx, order_id).await?) {
            Close::Release => {
                let held = domain::in_lock_order(store::held_for(&mut tx, order_id).await?);
                let mut lines = Vec::with_capacity(held.len());
                for d in held {
                    lines.push((d, store::unreserve(&mut tx, d).await?));
                }
                store::finish_reservations(&mut tx, order_id, store::RELEASED).await?;
                store::cancel_shipment(&mut tx, order_id).await?;
                store::set_order_state(&mut tx, order_id, OrderState::Released).await?;
                let event = domain::released(order_id, &lines);
                self.commit_with(tx, event, &EventContext::caused_by(e))
                    .await?;
                tracing::info!("stock released");
            }
            Close::MarkClosed => {
                store::set_order_state(&mut tx, order_id, OrderState::Closed).await?;
                tx.commit().await?;
            }
            Close::Nothing => tx.commit().await?,
        }
        Ok(())
    }

    /// Claims the event in the inbox: `None` if it was handled before.
    async fn begin<T>(&self, e: &Envelope<T>) -> Result<Option<Tx>, HandlerError> {
        Ok(platform::inbox::begin(&self.db, CONSUMER, &e.id.to_string()).await?)
    }

    /// Adds `event` to the outbox, commits, and wakes the relay.
    async fn commit_with<T: Event>(
        &self,
        mut tx: Tx,
        event: T,
        ctx: &EventContext,
    ) -> Result<(), HandlerError> {
        outbox::push(&mut tx, &Envelope::new(WAREHOUSE_SVC, event, ctx)).await?;
        tx.commit().await?;
        self.outbox.notify();
        Ok(())
    }
}
