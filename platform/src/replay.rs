//! Rebuilding projections from their streams, for `bazaar replay`.
//!
//! A replay runs in ONE database transaction: it moves each checkpoint back,
//! empties the projections' tables (from the start) or keeps them (from a
//! sequence or a time: the views are written so that re-applying a suffix
//! of the stream leaves them as they were), re-applies every event up to
//! the stream's head as it was when the replay began, and sets the
//! checkpoints to that head. Readers keep seeing the old view until the
//! commit swaps in the new one (PostgreSQL MVCC; SQLite WAL with the
//! separate readers of [`crate::db::Db::reader`]); a failed replay rolls
//! back and leaves the view as it was.
//!
//! Only projectors run: a replay never touches a consumer's handler, so no
//! reaction (reserving stock, taking a payment) runs again.
//!
//! Planning (what to rebuild, from where to where) is in `replay/plan.rs`;
//! this file executes a plan: one transaction, a reader task, batches with
//! savepoints.

mod plan;

pub use plan::{plan, select, Plan, PlannedProjection, Start};

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::Context;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::db::{Db, Tx};
use crate::delivery::{Delivery, HandlerError};
use crate::projection::{self, DynProjector};

/// Events applied between two savepoints. A poison event rolls back to the
/// last savepoint and its batch is applied again one savepoint per event,
/// so the fast path pays for a savepoint only every this many events.
const BATCH: usize = 512;
/// Events read ahead of the database.
const READ_AHEAD: usize = 4096;
/// How long the stream may stay silent while it still owes events.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Poison events listed in a report (all are counted).
const SKIPPED_LISTED: usize = 20;

/// One projection to rebuild.
#[derive(Clone)]
pub struct Target {
    pub name: String,
    pub stream: &'static str,
    pub filter_subjects: Vec<String>,
    pub projector: Arc<dyn DynProjector>,
}

/// A poison event a replay skipped (the live projection dead-lettered it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub projection: String,
    pub stream_seq: u64,
    pub error: String,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub plan: Plan,
    /// Events re-applied.
    pub applied: u64,
    /// Poison events skipped, as the live projection skipped them.
    pub skipped: u64,
    /// The first skipped events.
    pub skipped_events: Vec<Skipped>,
    pub elapsed_ms: u64,
    pub events_per_sec: f64,
}

/// How far a replay got, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Events read and applied (or skipped) so far, over every projection.
    pub done: u64,
    /// Events planned.
    pub total: u64,
}

/// Why a replay could not run; it changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0}")]
    Invalid(String),
    #[error("reading the stream: {0}")]
    Stream(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("projection {projection} failed at stream sequence {seq}: {error}")]
    Apply {
        projection: String,
        seq: u64,
        error: String,
    },
}

/// The first sequence `stream` still holds (past the last when it is
/// empty): above 1 once limits or a purge removed its oldest events.
pub(crate) async fn first_sequence(js: &Context, name: &str) -> Result<u64, ReplayError> {
    let mut stream = js
        .get_stream(name)
        .await
        .map_err(|e| ReplayError::Stream(format!("looking up {name}: {e}")))?;
    let info = stream
        .info()
        .await
        .map_err(|e| ReplayError::Stream(format!("reading {name}: {e}")))?;
    Ok(info.state.first_sequence)
}

/// Rebuilds `targets` in one transaction, calling `progress` as it goes.
/// The caller pauses the live followers first (their pause locks).
pub async fn rebuild(
    js: &Context,
    db: &Db,
    targets: &[Target],
    start: &Start,
    progress: &(dyn Fn(Position) + Send + Sync),
) -> Result<Report, ReplayError> {
    let started = Instant::now();
    let mut tx = db.begin().await?;
    let mut planned = Vec::with_capacity(targets.len());
    let mut floors = Vec::with_capacity(targets.len());
    for target in targets {
        // The checkpoint's row is locked (PostgreSQL) before the stream's
        // head is read: another instance's follower waits for this commit
        // from here on, so every event it applied is at or below the head,
        // and is applied again below. (Locked after the head was read, an
        // event it applied in between was cleared from the tables with the
        // rest, and the checkpoint set back below it: lost from the view.)
        let checkpoint = projection::checkpoint_in(&mut tx, &target.name).await?;
        // The stream's first sequence before anything is read from it: a
        // cut during the rebuild leaves the floor below what was applied,
        // so the next replay from the start is refused, not silent.
        if *start == Start::Beginning {
            floors.push(first_sequence(js, target.stream).await?);
        }
        planned.push(plan::plan_one(js, target, checkpoint, start).await?);
    }
    for p in &planned {
        projection::set_in(&mut tx, &p.name, p.from_seq.saturating_sub(1)).await?;
    }
    let tables: BTreeSet<&str> = planned
        .iter()
        .flat_map(|p| p.clears.iter().map(String::as_str))
        .collect();
    for table in tables {
        if !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ReplayError::Invalid(format!("odd table name {table:?}")));
        }
        // The name is a projector's constant, checked above, never input.
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *tx)
            .await?;
    }
    let total: u64 = planned.iter().map(|p| p.events).sum();
    let mut tally = Tally {
        position: Position { done: 0, total },
        applied: 0,
        skipped: Vec::new(),
        skipped_count: 0,
    };
    progress(tally.position);
    for (i, (target, p)) in targets.iter().zip(&planned).enumerate() {
        apply_range(js, &mut tx, target, p, &mut tally, progress).await?;
        projection::set_in(&mut tx, &p.name, p.to_seq).await?;
        if *start == Start::Beginning {
            // Rebuilt from this life of the stream alone: the follower goes
            // on from it, and there is no lost history left in the view.
            let now = crate::started_over::Incarnation::find(js, target.stream, 0)
                .await
                .map_err(|e| ReplayError::Stream(format!("{e:#}")))?;
            projection::store_incarnation_in(&mut tx, &p.name, &now.incarnation.key()).await?;
            projection::forget_restart_in(&mut tx, &p.name).await?;
            let floor = floors.get(i).copied().unwrap_or(1);
            projection::store_floor_in(&mut tx, &p.name, floor).await?;
        }
    }
    tx.commit().await?;
    let elapsed = started.elapsed();
    let secs = elapsed.as_secs_f64();
    Ok(Report {
        plan: Plan {
            start: start.clone(),
            projections: planned,
        },
        applied: tally.applied,
        skipped: tally.skipped_count,
        skipped_events: tally.skipped,
        elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        events_per_sec: if secs > 0.0 {
            tally.position.done as f64 / secs
        } else {
            0.0
        },
    })
}

struct Tally {
    position: Position,
    applied: u64,
    skipped: Vec<Skipped>,
    skipped_count: u64,
}

async fn ordered(
    js: &Context,
    target: &Target,
    deliver_policy: DeliverPolicy,
) -> Result<async_nats::jetstream::consumer::Consumer<OrderedConfig>, ReplayError> {
    js.create_consumer_on_stream(
        OrderedConfig {
            name: Some(crate::streams::ordered_consumer_name()),
            filter_subjects: target.filter_subjects.clone(),
            deliver_policy,
            ..Default::default()
        },
        target.stream,
    )
    .await
    .map_err(|e| ReplayError::Stream(format!("reading {}: {e}", target.stream)))
}

/// Reads the target's events from `from_seq` to `to_seq` exactly as a
/// replay does (same consumer, same reader task, same channel) and applies
/// nothing: the ceiling a replay's rate is measured against (`bench replay`).
/// Returns how many events it read.
pub async fn read_through(
    js: &Context,
    target: &Target,
    from_seq: u64,
    to_seq: u64,
) -> Result<u64, ReplayError> {
    let consumer = ordered(
        js,
        target,
        DeliverPolicy::ByStartSequence {
            start_sequence: from_seq,
        },
    )
    .await?;
    let (sender, mut receiver) = tokio::sync::mpsc::channel(READ_AHEAD);
    let mut reader = AbortOnDrop(tokio::spawn(read(consumer, to_seq, sender)));
    let mut batch: Vec<Delivery> = Vec::with_capacity(BATCH);
    let mut count = 0;
    loop {
        batch.clear();
        let n = receiver.recv_many(&mut batch, BATCH).await;
        if n == 0 {
            break;
        }
        count += n as u64;
    }
    match (&mut reader.0).await {
        Ok(Ok(())) => Ok(count),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(ReplayError::Stream(format!("reader task: {e}"))),
    }
}

/// Applies the target's events from `p.from_seq` to `p.to_seq` inside `tx`.
async fn apply_range(
    js: &Context,
    tx: &mut Tx,
    target: &Target,
    p: &PlannedProjection,
    tally: &mut Tally,
    progress: &(dyn Fn(Position) + Send + Sync),
) -> Result<(), ReplayError> {
    if p.from_seq > p.to_seq {
        return Ok(());
    }
    let consumer = ordered(
        js,
        target,
        DeliverPolicy::ByStartSequence {
            start_sequence: p.from_seq,
        },
    )
    .await?;
    let (sender, mut receiver) = tokio::sync::mpsc::channel(READ_AHEAD);
    let mut reader = AbortOnDrop(tokio::spawn(read(consumer, p.to_seq, sender)));
    let mut batch: Vec<Delivery> = Vec::with_capacity(BATCH);
    loop {
        batch.clear();
        if receiver.recv_many(&mut batch, BATCH).await == 0 {
            break;
        }
        apply_batch(tx, target, &batch, tally).await?;
        tally.position.done += batch.len() as u64;
        progress(tally.position);
    }
    // The reader ended: either at the head, or with an error to report.
    match (&mut reader.0).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(ReplayError::Stream(format!("reader task: {e}"))),
    }
}

/// Stops the reader when the applier gives up early.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads the stream into `sender` up to `to_seq` (inclusive), on a task of
/// its own, so reading the next events overlaps applying these.
async fn read(
    consumer: async_nats::jetstream::consumer::Consumer<OrderedConfig>,
    to_seq: u64,
    sender: tokio::sync::mpsc::Sender<Delivery>,
) -> Result<(), ReplayError> {
    // What the consumer owed when it was created: it includes every event up
    // to the head, so reading that many (or passing the head) always ends,
    // even when no new event ever arrives.
    let owed = consumer.cached_info().num_pending;
    if owed == 0 {
        return Ok(());
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| ReplayError::Stream(e.to_string()))?;
    let mut read: u64 = 0;
    loop {
        let message = match tokio::time::timeout(READ_TIMEOUT, messages.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(e))) => return Err(ReplayError::Stream(e.to_string())),
            Ok(None) => return Err(ReplayError::Stream("the stream ended".to_owned())),
            Err(_) => {
                return Err(ReplayError::Stream(format!(
                    "no event for {READ_TIMEOUT:?} with {} still owed",
                    owed - read
                )))
            }
        };
        let info = message
            .info()
            .map_err(|e| ReplayError::Stream(format!("message without metadata: {e}")))?;
        let seq = info.stream_sequence;
        if seq > to_seq {
            return Ok(());
        }
        let pending = info.pending;
        let delivery = Delivery {
            stream: info.stream.to_owned(),
            subject: message.subject.to_string(),
            payload: message.payload.clone(),
            headers: message.headers.clone(),
            stream_seq: seq,
            delivered: info.delivered,
        };
        if sender.send(delivery).await.is_err() {
            // The applier stopped (it failed); it reports why.
            return Ok(());
        }
        read += 1;
        if seq >= to_seq || pending == 0 || read >= owed {
            return Ok(());
        }
    }
}

/// Applies a batch under one savepoint (with the projector's batch write);
/// when that fails, rolls the batch back and applies it again event by
/// event with a savepoint each, so a poison event leaves no half-written
/// rows, exactly as the live follower (which rolls back that event's
/// transaction) left none.
async fn apply_batch(
    tx: &mut Tx,
    target: &Target,
    batch: &[Delivery],
    tally: &mut Tally,
) -> Result<(), ReplayError> {
    savepoint(tx, "SAVEPOINT bazaar_replay_batch").await?;
    // A transient failure of the batch is retried event by event below too:
    // that names the event, and fails the replay if it is really transient.
    let result = target.projector.apply_batch_dyn(tx, batch).await;
    if let Err(error) = &result {
        tracing::debug!(projection = %target.name, %error, "batch refused; applying it event by event");
    }
    if result.is_ok() {
        savepoint(tx, "RELEASE SAVEPOINT bazaar_replay_batch").await?;
        tally.applied += batch.len() as u64;
        return Ok(());
    }
    savepoint(tx, "ROLLBACK TO SAVEPOINT bazaar_replay_batch").await?;
    for d in batch {
        savepoint(tx, "SAVEPOINT bazaar_replay_event").await?;
        match target.projector.apply_dyn(tx, d).await {
            Ok(()) => tally.applied += 1,
            Err(HandlerError::Poison(error)) => {
                savepoint(tx, "ROLLBACK TO SAVEPOINT bazaar_replay_event").await?;
                tally.skipped_count += 1;
                if tally.skipped.len() < SKIPPED_LISTED {
                    tally.skipped.push(Skipped {
                        projection: target.name.clone(),
                        stream_seq: d.stream_seq,
                        error,
                    });
                }
            }
            Err(HandlerError::Transient(e)) => return Err(failed(target, d, &format!("{e:#}"))),
        }
        savepoint(tx, "RELEASE SAVEPOINT bazaar_replay_event").await?;
    }
    savepoint(tx, "RELEASE SAVEPOINT bazaar_replay_batch").await?;
    Ok(())
}

async fn savepoint(tx: &mut Tx, sql: &'static str) -> Result<(), ReplayError> {
    sqlx::query(sql).execute(&mut **tx).await?;
    Ok(())
}

fn failed(target: &Target, d: &Delivery, error: &str) -> ReplayError {
    ReplayError::Apply {
        projection: target.name.clone(),
        seq: d.stream_seq,
        error: error.to_owned(),
    }
}
