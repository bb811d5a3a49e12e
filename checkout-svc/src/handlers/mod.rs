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
    let Some(mut order) = store::load_order(tx, order_id).await? else {
        return Ok(Ok(Applied::Unknown));
    };
    let (next, decision) = match domain::decide(&order.saga, input) {
        Ok(outcome) => outcome,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if next != order.saga && !store::save_saga(tx, order_id, &order.saga, &next).await? {
        // Another instance moved the order between our read and write;
        // the transaction is retried by the caller's error path.
        return Err(sqlx::Error::Protocol("order changed concurrently".into()));
    }
    let customer_id = order.customer_id.clone();
    let event = match decision {
        Decision::Nothing | Decision::MarkShipped => None,
        Decision::Confirm => Some(
            push(
                tx,
                OrderConfirmedV1 {
                    order_id,
                    customer_id,
                },
                ctx,
            )
            .await?,
        ),
        Decision::Reject(reason) => Some(
            push(
                tx,
                OrderRejectedV1 {
                    order_id,
                    customer_id,
                    reason,
                    detail: None,
                },
                ctx,
            )
            .await?,
        ),
        Decision::RequestCancel => Some(
            push(
                tx,
                OrderCancellationRequestedV1 {
                    order_id,
                    customer_id,
                },
                ctx,
            )
            .await?,
        ),
        Decision::Cancel { was_confirmed } => Some(
            push(
                tx,
                OrderCancelledV1 {
                    order_id,
                    customer_id,
                    was_confirmed,
                },
                ctx,
            )
            .await?,
        ),
    };
    order.saga = next;
    Ok(Ok(Applied::Done {
        event,
        order: Box::new(order),
    }))
}

async fn push<T: contracts::Event>(
    tx: &mut Tx,
    data: T,
    ctx: &EventContext,
) -> Result<Uuid, sqlx::Error> {
    let envelope = Envelope::new(CHECKOUT_SVC, data, ctx);
    outbox::push(tx, &envelope).await?;
    Ok(envelope.id)
}
