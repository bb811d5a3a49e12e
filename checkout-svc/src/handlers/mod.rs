//! Commands and events → domain → store. Every command runs once
//! (platform::command); every event reaction once (platform::inbox).

mod basket;
mod orders;
mod saga;
mod timeout;

use std::time::Duration;

use contracts::checkout::{
    OrderCancellationRequestedV1, OrderCancelledV1, OrderConfirmedV1, OrderRejectedV1,
};
use contracts::subjects::CHECKOUT_SVC;
use contracts::{Envelope, EventContext};
use platform::outbox::{self, Outbox};
use platform::script::{Script, Statement};
use platform::{Db, Tx};
use uuid::Uuid;

use crate::domain::{self, Decision, Input, SagaError};
use crate::store;

pub use saga::SagaEvents;
pub use timeout::sweep_overdue;

#[derive(Clone)]
pub struct Handlers {
    pub db: Db,
    pub outbox: Outbox,
    /// How long an order may stay pending before it is rejected.
    pub order_timeout: Duration,
}

/// What applying a saga input did.
pub enum Applied {
    /// No such order.
    Unknown,
    /// The order moved (or not); `event` is what checkout announced.
    Done {
        event: Option<Uuid>,
        order: Box<store::OrderRow>,
    },
}

/// Feeds one input to an order's saga inside `tx` and announces the
/// decision through the outbox.
pub async fn apply(
    tx: &mut Tx,
    order_id: Uuid,
    input: Input,
    ctx: &EventContext,
) -> Result<Result<Applied, SagaError>, sqlx::Error> {
    let order = store::load_order(tx, order_id).await?;
    apply_to(tx, order, input, ctx).await
}

/// [`apply`] to an order already read (and locked) in `tx`: its new state
/// and the event it announces go in one round trip.
pub async fn apply_to(
    tx: &mut Tx,
    order: Option<store::OrderRow>,
    input: Input,
    ctx: &EventContext,
) -> Result<Result<Applied, SagaError>, sqlx::Error> {
    let Some(mut order) = order else {
        return Ok(Ok(Applied::Unknown));
    };
    let order_id = order.order_id;
    let (next, decision) = match domain::decide(&order.saga, input) {
        Ok(outcome) => outcome,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let customer_id = order.customer_id.clone();
    let event = match decision {
        Decision::Nothing | Decision::MarkShipped => None,
        Decision::Confirm => Some(row(
            OrderConfirmedV1 {
                order_id,
                customer_id,
            },
            ctx,
        )),
        Decision::Reject(reason) => Some(row(
            OrderRejectedV1 {
                order_id,
                customer_id,
                reason,
                detail: None,
            },
            ctx,
        )),
        Decision::RequestCancel => Some(row(
            OrderCancellationRequestedV1 {
                order_id,
                customer_id,
            },
            ctx,
        )),
        Decision::Cancel { was_confirmed } => Some(row(
            OrderCancelledV1 {
                order_id,
                customer_id,
                was_confirmed,
            },
            ctx,
        )),
    };
    let mut script = Script::new();
    let save =
        (next != order.saga).then(|| script.push(store::save_saga(order_id, &order.saga, &next)));
    let event = event.map(|(id, statement)| {
        script.push(statement);
        id
    });
    let done = script.run(tx).await?;
    if save.is_some_and(|i| done[i].rows_affected != 1) {
        // Another instance moved the order between our read and write;
        // the caller's error path rolls the transaction back (the event
        // with it) and retries.
        return Err(sqlx::Error::Protocol("order changed concurrently".into()));
    }
    order.saga = next;
    Ok(Ok(Applied::Done {
        event,
        order: Box::new(order),
    }))
}

/// `data`, caused by `ctx`, as an outbox row, and its event id.
fn row<T: contracts::Event>(data: T, ctx: &EventContext) -> (Uuid, Statement) {
    let envelope = Envelope::new(CHECKOUT_SVC, data, ctx);
    (envelope.id, outbox::row(&envelope))
}

/// Adds `data`, caused by `ctx`, to `writes` as an outbox row; returns its
/// event id.
fn pushed<T: contracts::Event>(writes: &mut Script, data: T, ctx: &EventContext) -> Uuid {
    let (id, statement) = row(data, ctx);
    writes.push(statement);
    id
}

/// Adds `data`, caused by `ctx`, to the outbox; returns its event id.
async fn push<T: contracts::Event>(
    tx: &mut Tx,
    data: T,
    ctx: &EventContext,
) -> Result<Uuid, sqlx::Error> {
    let (id, statement) = row(data, ctx);
    statement.execute(tx).await?;
    Ok(id)
}
