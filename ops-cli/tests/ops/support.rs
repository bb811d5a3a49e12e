//! What the operators' tests share: running `bazaar` against a shop as the
//! `ops` user, reading the edge's view tables straight from its database
//! (to compare them row for row), and making history to replay.

use std::collections::BTreeMap;
use std::process::{Output, Stdio};
use std::time::Duration;

use bazaar_testkit::api::{NewOrder, Product};
use bazaar_testkit::{wait_until, Api, Service, Shop, Streams};
use contracts::product::ProductUpdatedV1;
use contracts::subjects::PRODUCT_SVC;
use contracts::{Event, Team};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Column, Row};
use uuid::Uuid;

pub const BAZAAR: &str = env!("CARGO_BIN_EXE_bazaar");

/// How long the shop may take to settle after traffic, on a loaded machine.
pub const SETTLE: Duration = Duration::from_secs(60);

/// The edge's view tables and the columns they are sorted by.
const VIEWS: [(&str, &str); 6] = [
    ("product_view", "id"),
    ("availability_view", "product_id"),
    ("basket_view", "customer_id, product_id"),
    ("orders_view", "order_id"),
    ("order_timeline", "order_id, stream, seq"),
    ("invoice_view", "order_id"),
];

/// `bazaar ARGS` against the shop's broker as `ops`, not started yet.
fn command(shop: &Shop, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(BAZAAR);
    command
        .args(args)
        .env_remove("BAZAAR_DATA_DIR")
        .env("NATS_URL", shop.nats().url())
        .env("NATS_USER", "ops")
        .env("NATS_PASSWORD", shop.nats().password_for("ops"))
        .stdin(Stdio::null());
    command
}

/// Starts `bazaar ARGS` against the shop's broker as `ops`, its output
/// into `out` and `err`; killed when the child is dropped.
pub fn spawn_bazaar(
    shop: &Shop,
    args: &[&str],
    out: std::fs::File,
    err: std::fs::File,
) -> tokio::process::Child {
    command(shop, args)
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .expect("bazaar starts")
}

/// Runs `bazaar ARGS` against the shop's broker as `ops`.
pub async fn bazaar(shop: &Shop, args: &[&str]) -> Output {
    command(shop, args).output().await.expect("bazaar runs")
}

/// Runs `bazaar ARGS` with its output going into a pipe whose reader has
/// already gone (`bazaar … | head -0`).
pub async fn bazaar_into_closed_pipe(shop: &Shop, args: &[&str]) -> Output {
    let mut child = command(shop, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bazaar runs");
    drop(child.stdout.take());
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("bazaar ends within a minute")
        .expect("bazaar's output")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code, showing what the command said otherwise.
#[track_caller]
pub fn expect_code(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

/// Stdout as one JSON document, after asserting exit code 0.
#[track_caller]
pub fn json(output: &Output) -> serde_json::Value {
    expect_code(output, 0);
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", stdout(output)))
}

/// The edge's database, read from outside.
pub struct EdgeDb {
    pool: AnyPool,
}

impl EdgeDb {
    pub async fn open(shop: &Shop) -> EdgeDb {
        sqlx::any::install_default_drivers();
        let url = match shop.database_url(Service::Edge) {
            Some(url) => url.to_owned(),
            None => format!(
                "sqlite://{}?mode=ro",
                shop.data_dir().join("edge-api.db").display()
            ),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("the edge's database {url}: {e}"));
        EdgeDb { pool }
    }

    /// Every row of every view table, sorted, one line each: two dumps are
    /// equal exactly when the views are equal byte for byte.
    pub async fn dump(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (table, order) in VIEWS {
            let rows = sqlx::query(&format!("SELECT * FROM {table} ORDER BY {order}"))
                .fetch_all(&self.pool)
                .await
                .unwrap_or_else(|e| panic!("reading {table}: {e}"));
            for row in rows {
                let mut line = table.to_owned();
                for (i, column) in row.columns().iter().enumerate() {
                    let value = match row.try_get::<Option<i64>, _>(i) {
                        Ok(v) => format!("{v:?}"),
                        Err(_) => {
                            format!("{:?}", row.try_get::<Option<String>, _>(i).ok().flatten())
                        }
                    };
                    line.push_str(&format!("|{}={value}", column.name()));
                }
                lines.push(line);
            }
        }
        lines
    }

    /// The edge's checkpoints by projection name.
    pub async fn checkpoints(&self) -> BTreeMap<String, u64> {
        sqlx::query_as::<_, (String, i64)>("SELECT projection, last_seq FROM platform_checkpoint")
            .fetch_all(&self.pool)
            .await
            .expect("checkpoints")
            .into_iter()
            .map(|(name, seq)| (name, u64::try_from(seq).unwrap_or(0)))
            .collect()
    }
}

/// Waits until the services have handled everything and each edge
/// projection's checkpoint is its stream's last sequence.
pub async fn settle(streams: &Streams, edge: &EdgeDb) {
    streams.wait_consumers_idle(SETTLE).await;
    wait_until(
        SETTLE,
        "the edge's projections reach the streams' ends",
        || async {
            let checkpoints = edge.checkpoints().await;
            for team in Team::ALL {
                let mut stream = streams
                    .js()
                    .get_stream(team.stream())
                    .await
                    .expect("stream");
                let last = stream.info().await.expect("info").state.last_sequence;
                let name = format!("edge.{}", team.name());
                if last > 0 && checkpoints.get(&name).copied().unwrap_or(0) < last {
                    return false;
                }
            }
            true
        },
    )
    .await;
}

/// Publishes `n` valid `product.updated` events about `product` (as if
/// product-svc had), the last one naming it `last name`: history to replay.
pub async fn publish_updates(streams: &Streams, product: &Product, n: usize) -> u64 {
    let mut last_seq = 0;
    for i in 1..=n {
        let data = ProductUpdatedV1 {
            product_id: product.id,
            sku: product.sku.clone(),
            name: if i == n {
                "last name".to_owned()
            } else {
                format!("name {i}")
            },
            description: product.description.clone(),
            category: product.category.clone(),
            price: contracts::Money {
                amount_minor: product.price.amount_minor + i as i64,
                currency: product.price.currency.clone(),
            },
            changed: vec!["name".to_owned(), "price".to_owned()],
        };
        last_seq = publish_product_event(streams, data).await;
    }
    last_seq
}

/// Publishes a valid product event as if product-svc had; its sequence.
pub async fn publish_product_event<T: Event>(streams: &Streams, data: T) -> u64 {
    streams.publish_event(PRODUCT_SVC, data).await
}

/// A product with stock, as the edge shows it.
pub async fn stocked(admin: &Api, sku: &str, on_hand: i64) -> Product {
    admin.stocked_product(sku, 1999, on_hand).await
}

/// Places an order of one unit; its id, once the edge accepted it.
pub async fn order(customer: &Api, product: Uuid, token: &str) -> Option<Uuid> {
    let answer = customer
        .place_order(&NewOrder::of(product, 1, token), None)
        .await;
    matches!(answer.status(), 201 | 202).then(|| {
        answer
            .value()
            .get("id")
            .and_then(|v| v.as_str())
            .and_then(|s| Uuid::parse_str(s).ok())
            .unwrap_or_else(|| panic!("an order without an id: {}", answer.text()))
    })
}

/// Waits until each order is in a final state: shipped, rejected or
/// cancelled (nothing more will happen to it).
pub async fn wait_settled(customer: &Api, orders: &[Uuid]) {
    for id in orders {
        wait_until(SETTLE, &format!("order {id} is settled"), || async {
            let answer = customer.order(*id).await;
            answer.status() == 200
                && matches!(
                    answer.value().get("status").and_then(|s| s.as_str()),
                    Some("shipped" | "rejected" | "cancelled")
                )
        })
        .await;
    }
}
