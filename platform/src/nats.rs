//! The NATS connection: reconnects forever with back-off, per-service
//! credentials, and connection events in the log (a denied publish shows up
//! only there, as a permissions violation).

use anyhow::Context as _;
use async_nats::{Client, ConnectOptions, Event};

use crate::config::ServiceArgs;

/// The inbox prefix of a broker user: replies and pulled JetStream messages
/// for `user` arrive under it, and `nats/users.conf` lets each user
/// subscribe only to its own, so no service can listen to another's
/// replies or pulls.
pub fn inbox_prefix(user: &str) -> String {
    format!("_INBOX.{user}")
}

/// The operators' broker user (the `bazaar` CLI). Every service may reply
/// into its inbox prefix from any connection (`nats/users.conf`).
pub const OPS_USER: &str = "ops";

pub async fn connect(args: &ServiceArgs, service: &str) -> anyhow::Result<Client> {
    let user = args.nats_user.clone().unwrap_or_else(|| service.to_owned());
    let mut options = ConnectOptions::new()
        .name(service)
        .custom_inbox_prefix(inbox_prefix(&user))
        .retry_on_initial_connect()
        .event_callback(|event| async move {
            match event {
                Event::Connected => tracing::info!("connected to NATS"),
                Event::Disconnected => tracing::warn!("disconnected from NATS"),
                Event::ServerError(error) => tracing::error!(%error, "NATS server error"),
                Event::ClientError(error) => tracing::error!(%error, "NATS client error"),
                Event::SlowConsumer(sid) => tracing::warn!(sid, "slow consumer: messages dropped"),
                other => tracing::info!(event = %other, "NATS event"),
            }
        });
    if let Some(path) = &args.nats_creds {
        options = options
            .credentials_file(path)
            .await
            .with_context(|| format!("reading NATS credentials {}", path.display()))?;
    } else if let Some(password) = &args.nats_password {
        options = options.user_and_password(user, password.expose().to_owned());
    }
    // async-nats reads one URL per string: a cluster's comma-separated list
    // (compose's `NATS_URL`) must be split into a list of servers.
    let servers: Vec<&str> = args.nats_url.split(',').map(str::trim).collect();
    let client = tokio::time::timeout(std::time::Duration::from_secs(30), options.connect(servers))
        .await
        .with_context(|| format!("NATS at {} did not answer within 30 s", args.nats_url))?
        .with_context(|| format!("connecting to NATS at {}", args.nats_url))?;
    Ok(client)
}

/// Whether a client has connected again since a moment. An ordered
/// consumer (a live view, a search feed) lives only in the memory of the
/// broker node that serves it: after that broker restarts, or the client
/// moves to another node of a cluster, the consumer is gone, and async-nats
/// notices only after two missed idle heartbeats (10 s and more with
/// [`crate::streams::ORDERED_MAX_EXPIRES`]), while the view stands still.
/// A reader that asks this every [`RECONNECT_CHECK`] follows again from
/// its checkpoint about a second after the connection is back.
#[derive(Debug)]
pub struct Reconnects {
    stats: std::sync::Arc<async_nats::Statistics>,
    seen: u64,
}

/// How often [`Reconnects::noticed`] reads the connect count: an atomic
/// load, so cheap enough to ask every second.
pub const RECONNECT_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

impl Reconnects {
    /// Counts from now: take it before creating the consumer, so that a
    /// reconnect while it is created counts too.
    pub fn since_now(client: &Client) -> Self {
        let stats = client.statistics();
        let seen = stats.connects.load(std::sync::atomic::Ordering::Relaxed);
        Reconnects { stats, seen }
    }

    /// True once the client has connected again since [`Reconnects::since_now`].
    fn happened(&self) -> bool {
        self.stats
            .connects
            .load(std::sync::atomic::Ordering::Relaxed)
            > self.seen
    }

    /// Resolves once the client has connected again, asking every
    /// [`RECONNECT_CHECK`]. Pin it once, outside a reader's loop: made
    /// again on every message, its timer would never fire.
    pub async fn noticed(&self) {
        let mut timer = crate::started_over::interval_after(RECONNECT_CHECK);
        loop {
            timer.tick().await;
            if self.happened() {
                return;
            }
        }
    }
}
