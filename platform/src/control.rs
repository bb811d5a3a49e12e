//! The operators' control plane every service answers on (request/reply on
//! `ops.<service>.*`, queue group per service, served by the runtime):
//!
//! - `replay`: rebuild the service's projections from their streams (see
//!   [`crate::replay`]), pausing their live followers meanwhile; progress
//!   goes to `ops.<service>.replay.progress.<id>`, the report is the reply.
//! - `redeliver`: run one dead letter again through the consumer that
//!   failed it, and only that one: a durable consumer's handler (the inbox
//!   makes a second effect impossible), or, for a projection, a replay from
//!   the dead letter's sequence so the event lands in stream order. The
//!   operator sends the dead letter inside the request ([`dlq::Letter`]):
//!   the service's user may not read the `DLQ` stream, and only `ops` may
//!   publish on `ops.<service>.redeliver`.
//!
//! The service runs these itself rather than the CLI writing its database:
//! only the service knows its projectors and handlers, and only it can
//! pause its own followers.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::Context;
use async_nats::service::{Request, Service};
use contracts::subjects::ops;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::consumer::{handle_checked, DynHandler};
use crate::db::{Backend, Db};
use crate::delivery::{Delivery, Outcome};
use crate::dlq;
use crate::projection::{Interruption, Live};
use crate::replay::{self, Position, Report, Start, Target};

mod lost_history;

/// How often a running replay reports progress (also its heartbeat).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// `ops.<service>.replay`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayRequest {
    /// Chosen by the caller; names the progress subject.
    pub id: String,
    /// One projection (and, from the start, those sharing its tables);
    /// none: every projection of the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projection: Option<String>,
    pub start: Start,
    /// Plan only: say what would happen, change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// From the start, also rebuild a view whose stream was created anew:
    /// what it holds from the lost stream is emptied for good.
    #[serde(default)]
    pub discard_lost_history: bool,
}

/// Published on `ops.<service>.replay.progress.<id>` while a replay runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayProgress {
    pub done: u64,
    pub total: u64,
}

/// `ops.<service>.redeliver`. The operator sends the dead letter itself:
/// no service may read the `DLQ` stream, which holds every team's payloads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeliverRequest {
    /// The dead letter's sequence in the `DLQ` stream (for the reply and
    /// the logs; the service does not read it back).
    pub dlq_seq: u64,
    /// The dead letter, as read from the `DLQ` stream.
    pub letter: dlq::Letter,
}

/// What a redelivery did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redelivered {
    pub dlq_seq: u64,
    pub consumer: String,
    pub stream: String,
    pub stream_seq: u64,
    /// `handled` (a consumer's handler took it) or `replayed` (a projection
    /// was replayed from it).
    pub how: String,
}

/// Why a control request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlErrorKind {
    /// The request cannot be carried out as asked.
    Invalid,
    /// No such projection, consumer or dead letter.
    NotFound,
    /// A replay is already running on this instance.
    Busy,
    /// It ran and failed (the error says why); nothing changed.
    Failed,
}

/// The answer to a control request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ControlReply<T> {
    Ok {
        value: T,
    },
    Error {
        kind: ControlErrorKind,
        message: String,
    },
}

impl<T> ControlReply<T> {
    fn error(kind: ControlErrorKind, message: impl Into<String>) -> Self {
        ControlReply::Error {
            kind,
            message: message.into(),
        }
    }
}

/// A durable consumer's handler, by stream and durable name.
pub(crate) struct RegisteredConsumer {
    pub stream: &'static str,
    pub durable: String,
    pub handler: Arc<dyn DynHandler>,
}

/// What the service registered while it was built.
#[derive(Default)]
pub(crate) struct Registry {
    pub projections: Vec<Arc<Live>>,
    pub consumers: Vec<RegisteredConsumer>,
}

struct Plane {
    service: &'static str,
    nats: async_nats::Client,
    js: Context,
    db: Db,
    registry: Registry,
    /// One replay at a time per instance.
    replaying: Arc<Mutex<()>>,
    stop: CancellationToken,
}

/// Serves the control endpoints until `stop`.
pub(crate) async fn serve(
    endpoints: &Service,
    service: &'static str,
    nats: async_nats::Client,
    js: Context,
    db: Db,
    registry: Registry,
    stop: CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let plane = Arc::new(Plane {
        service,
        nats,
        js,
        db,
        registry,
        replaying: Arc::new(Mutex::new(())),
        stop: stop.clone(),
    });
    let mut tasks = Vec::new();
    for (subject, kind) in [
        (ops::replay(service), Kind::Replay),
        (ops::redeliver(service), Kind::Redeliver),
    ] {
        let mut endpoint = endpoints
            .endpoint(subject.clone())
            .await
            .map_err(|e| anyhow::anyhow!("serving {subject}: {e}"))?;
        let plane = plane.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let request = tokio::select! {
                    _ = stop.cancelled() => break,
                    next = endpoint.next() => match next {
                        Some(request) => request,
                        None => break,
                    },
                };
                // Each request on a task of its own: a replay takes long.
                tokio::spawn(answer(plane.clone(), kind, request));
            }
        }));
    }
    Ok(tasks)
}

#[derive(Clone, Copy)]
enum Kind {
    Replay,
    Redeliver,
}

async fn answer(plane: Arc<Plane>, kind: Kind, request: Request) {
    let body = match kind {
        Kind::Replay => match serde_json::from_slice::<ReplayRequest>(&request.message.payload) {
            Ok(req) => serde_json::to_vec(&plane.replay(req).await),
            Err(e) => serde_json::to_vec(&malformed::<Report>(e)),
        },
        Kind::Redeliver => {
            match serde_json::from_slice::<RedeliverRequest>(&request.message.payload) {
                Ok(req) => serde_json::to_vec(&plane.redeliver(req).await),
                Err(e) => serde_json::to_vec(&malformed::<Redelivered>(e)),
            }
        }
    };
    let body = body.unwrap_or_default();
    if let Err(error) = request.respond(Ok(body.into())).await {
        tracing::warn!(%error, "could not answer a control request");
    }
}

fn malformed<T>(e: serde_json::Error) -> ControlReply<T> {
    ControlReply::error(ControlErrorKind::Invalid, format!("malformed request: {e}"))
}

impl Plane {
    fn targets(&self) -> Vec<Target> {
        self.registry
            .projections
            .iter()
            .map(|live| Target {
                name: live.spec.name.clone(),
                stream: live.spec.stream,
                filter_subjects: live.spec.filter_subjects.clone(),
                projector: live.projector.clone(),
            })
            .collect()
    }

    async fn replay(&self, req: ReplayRequest) -> ControlReply<Report> {
        let all = self.targets();
        if all.is_empty() {
            return ControlReply::error(
                ControlErrorKind::NotFound,
                format!(
                    "{} has no projections to replay (reactions are never replayed)",
                    self.service
                ),
            );
        }
        let chosen = match replay::select(&all, req.projection.as_deref(), &req.start) {
            Ok(chosen) => chosen,
            Err(e) => return ControlReply::error(ControlErrorKind::Invalid, e.to_string()),
        };
        let targets: Vec<Target> = chosen.iter().map(|(i, _)| all[*i].clone()).collect();
        let mut notes: Vec<Option<String>> = chosen.into_iter().map(|(_, note)| note).collect();
        if req.start == Start::Beginning && !req.discard_lost_history {
            let lost = match lost_history::find(&self.js, &self.db, &targets).await {
                Ok(lost) => lost,
                Err(e) => return ControlReply::error(ControlErrorKind::Failed, e.to_string()),
            };
            if !req.dry_run && !lost.is_empty() {
                let which: Vec<&str> = lost
                    .iter()
                    .map(|(i, _)| targets[*i].name.as_str())
                    .collect();
                let why: Vec<&str> = lost.iter().map(|(_, w)| w.as_str()).collect();
                return ControlReply::error(
                    ControlErrorKind::Invalid,
                    format!(
                        "refused: {}. A replay from the start of {} would empty, for good, \
                         what the view holds from the events that are gone. Re-apply what the \
                         stream holds with --projection {} --from-seq 1 (keeps the rest), or \
                         rebuild from the streams alone with --discard-lost-history",
                        why.join("; "),
                        which.join(", "),
                        which[0]
                    ),
                );
            }
            for (i, lost) in lost {
                let warning =
                    format!("{lost}; from the start refused without --discard-lost-history");
                notes[i] = Some(match notes[i].take() {
                    Some(other) => format!("{other}; {warning}"),
                    None => warning,
                });
            }
        }
        if req.dry_run {
            return match replay::plan(&self.js, &self.db, &targets, &req.start).await {
                Ok(plan) => ControlReply::Ok {
                    value: with_notes(
                        Report {
                            plan,
                            applied: 0,
                            skipped: 0,
                            skipped_events: Vec::new(),
                            elapsed_ms: 0,
                            events_per_sec: 0.0,
                        },
                        &notes,
                    ),
                },
                Err(e) => ControlReply::error(ControlErrorKind::Failed, e.to_string()),
            };
        }
        let Ok(_running) = self.replaying.clone().try_lock_owned() else {
            return ControlReply::error(
                ControlErrorKind::Busy,
                "a replay is already running on this instance; try again when it is done",
            );
        };
        let (position, watch) = tokio::sync::watch::channel(Position { done: 0, total: 0 });
        let subject = ops::replay_progress(self.service, &req.id);
        let publisher = tokio::spawn(publish_progress(self.nats.clone(), subject, watch));
        let result = self
            .rebuild(&targets, &req.start, &move |p| {
                position.send_replace(p);
            })
            .await;
        publisher.abort();
        match result {
            Ok(report) => ControlReply::Ok {
                value: with_notes(report, &notes),
            },
            Err((kind, message)) => ControlReply::error(kind, message),
        }
    }

    /// Pauses the followers, rebuilds, moves their progress, resumes them;
    /// logs how it ended, for a replay and for a projection's dead letter.
    async fn rebuild(
        &self,
        targets: &[Target],
        start: &Start,
        progress: &(dyn Fn(Position) + Send + Sync),
    ) -> Result<Report, (ControlErrorKind, String)> {
        let result = self.rebuild_paused(targets, start, progress).await;
        match &result {
            Ok(report) => tracing::info!(
                applied = report.applied,
                skipped = report.skipped,
                elapsed_ms = report.elapsed_ms,
                "replay done"
            ),
            Err((_, message)) => tracing::warn!(%message, "replay failed; nothing changed"),
        }
        result
    }

    async fn rebuild_paused(
        &self,
        targets: &[Target],
        start: &Start,
        progress: &(dyn Fn(Position) + Send + Sync),
    ) -> Result<Report, (ControlErrorKind, String)> {
        let _paused = self.pause(targets).await;
        tracing::info!(projections = ?targets.iter().map(|t| &t.name).collect::<Vec<_>>(),
            ?start, "replay started; followers paused");
        let report = tokio::select! {
            report = replay::rebuild(&self.js, &self.db, targets, start, progress) => report,
            _ = self.stop.cancelled() => {
                return Err((ControlErrorKind::Failed,
                    "the service is stopping; the replay was rolled back".to_owned()));
            }
        }
        .map_err(|e| (ControlErrorKind::Failed, e.to_string()))?;
        for planned in &report.plan.projections {
            if let Some(live) = self.live(&planned.name) {
                live.progress
                    .send_modify(|p| p.applied = p.applied.max(planned.to_seq));
            }
        }
        Ok(report)
    }

    /// Takes the pause locks, in name order so two callers never deadlock.
    /// SQLite has one writer: every follower of the service would wait for
    /// the replay's transaction anyway, so all of them pause. Readiness says
    /// so while they are paused: their views answer what they had.
    async fn pause(&self, targets: &[Target]) -> Paused {
        let mut lives: Vec<&Arc<Live>> = self
            .registry
            .projections
            .iter()
            .filter(|live| {
                self.db.backend() == Backend::Sqlite
                    || targets.iter().any(|t| t.name == live.spec.name)
            })
            .collect();
        lives.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        let mut guards = Vec::with_capacity(lives.len());
        for live in &lives {
            guards.push(live.pause.clone().lock_owned().await);
            live.progress
                .send_modify(|p| p.interrupted = Some(Interruption::PausedByReplay));
        }
        Paused {
            _guards: guards,
            lives: lives.into_iter().cloned().collect(),
        }
    }

    fn live(&self, name: &str) -> Option<&Arc<Live>> {
        self.registry
            .projections
            .iter()
            .find(|l| l.spec.name == name)
    }

    async fn redeliver(&self, req: RedeliverRequest) -> ControlReply<Redelivered> {
        match self.try_redeliver(req).await {
            Ok(done) => ControlReply::Ok { value: done },
            Err((kind, message)) => ControlReply::error(kind, message),
        }
    }

    async fn try_redeliver(
        &self,
        req: RedeliverRequest,
    ) -> Result<Redelivered, (ControlErrorKind, String)> {
        use ControlErrorKind::*;
        let letter = &req.letter;
        let owner = letter.header(dlq::H_SERVICE);
        if owner != self.service {
            return Err((
                Invalid,
                format!(
                    "dead letter {} belongs to {owner:?}, not {}",
                    req.dlq_seq, self.service
                ),
            ));
        }
        let consumer = letter.header(dlq::H_CONSUMER).to_owned();
        let origin = letter.header(dlq::H_STREAM).to_owned();
        let stream_seq: u64 = letter.header(dlq::H_SEQ).parse().map_err(|_| {
            (
                Invalid,
                format!(
                    "dead letter {} has no stream sequence in {} ({:?})",
                    req.dlq_seq,
                    dlq::H_SEQ,
                    letter.header(dlq::H_SEQ)
                ),
            )
        })?;
        let delivered: i64 = letter.header(dlq::H_DELIVERIES).parse().unwrap_or(0);
        let invalid = |e: dlq::LetterError| (Invalid, format!("dead letter {}: {e}", req.dlq_seq));
        let payload = letter.payload().map_err(invalid)?;
        let headers = letter.header_map().map_err(invalid)?;
        let done = |how: &str| Redelivered {
            dlq_seq: req.dlq_seq,
            consumer: consumer.clone(),
            stream: origin.clone(),
            stream_seq,
            how: how.to_owned(),
        };
        if let Some(registered) = self
            .registry
            .consumers
            .iter()
            .find(|c| c.durable == consumer && c.stream == origin)
        {
            let delivery = Delivery {
                stream: origin.clone(),
                subject: letter.header(dlq::H_SUBJECT).to_owned(),
                payload,
                headers: Some(headers),
                stream_seq,
                delivered: delivered.saturating_add(1),
            };
            return match handle_checked(registered.handler.as_ref(), &consumer, &delivery).await {
                Outcome::Done => {
                    tracing::info!(dlq_seq = req.dlq_seq, %consumer, "dead letter handled");
                    Ok(done("handled"))
                }
                Outcome::Retry(reason) | Outcome::Poison(reason) => Err((Failed, reason)),
            };
        }
        if let Some(target) = self
            .targets()
            .into_iter()
            .find(|t| t.name == consumer && t.stream == origin)
        {
            // A projection's event must land in stream order: replay the
            // projection from it, which re-applies what followed too.
            let _running = self.replaying.lock().await;
            let start = Start::Sequence { seq: stream_seq };
            let report = self.rebuild(&[target], &start, &|_| {}).await?;
            return match report
                .skipped_events
                .iter()
                .find(|s| s.stream_seq == stream_seq)
            {
                Some(skipped) => Err((Failed, skipped.error.clone())),
                None => Ok(done("replayed")),
            };
        }
        Err((
            NotFound,
            format!(
                "{} has no consumer {consumer:?} on stream {origin:?} (anymore?); a reader \
                 that is neither a durable consumer nor a projection (a search index) reads \
                 the event again when it is rebuilt, after which the letter can be dropped",
                self.service
            ),
        ))
    }
}

fn with_notes(mut report: Report, notes: &[Option<String>]) -> Report {
    for (planned, note) in report.plan.projections.iter_mut().zip(notes) {
        if let Some(note) = note {
            planned.note = Some(match planned.note.take() {
                Some(other) => format!("{note}; {other}"),
                None => note.clone(),
            });
        }
    }
    report
}

/// Publishes the replay's position every [`PROGRESS_EVERY`], also when it
/// did not move, so the caller can tell a slow replay from a lost one.
async fn publish_progress(
    nats: async_nats::Client,
    subject: String,
    watch: tokio::sync::watch::Receiver<Position>,
) {
    let mut ticks = tokio::time::interval(PROGRESS_EVERY);
    loop {
        ticks.tick().await;
        let p = *watch.borrow();
        let body = serde_json::to_vec(&ReplayProgress {
            done: p.done,
            total: p.total,
        })
        .unwrap_or_default();
        if let Err(error) = nats.publish(subject.clone(), body.into()).await {
            tracing::debug!(%error, "replay progress not sent");
        }
    }
}

/// Followers paused for a replay; they resume (and are ready again) when
/// this is dropped.
struct Paused {
    _guards: Vec<OwnedMutexGuard<()>>,
    lives: Vec<Arc<Live>>,
}

impl Drop for Paused {
    fn drop(&mut self) {
        for live in &self.lives {
            live.progress.send_modify(|p| {
                if p.interrupted == Some(Interruption::PausedByReplay) {
                    p.interrupted = None;
                }
            });
        }
    }
}
