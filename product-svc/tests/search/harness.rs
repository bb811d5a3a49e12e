//! The one place these tests set things up: a real nats-server with the
//! real users, events published as the teams publish them, search shards
//! and the edge run in-process, and searches through the edge's gatherer
//! or its HTTP API.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use bazaar_testkit::{wait_for, TestNats};
use clap::Parser;
use contracts::auth::Role;
use contracts::product::{ProductCreatedV1, ProductDiscontinuedV1};
use contracts::search::{shard_of, SearchHit};
use contracts::subjects::{PRODUCT_SVC, WAREHOUSE_SVC};
use contracts::warehouse::StockAdjustedV1;
use contracts::{Envelope, Event, EventContext, Money};
use edge_api::search::{Gatherer, SearchParams, SearchResults};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How long anything may take to become visible before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A broker, a place for data, and the teams' event publishers.
pub struct Bazaar {
    pub nats: TestNats,
    dir: TempDir,
    products: jetstream::Context,
    warehouse: jetstream::Context,
}

/// What a product is made of in these tests.
#[derive(Debug, Clone)]
pub struct NewProduct<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub category: &'a str,
}

impl Bazaar {
    pub async fn start() -> Bazaar {
        // The services' logs, when asked for (`RUST_LOG=info cargo test`).
        if std::env::var_os("RUST_LOG").is_some() {
            platform::telemetry::init_logs(platform::config::LogFormat::Text);
        }
        let nats = TestNats::start();
        let dir = tempfile::Builder::new()
            .prefix("bazaar-search-")
            .tempdir()
            .expect("a temp dir");
        let products = jetstream::new(nats.connect_as(PRODUCT_SVC).await);
        let warehouse = jetstream::new(nats.connect_as(WAREHOUSE_SVC).await);
        // Each stream as its owner declares it: no service may declare
        // another team's stream.
        for (team, owner) in [
            (contracts::Team::Product, &products),
            (contracts::Team::Warehouse, &warehouse),
        ] {
            platform::streams::ensure(owner, platform::streams::event_stream(team, 1))
                .await
                .expect("the event streams");
        }
        Bazaar {
            nats,
            dir,
            products,
            warehouse,
        }
    }

    /// Publishes a product's creation as product-svc would; returns its id.
    pub async fn product(&self, p: NewProduct<'_>) -> Uuid {
        self.product_with_id(Uuid::now_v7(), p).await
    }

    pub async fn product_with_id(&self, id: Uuid, p: NewProduct<'_>) -> Uuid {
        let event = ProductCreatedV1 {
            product_id: id,
            sku: format!("SKU-{}", id.simple()),
            name: p.name.to_owned(),
            description: p.description.to_owned(),
            category: p.category.to_owned(),
            price: Money::eur(1999),
        };
        publish(&self.products, PRODUCT_SVC, event).await;
        id
    }

    pub async fn discontinue(&self, id: Uuid) {
        let event = ProductDiscontinuedV1 {
            product_id: id,
            reason: None,
        };
        publish(&self.products, PRODUCT_SVC, event).await;
    }

    /// Publishes a stock count as warehouse-svc would.
    pub async fn stock(&self, id: Uuid, on_hand: i64, available: i64) {
        let event = StockAdjustedV1 {
            product_id: id,
            delta: on_hand,
            on_hand,
            available,
        };
        publish(&self.warehouse, WAREHOUSE_SVC, event).await;
    }

    /// Starts every shard of a `k`-shard layout with its data in `label`.
    pub async fn shards(&self, k: u32, label: &str) -> Vec<ShardProcess> {
        let mut shards = Vec::new();
        for i in 0..k {
            shards.push(self.shard(&format!("{i}/{k}"), label).await);
        }
        shards
    }

    /// Starts one product-svc instance serving `shard` (e.g. `1/3`) and
    /// waits until it is ready: its index has caught up with both streams.
    /// (One at a time: instances sharing an SQLite file must not run its
    /// migrations at the same moment.)
    pub async fn shard(&self, shard: &str, label: &str) -> ShardProcess {
        let data_dir = self.dir.path().join(label);
        std::fs::create_dir_all(&data_dir).expect("a data dir");
        let database = format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("product-svc.db").display()
        );
        let port = platform::nats_server::free_port().expect("a free port");
        let args = product_svc::Args::try_parse_from([
            "product-svc",
            "--nats-url",
            &self.nats.url(),
            "--nats-user",
            PRODUCT_SVC,
            "--nats-password",
            self.nats.password_for(PRODUCT_SVC),
            "--database-url",
            &database,
            "--data-dir",
            &data_dir.display().to_string(),
            "--http-addr",
            &format!("127.0.0.1:{port}"),
            "--shard",
            shard,
        ])
        .expect("product-svc arguments");
        let (stop, stopped) = oneshot::channel::<()>();
        let name = format!("product-svc {shard} in {label}");
        let task = tokio::spawn(async move {
            let result = product_svc::run(args, async move {
                let _ = stopped.await;
            })
            .await;
            if let Err(error) = &result {
                eprintln!("{name} failed: {error:#}");
            }
            result
        });
        let process = ShardProcess {
            data_dir,
            stop: Some(stop),
            task: Some(task),
        };
        ready(
            &format!("http://127.0.0.1:{port}"),
            &format!("shard {shard}"),
        )
        .await;
        process
    }

    /// The edge's gatherer for `k` shards, connected as the edge.
    pub async fn gatherer(&self, k: u32, deadline: Duration) -> Gatherer {
        Gatherer::new(self.nats.connect_as("edge-api").await, k, deadline)
            .await
            .expect("a gatherer")
    }

    /// Starts edge-api in-process for `k` shards.
    pub async fn edge(&self, k: u32, deadline_ms: u64) -> Edge {
        let data_dir = self.dir.path().join("edge");
        std::fs::create_dir_all(&data_dir).expect("a data dir");
        let port = platform::nats_server::free_port().expect("a free port");
        let secret = platform::nats_server::random_password();
        let database = format!("sqlite://{}?mode=rwc", data_dir.join("edge.db").display());
        let args = edge_api::Args::try_parse_from([
            "edge-api",
            "--nats-url",
            &self.nats.url(),
            "--nats-user",
            "edge-api",
            "--nats-password",
            self.nats.password_for("edge-api"),
            "--database-url",
            &database,
            "--data-dir",
            &data_dir.display().to_string(),
            "--http-addr",
            &format!("127.0.0.1:{port}"),
            "--jwt-secret",
            &secret,
            "--search-shards",
            &k.to_string(),
            "--search-deadline-ms",
            &deadline_ms.to_string(),
        ])
        .expect("edge-api arguments");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(edge_api::run(args, async move {
            let _ = stopped.await;
        }));
        let edge = Edge {
            url: format!("http://127.0.0.1:{port}"),
            secret,
            http: reqwest::Client::new(),
            _stop: stop,
            _task: task,
        };
        ready(&edge.url, "the edge").await;
        edge
    }
}

/// Waits until `/readyz` answers 200.
async fn ready(base_url: &str, what: &str) {
    let http = reqwest::Client::new();
    let url = format!("{base_url}/readyz");
    bazaar_testkit::wait_until(PATIENCE, &format!("{what} is ready"), || async {
        http.get(&url).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;
}

async fn publish<T: Event>(js: &jetstream::Context, service: &str, data: T) {
    let envelope = Envelope::new(service, data, &EventContext::root("test", None));
    let message = PublishMessage::build()
        .payload(envelope.to_json().into())
        .message_id(envelope.id.to_string());
    js.send_publish(T::SUBJECT, message)
        .await
        .expect("publish")
        .await
        .expect("publish ack");
}

/// A product-svc instance running in this test's runtime.
pub struct ShardProcess {
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl ShardProcess {
    /// Stops it gracefully (the index's last batch is committed).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(PATIENCE, task).await {
                Ok(Ok(Ok(()))) => {}
                other => panic!("product-svc did not stop cleanly: {other:?}"),
            }
        }
    }
}

impl Drop for ShardProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// edge-api running in this test's runtime.
pub struct Edge {
    pub url: String,
    secret: String,
    pub http: reqwest::Client,
    _stop: oneshot::Sender<()>,
    _task: JoinHandle<anyhow::Result<()>>,
}

impl Edge {
    pub fn admin_token(&self) -> String {
        bazaar_testkit::mint_token(&self.secret, "admin", Role::Admin, PATIENCE)
    }

    /// `GET /api/v1/products?<query>`: status and JSON body.
    pub async fn search(&self, query: &str) -> (u16, serde_json::Value) {
        let response = self
            .http
            .get(format!("{}/api/v1/products?{query}", self.url))
            .send()
            .await
            .expect("GET /api/v1/products");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }
}

/// A product id that lands on shard `index` of `count`.
pub fn id_on_shard(index: u32, count: u32) -> Uuid {
    loop {
        let id = Uuid::now_v7();
        if shard_of(id, count) == index {
            return id;
        }
    }
}

pub fn params(q: &str, category: Option<&str>, limit: u32, offset: u32) -> SearchParams {
    SearchParams {
        q: q.to_owned(),
        category: category.map(str::to_owned),
        limit,
        offset,
    }
}

pub async fn search(gatherer: &Gatherer, params: &SearchParams) -> SearchResults {
    gatherer.search(params).await.expect("the search is sent")
}

/// Searches until `accept` takes a complete (not partial) result.
pub async fn search_until(
    gatherer: &Gatherer,
    params: &SearchParams,
    what: &str,
    accept: impl Fn(&SearchResults) -> bool,
) -> SearchResults {
    wait_for(PATIENCE, what, || async {
        let results = search(gatherer, params).await;
        (results.missing_shards.is_empty() && accept(&results)).then_some(results)
    })
    .await
}

pub fn names(results: &SearchResults) -> Vec<&str> {
    results.items.iter().map(|h| h.name.as_str()).collect()
}

pub fn ids(hits: &[SearchHit]) -> Vec<Uuid> {
    hits.iter().map(|h| h.product_id).collect()
}
