//! Chaos tests for Bazaar: faults injected under a sustained, mixed order
//! load, then `bazaar check --settled --json` must report no violation of
//! the saga's invariants. One test file per fault:
//!
//! - `kill.rs`: kill -9 instances of every service, again and again;
//! - `nats_restart.rs`: kill -9 the single nats-server (file store) and
//!   start it again on the same port and store;
//! - `cluster.rs`: a 3-node cluster with R3 streams; kill -9 one node
//!   (a stream leader), start it again later;
//! - `zombie.rs`: SIGSTOP one instance of each scaled service for longer
//!   than its consumers' ack wait, then SIGCONT;
//! - `redeliver.rs`: publish copies of slices of the event streams again,
//!   in reverse order, so every consumer sees duplicates out of order.
//!
//! This library holds what they share: the load (orders over REST that
//! succeed, are declined, run out of stock or are cancelled), waiting for
//! every order to settle, the invariant check and the summary line. The
//! suite is slow, so it is its own package, left out of `./dev test`; run
//! it with `./dev chaos` (`BAZAAR_CHAOS_ORDERS` orders per test, default
//! 2,000).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bazaar_testkit::api::NewOrder;
use bazaar_testkit::{Service, Shop, ShopBuilder};
use futures::{StreamExt, TryStreamExt};
use uuid::Uuid;

mod check;
pub use check::{check, check_shop, Check};

/// Orders placed at once.
pub const CONCURRENCY: usize = 16;
/// Orders per test unless `BAZAAR_CHAOS_ORDERS` says otherwise.
pub const DEFAULT_ORDERS: usize = 2_000;
/// How long one order may keep being retried while the shop recovers.
const PLACE_LIMIT: Duration = Duration::from_secs(120);
/// How long one HTTP request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A number from the environment, or `default`.
pub fn env_number(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Orders each test places: `BAZAAR_CHAOS_ORDERS`, default 2,000.
pub fn orders_requested() -> usize {
    env_number("BAZAAR_CHAOS_ORDERS", DEFAULT_ORDERS).max(1)
}

/// `target/<profile>/bazaar`, beside this test's `deps` directory.
pub fn bazaar_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("bazaar"))
        .expect("target/<profile>");
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build -p ops-cli`, or `./dev chaos`)",
        bin.display()
    );
    bin
}

/// The shop every chaos test starts from: orders ship at once, and the
/// per-customer rate limit is out of the way (the load is one customer).
pub fn shop_builder() -> ShopBuilder {
    Shop::builder()
        .env_for(Service::Warehouse, "BAZAAR_DISPATCH_DELAY_MS", "0")
        .env_for(Service::Edge, "BAZAAR_RATE_LIMIT_PER_S", "1000000")
        .env_for(Service::Edge, "BAZAAR_RATE_LIMIT_BURST", "1000000")
}

/// What kind of order the i-th one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Succeeds,
    Declined,
    /// Of the scarce product: most of them are rejected for stock.
    OutOfStock,
    /// Cancelled right after it is placed.
    Cancelled,
}

pub fn kind_of(i: usize) -> Kind {
    match i % 10 {
        0 | 5 => Kind::Declined,
        3 | 7 => Kind::Cancelled,
        8 => Kind::OutOfStock,
        _ => Kind::Succeeds,
    }
}

/// The two products the load orders: one with stock for every order, one
/// with stock for a fifth of the orders that ask for it.
#[derive(Debug, Clone, Copy)]
pub struct Products {
    pub plenty: Uuid,
    pub scarce: Uuid,
}

impl Products {
    /// Creates both products and waits (through `js`, the shop's broker)
    /// until every service has taken them in.
    pub async fn stock(shop: &Shop, js: &jetstream::Context, orders: usize) -> Products {
        let plenty = i64::try_from(orders * 2 + 10).expect("stock fits");
        let scarce = i64::try_from(orders / 50 + 1).expect("stock fits");
        let admin = shop.admin_api();
        let products = Products {
            plenty: admin.stocked_product("CHAOS-LAMP", 1999, plenty).await.id,
            scarce: admin.stocked_product("CHAOS-RARE", 4999, scarce).await.id,
        };
        wait_consumers_idle(js, Instant::now() + Duration::from_secs(30)).await;
        products
    }
}

/// The edge(s) the load talks to, with the customer's token; every call
/// survives an edge that is down (it tries the next edge, then again).
#[derive(Debug, Clone)]
pub struct Client {
    edges: Vec<String>,
    token: String,
    http: reqwest::Client,
}

impl Client {
    /// A client of every edge-api instance of `shop`, as customer `chaos`.
    pub fn of(shop: &Shop) -> Client {
        let edges = shop
            .instances()
            .into_iter()
            .filter(|i| i.starts_with(Service::Edge.name()))
            .map(|i| shop.health_url(i))
            .collect();
        Client {
            edges,
            token: shop.customer_token("chaos"),
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()
                .expect("an HTTP client"),
        }
    }

    /// Sends a request to edge `n % edges` (then the next ones, in turn) and
    /// returns the status and body of the first answer that is not a
    /// transport failure, a 5xx or a 429, retrying until `limit`.
    async fn call(
        &self,
        n: usize,
        limit: Duration,
        request: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Option<(u16, serde_json::Value)> {
        let deadline = Instant::now() + limit;
        let mut attempt = 0;
        loop {
            let edge = &self.edges[(n + attempt) % self.edges.len()];
            let sent = request(edge).bearer_auth(&self.token).send().await;
            if let Ok(response) = sent {
                let status = response.status().as_u16();
                if status < 500 && status != 429 {
                    let body = response.json().await.unwrap_or(serde_json::Value::Null);
                    return Some((status, body));
                }
            }
            attempt += 1;
            if Instant::now() >= deadline {
                return None;
            }
            let pause = Duration::from_millis(100 * (attempt as u64).min(10));
            tokio::time::sleep(pause).await;
        }
    }

    /// Places the i-th order (retrying while the shop recovers, with the
    /// same idempotency key) and cancels it if it is of that kind; its id.
    pub async fn place(&self, products: Products, i: usize) -> Option<Uuid> {
        let kind = kind_of(i);
        let (product, token) = match kind {
            Kind::Declined => (products.plenty, "tok_declined"),
            Kind::OutOfStock => (products.scarce, "tok_visa"),
            Kind::Succeeds | Kind::Cancelled => (products.plenty, "tok_visa"),
        };
        let order = NewOrder::of(product, 1, token);
        let key = format!("chaos-{i}");
        let (status, body) = self
            .call(i, PLACE_LIMIT, |edge| {
                self.http
                    .post(format!("{edge}/api/v1/orders"))
                    .header("Idempotency-Key", &key)
                    .json(&order)
            })
            .await?;
        if !matches!(status, 201 | 202) {
            eprintln!("chaos: order {i} refused with {status}: {body}");
            return None;
        }
        let id = body
            .get("id")
            .and_then(|v| v.as_str())
            .and_then(|s| Uuid::parse_str(s).ok())?;
        if kind == Kind::Cancelled {
            self.call(i, PLACE_LIMIT, |edge| {
                self.http.post(format!("{edge}/api/v1/orders/{id}/cancel"))
            })
            .await;
        }
        Some(id)
    }

    /// The order's status as the edge shows it, with the reason of a
    /// rejection (`rejected: timeout`); empty when it cannot say.
    pub async fn status_of(&self, id: Uuid) -> String {
        let answer = self
            .call(0, REQUEST_TIMEOUT, |edge| {
                self.http.get(format!("{edge}/api/v1/orders/{id}"))
            })
            .await;
        match answer {
            Some((200, body)) => {
                let status = body.get("status").and_then(|s| s.as_str());
                match (status, body.get("reason").and_then(|r| r.as_str())) {
                    (Some("rejected"), Some(reason)) => format!("rejected: {reason}"),
                    (status, _) => status.unwrap_or_default().to_owned(),
                }
            }
            _ => String::new(),
        }
    }
}

/// Orders placed in the background, `CONCURRENCY` at a time.
pub struct Load {
    pub requested: usize,
    started: Instant,
    placed: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Uuid>>,
}

impl Load {
    pub fn start(client: &Client, products: Products, orders: usize) -> Load {
        let placed = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (client, placed, done) = (client.clone(), placed.clone(), done.clone());
            async move {
                let ids: Vec<Uuid> = futures::stream::iter(0..orders)
                    .map(|i| {
                        let (client, placed) = (client.clone(), placed.clone());
                        async move {
                            let id = client.place(products, i).await;
                            placed.fetch_add(1, Ordering::Relaxed);
                            id
                        }
                    })
                    .buffer_unordered(CONCURRENCY)
                    .filter_map(|id| async move { id })
                    .collect()
                    .await;
                done.store(true, Ordering::SeqCst);
                ids
            }
        });
        Load {
            requested: orders,
            started: Instant::now(),
            placed,
            done,
            task,
        }
    }

    /// Whether every order has been placed (or given up on).
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }

    /// Orders answered so far (placed or given up on).
    pub fn answered(&self) -> usize {
        self.placed.load(Ordering::Relaxed)
    }

    /// Waits until `fraction` of the orders have been answered (at most
    /// `within`), so faults land in the middle of the load.
    pub async fn wait_for_fraction(&self, fraction: f64, within: Duration) {
        let target = (self.requested as f64 * fraction) as usize;
        let deadline = Instant::now() + within;
        while self.answered() < target && !self.is_done() {
            assert!(
                Instant::now() < deadline,
                "only {} of {} orders answered within {within:?}",
                self.answered(),
                self.requested
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The ids of the accepted orders, once the load is over; panics after
    /// `within`.
    pub async fn finish(self, within: Duration) -> (Vec<Uuid>, Duration) {
        let ids = tokio::time::timeout(within, self.task)
            .await
            .unwrap_or_else(|_| panic!("the load did not finish within {within:?}"))
            .expect("the load task");
        assert!(!ids.is_empty(), "no order was accepted");
        (ids, self.started.elapsed())
    }
}

/// How the orders ended, by status (and a rejection's reason).
pub type Outcomes = BTreeMap<String, usize>;

/// Waits until every order is shipped, rejected or cancelled; panics at
/// `deadline` naming how many are not.
pub async fn settle(client: &Client, placed: &[Uuid], deadline: Instant) -> Outcomes {
    let mut pending = placed.to_vec();
    let mut outcomes = Outcomes::new();
    loop {
        let statuses: Vec<(Uuid, String)> = futures::stream::iter(pending)
            .map(|id| async move { (id, client.status_of(id).await) })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        pending = Vec::new();
        for (id, status) in statuses {
            if status == "shipped" || status == "cancelled" || status.starts_with("rejected") {
                *outcomes.entry(status).or_default() += 1;
            } else {
                pending.push(id);
            }
        }
        if pending.is_empty() {
            return outcomes;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} orders unsettled at the deadline, e.g. {}",
            pending.len(),
            placed.len(),
            pending[0]
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Whether every durable consumer on every team's stream has been
/// delivered everything and acknowledged it.
pub async fn consumers_idle(js: &jetstream::Context) -> bool {
    for team in contracts::Team::ALL {
        let Ok(stream) = js.get_stream(team.stream()).await else {
            return false;
        };
        let infos: Result<Vec<_>, _> = stream.consumers().try_collect().await;
        let Ok(infos) = infos else {
            return false;
        };
        let busy = infos.iter().any(|i| {
            i.config.durable_name.is_some() && (i.num_pending > 0 || i.num_ack_pending > 0)
        });
        if busy {
            return false;
        }
    }
    true
}

/// Waits until [`consumers_idle`]; panics at `deadline`.
pub async fn wait_consumers_idle(js: &jetstream::Context, deadline: Instant) {
    while !consumers_idle(js).await {
        assert!(
            Instant::now() < deadline,
            "some service's consumers are still busy at the deadline"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the history is complete: every service instance's outbox
/// is empty (its `bazaar_outbox_backlog` gauge, refreshed once a second,
/// reads 0) and every durable consumer is idle, twice in a row; panics at
/// `deadline`. An order can show as settled while an event it caused (a
/// capture, an invoice) still waits in an outbox.
pub async fn wait_quiet(shop: &Shop, js: &jetstream::Context, deadline: Instant) {
    let mut quiet_rounds = 0;
    while quiet_rounds < 2 {
        wait_consumers_idle(js, deadline).await;
        let mut backlog = 0.0;
        for instance in shop.instances() {
            if !instance.starts_with(Service::Edge.name()) {
                backlog += metric_sum(shop, instance, "bazaar_outbox_backlog").await;
            }
        }
        if backlog == 0.0 && consumers_idle(js).await {
            quiet_rounds += 1;
        } else {
            quiet_rounds = 0;
        }
        assert!(
            Instant::now() < deadline,
            "the services' outboxes still hold {backlog} events at the deadline"
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
}

/// The sum of a counter over every series an instance's `/metrics` shows.
pub async fn metric_sum(shop: &Shop, instance: &str, name: &str) -> f64 {
    let url = format!("{}/metrics", shop.health_url(instance));
    let text = match reqwest::get(&url).await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The figures one chaos test reports, on one line.
#[derive(Debug)]
pub struct Summary<'a> {
    pub test: &'a str,
    pub requested: usize,
    pub placed: usize,
    pub outcomes: Outcomes,
    pub faults: String,
    /// From the end of the last fault until every order had settled and
    /// the shop was quiet ([`wait_quiet`], which adds about two seconds).
    pub recovered_in: Duration,
    pub load_took: Duration,
    pub check: Check,
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcomes: Vec<String> = self
            .outcomes
            .iter()
            .map(|(status, n)| format!("{n} {status}"))
            .collect();
        write!(
            f,
            "chaos {}: {} orders requested, {} placed ({}); faults: {}; recovered {:.1}s after \
             the last fault; load took {:.1}s; {} dead letters; bazaar check: {} orders, {} \
             duplicates skipped, {} violations",
            self.test,
            self.requested,
            self.placed,
            outcomes.join(", "),
            self.faults,
            self.recovered_in.as_secs_f64(),
            self.load_took.as_secs_f64(),
            self.check.dead_letters,
            self.check.orders,
            self.check.duplicates,
            self.check.violations
        )
    }
}

/// Messages stored in every team's stream, summed (0 for a stream that
/// cannot be read).
pub async fn stored_events(js: &jetstream::Context) -> u64 {
    let mut total = 0;
    for team in contracts::Team::ALL {
        if let Ok(mut stream) = js.get_stream(team.stream()).await {
            if let Ok(info) = stream.info().await {
                total += info.state.messages;
            }
        }
    }
    total
}
