//! The NATS server the shop runs on: its own, started from the config in
//! `nats/` with a user per service, or an existing one from `--nats-url`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use platform::nats_server::{self, password_env_var, NatsServer, USERS};
use tracing::info;

use super::UpArgs;
use crate::secrets::Secrets;

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
) -> anyhow::Result<Broker> {
    if let Some(url) = &args.nats_url {
        let credentials = match (args.nats_user.clone(), args.nats_password.clone()) {
            (Some(user), Some(password)) => Credentials::Shared { user, password },
            (None, None) => Credentials::Anonymous,
            _ => bail!(
                "--nats-user and --nats-password go together (or NATS_USER and NATS_PASSWORD)"
            ),
        };
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
        .context("nats-server start task")??;
    info!(url = %server.url(), log = %server.log_file().display(), "nats-server started");
    Ok(Broker {
        url: server.url(),
        own: Some(server),
        credentials: Credentials::PerUser(passwords),
    })
}
