//! Configuration shared by every service: flags with environment fallbacks.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// A value that must never appear in logs (passwords, URLs with credentials).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flags every service binary accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// NATS server URL(s), comma separated.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// NATS user name (defaults to the service's name when a password is given).
    #[arg(long, env = "NATS_USER")]
    pub nats_user: Option<String>,

    /// NATS password.
    #[arg(long, env = "NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<Secret>,

    /// NATS credentials file (JWT + nkey), instead of user and password.
    #[arg(long, env = "NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,

    /// Database URL: `sqlite://path` or `postgres://…`. Default: an SQLite
    /// file named after the service in the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// Directory for local state (SQLite files, indexes).
    #[arg(long, env = "BAZAAR_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Address of the HTTP server (health, metrics; the API for the edge).
    #[arg(long, env = "BAZAAR_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,

    /// Log format.
    #[arg(long, env = "BAZAAR_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Replicas of the streams this service declares (1 on one node, 3 on a cluster).
    #[arg(long, env = "BAZAAR_STREAM_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=5))]
    pub stream_replicas: u8,

    /// A name for this instance in logs and metrics (default: service name and pid).
    #[arg(long, env = "BAZAAR_INSTANCE")]
    pub instance: Option<String>,
}

impl ServiceArgs {
    /// The database URL to use for `service`.
    pub fn database_url_for(&self, service: &str) -> Secret {
        match &self.database_url {
            Some(url) => url.clone(),
            None => {
                let path = self.data_dir.join(format!("{service}.db"));
                Secret::new(format!("sqlite://{}?mode=rwc", path.display()))
            }
        }
    }

    pub fn instance_name(&self, service: &str) -> String {
        self.instance
            .clone()
            .unwrap_or_else(|| format!("{service}-{}", std::process::id()))
    }
}
