//! Noticing that a stream started its sequences over under a reader that
//! keeps its own position (a view's checkpoint, the search index's).
//!
//! A stream deleted and created again (by hand, by `bazaar streams apply`,
//! or by a broker that lost its store) is another stream under the same
//! name, numbered from 1. A reader that asked for the sequences after its
//! position would wait for numbers the new stream reaches only later, and
//! skip every event below them: the view would never show those. The
//! ordered consumer does not say so (async-nats recreates it from the last
//! sequence it delivered, silently), so readers look:
//! - when they start: a view stores the creation time of the stream it
//!   follows ([`Incarnation::key`]) and compares it; without one stored
//!   (a view from before, the search index), a stream that holds fewer
//!   events than the reader has applied is a new one (a stream's last
//!   sequence never goes down in its lifetime; a purge keeps it);
//! - while they follow, every [`CHECK_EVERY`]: a stream whose creation
//!   time changed is a new one, however many events it already holds.
//!
//! Either way the reader reads the new stream from its start, over what it
//! holds (views are written so that re-applying events leaves them right).

use std::time::Duration;

use async_nats::jetstream::Context;

/// How often a following reader looks whether its stream was replaced.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// One life of a stream: its name and when it was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incarnation {
    stream: String,
    created_unix_ns: i128,
}

/// What a reader finds when it starts following a stream.
#[derive(Debug)]
pub struct Found {
    pub incarnation: Incarnation,
    /// The stream's last sequence, when it is below the reader's position:
    /// the stream started over.
    pub started_over_at: Option<u64>,
}

impl Incarnation {
    /// Looks `stream` up for a reader whose last applied sequence is
    /// `position` (0 if none).
    pub async fn find(js: &Context, stream: &str, position: u64) -> anyhow::Result<Found> {
        let info = crate::streams::info(js, stream)
            .await
            .map_err(|e| anyhow::anyhow!("looking up stream {stream}: {e}"))?;
        let last = info.state.last_sequence;
        Ok(Found {
            incarnation: Incarnation {
                stream: stream.to_owned(),
                created_unix_ns: info.created.unix_timestamp_nanos(),
            },
            started_over_at: (last < position).then_some(last),
        })
    }

    /// What identifies this life of the stream, to store with a reader's
    /// position: its creation time in nanoseconds.
    pub fn key(&self) -> String {
        self.created_unix_ns.to_string()
    }

    /// Whether the stream under this name is another one now. False while
    /// it cannot be looked up (missing right now, the broker away): the
    /// reader's consumer waits then, and the next look tells.
    pub async fn replaced(&self, js: &Context) -> bool {
        match Incarnation::find(js, &self.stream, 0).await {
            Ok(now) => now.incarnation != *self,
            Err(_) => false,
        }
    }
}

/// A timer for [`Incarnation::replaced`] looks, first due after one period.
pub fn check_timer() -> tokio::time::Interval {
    interval_after(CHECK_EVERY)
}

/// A timer that first fires one `period` from now, then every `period`; a
/// tick missed while busy is not made up for in a burst.
pub fn interval_after(period: Duration) -> tokio::time::Interval {
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    timer
}
