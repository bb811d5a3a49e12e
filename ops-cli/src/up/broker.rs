//! The NATS server the shop runs on: its own, started from the config in
//! `nats/` with a user per service, or an existing one from `--nats-url`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use platform::nats_server::{self, password_env_var, NatsServer, USERS};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use super::lock::DataDirLock;
use super::state::UpState;
use super::UpArgs;
use crate::secrets::Secrets;

/// How often the broker watch looks whether our nats-server still runs.
const BROKER_CHECK_EVERY: Duration = Duration::from_secs(1);
const BROKER_MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Where NATS runs and who each service connects as.
pub struct Broker {
    pub own: Option<NatsServer>,
    pub url: String,
    pub credentials: Credentials,
}

pub enum Credentials {
    /// An external server without auth.
    Anonymous,
    /// An external server: every service uses the given user.
    Shared { user: String, password: String },
    /// Our own server: each service has its own user (`nats/users.conf`).
    PerUser(BTreeMap<String, String>),
}

impl Credentials {
    /// The user and password the service (or `ops`) connects with.
    pub fn of(&self, user: &str) -> Option<(String, String)> {
        match self {
            Credentials::Anonymous => None,
            Credentials::Shared { user, password } => Some((user.clone(), password.clone())),
            Credentials::PerUser(passwords) => {
                passwords.get(user).map(|p| (user.to_owned(), p.clone()))
            }
        }
    }
}

pub async fn start_broker(
    args: &UpArgs,
    data_dir: &Path,
    secrets: &Secrets,
    lock: &DataDirLock,
) -> anyhow::Result<Broker> {
    if let Some(url) = &args.nats_url {
        let credentials = match (args.nats_user.clone(), args.nats_password.clone()) {
            (Some(user), Some(password)) => Credentials::Shared { user, password },
            (None, None) => Credentials::Anonymous,
            _ => bail!(
                "--nats-user and --nats-password go together (or NATS_USER and NATS_PASSWORD)"
            ),
        };
        // Before any service starts: a server that does not answer, or
        // refuses these credentials, is said so at once (exit 3 or 2),
        // not as services that never got ready.
        let login = match &credentials {
            Credentials::Shared { user, password } => Some((user.as_str(), password.as_str())),
            _ => None,
        };
        crate::connect::reach(
            url,
            login,
            "start it, or leave out --nats-url and bazaar up starts its own",
        )
        .await?;
        info!(url, "using the NATS server at --nats-url");
        return Ok(Broker {
            own: None,
            url: url.clone(),
            credentials,
        });
    }
    let dir = data_dir.join("nats");
    let config = nats_server::write_config(&dir)
        .with_context(|| format!("cannot write {}", dir.display()))?;
    let mut builder = NatsServer::builder(&dir)
        .config_file(config)
        .name("bazaar")
        .own_process_group(true)
        .stdin(lock.file()?)
        .env("GOMAXPROCS", nats_server::one_machine_go_procs())
        // Recovering a large JetStream store takes a while.
        .start_timeout(Duration::from_secs(60));
    let mut passwords = BTreeMap::new();
    for user in USERS {
        let password = secrets.password(user)?.to_owned();
        builder = builder.env(password_env_var(user), &password);
        passwords.insert(user.to_owned(), password);
    }
    let server = tokio::task::spawn_blocking(move || builder.start())
        .await
        .context("nats-server start task")?
        .map_err(|e| match e {
            // No usable nats-server binary: a configuration error (exit 2).
            nats_server::NatsServerError::Locate(locate) => crate::exit::usage(locate.to_string()),
            other => other.into(),
        })?;
    info!(url = %server.url(), log = %server.log_file().display(), "nats-server started");
    Ok(Broker {
        url: server.url(),
        own: Some(server),
        credentials: Credentials::PerUser(passwords),
    })
}

/// Restarts our nats-server when it dies, on the same port, store and
/// config, so the services (which reconnect by themselves) carry on.
pub struct BrokerWatch {
    stop: watch::Sender<bool>,
    /// The server back, or None if a restart lost it (its task panicked).
    task: JoinHandle<Option<NatsServer>>,
}

impl BrokerWatch {
    pub fn start(server: NatsServer, state: Arc<UpState>) -> BrokerWatch {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(keep_running(server, state, stopped));
        BrokerWatch { stop, task }
    }

    /// Stops watching and hands the server back (to be stopped).
    pub async fn stop(self) -> Option<NatsServer> {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_else(|e| {
            warn!(error = %e, "the broker watch failed");
            None
        })
    }
}

async fn keep_running(
    mut server: NatsServer,
    state: Arc<UpState>,
    mut stop: watch::Receiver<bool>,
) -> Option<NatsServer> {
    let mut backoff = BROKER_CHECK_EVERY;
    loop {
        tokio::select! {
            _ = stop.changed() => return Some(server),
            () = tokio::time::sleep(backoff) => {}
        }
        if server.is_running() {
            backoff = BROKER_CHECK_EVERY;
            continue;
        }
        warn!(log = %server.log_file().display(), port = server.port(),
            "nats-server exited; restarting it on the same port and store");
        let restarted = tokio::task::spawn_blocking(move || {
            let result = server.restart();
            (server, result)
        })
        .await;
        let result;
        (server, result) = match restarted {
            Ok(done) => done,
            Err(e) => {
                // The server went down with the task: nothing to watch or
                // stop any more (shutdown must not wait on this task).
                error!(error = %e, "the nats-server restart task failed; the broker stays down");
                return None;
            }
        };
        match result {
            Ok(()) => {
                info!(pid = server.pid(), url = %server.url(), "nats-server restarted");
                state.set_nats_pid(server.pid());
                backoff = BROKER_CHECK_EVERY;
            }
            Err(e) => {
                error!(error = %e, "cannot restart nats-server; trying again");
                backoff = (backoff * 2).min(BROKER_MAX_BACKOFF);
            }
        }
    }
}
