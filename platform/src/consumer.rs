//! The consumer loop: pulls in batches from a durable consumer, hands each
//! message to the handler, and acks in one place from the handler's outcome:
//! `Done` → ack; `Retry` → nak with back-off, or dead-letter once
//! `max_deliver` is reached; `Poison` → dead-letter, then terminate.
//! Deliveries a lane has at hand go to the handler together first
//! ([`EventHandler::handle_all`], group commit); a handler that declines
//! gets them one by one.
//!
//! The broker never gives up on a message (no broker-side `max_deliver`),
//! so the loop bounds what it does with redeliveries itself: a copy of a
//! delivery still in a lane's hands is not queued again behind it, and a
//! delivery that came back [`UNFINISHED_FACTOR`] × `max_deliver` times
//! without ever getting an outcome (its handler crashed the process, hung,
//! or was stopped each time) is dead-lettered without handling it again.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::pull::MessagesErrorKind;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{self, AckKind, Context};
use futures::future::BoxFuture;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::delivery::{Delivery, Outcome};
use crate::streams::ConsumerSpec;
use crate::telemetry::TraceParent;

/// Handles events of one durable consumer.
pub trait EventHandler: Send + Sync + 'static {
    fn handle(&self, delivery: &Delivery) -> impl Future<Output = Outcome> + Send;

    /// Whether [`EventHandler::handle_all`] may take several deliveries.
    fn batches(&self) -> bool {
        false
    }

    /// Whether handling waits on something outside the process (an outside
    /// system's answer). A handler that batches then keeps its spec's lanes,
    /// so that one slow answer holds up only its own lane.
    fn waits_outside(&self) -> bool {
        false
    }

    /// Handles `deliveries` (in stream order, each with its `handle` span)
    /// all or nothing: true when every one's effect is durable, so the loop
    /// acks them all; false when nothing was changed and the loop must hand
    /// them to [`EventHandler::handle`] one by one. Called only when
    /// [`EventHandler::batches`] is true; the default declines.
    fn handle_all(
        &self,
        deliveries: &[Delivery],
        spans: &[tracing::Span],
    ) -> impl Future<Output = bool> + Send {
        let _ = (deliveries, spans);
        async { false }
    }
}

impl<H: EventHandler> EventHandler for Arc<H> {
    fn handle(&self, delivery: &Delivery) -> impl Future<Output = Outcome> + Send {
        H::handle(self, delivery)
    }

    fn batches(&self) -> bool {
        H::batches(self)
    }

    fn waits_outside(&self) -> bool {
        H::waits_outside(self)
    }

    fn handle_all(
        &self,
        deliveries: &[Delivery],
        spans: &[tracing::Span],
    ) -> impl Future<Output = bool> + Send {
        H::handle_all(self, deliveries, spans)
    }
}

/// An [`EventHandler`] behind a pointer, for the control plane's registry
/// (a dead letter is retried through the very handler that failed it).
pub trait DynHandler: Send + Sync + 'static {
    fn handle_dyn<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Outcome>;
}

impl<H: EventHandler> DynHandler for H {
    fn handle_dyn<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Outcome> {
        Box::pin(self.handle(delivery))
    }
}

/// The handler's outcome, unless a test switched on the fault that makes
/// this consumer refuse its stream (see [`crate::fault::poisons`]).
pub async fn handle_checked<H: DynHandler + ?Sized>(
    handler: &H,
    durable: &str,
    delivery: &Delivery,
) -> Outcome {
    if crate::fault::poisons(durable, &delivery.stream) {
        return Outcome::Poison(format!(
            "injected fault: {durable} refuses {}",
            delivery.stream
        ));
    }
    handler.handle_dyn(delivery).await
}

/// Whether a consumer loop takes deliveries, for `/readyz`. Cloning shares it.
#[derive(Debug, Clone)]
pub struct ConsumerHealth {
    pub durable: String,
    /// The stream it reads, for readiness to see whether a stream that was
    /// missing exists now.
    pub stream: &'static str,
    state: Arc<tokio::sync::watch::Sender<Pulling>>,
}

/// Where a consumer loop is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pulling {
    /// Not pulling yet: the durable is being declared.
    Starting,
    /// Declared and pulling.
    Yes,
    /// Its stream does not exist yet (another team's service creates it),
    /// so there is nothing to take.
    NoStream,
    /// Declaring or pulling failed with this error; it is tried again.
    Interrupted(String),
}

impl ConsumerHealth {
    pub fn new(durable: &str, stream: &'static str) -> ConsumerHealth {
        ConsumerHealth {
            durable: durable.to_owned(),
            stream,
            state: Arc::new(tokio::sync::watch::Sender::new(Pulling::Starting)),
        }
    }

    pub fn pulling(&self) -> Pulling {
        self.state.borrow().clone()
    }

    /// Whether the loop takes every delivery there is, as far as it knows:
    /// with [`Pulling::NoStream`] the stream may have been created since the
    /// loop last looked (readiness checks).
    pub fn is_ready(&self) -> bool {
        matches!(*self.state.borrow(), Pulling::Yes | Pulling::NoStream)
    }

    pub(crate) fn set(&self, pulling: Pulling) {
        self.state.send_if_modified(|now| {
            let changed = *now != pulling;
            *now = pulling;
            changed
        });
    }
}

/// Runs until `stop` is cancelled; the messages its lanes hold are finished
/// first. `health` follows whether it is pulling.
pub async fn run<H: EventHandler>(
    js: Context,
    service: &'static str,
    spec: ConsumerSpec,
    handler: H,
    health: ConsumerHealth,
    stop: CancellationToken,
) {
    let mut attempt: u32 = 0;
    while !stop.is_cancelled() {
        match consume(&js, service, &spec, &handler, &health, &stop).await {
            Ok(()) => break,
            Err(error) => {
                // A loop that had been pulling starts its back-off afresh.
                if health.pulling() == Pulling::Yes {
                    attempt = 0;
                }
                health.set(Pulling::Interrupted(format!("{error:#}")));
                attempt = attempt.saturating_add(1);
                let delay = Duration::from_millis(200 * 2u64.pow(attempt.min(6)));
                tracing::warn!(consumer = %spec.durable, stream = spec.stream, %error, ?delay,
                    "consumer interrupted; resuming");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    tracing::info!(consumer = %spec.durable, stream = spec.stream, "consumer stopped");
}

async fn consume<H: EventHandler>(
    js: &Context,
    service: &'static str,
    spec: &ConsumerSpec,
    handler: &H,
    health: &ConsumerHealth,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let consumer: PullConsumer = js
        .create_consumer_on_stream(spec.config(), spec.stream)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "declaring consumer {} on {}: {e}",
                spec.durable,
                spec.stream
            )
        })?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(spec.batch)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!("pulling from {}: {e}", spec.durable))?;
    health.set(Pulling::Yes);
    // Lanes: each aggregate's messages go to one lane and are handled there
    // in order; different aggregates proceed in parallel. A lane takes what
    // it has at hand, up to a pull batch, in one go. A handler that commits
    // deliveries together gets one lane: its database has one writer, for
    // which parallel lanes would only queue, and one lane has the most at
    // hand to commit together. Unless it waits outside between deliveries:
    // then one lane would make every delivery wait behind a slow answer.
    let lanes = if handler.batches() && !handler.waits_outside() {
        1
    } else {
        spec.lanes.max(1)
    };
    tracing::info!(consumer = %spec.durable, stream = spec.stream, lanes, "consuming");
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..lanes)
        .map(|_| tokio::sync::mpsc::channel::<jetstream::Message>(spec.batch.max(1)))
        .unzip();
    // The stream sequences the lanes hold (queued or being handled).
    let in_hand = InHand::default();
    let in_hand = &in_hand;
    let lanes = futures::future::join_all(receivers.into_iter().map(|mut rx| async move {
        let mut batch = Vec::with_capacity(spec.batch.max(1));
        let mut still = in_progress_timer(spec);
        while rx.recv_many(&mut batch, spec.batch.max(1)).await > 0 {
            let messages = std::mem::take(&mut batch);
            let seqs: Vec<u64> = messages.iter().map(stream_seq).collect();
            process_all(js, service, spec, handler, messages, &mut still, in_hand).await;
            in_hand.release(&seqs);
        }
    }));
    let dispatch = async move {
        let result = loop {
            let next = tokio::select! {
                _ = stop.cancelled() => break Ok(()),
                next = messages.next() => next,
            };
            match next {
                None => break Err(anyhow::anyhow!("message stream ended")),
                Some(Err(error)) if ends_the_pull(error.kind()) => {
                    break Err(anyhow::anyhow!("pulling from {}: {error}", spec.durable))
                }
                Some(Err(error)) => {
                    tracing::debug!(consumer = %spec.durable, %error, "pull stream error")
                }
                Some(Ok(message)) => {
                    let seq = stream_seq(&message);
                    // A lane still has this message (queued behind a slow
                    // lot, so not kept in progress): the broker redelivered
                    // it after the ack wait. The lane settles it; another
                    // copy in the queue would only be handled again.
                    if !in_hand.take(seq) {
                        tracing::debug!(consumer = %spec.durable, seq,
                            "a copy of a delivery still in hand; leaving it to the first");
                        continue;
                    }
                    let lane = lane_of(&message.payload, seq, senders.len());
                    if senders[lane].send(message).await.is_err() {
                        break Err(anyhow::anyhow!("lane stopped"));
                    }
                }
            }
        };
        // Dropping the senders lets every lane finish what it holds.
        drop(senders);
        result
    };
    let (result, _) = tokio::join!(dispatch, lanes);
    result
}

/// Whether a pull stream's error means its consumer is gone or no longer
/// heard from, so that it must be declared again (the caller's resume
/// does that) rather than waited on. A consumer deleted with its stream
/// while no pull of ours was pending is never told "Consumer Deleted":
/// the next pull finds no responder, and after that only heartbeats are
/// missed, forever.
fn ends_the_pull(kind: MessagesErrorKind) -> bool {
    match kind {
        MessagesErrorKind::ConsumerDeleted
        | MessagesErrorKind::NoResponders
        | MessagesErrorKind::MissingHeartbeat
        | MessagesErrorKind::PushBasedConsumer
        | MessagesErrorKind::RequestLimitExceeded => true,
        MessagesErrorKind::Pull | MessagesErrorKind::Other => false,
    }
}

/// The stream sequences of the messages the lanes hold.
#[derive(Default)]
struct InHand(Mutex<HashSet<u64>>);

impl InHand {
    /// Records `seq` as held; false if it already was. A message without
    /// metadata (sequence 0) is always taken.
    fn take(&self, seq: u64) -> bool {
        seq == 0 || self.lock().insert(seq)
    }

    fn release(&self, seqs: &[u64]) {
        let mut held = self.lock();
        for seq in seqs {
            held.remove(seq);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<u64>> {
        // An insert or a remove cannot leave the set half changed.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn stream_seq(message: &jetstream::Message) -> u64 {
    message.info().map(|i| i.stream_sequence).unwrap_or(0)
}

/// A delivery that came back this many times `max_deliver` without its
/// handler ever finishing is dead-lettered unhandled: handling it again
/// would most likely crash or hang the service again.
pub const UNFINISHED_FACTOR: i64 = 5;

/// Why a delivery is not to be handled again, if it is not.
fn never_finished(spec: &ConsumerSpec, delivery: &Delivery) -> Option<String> {
    (delivery.delivered > spec.max_deliver.saturating_mul(UNFINISHED_FACTOR)).then(|| {
        format!(
            "delivered {} times without its handler ever finishing (it crashed, hung or was \
             stopped each time); not handled again",
            delivery.delivered
        )
    })
}

/// When a lane says its deliveries are still in progress: every third of
/// the ack wait.
fn in_progress_timer(spec: &ConsumerSpec) -> tokio::time::Interval {
    let every = (spec.ack_wait / 3).max(Duration::from_millis(100));
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    timer
}

/// The lane of a message: a hash of its aggregate id (CloudEvents `subject`).
/// A message without one (it cannot be decoded, so it will be dead-lettered
/// and has no order to keep) is spread by its stream sequence, so a flood of
/// poison does not queue up in one lane ahead of good events.
fn lane_of(payload: &[u8], stream_seq: u64, lanes: usize) -> usize {
    use std::hash::{Hash, Hasher};
    if lanes <= 1 {
        return 0;
    }
    let lanes = lanes as u64;
    let Some(key) = crate::delivery::aggregate_of(payload) else {
        return (stream_seq % lanes) as usize;
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % lanes) as usize
}

/// Handles a lane's messages: together if the handler takes them so,
/// else one at a time.
/// While they take long (a slow provider, a database that waits), the
/// broker is told every third of the ack wait that the lot's unsettled
/// deliveries are still being handled, so it redelivers them only when
/// this process stops taking care of them (a crashed or frozen instance's
/// deliveries go to another one after one ack wait, well within the order
/// timeout), or after [`MAX_IN_PROGRESS`]: a handler that hangs must not
/// hold a delivery for ever. A delivery once acked, naked or terminated
/// gets no more word: the broker would restart a nak's delay from it.
async fn process_all<H: EventHandler>(
    js: &Context,
    service: &'static str,
    spec: &ConsumerSpec,
    handler: &H,
    messages: Vec<jetstream::Message>,
    still: &mut tokio::time::Interval,
    in_hand: &InHand,
) {
    let settled: Vec<AtomicBool> = messages.iter().map(|_| AtomicBool::new(false)).collect();
    let work = async {
        if messages.len() > 1
            && handler.batches()
            && handle_together(spec, handler, &messages).await
        {
            return;
        }
        for (message, settled) in messages.iter().zip(&settled) {
            process(js, service, spec, handler, message).await;
            settled.store(true, Ordering::Relaxed);
            // Settled: a redelivery now (a nak's retry) is a new delivery.
            in_hand.release(&[stream_seq(message)]);
        }
    };
    tokio::pin!(work);
    let began = Instant::now();
    // First due a period from now (one timer per lane, not per lot).
    still.reset();
    loop {
        tokio::select! {
            () = &mut work => return,
            _ = still.tick(), if began.elapsed() < MAX_IN_PROGRESS => {
                for (message, settled) in messages.iter().zip(&settled) {
                    if settled.load(Ordering::Relaxed) {
                        continue;
                    }
                    if let Err(error) = message.ack_with(AckKind::Progress).await {
                        tracing::debug!(%error, "in-progress acknowledgement failed");
                    }
                }
            }
        }
    }
}

/// How long a lot's deliveries are kept from redelivery while its handler
/// works, at most.
const MAX_IN_PROGRESS: Duration = Duration::from_secs(120);

/// Offers `messages` to the handler as one batch and acks them all if it
/// took them; false when they must be handled one by one (the handler
/// declined or failed, a message lacks metadata, or a fault is injected).
async fn handle_together<H: EventHandler>(
    spec: &ConsumerSpec,
    handler: &H,
    messages: &[jetstream::Message],
) -> bool {
    let mut deliveries = Vec::with_capacity(messages.len());
    for message in messages {
        let Some(delivery) = to_delivery(message) else {
            return false;
        };
        if crate::fault::poisons(&spec.durable, &delivery.stream)
            || never_finished(spec, &delivery).is_some()
        {
            return false;
        }
        deliveries.push(delivery);
    }
    let spans: Vec<tracing::Span> = deliveries.iter().map(|d| handle_span(spec, d)).collect();
    let started = Instant::now();
    if !handler.handle_all(&deliveries, &spans).await {
        return false;
    }
    let each = started.elapsed() / u32::try_from(messages.len()).unwrap_or(u32::MAX);
    crate::metrics::committed_together(&spec.durable, messages.len());
    if let Some(info) = messages.last().and_then(|m| m.info().ok()) {
        crate::metrics::consumer_pending(&spec.durable, info.pending);
    }
    for (message, span) in messages.iter().zip(&spans) {
        crate::metrics::message_handled(&spec.durable, "done", each);
        if let Err(error) = message.ack_with(AckKind::Ack).await {
            // The broker will redeliver; the inbox makes that harmless.
            tracing::warn!(parent: span, %error, "acknowledgement failed");
        }
    }
    true
}

/// The span a delivery is handled in: its own trace id, continuing the
/// publisher's trace.
fn handle_span(spec: &ConsumerSpec, delivery: &Delivery) -> tracing::Span {
    let trace = TraceParent::continue_or_start(delivery.traceparent());
    let span = tracing::info_span!("handle", consumer = %spec.durable, subject = %delivery.subject,
        seq = delivery.stream_seq, delivered = delivery.delivered, trace_id = %trace.trace_id);
    crate::telemetry::continue_from(&span, delivery.traceparent());
    span
}

async fn process<H: EventHandler>(
    js: &Context,
    service: &'static str,
    spec: &ConsumerSpec,
    handler: &H,
    message: &jetstream::Message,
) {
    let Some(delivery) = to_delivery(message) else {
        tracing::warn!(subject = %message.subject, "message without JetStream metadata; terminating");
        let _ = message.ack_with(AckKind::Term).await;
        return;
    };
    if let Ok(info) = message.info() {
        crate::metrics::consumer_pending(&spec.durable, info.pending);
    }
    let span = handle_span(spec, &delivery);
    async {
        let started = Instant::now();
        let outcome = match never_finished(spec, &delivery) {
            Some(reason) => Err(reason),
            None => Ok(handle_checked(handler, &spec.durable, &delivery).await),
        };
        let elapsed = started.elapsed();
        let (label, ack) = match outcome {
            Err(reason) => dead_letter(js, service, spec, &delivery, &reason).await,
            Ok(Outcome::Done) => ("done", AckKind::Ack),
            Ok(Outcome::Retry(reason)) if delivery.delivered < spec.max_deliver => {
                let delay = spec.delay_after(delivery.delivered);
                tracing::warn!(%reason, ?delay, "handler failed; will retry");
                ("retry", AckKind::Nak(Some(delay)))
            }
            Ok(Outcome::Retry(reason)) => {
                let reason = format!("gave up after {} deliveries: {reason}", delivery.delivered);
                dead_letter(js, service, spec, &delivery, &reason).await
            }
            Ok(Outcome::Poison(reason)) => dead_letter(js, service, spec, &delivery, &reason).await,
        };
        crate::metrics::message_handled(&spec.durable, label, elapsed);
        if let Err(error) = message.ack_with(ack).await {
            // The broker will redeliver; the inbox makes that harmless.
            tracing::warn!(%error, "acknowledgement failed");
        }
    }
    .instrument(span)
    .await;
}

/// Dead-letters a delivery; on failure to do so, naks so nothing is lost.
async fn dead_letter(
    js: &Context,
    service: &'static str,
    spec: &ConsumerSpec,
    delivery: &Delivery,
    reason: &str,
) -> (&'static str, AckKind) {
    match crate::dlq::send(js, service, &spec.durable, delivery, reason).await {
        Ok(()) => {
            tracing::error!(%reason, "message dead-lettered");
            ("dead_lettered", AckKind::Term)
        }
        Err(error) => {
            tracing::error!(%error, %reason, "could not dead-letter; will retry");
            (
                "retry",
                AckKind::Nak(Some(spec.delay_after(delivery.delivered))),
            )
        }
    }
}

fn to_delivery(message: &jetstream::Message) -> Option<Delivery> {
    let info = message.info().ok()?;
    Some(Delivery {
        stream: info.stream.to_owned(),
        subject: message.subject.to_string(),
        payload: message.payload.clone(),
        headers: message.headers.clone(),
        stream_seq: info.stream_sequence,
        delivered: info.delivered,
    })
}
