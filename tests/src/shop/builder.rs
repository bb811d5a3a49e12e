//! Choosing what a [`Shop`] runs, and starting it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use platform::nats_server::random_password;

use super::{Broker, Instance, Service, Shop};
use crate::process::ServiceProcess;
use crate::{Backend, TestDb, TestNats};

/// Chooses what a [`Shop`] runs; see [`Shop::builder`].
#[derive(Debug, Clone)]
pub struct ShopBuilder {
    services: Vec<Service>,
    scale: BTreeMap<Service, usize>,
    shards: usize,
    default_db: Backend,
    db: BTreeMap<Service, Backend>,
    env: Vec<(Option<Service>, String, String)>,
    bin_dir: Option<PathBuf>,
    ready_timeout: Duration,
    external_nats: Option<(String, BTreeMap<String, String>)>,
}

impl ShopBuilder {
    pub(super) fn new() -> ShopBuilder {
        ShopBuilder {
            services: Service::ALL.to_vec(),
            scale: BTreeMap::new(),
            shards: 1,
            default_db: TestDb::default_backend(),
            db: BTreeMap::new(),
            env: Vec::new(),
            bin_dir: None,
            ready_timeout: Duration::from_secs(60),
            external_nats: None,
        }
    }

    /// Run only these services (default: all five).
    pub fn services(mut self, services: impl IntoIterator<Item = Service>) -> Self {
        self.services = services.into_iter().collect();
        self
    }
    /// Run `n` instances of `service` (for product-svc: per shard).
    pub fn scale(mut self, service: Service, n: usize) -> Self {
        self.scale.insert(service, n.max(1));
        self
    }
    /// Run product-svc as `k` shards (`--shard i/k`; no flag when `k` is 1).
    pub fn shards(mut self, k: usize) -> Self {
        self.shards = k.max(1);
        self
    }
    /// The database backend of every service (default: `BAZAAR_TEST_DB`, else SQLite).
    pub fn db(mut self, backend: Backend) -> Self {
        self.default_db = backend;
        self
    }
    /// The database backend of one service.
    pub fn db_for(mut self, service: Service, backend: Backend) -> Self {
        self.db.insert(service, backend);
        self
    }
    /// An extra environment variable for every service (e.g. `BAZAAR_FAULTS`).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((None, key.into(), value.into()));
        self
    }
    /// An extra environment variable for one service.
    pub fn env_for(
        mut self,
        service: Service,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.env.push((Some(service), key.into(), value.into()));
        self
    }
    /// Where the binaries are (default: the target directory of this test).
    pub fn bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = Some(dir.into());
        self
    }
    /// Connect the services to a broker the test runs (e.g. a
    /// [`crate::TestCluster`]: `url` may list several, comma separated)
    /// with these users' passwords, instead of starting one for the shop.
    pub fn external_nats(
        mut self,
        url: impl Into<String>,
        passwords: BTreeMap<String, String>,
    ) -> Self {
        self.external_nats = Some((url.into(), passwords));
        self
    }
    /// How long each instance may take to answer `/readyz` (default 60 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Starts everything and waits until every instance is ready; panics
    /// with the failing instance's log on failure.
    pub async fn start(self) -> Shop {
        self.try_start()
            .await
            .unwrap_or_else(|e| panic!("cannot start the shop: {e:#}"))
    }

    /// Like [`ShopBuilder::start`], returning the error instead of panicking.
    pub async fn try_start(self) -> anyhow::Result<Shop> {
        let bin_dir = match self.bin_dir {
            Some(dir) => dir,
            None => target_bin_dir()?,
        };
        let dir = tempfile::Builder::new()
            .prefix("bazaar-shop-")
            .tempdir()
            .context("cannot create a temp dir")?;
        std::fs::create_dir_all(dir.path().join("logs")).context("cannot create the log dir")?;
        let broker = match self.external_nats {
            Some((url, passwords)) => Broker::External { url, passwords },
            None => Broker::Own(TestNats::start()),
        };
        let jwt_secret = random_password();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .context("http client")?;
        let mut shop = Shop {
            instances: Vec::new(),
            broker,
            dbs: BTreeMap::new(),
            jwt_secret,
            http,
            ready_timeout: self.ready_timeout,
            dir,
        };
        for service in self.services {
            let backend = self.db.get(&service).copied().unwrap_or(self.default_db);
            if backend == Backend::Postgres {
                shop.dbs
                    .insert(service, TestDb::new(Backend::Postgres).await);
            }
            let scale = self.scale.get(&service).copied().unwrap_or(1);
            let count = if service == Service::Product {
                scale * self.shards
            } else {
                scale
            };
            for i in 0..count {
                let instance = format!("{}-{i}", service.name());
                // As in `bazaar up`: one shard needs no flag.
                let args = match service {
                    Service::Product if self.shards > 1 => vec![
                        "--shard".to_owned(),
                        format!("{}/{}", i % self.shards, self.shards),
                    ],
                    _ => Vec::new(),
                };
                let bin = bin_dir.join(service.name());
                if !bin.is_file() {
                    bail!(
                        "{} is missing; run `cargo build --workspace --bins` first",
                        bin.display()
                    );
                }
                let mut env = shop.env_for(service, &instance)?;
                if service == Service::Edge {
                    // As `bazaar up` does: the edge waits for every shard.
                    env.insert("BAZAAR_SEARCH_SHARDS".to_owned(), self.shards.to_string());
                }
                for (only, key, value) in &self.env {
                    if only.is_none_or(|s| s == service) {
                        env.insert(key.clone(), value.clone());
                    }
                }
                let log = shop.dir.path().join("logs").join(format!("{instance}.log"));
                let process = ServiceProcess {
                    instance,
                    bin,
                    args,
                    env,
                    log,
                    child: None,
                };
                shop.instances.push(Instance { service, process });
            }
        }
        let all: Vec<usize> = (0..shop.instances.len()).collect();
        shop.launch(&all).await?;
        Ok(shop)
    }
}

/// The directory cargo puts the workspace binaries in: a test runs as
/// `target/<profile>/deps/<test>-<hash>`, the binaries are in
/// `target/<profile>`. `BAZAAR_BIN_DIR` overrides it.
fn target_bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("BAZAAR_BIN_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().context("cannot find the test executable")?;
    let deps = exe
        .parent()
        .context("the test executable has no directory")?;
    let dir = if deps.ends_with("deps") {
        deps.parent().unwrap_or(deps)
    } else {
        deps
    };
    Ok(dir.to_path_buf())
}
