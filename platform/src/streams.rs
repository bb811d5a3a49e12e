//! Declarative streams and consumers, created or updated idempotently at
//! start-up, each by its owner: a service declares its own team's stream
//! and may create the DLQ; it waits for every other stream it reads to be
//! created by that stream's owner ([`wait_for`]). Names come from `contracts`.

use std::time::Duration;

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::consumer::AckPolicy;
use async_nats::jetstream::context::{
    CreateStreamError, CreateStreamErrorKind, GetStreamErrorKind,
};
use async_nats::jetstream::stream::{Config as StreamConfig, RetentionPolicy, StorageType};
use async_nats::jetstream::{Context, ErrorCode};
use contracts::subjects::{DLQ_STREAM, DLQ_SUBJECTS};
use contracts::Team;
use tokio_util::sync::CancellationToken;

/// Duplicate window of every stream: the outbox relay and the dead-letter
/// path retry with the same `Nats-Msg-Id` inside it.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Largest event the streams accept.
pub const MAX_MESSAGE_SIZE: i32 = 256 * 1024;

/// The stream of one team's events: file storage, history kept for replay.
pub fn event_stream(team: Team, replicas: u8) -> StreamConfig {
    StreamConfig {
        name: team.stream().to_owned(),
        description: Some(format!("events published by the {} team", team.name())),
        subjects: vec![team.event_prefix().to_owned()],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        num_replicas: replicas.into(),
        duplicate_window: DUPLICATE_WINDOW,
        max_message_size: MAX_MESSAGE_SIZE,
        ..Default::default()
    }
}

/// The stream of dead letters of every service (kept 30 days).
pub fn dlq_stream(replicas: u8) -> StreamConfig {
    StreamConfig {
        name: DLQ_STREAM.to_owned(),
        description: Some("messages a consumer could not handle".to_owned()),
        subjects: vec![DLQ_SUBJECTS.to_owned()],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        num_replicas: replicas.into(),
        duplicate_window: DUPLICATE_WINDOW,
        max_age: Duration::from_secs(30 * 24 * 3600),
        ..Default::default()
    }
}

/// Creates or updates a stream. A service calls this only for its own
/// team's stream: its broker user may not create or update any other
/// (`nats/users.conf`).
///
/// An existing stream keeps its replicas when it has more than `config`
/// asks for: operators raise them on a cluster (`bazaar streams apply
/// --replicas 3`), and a service started with the default (1) must not
/// quietly take the copies away.
pub async fn ensure(js: &Context, mut config: StreamConfig) -> anyhow::Result<()> {
    let name = config.name.clone();
    if let Ok(mut existing) = js.get_stream(&name).await {
        if let Ok(info) = existing.info().await {
            let now = info.config.num_replicas;
            if now > config.num_replicas {
                tracing::info!(stream = %name, replicas = now, asked = config.num_replicas,
                    "keeping the stream's replicas");
                config.num_replicas = now;
            }
        }
    }
    declare(&name, || js.create_or_update_stream(config.clone()))
        .await
        .map_err(|e| anyhow::anyhow!("declaring stream {name}: {e}"))?;
    Ok(())
}

/// How many times [`declare`] asks for a stream whose declaration times out.
pub const DECLARE_ATTEMPTS: u32 = 3;

/// Runs a stream declaration, asking again when it times out. A broker
/// busy at start-up (a store being recovered, a loaded machine) can answer
/// after the client's request timeout; declarations are idempotent, so
/// one is asked up to [`DECLARE_ATTEMPTS`] times in all.
async fn declare<T, F, Fut>(name: &str, mut ask: F) -> Result<T, CreateStreamError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CreateStreamError>>,
{
    let mut attempt = 1;
    loop {
        match ask().await {
            Err(e)
                if attempt < DECLARE_ATTEMPTS
                    && matches!(e.kind(), CreateStreamErrorKind::TimedOut) =>
            {
                tracing::warn!(stream = %name, attempt, "declaring the stream timed out; asking again");
                attempt += 1;
            }
            answer => return answer,
        }
    }
}

/// Creates the DLQ stream if it does not exist yet. Every service files
/// dead letters, and services start in any order, so whichever starts
/// first creates it; but no service may change it (its broker user has
/// `STREAM.CREATE.DLQ`, not `STREAM.UPDATE.DLQ`). Creating a stream that
/// exists with the same configuration succeeds; one that exists with
/// another (an older release's) is left as it is, for operators (the `ops`
/// user) to update.
pub async fn ensure_dlq(js: &Context, replicas: u8) -> anyhow::Result<()> {
    match declare(DLQ_STREAM, || js.create_stream(dlq_stream(replicas))).await {
        Ok(_) => Ok(()),
        Err(create) => match js.get_stream(DLQ_STREAM).await {
            Ok(_) => {
                tracing::warn!(stream = DLQ_STREAM, error = %create,
                    "the DLQ stream exists with another configuration; keeping it \
                     (only operators may update it)");
                Ok(())
            }
            Err(_) => Err(anyhow::anyhow!("declaring stream {DLQ_STREAM}: {create}")),
        },
    }
}

/// Every durable consumer the services declare, exactly as they declare it
/// at start-up: one per stream a durable reader reads
/// (`contracts::consumers`), named after the service. For operators'
/// `bazaar streams apply`.
pub fn declared_durables() -> Vec<ConsumerSpec> {
    contracts::consumers::durable_readers()
        .flat_map(|c| {
            c.reads
                .iter()
                .map(|r| ConsumerSpec::new(r.from.stream(), c.service, r.subjects))
        })
        .collect()
}

/// A fresh name for an ordered consumer (a view, a replay, a search feed).
/// Always naming them keeps least privilege enforceable: a create request
/// then names its consumer in the subject, where the broker can refuse
/// another service's durable by name; an unnamed create
/// (`$JS.API.CONSUMER.CREATE.<stream>`) would carry the name only in its
/// body, and could redefine any consumer of the stream.
pub fn ordered_consumer_name() -> String {
    format!("ordered_{}", uuid::Uuid::new_v4().simple())
}

/// `max_expires` of a long-lived ordered reader (a live view, a search
/// feed). async-nats asks for an idle heartbeat of half a pull's expiry
/// (15 s by default) and recreates an ordered consumer after two missed
/// ones. An ordered consumer is one replica on one node, so when that node
/// of a cluster dies its readers stall until then: 30 s and more by
/// default, 10 s with this.
pub const ORDERED_MAX_EXPIRES: Duration = Duration::from_secs(10);

/// What the broker says of `stream` now (its config, state and creation
/// time), in one request: `get_stream` already fetches it, so asking the
/// handle's `info()` afterwards would be a second round trip.
pub async fn info(
    js: &Context,
    stream: &str,
) -> Result<async_nats::jetstream::stream::Info, async_nats::jetstream::context::GetStreamError> {
    Ok(js.get_stream(stream).await?.cached_info().clone())
}

/// The longest wait between two looks for a stream that does not exist yet.
pub const STREAM_WAIT_MAX_DELAY: Duration = Duration::from_secs(2);

/// Waits until another team's `stream` exists: only its owning team's
/// service creates it, and services start in any order. Looks again with a
/// back-off bounded by [`STREAM_WAIT_MAX_DELAY`], logging why it waits;
/// `absent` runs every time the stream is found missing (a view of a stream
/// that does not exist is empty, and so caught up). Returns false if `stop`
/// is cancelled first.
pub async fn wait_for(
    js: &Context,
    stream: &str,
    stop: &CancellationToken,
    mut absent: impl FnMut(),
) -> bool {
    let mut delay = Duration::from_millis(100);
    let mut attempts: u32 = 0;
    loop {
        if stop.is_cancelled() {
            return false;
        }
        let error = match js.get_stream(stream).await {
            Ok(_) => {
                if attempts > 0 {
                    tracing::info!(stream, attempts, "stream exists now; reading it");
                }
                return true;
            }
            Err(error) => error,
        };
        attempts = attempts.saturating_add(1);
        let missing = matches!(error.kind(),
            GetStreamErrorKind::JetStream(e) if e.error_code() == ErrorCode::STREAM_NOT_FOUND);
        if missing {
            absent();
        }
        // At warn on the first look and about once a minute after, debug in
        // between: a service may wait long for a team not deployed yet.
        if attempts == 1 || attempts.is_multiple_of(30) {
            if missing {
                tracing::warn!(stream, attempts, retry_in = ?delay,
                    "stream does not exist yet; waiting for its owning team's service to create it");
            } else {
                tracing::warn!(stream, attempts, retry_in = ?delay, %error,
                    "cannot look up stream; retrying");
            }
        } else {
            tracing::debug!(stream, attempts, retry_in = ?delay, %error, "still waiting for stream");
        }
        tokio::select! {
            _ = stop.cancelled() => return false,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(STREAM_WAIT_MAX_DELAY);
    }
}

/// A durable pull consumer of one service on one stream.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    pub stream: &'static str,
    /// Durable name: the service's name (from `contracts::subjects::durable`).
    pub durable: String,
    /// The event subjects (with versions) the service handles.
    pub filter_subjects: Vec<String>,
    /// Deliveries before the consumer loop dead-letters a message (the
    /// broker's limit is off, [`ConsumerSpec::config`]).
    pub max_deliver: i64,
    /// How long a delivery may go without word from its consumer (an ack,
    /// or the "still working" the consumer loop sends while a handler takes
    /// long) before it is redelivered: after a crash, how long the dead
    /// instance's deliveries wait. Well below the order timeout (30 s).
    pub ack_wait: Duration,
    /// Delays between attempts after a transient failure (nak with delay).
    pub backoff: Vec<Duration>,
    /// Messages handed out and not yet acknowledged, at most.
    pub max_ack_pending: i64,
    /// Messages per pull.
    pub batch: usize,
    /// Messages handled at once. Events of one aggregate (the CloudEvents
    /// `subject`) always go to the same lane, so they stay in order. A
    /// handler that commits deliveries together (a reaction on SQLite) gets
    /// one lane whatever this says.
    pub lanes: usize,
}

impl ConsumerSpec {
    pub fn new(stream: &'static str, durable: &str, filter_subjects: &[&str]) -> Self {
        ConsumerSpec {
            stream,
            durable: durable.to_owned(),
            filter_subjects: filter_subjects.iter().map(|s| (*s).to_owned()).collect(),
            max_deliver: 6,
            ack_wait: Duration::from_secs(10),
            backoff: vec![
                Duration::from_millis(500),
                Duration::from_secs(2),
                Duration::from_secs(5),
                Duration::from_secs(15),
                Duration::from_secs(30),
            ],
            max_ack_pending: 1000,
            batch: 64,
            lanes: 1,
        }
    }

    /// Handles up to `lanes` aggregates at once.
    pub fn with_lanes(mut self, lanes: usize) -> Self {
        self.lanes = lanes.max(1);
        self
    }

    /// The delay before attempt `delivered + 1`.
    pub fn delay_after(&self, delivered: i64) -> Duration {
        let index = usize::try_from(delivered.saturating_sub(1)).unwrap_or(0);
        self.backoff
            .get(index)
            .or(self.backoff.last())
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }

    pub fn config(&self) -> pull::Config {
        pull::Config {
            durable_name: Some(self.durable.clone()),
            description: Some(format!("{} reading {}", self.durable, self.stream)),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            // The broker's own limit is off: it would stop redelivering a
            // message whose dead letter could not be written (the DLQ
            // missing, the broker away), and the message would be lost. The
            // consumer loop counts deliveries and dead-letters at
            // `max_deliver` itself, and naks when it cannot.
            max_deliver: -1,
            filter_subjects: self.filter_subjects.clone(),
            max_ack_pending: self.max_ack_pending,
            ..Default::default()
        }
    }
}
