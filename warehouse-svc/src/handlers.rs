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
use platform::delivery::{Delivery, HandlerError};
use platform::outbox::{self, Outbox};
use platform::reaction::{Effect, Reaction};
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
        let asked = command::Asked::new("set-stock", &req);
        let SetStock {
            product_id,
            on_hand,
        } = req.body;
        command::execute(&self.db, &self.outbox, asked, move |tx| {
            Box::pin(async move {
                let created = store::ensure_stock(tx, product_id).await?;
                let current = store::lock_stock(tx, product_id).await?.ok_or_else(|| {
                    Refusal::Failed(anyhow::anyhow!("stock row of {product_id} missing"))
                })?;
                let adjusted =
                    domain::set_stock(product_id, current, created, on_hand).map_err(refusal)?;
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
        })
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

/// The reactions to checkout's order events, each inside the transaction
/// the platform opens for it (`platform::reaction`).
pub struct Reactions {
    dispatch_delay: Duration,
}

impl Reaction for Reactions {
    type Prepared = ();

    async fn react(&self, tx: &mut Tx, d: &Delivery, (): ()) -> Result<Effect, HandlerError> {
        match d.subject.as_str() {
            // History still holds v1: both are read as v2.
            evt::ORDER_PLACED_V1 | evt::ORDER_PLACED_V2 => {
                placed(tx, decode_order_placed(&d.payload)?).await
            }
            evt::ORDER_CONFIRMED_V1 => self.confirmed(tx, d.decode()?).await,
            evt::ORDER_REJECTED_V1 => {
                let e: Envelope<OrderRejectedV1> = d.decode()?;
                closed(tx, e.data.order_id, &e, domain::on_closed).await
            }
            evt::ORDER_CANCELLED_V1 => {
                let e: Envelope<OrderCancelledV1> = d.decode()?;
                closed(tx, e.data.order_id, &e, domain::on_closed).await
            }
            evt::ORDER_CANCELLATION_REQUESTED_V1 => {
                let e: Envelope<OrderCancellationRequestedV1> = d.decode()?;
                closed(tx, e.data.order_id, &e, domain::on_cancel_requested).await
            }
            other => Err(HandlerError::Poison(format!(
                "warehouse does not consume {other}"
            ))),
        }
    }
}

impl Reactions {
    pub fn new(dispatch_delay: Duration) -> Self {
        Reactions { dispatch_delay }
    }

    /// Schedules the shipment of a confirmed order.
    #[instrument(skip_all, fields(order_id = %e.data.order_id, event_id = %e.id))]
    async fn confirmed(
        &self,
        tx: &mut Tx,
        e: Envelope<OrderConfirmedV1>,
    ) -> Result<Effect, HandlerError> {
        let order_id = e.data.order_id;
        if !claim(tx, &e).await? {
            return Ok(Effect::Quiet);
        }
        let state = store::lock_order(tx, order_id).await?;
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
            store::schedule_shipment(tx, order_id, Uuid::now_v7(), &due_at, &ctx).await?;
        } else {
            tracing::warn!(
                state = state.as_str(),
                "confirmed order holds no stock; nothing to ship"
            );
        }
        Ok(Effect::Quiet)
    }
}

/// Holds stock for every line of the order, or for none of it.
#[instrument(skip_all, fields(order_id = %e.data.order_id, event_id = %e.id))]
async fn placed(tx: &mut Tx, e: Envelope<OrderPlacedV2>) -> Result<Effect, HandlerError> {
    let order_id = e.data.order_id;
    let demand =
        domain::demand(&e.data.lines).map_err(|err| HandlerError::Poison(err.to_string()))?;
    let ctx = EventContext::caused_by(&e);
    if !claim(tx, &e).await? {
        return Ok(Effect::Quiet);
    }
    if !domain::may_reserve(store::lock_order(tx, order_id).await?) {
        // A repeat, or an order rejected before it reached us: the inbox
        // record is all there is to keep.
        return Ok(Effect::Quiet);
    }
    let mut results = Vec::with_capacity(demand.len());
    let mut refused = false;
    for want in &demand {
        let result = if refused {
            LineResult::Skipped(store::level(tx, want.product_id).await?)
        } else if let Some(level) = store::try_reserve(tx, *want).await? {
            LineResult::Held(level)
        } else {
            refused = true;
            LineResult::Refused(store::level(tx, want.product_id).await?)
        };
        results.push((*want, result));
    }
    match domain::settle(order_id, &results) {
        Settlement::Reserved(event) => {
            store::insert_reservations(tx, order_id, &demand).await?;
            store::set_order_state(tx, order_id, OrderState::Held).await?;
            push(tx, event, &ctx).await?;
            tracing::info!("stock reserved");
        }
        Settlement::Failed(event) => {
            // Give back the lines held so far (the transaction may hold
            // other deliveries' effects, so it is not rolled back), then
            // record the failure.
            for (want, result) in &results {
                if matches!(result, LineResult::Held(_)) {
                    store::unreserve(tx, *want).await?;
                }
            }
            store::set_order_state(tx, order_id, OrderState::Failed).await?;
            let reason = event.reason.clone();
            push(tx, event, &ctx).await?;
            tracing::info!(%reason, "stock reservation failed");
        }
    }
    Ok(Effect::Events)
}

/// Releases what a rejected or cancelled order holds and cancels its
/// shipment, or marks an order holding nothing closed, as `rule` says for
/// the order's state. The order row is locked first, so a release and the
/// dispatcher's claim of the same shipment take turns: exactly one of
/// `stock.released` and `shipment.dispatched` is published.
#[instrument(skip_all, fields(%order_id, event_id = %e.id))]
async fn closed<T: Event>(
    tx: &mut Tx,
    order_id: Uuid,
    e: &Envelope<T>,
    rule: fn(OrderState) -> Close,
) -> Result<Effect, HandlerError> {
    if !claim(tx, e).await? {
        return Ok(Effect::Quiet);
    }
    match rule(store::lock_order(tx, order_id).await?) {
        Close::Release => {
            let held = domain::in_lock_order(store::held_for(tx, order_id).await?);
            let mut lines = Vec::with_capacity(held.len());
            for d in held {
                lines.push((d, store::unreserve(tx, d).await?));
            }
            store::finish_reservations(tx, order_id, store::RELEASED).await?;
            store::cancel_shipment(tx, order_id).await?;
            store::set_order_state(tx, order_id, OrderState::Released).await?;
            push(
                tx,
                domain::released(order_id, &lines),
                &EventContext::caused_by(e),
            )
            .await?;
            tracing::info!("stock released");
            Ok(Effect::Events)
        }
        Close::MarkClosed => {
            store::set_order_state(tx, order_id, OrderState::Closed).await?;
            Ok(Effect::Quiet)
        }
        Close::Nothing => Ok(Effect::Quiet),
    }
}

/// Claims the event in the inbox: false if it was handled before.
async fn claim<T>(tx: &mut Tx, e: &Envelope<T>) -> Result<bool, HandlerError> {
    Ok(platform::inbox::claim(tx, CONSUMER, &e.id.to_string()).await?)
}

/// Adds `event`, caused by `ctx`, to the outbox.
async fn push<T: Event>(tx: &mut Tx, event: T, ctx: &EventContext) -> Result<(), HandlerError> {
    outbox::push(tx, &Envelope::new(WAREHOUSE_SVC, event, ctx)).await?;
    Ok(())
}
