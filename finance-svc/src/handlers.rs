//! Checkout's order events → the payment state machine → store and outbox.
//! Each event's effect happens exactly once: the inbox claim, the payment's
//! step, the invoice and the events it causes commit in one transaction,
//! which the platform opens (`platform::reaction`; on SQLite the
//! deliveries at hand commit together). The card provider is asked before
//! that transaction opens ([`Reaction::prepare`]), and only for orders
//! never seen before, so a duplicate `placed` never reaches it again.

use chrono::{Datelike, SubsecRound, Utc};
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
use platform::script::{Done, Script, Statement};
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
    let order = &cause.data;
    let Some(answer) = answer else {
        claim(tx, &cause).await?;
        return Ok(0);
    };
    // The claim, the order's lines and its payment, in one round trip.
    let keep = store::keep_order(order)?;
    let Some(done) = claim_with(tx, &cause, [keep, store::loading(order.order_id)]).await? else {
        return Ok(0);
    };
    let current = store::payment_of(done.get(1).map_or(&[][..], |d| &d.rows))?;
    let input = Input::Authorisation(answer);
    let ctx = EventContext::caused_by(&cause);
    advance(tx, order.order_id, input, Some(&charge), &ctx, current).await
}

/// Confirmation, rejection, cancellation: one step, no provider call.
#[tracing::instrument(skip_all, fields(%order_id))]
async fn react<T>(
    tx: &mut Tx,
    cause: &Envelope<T>,
    order_id: Uuid,
    input: Input,
) -> Result<usize, HandlerError> {
    let Some(done) = claim_with(tx, cause, [store::loading(order_id)]).await? else {
        return Ok(0);
    };
    let current = store::payment_of(done.first().map_or(&[][..], |d| &d.rows))?;
    let ctx = EventContext::caused_by(cause);
    advance(tx, order_id, input, None, &ctx, current).await
}

/// Records `cause` as handled in `tx`; false when it already was.
async fn claim<T>(tx: &mut Tx, cause: &Envelope<T>) -> Result<bool, HandlerError> {
    Ok(claim_with(tx, cause, []).await?.is_some())
}

/// [`claim`], then `statements` in the same round trip: what they did, or
/// `None` when `cause` was handled before.
async fn claim_with<T>(
    tx: &mut Tx,
    cause: &Envelope<T>,
    statements: impl IntoIterator<Item = Statement>,
) -> Result<Option<Vec<Done>>, HandlerError> {
    let event_id = cause.id.to_string();
    let done = inbox::claim_with(tx, durable::FINANCE, &event_id, statements).await?;
    if done.is_none() {
        tracing::debug!(event_id = %cause.id, "event already handled");
    }
    Ok(done)
}

/// Moves the order's payment one step for `input` and writes the step's
/// events to the outbox; returns how many. `charge` is what the order
/// costs, known only when the order is placed; `loaded` is the payment
/// as read in `tx` before.
async fn advance(
    tx: &mut Tx,
    order_id: Uuid,
    input: Input,
    charge: Option<&Charge>,
    ctx: &EventContext,
    loaded: Option<Payment>,
) -> Result<usize, HandlerError> {
    let mut loaded = Some(loaded);
    for _ in 0..STEP_ATTEMPTS {
        let current = match loaded.take() {
            Some(current) => current,
            None => store::load(tx, order_id).await?,
        };
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
        // The step's events (and an invoice) in one round trip.
        let mut writes = Script::new();
        for fact in &decided.facts {
            publish(tx, &next, *fact, ctx, &mut writes).await?;
        }
        writes.run(tx).await?;
        tracing::info!(from = ?status, to = ?next.status, facts = ?decided.facts, "payment moved");
        return Ok(decided.facts.len());
    }
    Err(transient("the payment kept changing concurrently"))
}

/// Adds the event for one fact of `payment`'s step (and, for an invoice,
/// the invoice) to `writes`, reading in `tx` what it needs.
async fn publish(
    tx: &mut Tx,
    payment: &Payment,
    fact: Fact,
    ctx: &EventContext,
    writes: &mut Script,
) -> Result<(), HandlerError> {
    let order_id = payment.order_id;
    match fact {
        Fact::Failed(reason) => {
            let reason = reason.as_str().to_owned();
            push(writes, PaymentFailedV1 { order_id, reason }, ctx)
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
            push(writes, event, ctx)
        }
        Fact::Voided => {
            let (payment_id, c) = held(payment)?;
            let amount = c.total.clone();
            let event = PaymentVoidedV1 {
                order_id,
                payment_id,
                amount,
            };
            push(writes, event, ctx)
        }
        Fact::Captured => {
            let (payment_id, c) = held(payment)?;
            let amount = c.total.clone();
            let event = PaymentCapturedV1 {
                order_id,
                payment_id,
                amount,
            };
            push(writes, event, ctx)
        }
        Fact::Refunded => {
            let (payment_id, c) = held(payment)?;
            let amount = c.total.clone();
            let event = PaymentRefundedV1 {
                order_id,
                payment_id,
                amount,
            };
            push(writes, event, ctx)
        }
        Fact::InvoiceIssued => {
            let (_, charge) = held(payment)?;
            // Stored with microseconds; the event carries the same instant.
            let issued_at = Utc::now().trunc_subsecs(6);
            // The order's lines and the year's next number, in one round trip.
            let mut reads = Script::new();
            let lines_at = reads.push(store::order_lines(order_id));
            let sequence_at = reads.push(store::next_invoice_sequence(issued_at.year()));
            let done = reads.run(tx).await?;
            let lines = store::lines_of(&done[lines_at].rows)?
                .ok_or_else(|| transient("the invoiced order's lines are missing"))?;
            let sequence = store::sequence_of(&done[sequence_at].rows)?;
            let lines = domain::invoice_lines(&lines);
            let invoice = NewInvoice {
                order_id,
                charge,
                lines: &lines,
                issued_at,
            };
            let number = domain::invoice_number(issued_at.year(), sequence);
            writes.push(store::insert_invoice(&invoice, &number, sequence)?);
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
            push(writes, event, ctx)
        }
    }
}

fn push<T: Event>(writes: &mut Script, event: T, ctx: &EventContext) -> Result<(), HandlerError> {
    writes.push(outbox::row(&Envelope::new(FINANCE_SVC, event, ctx)));
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
