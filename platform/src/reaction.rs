//! Reactions: event handlers whose whole effect is one database
//! transaction. The platform opens the transaction; the reaction claims the
//! event in the inbox ([`crate::inbox::claim`]) and writes its effect and
//! its events to the outbox; the platform commits, wakes the outbox relay
//! and lets the consumer loop ack.
//!
//! Group commit: on SQLite, where every write transaction queues for the
//! one writer anyway, the deliveries a lane has at hand commit in one
//! transaction, so the lot costs one `BEGIN`/`COMMIT` and one fsync instead
//! of one each. If any of them fails, nothing of the lot is kept and the
//! consumer loop hands each to the reaction alone, so retries and dead
//! letters stay per message. PostgreSQL keeps one transaction per
//! delivery: its lanes write in parallel, and one transaction across
//! several orders would take their rows' locks in no fixed order
//! (deadlocks).
//!
//! What must not wait with the write lock held (an outside system's
//! answer) a reaction learns in [`Reaction::prepare`], before the
//! transaction opens. A prepare sees only what is committed, so a lot is
//! taken in runs in which no aggregate comes twice, each run committed
//! before the next is prepared: the second event of an order is prepared
//! knowing what the first one did (finance must not ask the card provider
//! for an order whose rejection came just before it).

use std::future::Future;

use tracing::Instrument;

use crate::consumer::EventHandler;
use crate::db::{Backend, Db, Tx};
use crate::delivery::{Delivery, HandlerError, Outcome};
use crate::outbox::Outbox;

/// What a reaction left for the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// No event (a repeat, or a change of state alone).
    Quiet,
    /// Events in the outbox: the relay is woken once they commit.
    Events,
}

/// Handles one delivery inside a transaction it must neither commit nor
/// roll back: first [`crate::inbox::claim`] its event (and change nothing
/// when that says it was handled), then its effect and its events.
pub trait Reaction: Send + Sync + 'static {
    /// What [`Reaction::prepare`] learnt for [`Reaction::react`]; `()` for
    /// a reaction that needs nothing from outside its database.
    type Prepared: Default + Send;

    /// Whether [`Reaction::prepare`] may wait on an outside system. Such a
    /// reaction keeps its consumer's lanes on SQLite too (see
    /// [`EventHandler::waits_outside`]).
    const PREPARES: bool = false;

    /// Runs before the transaction opens (for every delivery of a run at
    /// once, before the run's; a run holds no aggregate twice, and the
    /// deliveries before it are committed), for work that must not hold
    /// the database's write lock while it waits: asking an outside system,
    /// say. It may run again for the same delivery (a retry, or a failed
    /// lot handled one by one), so what it asks must be idempotent. By
    /// default it learns nothing.
    fn prepare<'a>(
        &'a self,
        _delivery: &'a Delivery,
    ) -> impl Future<Output = Result<Self::Prepared, HandlerError>> + Send + 'a {
        std::future::ready(Ok(Self::Prepared::default()))
    }

    fn react<'a>(
        &'a self,
        tx: &'a mut Tx,
        delivery: &'a Delivery,
        prepared: Self::Prepared,
    ) -> impl Future<Output = Result<Effect, HandlerError>> + Send + 'a;
}

/// A [`Reaction`] as the consumer loop's handler.
pub struct InTx<R> {
    db: Db,
    outbox: Outbox,
    reaction: R,
}

impl<R: Reaction> InTx<R> {
    pub fn new(db: Db, outbox: Outbox, reaction: R) -> Self {
        InTx {
            db,
            outbox,
            reaction,
        }
    }

    /// Prepares the deliveries, then reacts to each, in its span, and
    /// commits them all at once.
    async fn all(
        &self,
        deliveries: &[Delivery],
        spans: &[tracing::Span],
    ) -> Result<(), HandlerError> {
        // At once: a lot waits for its slowest answer, not for their sum.
        let prepared = futures::future::try_join_all(
            deliveries
                .iter()
                .zip(spans)
                .map(|(delivery, span)| self.reaction.prepare(delivery).instrument(span.clone())),
        )
        .await?;
        let mut tx = self.db.begin().await?;
        let mut events = false;
        for ((delivery, span), learnt) in deliveries.iter().zip(spans).zip(prepared) {
            let effect = self
                .reaction
                .react(&mut tx, delivery, learnt)
                .instrument(span.clone())
                .await?;
            events |= effect == Effect::Events;
        }
        tx.commit().await?;
        if events {
            self.outbox.notify();
        }
        Ok(())
    }
}

impl<R: Reaction> EventHandler for InTx<R> {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        // The consumer loop already entered the delivery's span.
        let span = [tracing::Span::current()];
        self.all(std::slice::from_ref(delivery), &span).await.into()
    }

    fn batches(&self) -> bool {
        self.db.backend() == Backend::Sqlite
    }

    fn waits_outside(&self) -> bool {
        R::PREPARES
    }

    async fn handle_all(&self, deliveries: &[Delivery], spans: &[tracing::Span]) -> bool {
        let mut start = 0;
        while start < deliveries.len() {
            let end = if R::PREPARES {
                start + distinct_run(&deliveries[start..])
            } else {
                deliveries.len()
            };
            if let Err(error) = self.all(&deliveries[start..end], &spans[start..end]).await {
                // Dropping the transaction rolled this run back. The runs
                // before it are committed: handled again one by one, their
                // inbox claims make them change nothing.
                tracing::debug!(%error, deliveries = end - start,
                    "batch failed; handling its deliveries one by one");
                return false;
            }
            start = end;
        }
        true
    }
}

/// How many of `deliveries` (at least one) come before an aggregate repeats.
/// A delivery without an aggregate ends no run: it cannot be decoded, and
/// nothing is prepared for it.
fn distinct_run(deliveries: &[Delivery]) -> usize {
    let mut seen = std::collections::HashSet::new();
    deliveries
        .iter()
        .position(|d| d.aggregate().is_some_and(|key| !seen.insert(key)))
        .unwrap_or(deliveries.len())
        .max(1)
}
