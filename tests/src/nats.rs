//! A real nats-server per test, with Bazaar's own config and users.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, Context};
use async_nats::{Client, ConnectOptions, Event, ServerError};
use platform::nats_server::{self, NatsServer};
use tempfile::TempDir;
use tokio::sync::mpsc;

/// A nats-server on a free port with a temporary JetStream store, started
/// from `nats/server.conf` and `nats/users.conf` with random passwords, so
/// the permissions a test meets are the real ones. Killed on drop.
#[derive(Debug)]
pub struct TestNats {
    server: NatsServer,
    passwords: BTreeMap<&'static str, String>,
    dir: TempDir,
}

impl TestNats {
    /// Starts a broker with Bazaar's users and permissions.
    pub fn start() -> TestNats {
        Self::try_start(true).unwrap_or_else(|e| panic!("cannot start nats-server: {e:#}"))
    }

    /// Starts a broker without any authentication, for tests of plumbing
    /// where permissions are beside the point.
    pub fn start_without_auth() -> TestNats {
        Self::try_start(false).unwrap_or_else(|e| panic!("cannot start nats-server: {e:#}"))
    }

    fn try_start(auth: bool) -> anyhow::Result<TestNats> {
        let dir = tempfile::Builder::new()
            .prefix("bazaar-nats-")
            .tempdir()
            .context("cannot create a temp dir")?;
        let mut builder = NatsServer::builder(dir.path()).bin(nats_server_bin()?);
        let mut passwords = BTreeMap::new();
        if auth {
            let config = nats_server::write_config(&dir.path().join("config"))
                .context("cannot write the nats config")?;
            builder = builder.config_file(config);
            for user in nats_server::USERS {
                let password = nats_server::random_password();
                builder = builder.env(nats_server::password_env_var(user), &password);
                passwords.insert(user, password);
            }
        }
        let server = builder.start()?;
        Ok(TestNats {
            server,
            passwords,
            dir,
        })
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The directory holding the store (`jetstream/`), config and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The password of one of [`nats_server::USERS`].
    pub fn password_for(&self, user: &str) -> &str {
        match self.passwords.get(user) {
            Some(password) => password,
            None if self.passwords.is_empty() => panic!("this TestNats runs without auth"),
            None => panic!("nats/users.conf defines no user {user:?}"),
        }
    }

    /// Connects as `ops`, who may do everything (anonymously without auth).
    pub async fn connect(&self) -> Client {
        let options = match self.passwords.get("ops") {
            Some(password) => {
                ConnectOptions::with_user_and_password("ops".into(), password.clone())
            }
            None => ConnectOptions::new(),
        };
        self.connect_with(options).await
    }

    /// Connects as `user` with its password.
    pub async fn connect_as(&self, user: &str) -> Client {
        self.connect_with(self.user_options(user)).await
    }

    /// Connects as `user` and also returns the connection's events, where a
    /// refused publish shows up (see NATS-NOTES.md).
    pub async fn connect_as_with_events(&self, user: &str) -> (Client, ConnectionEvents) {
        let (tx, rx) = mpsc::unbounded_channel();
        let options = self.user_options(user).event_callback(move |event| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(event);
            }
        });
        (self.connect_with(options).await, ConnectionEvents { rx })
    }

    /// A service user's options, with the inbox prefix its permissions allow.
    fn user_options(&self, user: &str) -> ConnectOptions {
        ConnectOptions::with_user_and_password(user.to_owned(), self.password_for(user).to_owned())
            .custom_inbox_prefix(platform::nats::inbox_prefix(user))
    }

    async fn connect_with(&self, options: ConnectOptions) -> Client {
        // Reconnect quickly, so tests that restart the broker do not wait
        // through the client's default back-off.
        let options = options
            .connection_timeout(Duration::from_secs(5))
            .reconnect_delay_callback(|attempt| {
                Duration::from_millis((50 * attempt as u64).min(500))
            });
        match options.connect(self.url()).await {
            Ok(client) => client,
            Err(e) => panic!("cannot connect to {}: {e}", self.url()),
        }
    }

    /// Kills the broker with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Err(e) = self.server.kill() {
            panic!("cannot kill nats-server: {e}");
        }
    }

    /// Stops the broker gracefully (SIGTERM).
    pub fn stop(&mut self) {
        if let Err(e) = self.server.stop() {
            panic!("cannot stop nats-server: {e}");
        }
    }

    /// Starts the broker again on the same port and store (killing it first
    /// if it still runs) and waits until it accepts clients.
    pub fn restart(&mut self) {
        if let Err(e) = self.server.restart() {
            panic!("cannot restart nats-server: {e}");
        }
    }

    /// The underlying server, e.g. for its pid or log file.
    pub fn server(&self) -> &NatsServer {
        &self.server
    }

    /// Every user and its password, for handing to service processes.
    pub fn passwords(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.passwords
            .iter()
            .map(|(user, password)| (*user, password.as_str()))
    }
}

/// The connection events of a client from [`TestNats::connect_as_with_events`].
#[derive(Debug)]
pub struct ConnectionEvents {
    rx: mpsc::UnboundedReceiver<Event>,
}

impl ConnectionEvents {
    /// Waits for an event `matches` accepts and returns it; panics naming
    /// `what` after `within`.
    pub async fn wait_for(
        &mut self,
        within: Duration,
        what: &str,
        matches: impl Fn(&Event) -> bool,
    ) -> Event {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(event)) if matches(&event) => return event,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the connection closed before {what}"),
                Err(_) => panic!("no {what} within {within:?}"),
            }
        }
    }

    /// Waits for the broker's `Permissions Violation` error and returns its text.
    pub async fn permission_violation(&mut self, within: Duration) -> String {
        let is_violation = |e: &Event| matches!(e, Event::ServerError(ServerError::Other(text)) if text.contains("Permissions Violation"));
        match self
            .wait_for(within, "permissions violation", is_violation)
            .await
        {
            Event::ServerError(ServerError::Other(text)) => text,
            other => other.to_string(),
        }
    }
}

/// The nats-server binary, located once per test process.
fn nats_server_bin() -> anyhow::Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| nats_server::locate().map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| anyhow!(e))
}
