//! How the operators' commands find the shop's broker: `--nats-url` (with
//! `--nats-user`/`--nats-password`) when given, otherwise the `up.json`
//! that `bazaar up` writes into its data directory, which names the broker
//! and the `ops` user's credentials.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::{Client, ConnectErrorKind, ConnectOptions};
use serde::Deserialize;

use crate::exit;

/// How long connecting may take before the shop counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the shop is (flags shared by `streams`, `tail`, `replay`, `dlq`).
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// The shop's data directory; its up.json (written by `bazaar up`) names
    /// the broker and the ops user's password
    #[arg(long, env = "BAZAAR_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// The NATS server, instead of the one in <data-dir>/up.json
    #[arg(long, env = "NATS_URL", value_name = "URL", global = true)]
    pub nats_url: Option<String>,
    /// NATS user for --nats-url (the shop's `ops` user may do everything)
    #[arg(long, env = "NATS_USER", global = true)]
    pub nats_user: Option<String>,
    /// NATS password for --nats-url (prefer the environment variable: a flag shows in `ps`)
    #[arg(long, env = "NATS_PASSWORD", hide_env_values = true, global = true)]
    pub nats_password: Option<String>,
}

/// The part of `up.json` these commands need.
#[derive(Deserialize)]
struct UpJson {
    nats_url: String,
    nats_user: String,
    nats_password: String,
}

/// Connects to the NATS server(s) at `url` (a comma-separated list for a
/// cluster) as `login`, or fails with exit code 2 (refused: the user or
/// password) or 3 (no answer; `hint` says what to check).
pub async fn reach(url: &str, login: Option<(&str, &str)>, hint: &str) -> anyhow::Result<Client> {
    let mut options = ConnectOptions::new()
        .name("bazaar")
        .connection_timeout(CONNECT_TIMEOUT);
    if let Some((user, password)) = login {
        // The operators' inbox prefix, into which the services may
        // answer from any connection: a replay's report still arrives
        // when the broker restarted while it ran (nats/users.conf).
        if user == platform::nats::OPS_USER {
            options = options.custom_inbox_prefix(platform::nats::inbox_prefix(user));
        }
        options = options.user_and_password(user.to_owned(), password.to_owned());
    }
    // async-nats reads one URL per string: a cluster's comma-separated
    // list (compose's `NATS_URL`) must be split into a list of servers.
    let servers: Vec<&str> = url.split(',').map(str::trim).collect();
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect(servers)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e))
            if matches!(
                e.kind(),
                ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::ServerParse
            ) =>
        {
            Err(exit::usage(format!("NATS at {url}: {e}")))
        }
        Ok(Err(e)) => Err(exit::unreachable(format!(
            "cannot reach NATS at {url}: {e} ({hint})"
        ))),
        Err(_) => Err(exit::unreachable(format!(
            "NATS at {url} did not answer within {CONNECT_TIMEOUT:?} ({hint})"
        ))),
    }
}

struct Target {
    url: String,
    user: Option<String>,
    password: Option<String>,
}

impl ConnectArgs {
    /// Connects, or fails with exit code 2 (nothing says where the shop is)
    /// or 3 (it does not answer).
    pub async fn connect(&self) -> anyhow::Result<Client> {
        let target = self.target()?;
        let user = target.password.as_ref().map(|_| {
            target
                .user
                .clone()
                .unwrap_or_else(|| platform::nats::OPS_USER.to_owned())
        });
        reach(
            &target.url,
            user.as_deref().zip(target.password.as_deref()),
            "is the shop running?",
        )
        .await
    }

    fn target(&self) -> anyhow::Result<Target> {
        if let Some(url) = &self.nats_url {
            return Ok(Target {
                url: url.clone(),
                user: self.nats_user.clone(),
                password: self.nats_password.clone(),
            });
        }
        let up = read_up_json(&self.data_dir)?;
        Ok(Target {
            url: up.nats_url,
            user: Some(up.nats_user),
            password: Some(up.nats_password),
        })
    }
}

fn read_up_json(data_dir: &Path) -> anyhow::Result<UpJson> {
    let path = data_dir.join("up.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(exit::usage(format!(
                "no shop found: {} does not exist; start one with `bazaar up --data-dir {}`, \
                 or pass --nats-url (and --nats-user/--nats-password)",
                path.display(),
                data_dir.display()
            )))
        }
        Err(e) => {
            return Err(anyhow::Error::new(e))
                .with_context(|| format!("cannot read {}", path.display()))
                .map_err(|e| exit::usage(format!("{e:#}")))
        }
    };
    serde_json::from_str(&text).map_err(|e| {
        exit::usage(format!(
            "{} is not what `bazaar up` writes: {e}",
            path.display()
        ))
    })
}
