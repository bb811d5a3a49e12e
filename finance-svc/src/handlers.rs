//! Checkout's order events → the payment state machine → store and outbox.
//! Each event's effect happens exactly once: the inbox claim, the payment's
//! step, the invoice and the events it causes commit in one transaction,
//! which the platform opens (`platform::reaction`; on SQLite the
//! deliveries at hand commit together). The card provider is asked before
//! that transaction opens ([`Reaction::prepare`]), and only for orders
//! never seen before, so a duplicate `placed` never reaches it again.

use chrono::{SubsecRound, Utc};
use contracts::checkout::{
    decode_order_placed, OrderCancelledV1, OrderConfirmedV1, OrderPlacedV2, OrderRejectedV1,
};
use contracts::finance::{
    InvoiceIssuedV1, PaymentAuthorizedV1, PaymentCapturedV1, PaymentFailedV1, PaymentRefundedV1,
    PaymentVoidedV1,
};
use contracts::subjects::{durable, evt, FINANCE_SVC};
use contracts::{Envelope, Event, EventContext};
use platform::delivery::{Delivery, HandlerError};
use platform::outbox;
use platform::reaction::{Effect, Reaction};
use platform::{inbox, Db, Tx};
use uuid::Uuid;

use crate::domain::{self, Answer, Charge, Fact, Input};
use crate::provider::CardProvider;
use crate::store::{self, NewInvoice, Payment};

/// How often a step is decided again after another instance moved the same
/// payment first, before the event is retried later instead.
const STEP_ATTEMPTS: usize = 3;

/// finance's reaction to checkout's order events.
pub struct Finance {
    db: Db,
    provider: CardProvider,
}

/// What [`Finance`] learns of a `placed` before its transaction: the
/// event, decoded once, what the order costs, and the provider's answer
/// (None: the order's payment existed already, so nobody was asked).
pub struct Placed {
    cause: Envelope<OrderPlacedV2>,
    charge: Charge,
    answer: Option<Answer>,
}

impl Reaction for Finance {
    /// Some for a `placed` (history still holds v1: both are read as v2).
    type Prepared = Option<Placed>;
    /// The provider may be slow (`tok_slow`): a lane waits for it, not all.
    const PREPARES: bool = true;

    async fn prepare(&self, d: &Delivery) -> Result<Option<Placed>, HandlerError> {
        match d.subject.as_str() {
            evt::ORDER_PLACED_V1 | evt::ORDER_PLACED_V2 => {
                let placed = self.authorise(decode_order_placed(&d.payload)?).await?;
                Ok(Some(placed))
            }
            _ => Ok(None),
        }
    }

    async fn react(
        &self,
        tx: &mut Tx,
        d: &Delivery,
        prepared: Option<Placed>,
    ) -> Result<Effect, HandlerError> {
        let published = match d.subject.as_str() {
            evt::ORDER_PLACED_V1 | evt::ORDER_PLACED_V2 => {
                // The platform prepares every delivery before it reacts.
                let placed_order = prepared
                    .ok_or_else(|| transient("a placed order reached finance unprepared"))?;
                placed(tx, placed_order).await?
            }
            evt::ORDER_CONFIRMED_V1 => {
                let e = d.decode::<OrderConfirmedV1>()?;
                react(tx, &e, e.data.order_id, Input::Confirmed).await?
            }
            evt::ORDER_REJECTED_V1 => {
                let e = d.decode::<OrderRejectedV1>()?;
                react(tx, &e, e.data.order_id, Input::Released).await?
            }
            evt::ORDER_CANCELLED_V1 => {
                let e = d.decode::<OrderCancelledV1>()?;
                react(tx, &e, e.data.order_id, Input::Released).await?
            }
            other => {
                return Err(HandlerError::Poison(format!(
                    "finance does not consume {other}"
                )))
            }
        };
        Ok(if published > 0 {
            Effect::Events
        } else {
            Effect::Quiet
        })
    }
}

impl Finance {
    pub fn new(db: Db, provider: CardProvider) -> Self {
        Finance { db, provider }
    }

    /// Computes what a placed order costs (a bad order is refused before
    /// anyone is asked) and asks the provider, unless the order's payment
    /// exists already.
    #[tracing::instrument(skip_all, fields(order_id = %cause.data.order_id))]
    async fn authorise(&self, cause: Envelope<OrderPlacedV2>) -> Result<Placed, HandlerError> {
        let order = &cause.data;
        let charge = domain::charge(&order.net, &order.shipping_address.country)
            .map_err(|e| HandlerError::Poison(e.to_string()))?;
        let current = store::status(&self.db, order.order_id).await?;
        let answer = if domain::needs_authorisation(current) {
            let answer = self
                .provider
                .authorise(order.order_id, &order.payment.token)
                .await;
            Some(answer)
        } else {
            tracing::info!(status = ?current, "order already seen; not authorising again");
            None
        };
        Ok(Placed {
            cause,
            charge,
            answer,
        })
    }
}

/// Records the order and its payment's first step, from the provider's
/// answer (none: the order was seen before the provider was to be asked).
#[tracing::instrument(skip_all, fields(order_id = %p.cause.data.order_id))]
async fn placed(tx: &mut Tx, p: Placed) -> Result<usize, HandlerError> {
    let Placed {
        cause,
        charge,
        answer,
    } = p;
    if !claim(tx, &cause).await? {
        return Ok(0);
    }
    let Some(answer) = answer else {
        return Ok(0);
    };
    let order = &cause.data;
    store::keep_order(tx, order).await?;
    let input = Input::Authorisation(answer);
    let ctx = EventContext::caused_by(&cause);
    advance(tx, order.order_id, input, Some(&charge), &ctx).await
}

/// Confirmation, rejection, cancellation: one step, no provider call.
#[tracing::instrument(skip_all, fields(%order_id))]
async fn react<T>(
    tx: &mut Tx,
    cause: &Envelope<T>,
    order_id: Uuid,
    input: Input,
) -> Result<usize, HandlerError> {
    if !claim(tx, cause).await? {
        return Ok(0);
    }
    let ctx = EventContext::caused_by(cause);
    advance(tx, order_id, input, None, &ctx).await
}

/// Records `cause` as handled in `tx`; false when it already was.
async fn claim<T>(tx: &mut Tx, cause: &Envelope<T>) -> Result<bool, HandlerError> {
    let claimed = inbox::claim(tx, durable::FINANCE, &cause.id.to_string()).await?;
    if !claimed {
        tracing::debug!(event_id = %cause.id, "event already handled");
    }
    Ok(claimed)
}

/// Moves the order's payment one step for `input` and writes the step's
/// events to the outbox; returns how many. `charge` is what the order
/// costs, known only when the order is placed.
async fn advance(
    tx: &mut Tx,
    order_id: Uuid,
    input: Input,
    charge: Option<&Charge>,
    ctx: &EventContext,
) -> Result<usize, HandlerError> {
    for _ in 0..STEP_ATTEMPTS {
        let current = store::load(tx, order_id).await?;
        let status = current.as_ref().map(|p| p.status);
        let Some(decided) = domain::decide(status, input) else {
            tracing::info!(?status, ?input, "nothing to do for the payment");
            return Ok(0);
        };
        let mut next = current.unwrap_or_else(|| Payment::new(order_id, decided.next));
        next.status = decided.next;
        for fact in &decided.facts {
            match fact {
                Fact::Authorised => {
                    next.payment_id = Some(Uuid::now_v7());
                    next.charge =
                        Some(charge.cloned().ok_or_else(|| {
                            transient("an authorisation without the order's charge")
                        })?);
                }
                Fact::Failed(reason) => next.failure_reason = Some(reason.as_str().to_owned()),
                _ => {}
            }
        }
        if !store::save(tx, status, &next).await? {
            // Another instance moved this payment since we read it; on
            // PostgreSQL the next read sees what it committed.
            continue;
        }
        for fact in &decided.facts {
            publish(tx, &next, *fact, ctx).await?;
        }
        tracing::info!(from = ?status, to = ?next.status, facts = ?decided.facts, "payment moved");
        return Ok(decided.facts.len());
    }
    Err(transient("the payment kept changing concurrently"))
}

/// Writes the event for one fact of `payment`'s step to the outbox.
async fn publish(
    tx: &mut Tx,
    payment: &Payment,
    fact: Fact,
    ctx: &EventContext,
) -> Result<(), HandlerError> {
    let order_id = payment.order_id;
    match fact {
        Fact::Failed(reason) => {
            let reason = reason.as_str().to_owned();
            push(tx, PaymentFailedV1 { order_id, reason }, ctx).await
        }
        Fact::Authorised => {
            let (payment_id, c) = held(payment)?;
            let event = PaymentAuthorizedV1 {
                order_id,
                payment_id,
                net: c.net.clone(),
                tax: c.tax.clone(),
                total: c.total.clone(),
            };
            push(tx, event, ctx).await
        }
        Fact::Voided => {
            let (payment_id, c) = held(payment)?;
            let amount = c.total.clone();
            let event = PaymentVoidedV1 {
                order_id,
                payment_id,
                amount,
            };
            push(tx, event, ctx).await
        }
        Fact::Captured => {
            let (payment_id, c) = held(payment)?;
            let amount = c.total.clone();
            let event = PaymentCapturedV1 {
                order_id,
                payment_id,
                amount,
            };
            push(tx, event, ctx).await
        }
        Fact::Refunded => {
            let (payment_id, c) = held(payment)?;
            let amount = c.total.clone();
            let event = PaymentRefundedV1 {
                order_id,
                payment_id,
                amount,
            };
            push(tx, event, ctx).await
        }
        Fact::InvoiceIssued => {
            let (_, charge) = held(payment)?;
            let lines = store::order_lines(tx, order_id)
                .await?
                .ok_or_else(|| transient("the invoiced order's lines are missing"))?;
            let lines = domain::invoice_lines(&lines);
            // Stored with microseconds; the event carries the same instant.
            let issued_at = Utc::now().trunc_subsecs(6);
            let invoice = NewInvoice {
                order_id,
                charge,
                lines: &lines,
                issued_at,
            };
            let number = store::issue_invoice(tx, &invoice).await?;
            tracing::info!(%number, "invoice issued");
            let event = InvoiceIssuedV1 {
                order_id,
                number,
                lines,
                net: charge.net.clone(),
                tax: charge.tax.clone(),
                total: charge.total.clone(),
                issued_at,
            };
            push(tx, event, ctx).await
        }
    }
}

async fn push<T: Event>(tx: &mut Tx, event: T, ctx: &EventContext) -> Result<(), HandlerError> {
    outbox::push(tx, &Envelope::new(FINANCE_SVC, event, ctx)).await?;
    Ok(())
}

/// The payment id and amounts of a payment that holds (or held) money.
fn held(payment: &Payment) -> Result<(Uuid, &Charge), HandlerError> {
    match (payment.payment_id, payment.charge.as_ref()) {
        (Some(id), Some(charge)) => Ok((id, charge)),
        _ => Err(transient(&format!(
            "payment of order {} is {} but holds no money",
            payment.order_id,
            payment.status.as_str()
        ))),
    }
}

/// An invariant broken in our own data: retried, then dead-lettered with
/// this reason for an operator to look at.
fn transient(reason: &str) -> HandlerError {
    HandlerError::Transient(anyhow::anyhow!("{reason}"))
}
