//! `bazaar seed` and `bazaar load` against the real shop (every service as
//! a process, a real nats-server). `Shop` writes no up.json, so the CLI is
//! pointed at it with `--url`, `--data-dir` (where seed.json goes) and the
//! shop's JWT secret in `BAZAAR_JWT_SECRET`.

use std::collections::BTreeSet;
use std::process::Output;
use std::time::Duration;

use bazaar_testkit::{Service, Shop};
use contracts::subjects::Team;
use serde_json::Value;

const BAZAAR: &str = env!("CARGO_BIN_EXE_bazaar");

async fn start_shop() -> Shop {
    Shop::builder().start().await
}

/// `bazaar <args>` against `shop`, not started yet.
fn command(shop: &Shop, args: &[&str]) -> tokio::process::Command {
    let url = shop.http_url();
    let data_dir = shop.data_dir().display().to_string();
    let mut command = tokio::process::Command::new(BAZAAR);
    command
        .args(args)
        .args(["--url", &url, "--data-dir", &data_dir])
        .env("BAZAAR_JWT_SECRET", shop.jwt_secret())
        // The broker, for seed to wait until every service has the catalog.
        .env("NATS_URL", shop.nats().url())
        .env("NATS_USER", "ops")
        .env("NATS_PASSWORD", shop.nats().password_for("ops"))
        .env_remove("BAZAAR_DATA_DIR");
    command
}

/// Runs `bazaar <args>` against `shop`.
async fn bazaar(shop: &Shop, args: &[&str]) -> Output {
    command(shop, args).output().await.expect("bazaar runs")
}

/// The JSON object a `--json` run printed; panics with its output otherwise.
fn json_of(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "not one JSON object ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn count(value: &Value, field: &str) -> u64 {
    value[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no count {field:?} in {value}"))
}

fn seeded_ids(shop: &Shop) -> BTreeSet<String> {
    let text = std::fs::read_to_string(shop.data_dir().join("seed.json")).expect("seed.json");
    let record: Value = serde_json::from_str(&text).expect("seed.json is JSON");
    record["products"]
        .as_array()
        .expect("products")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_owned())
        .collect()
}

/// `bazaar load <args> --json`, which must exit 0: its report.
async fn load_ok(shop: &Shop, args: &[&str]) -> Value {
    let mut all = vec!["load"];
    all.extend_from_slice(args);
    all.push("--json");
    let output = bazaar(shop, &all).await;
    let report = json_of(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    report
}

/// `bazaar seed` (the demo catalog). It returns once checkout knows the
/// prices too, so orders placed right after it are not refused as naming
/// unknown products.
async fn seed(shop: &Shop) {
    let seeded = bazaar(shop, &["seed"]).await;
    assert!(seeded.status.success(), "{seeded:?}");
}

#[tokio::test]
async fn a_seed_that_fails_keeps_what_an_earlier_seed_recorded() {
    let mut shop = start_shop().await;
    seed(&shop).await;
    let recorded = seeded_ids(&shop);

    // The warehouse is away: every stock cannot be set.
    shop.stop(Service::Warehouse);
    let failed = bazaar(&shop, &["seed", "--json"]).await;

    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    assert_eq!(count(&json_of(&failed), "failed"), 25);
    assert_eq!(seeded_ids(&shop), recorded, "seed.json lost products");
    shop.start(Service::Warehouse).await;
    let again = bazaar(&shop, &["seed", "--json"]).await;
    assert!(again.status.success(), "{again:?}");
    assert_eq!(count(&json_of(&again), "already_present"), 25);
}

#[tokio::test]
async fn seeding_twice_creates_the_catalog_once_and_sets_its_stock() {
    let shop = start_shop().await;

    let first = bazaar(&shop, &["seed", "--json"]).await;
    let first_ids = seeded_ids(&shop);
    let second = bazaar(&shop, &["seed", "--json"]).await;

    assert!(first.status.success(), "{first:?}");
    assert!(second.status.success(), "{second:?}");
    let (first, second) = (json_of(&first), json_of(&second));
    assert_eq!(
        (count(&first, "created"), count(&first, "already_present")),
        (25, 0),
        "{first}"
    );
    assert_eq!(
        (count(&second, "created"), count(&second, "already_present")),
        (0, 25),
        "{second}"
    );
    assert_eq!(count(&second, "stock_set"), 25);
    assert_eq!(count(&second, "failed"), 0);
    assert_eq!(seeded_ids(&shop), first_ids);
    assert_eq!(first_ids.len(), 25);
    // The broker saw 25 products created, not 50.
    let js = async_nats::jetstream::new(shop.nats().connect().await);
    let mut stream = js
        .get_stream(Team::Product.stream())
        .await
        .expect("product stream");
    let info = stream.info().await.expect("stream info");
    assert_eq!(info.state.messages, 25);
    // Each product shows its stock; the sold-out one none.
    let http = reqwest::Client::new();
    let mut available = Vec::new();
    for id in &first_ids {
        let product: Value = http
            .get(format!("{}/api/v1/products/{id}", shop.http_url()))
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("a product");
        available.push(product["available"].as_i64().expect("available"));
    }
    available.sort_unstable();
    assert_eq!(available[0], 0);
    assert!(available[1..].iter().all(|&n| n == 100), "{available:?}");
}

#[tokio::test]
async fn load_settles_every_order_of_a_mix_and_its_counts_add_up() {
    let shop = start_shop().await;
    seed(&shop).await;

    let report = load_ok(
        &shop,
        &[
            "--orders",
            "20",
            "--concurrency",
            "4",
            "--mix",
            "succeed=16,decline=2,out_of_stock=2",
            "--timeout",
            "60s",
        ],
    )
    .await;
    assert_eq!(count(&report, "requested"), 20);
    assert_eq!(count(&report, "placed"), 20, "{report}");
    assert_eq!(count(&report, "settled"), 20, "{report}");
    for field in ["unsettled", "failed", "not_placed"] {
        assert_eq!(count(&report, field), 0, "{field} in {report}");
    }
    let statuses: u64 = report["statuses"]
        .as_object()
        .expect("statuses")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(statuses, 20);
    for (kind, orders) in [("succeed", 16), ("decline", 2), ("out_of_stock", 2)] {
        let figures = &report["kinds"][kind];
        assert_eq!(count(figures, "orders"), orders, "{kind}: {report}");
        assert_eq!(count(figures, "as_expected"), orders, "{kind}: {report}");
    }
    let settle = &report["latency_ms"]["settle"];
    let at = |p: &str| settle[p].as_f64().unwrap_or(-1.0);
    assert!(
        0.0 < at("p50")
            && at("p50") <= at("p90")
            && at("p90") <= at("p99")
            && at("p99") <= at("max"),
        "{settle}"
    );
    // The saga's own placed→confirmed, off the confirmed orders' timelines:
    // inside what the customer waited for (POST sent → settled seen).
    let saga = &report["latency_ms"]["saga"];
    let saga_at = |p: &str| saga[p].as_f64().unwrap_or(-1.0);
    assert!(
        0.0 < saga_at("p50") && saga_at("p50") <= saga_at("max") && saga_at("max") <= at("max"),
        "saga {saga}, settle {settle}"
    );
    assert!(report["settled_per_s"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(report["ok"].as_bool().unwrap_or(false));
}

#[tokio::test]
async fn load_over_the_rate_limit_waits_out_each_429_and_still_settles_every_order() {
    // One customer, 5 requests/s with a burst of 5: the 8 orders ask for 16
    // requests (the POST and the updates stream of each).
    let shop = Shop::builder()
        .env_for(Service::Edge, "BAZAAR_RATE_LIMIT_PER_S", "5")
        .env_for(Service::Edge, "BAZAAR_RATE_LIMIT_BURST", "5")
        .start()
        .await;
    seed(&shop).await;

    let report = load_ok(
        &shop,
        &["--orders", "8", "--concurrency", "1", "--timeout", "60s"],
    )
    .await;
    assert_eq!(count(&report, "settled"), 8, "{report}");
    assert_eq!(count(&report, "failed"), 0, "{report}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    assert!(count(&report, "throttled") > 0, "{report}");
}

#[tokio::test]
async fn load_at_a_rate_starts_orders_on_its_schedule_and_refuses_a_rate_of_zero() {
    let shop = start_shop().await;
    seed(&shop).await;

    // 20 orders at 20/s: the last starts 0.95 s after the first, however
    // fast the shop settles them (8 in flight would take a fraction of that).
    let report = load_ok(
        &shop,
        &["--orders", "20", "--rate", "20", "--concurrency", "8"],
    )
    .await;
    assert_eq!(count(&report, "settled"), 20, "{report}");
    assert_eq!(report["rate"].as_f64(), Some(20.0), "{report}");
    let elapsed = report["elapsed_s"].as_f64().unwrap_or(0.0);
    assert!(elapsed >= 0.95, "took {elapsed} s: {report}");
    assert!(
        report["settled_per_s"].as_f64().unwrap_or(f64::MAX) <= 21.1,
        "{report}"
    );
    assert!(report["late"].as_u64().is_some(), "{report}");

    let refused = bazaar(&shop, &["load", "--orders", "5", "--rate", "0"]).await;
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--rate"), "{stderr}");
    assert!(stderr.contains("more than 0"), "{stderr}");
}

#[tokio::test]
async fn seed_and_load_without_a_shop_exit_with_2_and_say_how_to_start_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().display().to_string();

    for command in ["seed", "load"] {
        let output = tokio::process::Command::new(BAZAAR)
            .args([command, "--data-dir", &data_dir])
            .env_remove("BAZAAR_DATA_DIR")
            .env_remove("BAZAAR_JWT_SECRET")
            .output()
            .await
            .expect("bazaar runs");

        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "no shop found at {data_dir} (up.json missing): start one with `bazaar up` or pass --url"
            )),
            "{command}: {stderr}"
        );
    }
}

#[tokio::test]
async fn seed_against_a_url_nobody_answers_exits_with_3() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");

    let output = tokio::process::Command::new(BAZAAR)
        .args(["seed", "--url", &url])
        .env("BAZAAR_JWT_SECRET", "a".repeat(40))
        .env_remove("BAZAAR_DATA_DIR")
        .output()
        .await
        .expect("bazaar runs");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("no shop answers at {url}")),
        "{stderr}"
    );
}

#[tokio::test]
async fn load_before_seed_exits_with_2_and_says_to_seed_first() {
    let shop = start_shop().await;

    let output = bazaar(&shop, &["load", "--orders", "1"]).await;

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("(seed.json missing): run `bazaar seed` first"),
        "{stderr}"
    );
}

/// A seeded shop's `bazaar load` of hours of orders (20/s), once it has
/// placed a few: only a test's fault ends it.
async fn endless_load(shop: &Shop, extra: &[&str]) -> tokio::process::Child {
    seed(shop).await;
    let mut args = vec![
        "load",
        "--orders",
        "100000",
        "--rate",
        "20",
        "--concurrency",
        "8",
        "--timeout",
        "5m",
    ];
    args.extend_from_slice(extra);
    let load = command(shop, &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("bazaar load starts");
    let streams = shop.streams().await;
    bazaar_testkit::wait_until(Duration::from_secs(30), "load places orders", || async {
        streams.message_count(Team::Checkout.stream()).await >= 3
    })
    .await;
    load
}

#[tokio::test]
async fn load_stops_soon_after_the_shop_goes_away_and_exits_3() {
    let mut shop = start_shop().await;
    let load = endless_load(&shop, &[]).await;

    shop.stop(Service::Edge);
    let output = tokio::time::timeout(Duration::from_secs(90), load.wait_with_output())
        .await
        .expect("load stops within 90 s of the shop going away")
        .expect("load's output");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("stopped answering"), "{stderr}");
    // The orders it did not get to are put down to the shop, not to a
    // --timeout that had not passed.
    assert!(!stderr.contains("--timeout"), "{stderr}");
    assert!(!stderr.contains("within"), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("not placed before the shop stopped answering"),
        "{stdout}"
    );
}

#[tokio::test]
async fn load_interrupted_by_ctrl_c_says_how_far_it_got_and_exits_130() {
    let shop = start_shop().await;
    let load = endless_load(&shop, &["--json"]).await;

    let pid = load.id().expect("load's pid").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let output = tokio::time::timeout(Duration::from_secs(30), load.wait_with_output())
        .await
        .expect("load stops at once on Ctrl-C")
        .expect("load's output");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted after"), "{stderr}");
    assert!(stderr.contains("orders placed"), "{stderr}");
    // --json still ends with one JSON object: the whole report of how far
    // it got, with the same fields as a finished run's.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON object on stdout");
    assert_eq!(report["ended"], "interrupted", "{report}");
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["requested"], 100_000, "{report}");
    for count in ["placed", "settled", "unsettled", "failed", "not_placed"] {
        assert!(report[count].is_u64(), "{count} is in the report: {report}");
    }
    for map in ["latency_ms", "statuses", "errors", "kinds"] {
        assert!(report[map].is_object(), "{map} is in the report: {report}");
    }
    // It stopped starting orders: at 20/s, most of 100,000 were never placed.
    assert!(
        report["not_placed"].as_u64().is_some_and(|n| n > 90_000),
        "{report}"
    );
}
