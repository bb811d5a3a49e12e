//! A nats-server for a benchmark, started the way `bazaar up` starts it:
//! the embedded config and users, one Go processor, a fresh store in
//! `dir`, loopback. The
//! `ops` user's client may do everything.

use std::future::IntoFuture;

use anyhow::Context as _;
use async_nats::jetstream::{self, message::PublishMessage};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use platform::nats_server::{self, NatsServer};

/// A running broker and how to connect to it as `ops`.
pub struct Broker {
    pub server: NatsServer,
    pub password: String,
}

impl Broker {
    /// Starts one; `sync_always` makes JetStream fsync every write before
    /// acknowledging it (`sync_interval: always`) instead of the default
    /// (the OS flushes; the server syncs every 2 minutes).
    pub async fn start(dir: &std::path::Path, sync_always: bool) -> anyhow::Result<Broker> {
        let config = nats_server::write_config(dir).context("writing the broker config")?;
        if sync_always {
            let text = std::fs::read_to_string(&config).context("reading the broker config")?;
            let synced = text.replacen("jetstream {", "jetstream {\n  sync_interval: always", 1);
            anyhow::ensure!(synced != text, "the broker config has no jetstream block");
            std::fs::write(&config, synced).context("writing the broker config")?;
        }
        let mut builder = NatsServer::builder(dir)
            .config_file(config)
            .env("GOMAXPROCS", nats_server::one_machine_go_procs());
        let password = nats_server::random_password();
        for user in nats_server::USERS {
            builder = builder.env(nats_server::password_env_var(user), &password);
        }
        let server = tokio::task::spawn_blocking(move || builder.start())
            .await
            .context("the nats-server start task")?
            .context("starting nats-server")?;
        Ok(Broker { server, password })
    }

    /// A new connection as `ops`.
    pub async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        async_nats::ConnectOptions::with_user_and_password("ops".into(), self.password.clone())
            .connect(self.server.url())
            .await
            .context("connecting as ops")
    }
}

/// Publishes `payload` `count` times to `subject`, each with a fresh
/// message id, with at most `window` acks outstanding; returns once every
/// publish is acknowledged.
pub async fn publish_all(
    js: &jetstream::Context,
    subject: &'static str,
    payload: &[u8],
    count: u64,
    window: usize,
) -> anyhow::Result<()> {
    let mut acks = FuturesUnordered::new();
    for _ in 0..count {
        let message = PublishMessage::build()
            .payload(payload.to_vec().into())
            .message_id(uuid::Uuid::now_v7().to_string());
        let ack = js
            .send_publish(subject, message)
            .await
            .context("publishing")?;
        acks.push(ack.into_future());
        while acks.len() >= window {
            if let Some(ack) = acks.next().await {
                ack.context("publish ack")?;
            }
        }
    }
    while let Some(ack) = acks.next().await {
        ack.context("publish ack")?;
    }
    Ok(())
}
