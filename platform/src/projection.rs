//! Projections (read models): rebuildable views fed from a stream by an
//! ordered consumer, starting after the last stream sequence the view has
//! applied. The view's tables and its checkpoint change in one transaction,
//! so the checkpoint in the database — not a durable consumer — is the truth:
//! a restart resumes exactly, and a replay resets the checkpoint.
//!
//! Projections never have effects outside their own tables; reactions (which
//! must never run twice, not even on replay) use the consumer loop + inbox.
//!
//! The live follower holds its projection's pause lock around each apply,
//! so a replay (`crate::replay`) can stop it between two events, rebuild
//! the view in one transaction and let it go on from the new checkpoint.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::pull::{OrderedConfig, OrderedError};
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::Context;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::sync::{watch, Mutex};
use tokio_util::sync::CancellationToken;

use crate::db::{Db, Tx};
use crate::delivery::{Delivery, HandlerError};
use crate::started_over::Incarnation;

mod stored;

use stored::{advance, claim};
pub use stored::{checkpoint, reset, stream_restarted_at};
pub(crate) use stored::{
    checkpoint_in, forget_restart_in, rebuilt_floor, set_in, store_floor_in, store_incarnation_in,
    stored_incarnation,
};

/// Applies events to a view inside the given transaction.
///
/// Applying must depend only on the event and the view, and applying a
/// suffix of the stream again on top of the view must leave it as it was
/// (last writer wins per field, insert-if-absent): that is what lets a
/// replay from a sequence re-apply events the view already has.
pub trait Projector: Send + Sync + 'static {
    fn apply(
        &self,
        tx: &mut Tx,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Applies a run of events, in stream order, as if one by one (the
    /// default does just that). A replay hands its events over in batches:
    /// a projector may write a batch in fewer statements, since a statement
    /// costs a round trip to the database, provided the view ends exactly
    /// as with [`Projector::apply`] per event. An error fails the batch,
    /// which the replay then applies event by event.
    fn apply_batch<'a>(
        &'a self,
        tx: &'a mut Tx,
        batch: &'a [Delivery],
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a {
        async move {
            for delivery in batch {
                self.apply(tx, delivery).await?;
            }
            Ok(())
        }
    }

    /// Sees each batch the live follower received, before it is applied
    /// (and so before the projection reports progress past it), whether or
    /// not this instance applies it: another instance sharing the database
    /// may have. For a projector that tells readers what moved (the edge's
    /// order followers); the default does nothing.
    fn observe(&self, _batch: &[Delivery]) {}

    /// Told that the stream started its sequences over below the view's
    /// checkpoint (deleted and created again, or the broker lost its
    /// store), before the follower reads it again from sequence 1: what a
    /// projector remembered by stream position no longer compares. The
    /// default does nothing.
    fn started_over(&self) {}

    /// The tables this projector writes. A replay from the start empties
    /// them first, together with every other projection of the service
    /// that writes one of them. None declared: it can only be replayed
    /// from a sequence or a time.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }
}

/// A [`Projector`] behind a pointer, for the control plane's registry.
pub trait DynProjector: Send + Sync + 'static {
    fn apply_dyn<'a>(
        &'a self,
        tx: &'a mut Tx,
        delivery: &'a Delivery,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;

    fn apply_batch_dyn<'a>(
        &'a self,
        tx: &'a mut Tx,
        batch: &'a [Delivery],
    ) -> BoxFuture<'a, Result<(), HandlerError>>;

    fn tables(&self) -> &'static [&'static str];
}

impl<P: Projector> DynProjector for P {
    fn apply_dyn<'a>(
        &'a self,
        tx: &'a mut Tx,
        delivery: &'a Delivery,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.apply(tx, delivery))
    }

    fn apply_batch_dyn<'a>(
        &'a self,
        tx: &'a mut Tx,
        batch: &'a [Delivery],
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.apply_batch(tx, batch))
    }

    fn tables(&self) -> &'static [&'static str] {
        Projector::tables(self)
    }
}

/// A running projection as the control plane sees it.
pub struct Live {
    pub spec: ProjectionSpec,
    pub projector: Arc<dyn DynProjector>,
    /// Held by the live follower around each apply; a replay holds it for
    /// its whole run, which pauses the follower between two events.
    pub pause: Arc<Mutex<()>>,
    /// Where the follower reports progress; a replay moves it too.
    pub progress: watch::Sender<Progress>,
}

/// Which stream feeds a projection, and which of its subjects.
#[derive(Debug, Clone)]
pub struct ProjectionSpec {
    /// Checkpoint name; one per (view, stream).
    pub name: String,
    pub stream: &'static str,
    pub filter_subjects: Vec<String>,
}

/// How far a projection got, for read-your-writes and readiness.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Last stream sequence applied (0: none).
    pub applied: u64,
    /// Whether the projection has reached the end of the stream once.
    pub caught_up: bool,
    /// Why the follower stopped, while it does; cleared once it applies
    /// again or finds nothing pending.
    pub interrupted: Option<Interruption>,
}

/// Why a projection's follower does not apply what its stream holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interruption {
    /// Applying or reading failed (a poison event that could not be
    /// dead-lettered, a lost stream, the database); it is tried again.
    Failed(String),
    /// A replay holds it until the replay commits.
    PausedByReplay,
}

impl std::fmt::Display for Interruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Interruption::Failed(error) => f.write_str(error),
            Interruption::PausedByReplay => f.write_str("paused by a replay"),
        }
    }
}

/// Watches a projection's progress.
#[derive(Debug, Clone)]
pub struct ProjectionHandle {
    pub name: String,
    pub stream: &'static str,
    rx: watch::Receiver<Progress>,
}

impl ProjectionHandle {
    /// A handle for a view kept outside the service's database (a search
    /// index keeps its checkpoint in the index itself), with the sender its
    /// owner reports progress on; register it with `Runtime::track` so
    /// readiness waits for it.
    pub fn detached(
        name: impl Into<String>,
        stream: &'static str,
    ) -> (ProjectionHandle, watch::Sender<Progress>) {
        let (tx, rx) = watch::channel(Progress {
            applied: 0,
            caught_up: false,
            interrupted: None,
        });
        let handle = ProjectionHandle {
            name: name.into(),
            stream,
            rx,
        };
        (handle, tx)
    }

    pub fn progress(&self) -> Progress {
        self.rx.borrow().clone()
    }

    /// A receiver that wakes whenever the projection moves.
    pub fn subscribe(&self) -> watch::Receiver<Progress> {
        self.rx.clone()
    }

    /// Waits until the projection has applied `seq`, at most `timeout`.
    /// Returns whether it did.
    pub async fn wait_for(&self, seq: u64, timeout: Duration) -> bool {
        let mut rx = self.rx.clone();
        tokio::time::timeout(timeout, rx.wait_for(|p| p.applied >= seq))
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false)
    }
}

/// Starts a projection task; returns its handle.
pub fn spawn<P: Projector>(
    js: Context,
    db: Db,
    service: &'static str,
    spec: ProjectionSpec,
    projector: P,
    stop: CancellationToken,
) -> (ProjectionHandle, tokio::task::JoinHandle<()>) {
    let (handle, task, _) = start(js, db, service, spec, projector, stop);
    (handle, task)
}

/// Starts a projection task; returns its handle, the task, and what the
/// control plane needs to replay it.
pub(crate) fn start<P: Projector>(
    js: Context,
    db: Db,
    service: &'static str,
    spec: ProjectionSpec,
    projector: P,
    stop: CancellationToken,
) -> (ProjectionHandle, tokio::task::JoinHandle<()>, Arc<Live>) {
    let (tx, rx) = watch::channel(Progress {
        applied: 0,
        caught_up: false,
        interrupted: None,
    });
    let handle = ProjectionHandle {
        name: spec.name.clone(),
        stream: spec.stream,
        rx,
    };
    let projector = Arc::new(projector);
    let live = Arc::new(Live {
        spec: spec.clone(),
        projector: projector.clone(),
        pause: Arc::new(Mutex::new(())),
        progress: tx,
    });
    let follower = live.clone();
    let task = tokio::spawn(async move {
        let live = follower;
        // Another team's stream exists once its owner has started; until
        // then the view is empty, and so caught up.
        let caught_up = || live.progress.send_modify(|p| p.caught_up = true);
        if !crate::streams::wait_for(&js, live.spec.stream, &stop, caught_up).await {
            return;
        }
        let mut failures: u32 = 0;
        while !stop.is_cancelled() {
            match follow(&js, &db, service, &live, projector.as_ref(), &stop).await {
                Ok(Followed::Stopped) => break,
                // Not a failure: follow the new stream at once.
                Ok(Followed::StreamReplaced) => failures = 0,
                Ok(Followed::Reconnected) => {
                    tracing::info!(projection = %spec.name, "connected to NATS again; following anew");
                    failures = 0;
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let delay = Duration::from_millis(200 * 2u64.pow(failures.min(6)));
                    tracing::warn!(projection = %spec.name, %error, ?delay, "projection interrupted; resuming");
                    // Readiness says so until the view moves again.
                    let reason = format!("{error:#}");
                    live.progress
                        .send_modify(|p| p.interrupted = Some(Interruption::Failed(reason)));
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    });
    (handle, task, live)
}

async fn follow<P: Projector>(
    js: &Context,
    db: &Db,
    service: &'static str,
    live: &Live,
    projector: &P,
    stop: &CancellationToken,
) -> anyhow::Result<Followed> {
    let spec = &live.spec;
    let progress = &live.progress;
    let (incarnation, start) = {
        // Not while a replay runs: it is about to move the checkpoint.
        let _paused = live.pause.lock().await;
        let checkpoint = checkpoint(db, &spec.name).await?;
        let found = Incarnation::find(js, spec.stream, checkpoint).await?;
        let stored = stored_incarnation(db, &spec.name).await?;
        let key = found.incarnation.key();
        let replaced = match &stored {
            Some(stored) => *stored != key,
            // Not known yet (a view from before this was stored).
            None => found.started_over_at.is_some(),
        };
        let start = if replaced {
            tracing::warn!(projection = %spec.name, stream = spec.stream, checkpoint,
                stream_last_seq = ?found.started_over_at,
                "the stream was created anew (deleted, or the broker lost its store) since \
                 this view last read it; reading it from its start over the view's rows");
            start_over(db, live, projector, &key).await?;
            0
        } else {
            if stored.is_none() {
                let mut tx = db.begin().await?;
                store_incarnation_in(&mut tx, &spec.name, &key).await?;
                tx.commit().await?;
            }
            checkpoint
        };
        (found.incarnation, start)
    };
    progress.send_modify(|p| p.applied = p.applied.max(start));
    let reconnects = crate::nats::Reconnects::since_now(&js.client());
    let consumer = js
        .create_consumer_on_stream(
            OrderedConfig {
                name: Some(crate::streams::ordered_consumer_name()),
                filter_subjects: spec.filter_subjects.clone(),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: start + 1,
                },
                max_expires: crate::streams::ORDERED_MAX_EXPIRES,
                ..Default::default()
            },
            spec.stream,
        )
        .await
        .map_err(|e| anyhow::anyhow!("reading stream {}: {e}", spec.stream))?;
    if consumer.cached_info().num_pending == 0 {
        progress.send_modify(|p| {
            p.caught_up = true;
            p.interrupted = None;
        });
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!("reading stream {}: {e}", spec.stream))?;
    tracing::info!(projection = %spec.name, from = start + 1, "projecting");
    let mut batch: Vec<Delivery> = Vec::with_capacity(LIVE_BATCH);
    let mut check = crate::started_over::check_timer();
    let reconnected = reconnects.noticed();
    tokio::pin!(reconnected);
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => return Ok(Followed::Stopped),
            _ = &mut reconnected => return Ok(Followed::Reconnected),
            _ = check.tick() => {
                // Following again compares the stored life of the stream
                // with the new one, under the pause lock (a replay from the
                // start may have rebuilt the view from it meanwhile).
                if incarnation.replaced(js).await {
                    return Ok(Followed::StreamReplaced);
                }
                continue;
            }
            next = messages.next() => next,
        };
        batch.clear();
        let mut pending = take(&mut batch, next)?;
        // What has already arrived goes into the same transaction: under
        // load one commit (one fsync) covers many events instead of each.
        while batch.len() < LIVE_BATCH {
            match messages.next().now_or_never() {
                None => break,
                Some(next) => pending = take(&mut batch, next)?,
            }
        }
        projector.observe(&batch);
        {
            let _paused = live.pause.lock().await;
            apply_run(js, db, service, live, projector, &batch, stop).await?;
        }
        let last = batch.last().map(|d| d.stream_seq).unwrap_or(0);
        progress.send_modify(|p| {
            p.applied = p.applied.max(last);
            p.interrupted = None;
            if pending == 0 {
                p.caught_up = true;
            }
        });
        crate::metrics::projection_position(&spec.name, last);
    }
}

/// The view's stream started over (see [`crate::started_over`]): the
/// checkpoint goes back to 0 and the view's rows stay, for the new stream's
/// events to be applied over them. Call with the pause lock held.
async fn start_over<P: Projector>(
    db: &Db,
    live: &Live,
    projector: &P,
    incarnation: &str,
) -> anyhow::Result<()> {
    stored::start_over(db, &live.spec.name, incarnation).await?;
    projector.started_over();
    live.progress.send_modify(|p| p.applied = 0);
    Ok(())
}

/// Why a live follower returned without an error.
enum Followed {
    /// The service is stopping.
    Stopped,
    /// Its stream was created anew: follow it again.
    StreamReplaced,
    /// The connection to the broker was made again: the ordered consumer
    /// may have gone with the broker ([`crate::nats::Reconnects`]), so
    /// follow again from the checkpoint.
    Reconnected,
}

/// Events a live follower applies in one transaction at most.
const LIVE_BATCH: usize = 256;

/// Adds the next message of an ordered consumer to `batch`; returns how
/// many messages the stream still holds after it.
fn take(
    batch: &mut Vec<Delivery>,
    next: Option<Result<async_nats::jetstream::Message, OrderedError>>,
) -> anyhow::Result<u64> {
    let message = match next {
        None => anyhow::bail!("stream ended"),
        Some(Err(error)) => anyhow::bail!("{error}"),
        Some(Ok(message)) => message,
    };
    let info = message
        .info()
        .map_err(|e| anyhow::anyhow!("message without metadata: {e}"))?;
    let pending = info.pending;
    batch.push(Delivery {
        stream: info.stream.to_owned(),
        subject: message.subject.to_string(),
        payload: message.payload.clone(),
        headers: message.headers.clone(),
        stream_seq: info.stream_sequence,
        delivered: info.delivered,
    });
    Ok(pending)
}

/// Applies a run of events (in stream order) in one transaction, skipping
/// those the view already has; if the run fails, applies it again event by
/// event, so a poison event is dead-lettered alone and the rest lands.
async fn apply_run<P: Projector>(
    js: &Context,
    db: &Db,
    service: &'static str,
    live: &Live,
    projector: &P,
    batch: &[Delivery],
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let spec = &live.spec;
    if let [delivery] = batch {
        return apply_one(js, db, service, live, projector, delivery, stop).await;
    }
    let started = std::time::Instant::now();
    let _spans = crate::telemetry::export_spans(
        crate::telemetry::ExportSpan::Project,
        &spec.name,
        batch.iter().map(Delivery::traceparent),
    );
    let result = async {
        let mut tx = db.begin().await?;
        let done = claim(&mut tx, &spec.name).await?;
        let fresh = &batch[batch.partition_point(|d| d.stream_seq <= done)..];
        if let Some(last) = fresh.last() {
            projector.apply_batch(&mut tx, fresh).await?;
            set_in(&mut tx, &spec.name, last.stream_seq).await?;
        }
        tx.commit().await?;
        Ok::<(), HandlerError>(())
    }
    .await;
    match result {
        Ok(()) => {
            let each = started.elapsed() / u32::try_from(batch.len()).unwrap_or(u32::MAX);
            for _ in batch {
                crate::metrics::message_handled(&spec.name, "done", each);
            }
            Ok(())
        }
        Err(error) => {
            tracing::debug!(projection = %spec.name, %error, events = batch.len(),
                "batch failed; applying its events one by one");
            for delivery in batch {
                apply_one(js, db, service, live, projector, delivery, stop).await?;
            }
            Ok(())
        }
    }
}

/// Applies one event, retrying transient failures with back-off; a poison
/// event is dead-lettered and skipped so the view keeps moving.
async fn apply_one<P: Projector>(
    js: &Context,
    db: &Db,
    service: &'static str,
    live: &Live,
    projector: &P,
    delivery: &Delivery,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let spec = &live.spec;
    let started = std::time::Instant::now();
    let _span = crate::telemetry::export_span(
        crate::telemetry::ExportSpan::Project,
        &spec.name,
        delivery.traceparent(),
    );
    const ATTEMPTS: u32 = 20;
    for attempt in 1..=ATTEMPTS {
        let result = async {
            let mut tx = db.begin().await?;
            if advance(&mut tx, &spec.name, delivery.stream_seq).await? {
                projector.apply(&mut tx, delivery).await?;
            }
            tx.commit().await?;
            Ok::<(), HandlerError>(())
        }
        .await;
        match result {
            Ok(()) => {
                crate::metrics::message_handled(&spec.name, "done", started.elapsed());
                return Ok(());
            }
            Err(HandlerError::Poison(reason)) => {
                let mut d = delivery.clone();
                d.delivered = attempt.into();
                crate::dlq::send(js, service, &spec.name, &d, &reason).await?;
                tracing::error!(projection = %spec.name, seq = delivery.stream_seq, %reason, "event dead-lettered");
                let mut tx = db.begin().await?;
                advance(&mut tx, &spec.name, delivery.stream_seq).await?;
                tx.commit().await?;
                crate::metrics::message_handled(&spec.name, "dead_lettered", started.elapsed());
                return Ok(());
            }
            Err(HandlerError::Transient(error)) => {
                let delay = Duration::from_millis(100 * 2u64.pow(attempt.min(7)));
                tracing::warn!(projection = %spec.name, seq = delivery.stream_seq, error = %format!("{error:#}"), ?delay, "projection failed; retrying");
                // Readiness says so until the view moves again.
                let reason = format!("event {}: {error:#}", delivery.stream_seq);
                live.progress
                    .send_modify(|p| p.interrupted = Some(Interruption::Failed(reason)));
                tokio::select! {
                    _ = stop.cancelled() => anyhow::bail!("stopped while retrying"),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    anyhow::bail!(
        "event {} still failing after {ATTEMPTS} attempts",
        delivery.stream_seq
    )
}
