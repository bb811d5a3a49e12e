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
