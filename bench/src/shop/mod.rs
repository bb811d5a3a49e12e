//! `bench shop`: the whole shop measured against the broker's own ceiling,
//! in one run on one machine.
//!
//! 1. The ceiling: JetStream publish + pull-consume with acks of a real
//!    `order.placed` envelope, through a broker started as `bazaar up`
//!    starts it (`ceiling.rs`).
//! 2. The shop: `bazaar up` from the release binaries, `bazaar seed`, then
//!    `bazaar load` at the highest rate it reaches and at about half of it.
//!    Events/s are the messages added to the four `EVT_*` streams during a
//!    run over its wall time; latency is load's POST→settled, and the
//!    saga's own order.placed → order.confirmed by the events' times.
//! 3. The edge's reads against an axum hello-world (`edge.rs`).
//!
//! Progress goes to stderr, a table to stdout, and the last line of stdout
//! is one JSON object with every figure.

mod ceiling;
mod edge;
mod reads;
mod report;
mod running;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context as _};
use contracts::Team;
use serde::Deserialize;
use serde_json::json;

use running::RunningShop;

#[derive(Debug, clap::Args)]
pub struct ShopArgs {
    /// Fewer messages and orders, shorter runs: done within 3 minutes.
    #[arg(long)]
    pub quick: bool,
    /// Orders in flight for the maximum rate; a quarter and a half of it
    /// are tried too, and the fastest of the three counts.
    #[arg(long, default_value_t = 128)]
    concurrency: u16,
    /// Keep-alive clients for the read benchmark.
    #[arg(long, default_value_t = 16)]
    read_clients: usize,
    /// Only the edge's reads against hello-world (step 3): a shop, its
    /// demo catalog and one order, no ceiling and no load; ~30 s.
    #[arg(long)]
    reads_only: bool,
    /// With --reads-only: place orders (`bazaar load`, this many in
    /// flight) while the edge is read, so its views keep changing.
    #[arg(long, requires = "reads_only")]
    reads_under_load: Option<u16>,
    /// Seconds each read target is driven (default 3 with --quick or
    /// --reads-only, else 10).
    #[arg(long)]
    read_secs: Option<f64>,
}

/// How long each part runs, by mode.
struct Plan {
    ceiling_messages: u64,
    load_secs: f64,
    read_secs: f64,
}

/// The part of `bazaar load --json` the benchmark reads.
#[derive(Debug, Deserialize)]
struct LoadReport {
    settled: u64,
    elapsed_s: f64,
    settled_per_s: f64,
    latency_ms: LoadLatency,
    #[serde(default)]
    statuses: BTreeMap<String, u64>,
    /// With --rate: orders that started behind the schedule.
    #[serde(default)]
    late: u64,
}

#[derive(Debug, Deserialize)]
struct LoadLatency {
    settle: Option<Percentiles>,
    /// order.placed → order.confirmed by the events' own times (the saga
    /// without HTTP, the edge's view and the updates stream).
    #[serde(default)]
    saga: Option<Percentiles>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
}

impl Percentiles {
    /// Shown when a run has no such figure.
    const NONE: Percentiles = Percentiles {
        p50: f64::NAN,
        p90: f64::NAN,
        p99: f64::NAN,
    };
}

/// One measured load run.
struct RateRun {
    concurrency: u16,
    /// Orders started per second on a schedule (`--rate`); `None` when each
    /// started as soon as one settled.
    rate: Option<f64>,
    orders: u64,
    report: LoadReport,
    events: u64,
    /// Cores each process of the shop kept busy during the run.
    cores: BTreeMap<String, f64>,
}

impl RateRun {
    fn events_per_s(&self) -> f64 {
        self.events as f64 / self.report.elapsed_s.max(1e-3)
    }
    /// POST → settled, as the customer saw it.
    fn latency(&self) -> Percentiles {
        self.report.latency_ms.settle.unwrap_or(Percentiles::NONE)
    }
    /// order.placed → order.confirmed, by the events' times.
    fn saga_latency(&self) -> Percentiles {
        self.report.latency_ms.saga.unwrap_or(Percentiles::NONE)
    }
    fn json(&self) -> serde_json::Value {
        let l = self.latency();
        let saga = self.saga_latency();
        json!({
            "concurrency": self.concurrency,
            "rate": self.rate.map(round),
            "late": self.report.late,
            "orders": self.orders,
            "settled": self.report.settled,
            "statuses": self.report.statuses,
            "seconds": round(self.report.elapsed_s),
            "orders_per_s": round(self.report.settled_per_s),
            "events": self.events,
            "events_per_s": round(self.events_per_s()),
            "p50_ms": l.p50, "p90_ms": l.p90, "p99_ms": l.p99,
            "saga_p50_ms": saga.p50, "saga_p90_ms": saga.p90, "saga_p99_ms": saga.p99,
            "cores": self.cores,
        })
    }
}

pub async fn run(args: ShopArgs) -> anyhow::Result<()> {
    // Ctrl-C drops the run, and with it the shop (which then stops).
    tokio::select! {
        result = measure(&args) => result,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    }
}

async fn measure(args: &ShopArgs) -> anyhow::Result<()> {
    if args.reads_only {
        let secs = args.read_secs.unwrap_or(3.0);
        return reads::only(args.read_clients, secs, args.reads_under_load).await;
    }
    let mut plan = if args.quick {
        Plan {
            ceiling_messages: 100_000,
            load_secs: 12.0,
            read_secs: 3.0,
        }
    } else {
        Plan {
            ceiling_messages: 500_000,
            load_secs: 40.0,
            read_secs: 10.0,
        }
    };
    if let Some(secs) = args.read_secs {
        plan.read_secs = secs;
    }
    let bin_dir = running::bin_dir()?;
    let work = tempfile::Builder::new()
        .prefix("bazaar-bench-shop-")
        .tempdir()
        .context("a temp dir")?;

    let before = measure_ceiling(&work.path().join("before"), plan.ceiling_messages).await?;

    let data_dir = work.path().join("shop");
    let shop = {
        let (bin_dir, data_dir) = (bin_dir.clone(), data_dir.clone());
        tokio::task::spawn_blocking(move || RunningShop::start(&bin_dir, &data_dir))
            .await
            .context("the start task")??
    };
    eprintln!("shop: up at {}", shop.up.http_url);
    shop.bazaar(
        &["seed", "--stock", "100000000", "--json"],
        Duration::from_secs(120),
    )
    .await?;
    let nats = async_nats::ConnectOptions::with_user_and_password(
        shop.up.nats_user.clone(),
        shop.up.nats_password.clone(),
    )
    .connect(shop.up.nats_url.clone())
    .await
    .context("connecting to the shop's broker as ops")?;
    let js = async_nats::jetstream::new(nats);

    // Warm up (connections, caches, the databases' first pages) and learn
    // roughly how fast the shop goes, to size the measured runs.
    let warm = load(&shop, &js, 200, args.concurrency, None, 60.0).await?;
    let estimate = warm.report.settled_per_s.max(1.0);
    eprintln!("warm-up: {estimate:.0} orders/s");

    // The highest rate is not always at the most orders in flight (the
    // shop may thrash), so a few concurrencies are tried; the best counts.
    let orders = sized(estimate * plan.load_secs);
    let mut max: Option<RateRun> = None;
    for c in [args.concurrency / 4, args.concurrency / 2, args.concurrency] {
        let run = load(&shop, &js, orders, c.max(1), None, plan.load_secs * 4.0).await?;
        eprintln!(
            "max?: {:.0} orders/s at {} in flight, p99 {:.0} ms, cores {:?}",
            run.report.settled_per_s,
            run.concurrency,
            run.latency().p99,
            run.cores
        );
        if max
            .as_ref()
            .is_none_or(|m| run.report.settled_per_s > m.report.settled_per_s)
        {
            max = Some(run);
        }
    }
    let max = max.context("no load run")?;

    // Half the rate, exactly: orders start on a schedule at half the
    // maximum (`bazaar load --rate`), with the maximum's concurrency as the
    // cap; at half the rate it is seldom reached (`late` counts when it was).
    let target = max.report.settled_per_s / 2.0;
    let half = load(
        &shop,
        &js,
        sized(target * plan.load_secs),
        max.concurrency,
        Some(target),
        plan.load_secs * 4.0,
    )
    .await?;
    eprintln!(
        "half: {:.0} orders/s started at {target:.0}/s ({} late), p99 {:.0} ms",
        half.report.settled_per_s,
        half.report.late,
        half.latency().p99
    );

    // The edge's reads against hello-world.
    let (hello, products, orders_read) =
        reads::measure(&shop, args.read_clients, plan.read_secs, None).await?;
    let rss = shop.peak_rss_mib();
    drop(shop);
    let after = measure_ceiling(&work.path().join("after"), plan.ceiling_messages).await?;
    let ceiling = ceiling::Bracket { before, after };

    report::print(
        &ceiling,
        &max,
        &half,
        (&hello, &products, &orders_read),
        &rss,
    );
    Ok(())
}

async fn measure_ceiling(
    work: &std::path::Path,
    messages: u64,
) -> anyhow::Result<ceiling::Ceiling> {
    eprintln!("ceiling: {messages} messages");
    let ceiling = ceiling::measure(work, messages).await?;
    eprintln!(
        "ceiling: {:.0} events/s published and consumed ({} B each; publish alone {:.0}/s)",
        ceiling.events_per_s, ceiling.payload_bytes, ceiling.publish_per_s
    );
    Ok(ceiling)
}

/// Orders for a run: enough to measure, few enough to stay bounded.
fn sized(orders: f64) -> u64 {
    (orders.round() as u64).clamp(100, 100_000)
}

/// One `bazaar load` run, with the events it caused counted in the streams.
async fn load(
    shop: &RunningShop,
    js: &async_nats::jetstream::Context,
    orders: u64,
    concurrency: u16,
    rate: Option<f64>,
    timeout_secs: f64,
) -> anyhow::Result<RateRun> {
    settle_streams(js).await?;
    let before = stream_heads(js).await?;
    let cpu_before = shop.cpu_seconds();
    let client_before = reaped_children_cpu_seconds();
    let orders_arg = orders.to_string();
    let concurrency_arg = concurrency.to_string();
    let timeout_arg = format!("{}s", timeout_secs.ceil() as u64);
    let rate_arg = rate.map(|r| format!("{r:.3}"));
    let mut load_args = vec![
        "load",
        "--orders",
        &orders_arg,
        "--concurrency",
        &concurrency_arg,
        "--timeout",
        &timeout_arg,
        "--json",
    ];
    if let Some(rate) = &rate_arg {
        load_args.extend(["--rate", rate]);
    }
    let stdout = shop
        .bazaar(&load_args, Duration::from_secs_f64(timeout_secs + 60.0))
        .await?;
    let after = stream_heads(js).await?;
    let cpu_after = shop.cpu_seconds();
    let client = reaped_children_cpu_seconds() - client_before;
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("bazaar load printed no JSON")?;
    let report: LoadReport = serde_json::from_str(line).context("parsing bazaar load's JSON")?;
    let mut cores: BTreeMap<String, f64> = cpu_after
        .iter()
        .filter_map(|(name, after)| {
            let used = after - cpu_before.get(name)?;
            Some((name.clone(), round(used / report.elapsed_s.max(1e-3))))
        })
        .collect();
    cores.insert(
        "bazaar-load (client)".to_owned(),
        round(client / report.elapsed_s.max(1e-3)),
    );
    Ok(RateRun {
        concurrency,
        rate,
        orders,
        report,
        events: after.saturating_sub(before),
        cores,
    })
}

/// CPU seconds of this process's children that have exited and been
/// waited for (`cutime` + `cstime`): across one `bazaar load`, its own.
fn reaped_children_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<f64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // cutime and cstime are the 16th and 17th fields; USER_HZ is 100.
    (fields.get(13).copied().unwrap_or(0.0) + fields.get(14).copied().unwrap_or(0.0)) / 100.0
}

/// The sum of the last sequences of the four event streams.
async fn stream_heads(js: &async_nats::jetstream::Context) -> anyhow::Result<u64> {
    let mut sum = 0;
    for team in Team::ALL {
        let mut stream = js
            .get_stream(team.stream())
            .await
            .with_context(|| format!("stream {}", team.stream()))?;
        let info = stream
            .info()
            .await
            .with_context(|| format!("stream info of {}", team.stream()))?;
        sum += info.state.last_sequence;
    }
    Ok(sum)
}

/// Waits (at most 30 s) until no event was added for a second, so that the
/// tail of one run (dispatches, captures) is not counted in the next.
async fn settle_streams(js: &async_nats::jetstream::Context) -> anyhow::Result<()> {
    let mut last = stream_heads(js).await?;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = stream_heads(js).await?;
        if now == last {
            return Ok(());
        }
        last = now;
    }
    eprintln!("bench: the streams were still growing after 30 s; measuring anyway");
    Ok(())
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
