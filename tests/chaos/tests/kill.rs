//! Chaos: orders flow over REST while checkout, warehouse and finance (two
//! instances each) are killed with SIGKILL, one random instance every two
//! seconds, and started again. Once every order has settled, `bazaar check
//! --settled --json` must find no violation of the saga's invariants.
//!
//! `BAZAAR_CHAOS_ORDERS` orders (default 300), `BAZAAR_CHAOS_KILLS` kills at
//! most (default 20). Run alone: `./dev chaos`.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bazaar_testkit::api::NewOrder;
use bazaar_testkit::{Api, Service, Shop};
use futures::StreamExt;
use uuid::Uuid;

/// Orders placed at once.
const CONCURRENCY: usize = 16;
/// Between two kills.
const KILL_EVERY: Duration = Duration::from_secs(2);
/// Kills at least this many times, even if the load is done sooner.
const MIN_KILLS: usize = 6;
/// How long every order may take to settle after the last kill.
const SETTLE: Duration = Duration::from_secs(120);
/// How long the whole load may take.
const LOAD_LIMIT: Duration = Duration::from_secs(300);

const KILLED: [Service; 3] = [Service::Checkout, Service::Warehouse, Service::Finance];

fn env_number(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `target/<profile>/bazaar`, beside this test's `deps` directory.
fn bazaar_bin() -> PathBuf {
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

/// What kind of order the i-th one is.
fn token_of(i: usize) -> (&'static str, bool) {
    match i % 10 {
        0 | 5 => ("tok_declined", false),
        3 | 7 => ("tok_visa", true), // cancelled right after placing
        _ => ("tok_visa", false),
    }
}

/// Places one order (retrying a few times while services restart); its id.
async fn place(customer: &Api, product: Uuid, i: usize) -> Option<Uuid> {
    let (token, cancel) = token_of(i);
    for _ in 0..5 {
        let answer = customer
            .place_order(
                &NewOrder::of(product, 1, token),
                Some(&format!("chaos-{i}")),
            )
            .await;
        if matches!(answer.status(), 201 | 202) {
            let id = answer
                .value()
                .get("id")
                .and_then(|v| v.as_str())
                .and_then(|s| Uuid::parse_str(s).ok())?;
            if cancel {
                customer.cancel_order(id).await;
            }
            return Some(id);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

async fn status_of(customer: &Api, id: Uuid) -> String {
    let answer = customer.order(id).await;
    if answer.status() != 200 {
        return String::new();
    }
    answer
        .value()
        .get("status")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_order_settles_without_violations_while_services_are_killed() {
    let orders = env_number("BAZAAR_CHAOS_ORDERS", 300);
    let max_kills = env_number("BAZAAR_CHAOS_KILLS", 20).max(1);
    let bazaar = bazaar_bin();
    let mut shop = Shop::builder()
        .scale(Service::Checkout, 2)
        .scale(Service::Warehouse, 2)
        .scale(Service::Finance, 2)
        .env_for(Service::Warehouse, "BAZAAR_DISPATCH_DELAY_MS", "0")
        .start()
        .await;
    let on_hand = i64::try_from(orders * 2 + 10).expect("stock fits");
    let lamp = shop.stocked_product("CHAOS-1", 1999, on_hand).await;
    let customer = shop.customer_api("chaos");

    // Load: bounded concurrency, in the background.
    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn({
        let (customer, done, product) = (customer.clone(), done.clone(), lamp.id);
        async move {
            let ids: Vec<Uuid> = futures::stream::iter(0..orders)
                .map(|i| {
                    let customer = customer.clone();
                    async move { place(&customer, product, i).await }
                })
                .buffer_unordered(CONCURRENCY)
                .filter_map(|id| async move { id })
                .collect()
                .await;
            done.store(true, Ordering::SeqCst);
            ids
        }
    });

    // Chaos: one random instance of checkout, warehouse or finance at a time.
    let victims: Vec<(Service, String)> = shop
        .instances()
        .into_iter()
        .filter_map(|name| {
            KILLED
                .into_iter()
                .find(|s| name.starts_with(s.name()))
                .map(|s| (s, name.to_owned()))
        })
        .collect();
    assert_eq!(victims.len(), 6, "two instances of each: {victims:?}");
    let mut kills = 0;
    let mut last_kill = Instant::now();
    while kills < max_kills
        && (kills < MIN_KILLS || !done.load(Ordering::SeqCst))
        && started.elapsed() < LOAD_LIMIT
    {
        tokio::time::sleep(KILL_EVERY).await;
        let (service, instance) = &victims[rand::random::<usize>() % victims.len()];
        eprintln!("chaos: kill -9 {instance}");
        shop.kill_instance(instance);
        shop.start(*service).await;
        kills += 1;
        last_kill = Instant::now();
    }
    let placed = tokio::time::timeout(LOAD_LIMIT, load)
        .await
        .expect("the load finishes")
        .expect("the load task");
    assert!(!placed.is_empty(), "no order was accepted");

    // Every order settles.
    let deadline = last_kill + SETTLE;
    let mut pending = placed.clone();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for id in pending {
            let status = status_of(&customer, id).await;
            if !matches!(status.as_str(), "shipped" | "rejected" | "cancelled") {
                still.push(id);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} orders unsettled {SETTLE:?} after the last kill, e.g. {}",
            pending.len(),
            placed.len(),
            pending[0]
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let streams = shop.streams().await;
    streams
        .wait_consumers_idle(deadline.saturating_duration_since(Instant::now()))
        .await;
    let settle_time = last_kill.elapsed();

    // The history keeps every invariant.
    let output = tokio::process::Command::new(&bazaar)
        .args(["check", "--settled", "--json"])
        .env_remove("BAZAAR_DATA_DIR")
        .env("NATS_URL", shop.nats().url())
        .env("NATS_USER", "ops")
        .env("NATS_PASSWORD", shop.nats().password_for("ops"))
        .stdin(Stdio::null())
        .output()
        .await
        .expect("bazaar check runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!(
        "chaos: {} orders requested, {} placed, {kills} kills, settled {settle_time:?} after \
         the last kill, load took {:?}",
        orders,
        placed.len(),
        started.elapsed()
    );
    println!("chaos: bazaar check: {stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("check's output is not JSON ({e}):\n{stdout}\n{stderr}"));
    assert_eq!(
        report["violations"],
        serde_json::json!([]),
        "violations after chaos: {report}"
    );
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let seen = report["orders"].as_u64().unwrap_or(0);
    assert!(seen >= placed.len() as u64, "{report}");
}
