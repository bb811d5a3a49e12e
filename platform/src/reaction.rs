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
//! transaction opens.

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

    /// Runs before the transaction opens (for every delivery of a lot at
    /// once, before the lot's), for work that must not hold the database's
    /// write lock while it waits: asking an outside system, say. It may
    /// run again for the same delivery (a retry, or a failed lot handled
    /// one by one), so what it asks must be idempotent. By default it
    /// learns nothing.
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
        match self.all(deliveries, spans).await {
            Ok(()) => true,
            Err(error) => {
                // Dropping the transaction rolled the whole lot back.
                tracing::debug!(%error, deliveries = deliveries.len(),
                    "batch failed; handling its deliveries one by one");
                false
            }
        }
    }
}
