//! The saga's inputs from other teams: warehouse's and finance's answers.

use contracts::consumers::checkout_svc;
use contracts::finance::{PaymentAuthorizedV1, PaymentFailedV1};
use contracts::subjects::{durable, evt};
use contracts::warehouse::{
    ShipmentDispatchedV1, StockReleasedV1, StockReservationFailedV1, StockReservedV1,
};
use contracts::{Envelope, Event, EventContext};
use platform::delivery::{Delivery, HandlerError};
use platform::reaction::{Effect, Reaction};
use platform::streams::ConsumerSpec;
use platform::Tx;
use uuid::Uuid;

use super::{apply, Applied};
use crate::domain::Input;

/// Reacts to warehouse and finance events on behalf of each order, inside
/// the transaction the platform opens for each (`platform::reaction`).
pub struct SagaEvents;

impl SagaEvents {
    /// The durable consumers of the saga's inputs checkout declares, one
    /// per stream, named after checkout.
    pub fn specs() -> Vec<ConsumerSpec> {
        [checkout_svc::SAGA_STOCK, checkout_svc::SAGA_PAYMENT]
            .iter()
            .map(|reads| {
                ConsumerSpec::new(reads.from.stream(), durable::CHECKOUT, reads.subjects)
                    .with_lanes(8)
            })
            .collect()
    }
}

type Decoded = (Uuid, Input, (String, EventContext));

fn input_of<T: Event>(
    d: &Delivery,
    map: impl Fn(&T) -> (Uuid, Input),
) -> Result<Decoded, HandlerError> {
    let envelope: Envelope<T> = d.decode()?;
    let (order_id, input) = map(&envelope.data);
    Ok((
        order_id,
        input,
        (envelope.id.to_string(), EventContext::caused_by(&envelope)),
    ))
}

impl Reaction for SagaEvents {
    type Prepared = ();

    async fn react(&self, tx: &mut Tx, d: &Delivery, (): ()) -> Result<Effect, HandlerError> {
        let (order_id, input, envelope_ctx) = match d.subject.as_str() {
            evt::STOCK_RESERVED_V1 => {
                input_of::<StockReservedV1>(d, |e| (e.order_id, Input::StockReserved))?
            }
            evt::STOCK_RESERVATION_FAILED_V1 => input_of::<StockReservationFailedV1>(d, |e| {
                (e.order_id, Input::StockFailed(e.reason.clone()))
            })?,
            evt::STOCK_RELEASED_V1 => {
                input_of::<StockReleasedV1>(d, |e| (e.order_id, Input::StockReleased))?
            }
            evt::SHIPMENT_DISPATCHED_V1 => {
                input_of::<ShipmentDispatchedV1>(d, |e| (e.order_id, Input::Shipped))?
            }
            evt::PAYMENT_AUTHORIZED_V1 => {
                input_of::<PaymentAuthorizedV1>(d, |e| (e.order_id, Input::PaymentAuthorized))?
            }
            evt::PAYMENT_FAILED_V1 => input_of::<PaymentFailedV1>(d, |e| {
                (e.order_id, Input::PaymentFailed(e.reason.clone()))
            })?,
            other => {
                return Err(HandlerError::Poison(format!(
                    "checkout does not consume {other}"
                )))
            }
        };
        let (event_id, ctx) = envelope_ctx;
        if !platform::inbox::claim(tx, durable::CHECKOUT, &event_id).await? {
            return Ok(Effect::Quiet);
        }
        match apply(tx, order_id, input, &ctx).await? {
            Ok(Applied::Done { event, .. }) if event.is_some() => Ok(Effect::Events),
            Ok(Applied::Done { .. }) => Ok(Effect::Quiet),
            Ok(Applied::Unknown) => {
                // An answer about an order checkout never placed: keep the
                // inbox record so it is not retried, and say so.
                tracing::warn!(%order_id, subject = %d.subject, "event for an unknown order ignored");
                Ok(Effect::Quiet)
            }
            Err(refusal) => {
                tracing::warn!(%order_id, %refusal, "saga input refused");
                Ok(Effect::Quiet)
            }
        }
    }
}
