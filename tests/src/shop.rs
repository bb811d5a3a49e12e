//! The whole shop as real processes, for system tests: a [`TestNats`] and
//! the service binaries, each with the environment `bazaar up` gives it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use contracts::auth::Role;
use contracts::subjects;
use platform::nats_server::free_port;
use tempfile::TempDir;

mod builder;

pub use builder::ShopBuilder;

use crate::process::{stop_all, ServiceProcess};
use crate::{mint_token, TestDb, TestNats};

/// A service binary the shop runs; its name is also its NATS user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Product,
    Checkout,
    Warehouse,
    Finance,
    Edge,
}

impl Service {
    pub const ALL: [Service; 5] = [
        Service::Product,
        Service::Checkout,
        Service::Warehouse,
        Service::Finance,
        Service::Edge,
    ];

    /// The binary, and the NATS user it connects as.
    pub const fn name(self) -> &'static str {
        match self {
            Service::Product => subjects::PRODUCT_SVC,
            Service::Checkout => subjects::CHECKOUT_SVC,
            Service::Warehouse => subjects::WAREHOUSE_SVC,
            Service::Finance => subjects::FINANCE_SVC,
            Service::Edge => subjects::EDGE_API,
        }
    }
}

/// The broker the services connect to: the shop's own, or one a test
/// runs itself (a cluster), see [`ShopBuilder::external_nats`].
#[derive(Debug)]
enum Broker {
    Own(TestNats),
    External {
        url: String,
        passwords: BTreeMap<String, String>,
    },
}

#[derive(Debug)]
struct Instance {
    service: Service,
    process: ServiceProcess,
}

/// A running shop. Every process it started is stopped when it drops.
#[derive(Debug)]
pub struct Shop {
    instances: Vec<Instance>,
    broker: Broker,
    dbs: BTreeMap<Service, TestDb>,
    jwt_secret: String,
    http: reqwest::Client,
    ready_timeout: Duration,
    dir: TempDir,
}

impl Shop {
    pub fn builder() -> ShopBuilder {
        ShopBuilder::new()
    }

    /// The edge's base URL, e.g. `http://127.0.0.1:40123`.
    pub fn http_url(&self) -> String {
        let edge = self.instances.iter().find(|i| i.service == Service::Edge);
        match edge.and_then(|i| i.process.env.get("BAZAAR_HTTP_ADDR")) {
            Some(addr) => format!("http://{addr}"),
            None => panic!("this shop runs no edge-api"),
        }
    }

    /// The health/metrics base URL of one instance, e.g. `checkout-svc-0`.
    pub fn health_url(&self, instance: &str) -> String {
        match self
            .instances
            .iter()
            .find(|i| i.process.instance == instance)
        {
            Some(i) => format!(
                "http://{}",
                i.process
                    .env
                    .get("BAZAAR_HTTP_ADDR")
                    .map_or("", String::as_str)
            ),
            None => panic!("no instance {instance:?} in this shop"),
        }
    }

    /// The name of the service of each instance, e.g. `product-svc`.
    pub(crate) fn service_names(&self) -> Vec<&'static str> {
        self.instances.iter().map(|i| i.service.name()).collect()
    }

    /// The instance names, e.g. `product-svc-0`.
    pub fn instances(&self) -> Vec<&str> {
        self.instances
            .iter()
            .map(|i| i.process.instance.as_str())
            .collect()
    }

    /// The shop's own broker; panics when it runs on an external one.
    pub fn nats(&self) -> &TestNats {
        match &self.broker {
            Broker::Own(nats) => nats,
            Broker::External { url, .. } => panic!("this shop runs on the external broker {url}"),
        }
    }

    pub fn nats_mut(&mut self) -> &mut TestNats {
        match &mut self.broker {
            Broker::Own(nats) => nats,
            Broker::External { url, .. } => panic!("this shop runs on the external broker {url}"),
        }
    }

    /// The data directory every service shares (`BAZAAR_DATA_DIR`).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The `DATABASE_URL` of a service that runs on PostgreSQL.
    pub fn database_url(&self, service: Service) -> Option<&str> {
        self.dbs.get(&service).map(TestDb::url)
    }

    /// The log output of one instance so far (its last 200 lines).
    pub fn log_of(&self, instance: &str) -> String {
        self.instances
            .iter()
            .find(|i| i.process.instance == instance)
            .map(|i| i.process.log_tail(200))
            .unwrap_or_default()
    }

    pub fn admin_token(&self) -> String {
        mint_token(
            &self.jwt_secret,
            "admin",
            Role::Admin,
            Duration::from_secs(3600),
        )
    }

    /// The secret the edge verifies tokens with (`BAZAAR_JWT_SECRET`), for
    /// minting unusual tokens (expired, wrong claims).
    pub fn jwt_secret(&self) -> &str {
        &self.jwt_secret
    }

    pub fn customer_token(&self, customer: &str) -> String {
        mint_token(
            &self.jwt_secret,
            customer,
            Role::Customer,
            Duration::from_secs(3600),
        )
    }

    /// Kills every instance of `service` with SIGKILL, as a crash would.
    pub fn kill(&mut self, service: Service) {
        self.of(service).for_each(|p| p.kill());
    }

    /// Kills one instance (e.g. `product-svc-1`) with SIGKILL.
    pub fn kill_instance(&mut self, instance: &str) {
        self.instances
            .iter_mut()
            .filter(|i| i.process.instance == instance)
            .for_each(|i| i.process.kill());
    }

    /// Freezes one instance with SIGSTOP: it keeps its connections but
    /// answers nothing (a hung process, or a long GC pause).
    pub fn freeze_instance(&mut self, instance: &str) {
        self.signal_instance(instance, nix::sys::signal::Signal::SIGSTOP);
    }

    /// Wakes a frozen instance with SIGCONT.
    pub fn thaw_instance(&mut self, instance: &str) {
        self.signal_instance(instance, nix::sys::signal::Signal::SIGCONT);
    }

    fn signal_instance(&mut self, instance: &str, signal: nix::sys::signal::Signal) {
        let mut found = false;
        for i in self
            .instances
            .iter()
            .filter(|i| i.process.instance == instance)
        {
            i.process.signal(signal);
            found = true;
        }
        assert!(
            found,
            "no instance {instance} in this shop: {:?}",
            self.instances()
        );
    }

    /// Stops every instance of `service` gracefully (SIGTERM, 10 s grace).
    pub fn stop(&mut self, service: Service) {
        stop_all(self.of(service), Duration::from_secs(10));
    }

    /// Starts the instances of `service` that do not run, with the same
    /// environment as before, and waits until they are ready.
    pub async fn start(&mut self, service: Service) {
        let stopped: Vec<usize> = (0..self.instances.len())
            .filter(|&n| {
                self.instances[n].service == service && !self.instances[n].process.is_running()
            })
            .collect();
        if let Err(e) = self.launch(&stopped).await {
            panic!("cannot start {}: {e:#}", service.name());
        }
    }

    /// Sets (`Some`) or removes (`None`) an environment variable of every
    /// instance of `service`, for its next start: e.g. stop a service,
    /// drop its `BAZAAR_FAULTS`, and [`Shop::start`] it again.
    pub fn set_env(&mut self, service: Service, key: &str, value: Option<&str>) {
        for instance in self.instances.iter_mut().filter(|i| i.service == service) {
            match value {
                Some(value) => instance
                    .process
                    .env
                    .insert(key.to_owned(), value.to_owned()),
                None => instance.process.env.remove(key),
            };
        }
    }

    /// Whether any instance of `service` runs (reaping those that exited).
    pub fn is_running(&mut self, service: Service) -> bool {
        self.of(service).any(|p| p.is_running())
    }

    /// Stops every process (the services, then the broker).
    pub fn stop_all(&mut self) {
        stop_all(
            self.instances.iter_mut().map(|i| &mut i.process),
            Duration::from_secs(10),
        );
        if let Broker::Own(nats) = &mut self.broker {
            nats.stop();
        }
    }

    fn of(&mut self, service: Service) -> impl Iterator<Item = &mut ServiceProcess> {
        self.instances
            .iter_mut()
            .filter(move |i| i.service == service)
            .map(|i| &mut i.process)
    }

    /// The environment contract of `bazaar up` (ops-cli/src/up/children.rs).
    fn env_for(
        &self,
        service: Service,
        instance: &str,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let user = service.name();
        let port = free_port().context("cannot find a free port")?;
        let (url, password) = match &self.broker {
            Broker::Own(nats) => (nats.url(), nats.password_for(user).to_owned()),
            Broker::External { url, passwords } => (
                url.clone(),
                passwords
                    .get(user)
                    .with_context(|| format!("the external broker has no password for {user}"))?
                    .clone(),
            ),
        };
        let mut env = BTreeMap::from([
            ("NATS_URL".to_owned(), url),
            ("NATS_USER".to_owned(), user.to_owned()),
            ("NATS_PASSWORD".to_owned(), password),
            (
                "BAZAAR_DATA_DIR".to_owned(),
                self.dir.path().display().to_string(),
            ),
            ("BAZAAR_HTTP_ADDR".to_owned(), format!("127.0.0.1:{port}")),
            ("BAZAAR_LOG_FORMAT".to_owned(), "text".to_owned()),
            ("BAZAAR_INSTANCE".to_owned(), instance.to_owned()),
        ]);
        if service == Service::Edge {
            env.insert("BAZAAR_JWT_SECRET".to_owned(), self.jwt_secret.clone());
        }
        if let Some(db) = self.dbs.get(&service) {
            env.insert("DATABASE_URL".to_owned(), db.url().to_owned());
        }
        Ok(env)
    }

    /// Spawns the given instances and waits until each answers `/readyz`
    /// with 200. An instance that dies because another process took its
    /// port first is given a new port, a few times.
    async fn launch(&mut self, which: &[usize]) -> anyhow::Result<()> {
        for &n in which {
            self.instances[n].process.spawn()?;
        }
        // Twice: an instance found ready before another team's service had
        // created the stream it consumes is ready only once it declared its
        // consumer there, which the second pass sees.
        for _pass in 0..2 {
            for &n in which {
                self.wait_ready(n).await?;
            }
        }
        Ok(())
    }

    async fn wait_ready(&mut self, n: usize) -> anyhow::Result<()> {
        let mut port_retries = 3;
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            let process = &mut self.instances[n].process;
            if let Some(status) = process.exit_status() {
                let tail = process.log_tail(30);
                if port_retries > 0 && tail.contains("in use") {
                    port_retries -= 1;
                    let port = free_port().context("cannot find a free port")?;
                    process
                        .env
                        .insert("BAZAAR_HTTP_ADDR".to_owned(), format!("127.0.0.1:{port}"));
                    process.spawn()?;
                    continue;
                }
                bail!(
                    "{} exited ({status}) before it was ready; its log ends with:\n{tail}",
                    process.instance
                );
            }
            let addr = process
                .env
                .get("BAZAAR_HTTP_ADDR")
                .cloned()
                .unwrap_or_default();
            let ready = self.http.get(format!("http://{addr}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status() == reqwest::StatusCode::OK) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let process = &self.instances[n].process;
                bail!(
                    "{} did not answer GET /readyz with 200 within {:?}; its log ends with:\n{}",
                    process.instance,
                    self.ready_timeout,
                    process.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        stop_all(
            self.instances.iter_mut().map(|i| &mut i.process),
            Duration::from_secs(10),
        );
    }
}
