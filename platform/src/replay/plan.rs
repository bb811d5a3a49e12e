//! Planning a replay: which projections it must rebuild ([`select`]) and,
//! for each, from which stream sequence to which, how many events and
//! which tables it empties ([`plan`], and [`super::rebuild`] before it
//! starts). Planning reads the streams and checkpoints and changes nothing.

use std::collections::BTreeSet;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::Context;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{ordered, ReplayError, Target, READ_TIMEOUT};
use crate::db::Db;
use crate::projection;

/// Where a replay starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Start {
    /// Empty the tables and apply the whole stream.
    Beginning,
    /// Re-apply from this stream sequence on top of the view.
    Sequence { seq: u64 },
    /// Re-apply from the first event stored at or after this time.
    Time { time: DateTime<Utc> },
}

/// What a replay does to one projection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedProjection {
    pub name: String,
    pub stream: String,
    /// The view's checkpoint before the replay.
    pub checkpoint: u64,
    /// The first stream sequence re-applied.
    pub from_seq: u64,
    /// The stream's last sequence when the replay began; the checkpoint after.
    pub to_seq: u64,
    /// Events of the projection's subjects from `from_seq` on, when planned.
    pub events: u64,
    /// Tables emptied first (a replay from the beginning).
    pub clears: Vec<String>,
    /// Why the plan differs from what was asked, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What a replay does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub start: Start,
    pub projections: Vec<PlannedProjection>,
}

impl Plan {
    pub fn events(&self) -> u64 {
        self.projections.iter().map(|p| p.events).sum()
    }
}

/// Which of `all` a replay must rebuild: `name` (or every one), and from the
/// beginning also every projection that shares a table with one of those,
/// since emptying a table clears what they wrote too. Each chosen index
/// comes with a note when it was not asked for.
pub fn select(
    all: &[Target],
    name: Option<&str>,
    start: &Start,
) -> Result<Vec<(usize, Option<String>)>, ReplayError> {
    let mut chosen: Vec<(usize, Option<String>)> = match name {
        Some(name) => match all.iter().position(|t| t.name == name) {
            Some(i) => vec![(i, None)],
            None => {
                let known: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
                return Err(ReplayError::Invalid(format!(
                    "no projection {name:?} here; known: {}",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )));
            }
        },
        None => (0..all.len()).map(|i| (i, None)).collect(),
    };
    // A sequence numbers the events of one stream: the same number in
    // another stream is another point in time.
    let streams: BTreeSet<&str> = chosen.iter().map(|(i, _)| all[*i].stream).collect();
    if matches!(start, Start::Sequence { .. }) && streams.len() > 1 {
        let names: Vec<&str> = chosen.iter().map(|(i, _)| all[*i].name.as_str()).collect();
        return Err(ReplayError::Invalid(format!(
            "a sequence belongs to one stream, but these projections read {}: \
             name one with --projection ({}), or start from a time",
            streams.into_iter().collect::<Vec<_>>().join(", "),
            names.join(", ")
        )));
    }
    if *start != Start::Beginning {
        return Ok(chosen);
    }
    // Close over shared tables until nothing is added.
    loop {
        let tables: BTreeSet<&str> = chosen
            .iter()
            .flat_map(|(i, _)| all[*i].projector.tables().iter().copied())
            .collect();
        let added = all.iter().enumerate().find_map(|(i, t)| {
            if chosen.iter().any(|(c, _)| *c == i) {
                return None;
            }
            let shared = t.projector.tables().iter().find(|x| tables.contains(**x))?;
            Some((
                i,
                Some(format!(
                    "rebuilt too: it shares table {shared} with the projections asked for"
                )),
            ))
        });
        match added {
            Some(entry) => chosen.push(entry),
            None => break,
        }
    }
    if let Some((i, _)) = chosen
        .iter()
        .find(|(i, _)| all[*i].projector.tables().is_empty())
    {
        return Err(ReplayError::Invalid(format!(
            "projection {} declares no tables, so it cannot be rebuilt from the start; \
             replay it from a sequence or a time",
            all[*i].name
        )));
    }
    Ok(chosen)
}

/// Plans a replay without changing anything (`--dry-run`).
pub async fn plan(
    js: &Context,
    db: &Db,
    targets: &[Target],
    start: &Start,
) -> Result<Plan, ReplayError> {
    let mut projections = Vec::with_capacity(targets.len());
    for target in targets {
        let checkpoint = projection::checkpoint(db, &target.name).await?;
        projections.push(plan_one(js, target, checkpoint, start).await?);
    }
    Ok(Plan {
        start: start.clone(),
        projections,
    })
}

pub(super) async fn plan_one(
    js: &Context,
    target: &Target,
    checkpoint: u64,
    start: &Start,
) -> Result<PlannedProjection, ReplayError> {
    let stream_error =
        |e: &dyn std::fmt::Display| ReplayError::Stream(format!("stream {}: {e}", target.stream));
    let mut stream = js
        .get_stream(target.stream)
        .await
        .map_err(|e| stream_error(&e))?;
    let head = stream
        .info()
        .await
        .map_err(|e| stream_error(&e))?
        .state
        .last_sequence;
    let mut note = None;
    let asked = match start {
        Start::Beginning => 1,
        Start::Sequence { seq } => (*seq).max(1),
        Start::Time { time } => first_at(js, target, *time, head).await?,
    };
    // Re-applying from a point the view has not reached would skip what lies
    // between its checkpoint and that point.
    let from_seq = if *start != Start::Beginning && asked > head && checkpoint >= head {
        note = Some(format!(
            "the stream ends at {head}, all of it applied: nothing from {asked} on to re-apply"
        ));
        asked
    } else if *start != Start::Beginning && asked > checkpoint + 1 {
        note = Some(format!(
            "the view had applied up to {checkpoint}, so the replay starts at {}",
            checkpoint + 1
        ));
        checkpoint + 1
    } else {
        asked
    };
    let events = if from_seq > head {
        0
    } else {
        let consumer = ordered(
            js,
            target,
            DeliverPolicy::ByStartSequence {
                start_sequence: from_seq,
            },
        )
        .await?;
        consumer.cached_info().num_pending
    };
    let clears = match start {
        Start::Beginning => target
            .projector
            .tables()
            .iter()
            .map(|t| (*t).to_owned())
            .collect(),
        _ => Vec::new(),
    };
    Ok(PlannedProjection {
        name: target.name.clone(),
        stream: target.stream.to_owned(),
        checkpoint,
        from_seq,
        to_seq: head.max(checkpoint),
        events,
        clears,
        note,
    })
}

/// The sequence of the first of the target's events at or after `time`
/// (past the head when there is none).
async fn first_at(
    js: &Context,
    target: &Target,
    time: DateTime<Utc>,
    head: u64,
) -> Result<u64, ReplayError> {
    let nanos = time.timestamp_nanos_opt().unwrap_or(i64::MAX);
    let start_time = async_nats::datetime::from_nanos(i128::from(nanos))
        .map_err(|e| ReplayError::Invalid(format!("time {time}: {e}")))?;
    let consumer = ordered(js, target, DeliverPolicy::ByStartTime { start_time }).await?;
    if consumer.cached_info().num_pending == 0 {
        return Ok(head + 1);
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| ReplayError::Stream(e.to_string()))?;
    match tokio::time::timeout(READ_TIMEOUT, messages.next()).await {
        Ok(Some(Ok(message))) => message
            .info()
            .map(|i| i.stream_sequence)
            .map_err(|e| ReplayError::Stream(e.to_string())),
        Ok(Some(Err(e))) => Err(ReplayError::Stream(e.to_string())),
        Ok(None) | Err(_) => Err(ReplayError::Stream(format!(
            "no event of {} after {time} arrived",
            target.stream
        ))),
    }
}
