//! `bench search`: how fast a search is answered as the catalog and the
//! number of shards grow.
//!
//! The catalog goes the real way: product and stock events are published
//! to the streams, and K product-svc shards (the service's own `run`, in
//! this process) index them through their ordered consumers. Searches go
//! the real way too: the edge's gatherer publishes each on
//! `qry.product.search`, gathers every shard's answer and merges them. What
//! is not included is the HTTP layer in front of the gatherer.

mod catalog;
mod measure;
mod queries;

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, message::PublishMessage};
use clap::Parser as _;
use contracts::subjects::PRODUCT_SVC;
use contracts::warehouse::StockAdjustedV1;
use contracts::{Envelope, Event, EventContext, Team};
use edge_api::search::{Gatherer, SearchParams};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use platform::nats_server::NatsServer;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use catalog::Rng;
use measure::{concurrent, sequential, Percentiles};

#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// Products in the catalog.
    #[arg(long, default_value_t = 100_000)]
    products: u64,
    /// Shard counts to measure, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    shards: Vec<u32>,
    /// Queries sent one after another, for latency.
    #[arg(long, default_value_t = 2_000)]
    queries: u32,
    /// Clients searching at once, for throughput.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// How long the throughput run lasts, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Percentage of products that get a stock level.
    #[arg(long, default_value_t = 50)]
    stock_percent: u64,
    /// The gatherer's deadline; answers later than this count as partial.
    #[arg(long, default_value_t = 1_000)]
    deadline_ms: u64,
    /// Seed of the catalog and of the queries.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Longest wait for the shards to index the catalog, in seconds.
    #[arg(long, default_value_t = 1_800)]
    index_timeout: u64,
}

/// One line of the results table.
struct Row {
    shards: u32,
    index_secs: f64,
    latency: Percentiles,
    loaded: Percentiles,
    qps: f64,
    partial: u64,
}

pub async fn run(args: SearchArgs) -> anyhow::Result<()> {
    // The shards' own logs, when asked for (`RUST_LOG=info`).
    if std::env::var_os("RUST_LOG").is_some() {
        platform::telemetry::init_logs(platform::config::LogFormat::Text);
    }
    let work = tempfile::Builder::new()
        .prefix("bazaar-bench-")
        .tempdir()
        .context("a temp dir")?;
    let server = NatsServer::builder(work.path().join("nats"))
        .start()
        .context("starting nats-server")?;
    let nats = async_nats::connect(server.url())
        .await
        .context("connecting to NATS")?;
    let js = jetstream::new(nats.clone());
    for team in [Team::Product, Team::Warehouse] {
        platform::streams::ensure(&js, platform::streams::event_stream(team, 1)).await?;
    }

    let started = Instant::now();
    let probe = publish_catalog(&js, &args).await?;
    let published = started.elapsed();
    eprintln!(
        "published {} products (+ stock) in {:.1}s",
        args.products,
        published.as_secs_f64()
    );

    let mut rows = Vec::new();
    for &k in &args.shards {
        let data_dir = work.path().join(format!("shards-{k}"));
        let shards = start_shards(&server.url(), &data_dir, k)?;
        let gatherer = Arc::new(
            Gatherer::new(nats.clone(), k, Duration::from_millis(args.deadline_ms)).await?,
        );
        let started = Instant::now();
        wait_indexed(&gatherer, &shards, &args, &probe).await?;
        let index_secs = started.elapsed().as_secs_f64();
        eprintln!("K={k}: catalog indexed in {index_secs:.1}s");

        let mut rng = Rng::new(args.seed);
        for _ in 0..300 {
            gatherer.search(&queries::next(&mut rng)).await?;
        }
        let (latency, partial) = sequential(&gatherer, &mut rng, args.queries).await?;
        let (loaded, qps, partial_loaded) = concurrent(&gatherer, &args).await?;
        eprintln!(
            "K={k}: p50 {:.2} ms, p99 {:.2} ms, {qps:.0} queries/s",
            latency.p50, latency.p99
        );
        rows.push(Row {
            shards: k,
            index_secs,
            latency,
            loaded,
            qps,
            partial: partial + partial_loaded,
        });
        drop(gatherer);
        stop_shards(shards).await?;
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    print_table(&args, published, &rows);
    Ok(())
}

/// A product with stock, to tell when the warehouse stream is indexed too.
struct Probe {
    sku: String,
    available: i64,
}

/// Publishes the catalog, with a stock level for some products right after
/// their creation, as the warehouse would; returns the last stocked one.
async fn publish_catalog(js: &jetstream::Context, args: &SearchArgs) -> anyhow::Result<Probe> {
    const WINDOW: usize = 4_096;
    let ctx = EventContext::root("bench", None);
    let mut rng = Rng::new(args.seed);
    let mut acks = FuturesUnordered::new();
    let mut probe = None;
    for n in 0..args.products {
        let product = catalog::product(&mut rng, n);
        let id = product.product_id;
        let sku = product.sku.clone();
        acks.push(publish(js, PRODUCT_SVC, product, &ctx).await?.into_future());
        if rng.below(100) < args.stock_percent as usize {
            let on_hand = i64::try_from(rng.below(500)).unwrap_or(0);
            let available = on_hand - i64::try_from(rng.below(10)).unwrap_or(0).min(on_hand);
            let stock = StockAdjustedV1 {
                product_id: id,
                delta: on_hand,
                on_hand,
                available,
            };
            acks.push(
                publish(js, contracts::subjects::WAREHOUSE_SVC, stock, &ctx)
                    .await?
                    .into_future(),
            );
            probe = Some(Probe { sku, available });
        }
        while acks.len() >= WINDOW {
            if let Some(ack) = acks.next().await {
                ack.context("publish ack")?;
            }
        }
    }
    while let Some(ack) = acks.next().await {
        ack.context("publish ack")?;
    }
    probe.context("no product got stock; raise --stock-percent")
}

async fn publish<T: Event>(
    js: &jetstream::Context,
    service: &str,
    data: T,
    ctx: &EventContext,
) -> anyhow::Result<async_nats::jetstream::context::PublishAckFuture> {
    let envelope = Envelope::new(service, data, ctx);
    let message = PublishMessage::build()
        .payload(envelope.to_json().into())
        .message_id(envelope.id.to_string());
    js.send_publish(T::SUBJECT, message)
        .await
        .context("publishing the catalog")
}

struct Shard {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

fn start_shards(url: &str, data_dir: &std::path::Path, k: u32) -> anyhow::Result<Vec<Shard>> {
    std::fs::create_dir_all(data_dir).context("a data dir")?;
    let mut shards = Vec::new();
    for i in 0..k {
        // A database each: instances that start at the same moment race
        // on the migrations of a shared SQLite file, and the benchmark
        // does not use the catalog tables anyway.
        let database = format!(
            "sqlite://{}?mode=rwc",
            data_dir.join(format!("product-svc-{i}.db")).display()
        );
        let args = product_svc::Args::try_parse_from([
            "product-svc",
            "--nats-url",
            url,
            "--database-url",
            &database,
            "--data-dir",
            &data_dir.display().to_string(),
            "--http-addr",
            "127.0.0.1:0",
            "--shard",
            &format!("{i}/{k}"),
        ])
        .context("product-svc arguments")?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(product_svc::run(args, async move {
            let _ = stopped.await;
        }));
        shards.push(Shard { stop, task });
    }
    Ok(shards)
}

async fn stop_shards(shards: Vec<Shard>) -> anyhow::Result<()> {
    for shard in shards {
        let _ = shard.stop.send(());
        shard
            .task
            .await
            .context("a shard panicked")?
            .context("a shard failed")?;
    }
    Ok(())
}

/// Waits until every shard answers with the whole catalog and the probe's
/// stock level, i.e. both streams are indexed.
async fn wait_indexed(
    gatherer: &Gatherer,
    shards: &[Shard],
    args: &SearchArgs,
    probe: &Probe,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(args.index_timeout);
    let all = SearchParams {
        q: String::new(),
        category: None,
        limit: 1,
        offset: 0,
    };
    let stocked = SearchParams {
        q: probe.sku.clone(),
        ..all.clone()
    };
    let mut last_report = Instant::now();
    loop {
        let listed = gatherer.search(&all).await?;
        if listed.missing_shards.is_empty() && listed.total == args.products {
            let found = gatherer.search(&stocked).await?;
            if found.items.first().map(|h| h.available) == Some(probe.available) {
                return Ok(());
            }
        }
        if shards.iter().any(|s| s.task.is_finished()) {
            anyhow::bail!("a shard stopped while indexing (see RUST_LOG=info)");
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "the shards indexed {} of {} products within {}s",
                listed.total,
                args.products,
                args.index_timeout
            );
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "  indexed {} of {} (missing shards: {:?})",
                listed.total, args.products, listed.missing_shards
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn print_table(args: &SearchArgs, published: Duration, rows: &[Row]) {
    println!(
        "\n{} products, published in {:.1}s; {} sequential queries, then {} clients for {}s\n",
        args.products,
        published.as_secs_f64(),
        args.queries,
        args.concurrency,
        args.seconds
    );
    println!("| K | indexed in | p50 | p99 | max | under load p50 | under load p99 | queries/s | partial |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.0} s | {:.2} ms | {:.2} ms | {:.1} ms | {:.2} ms | {:.2} ms | {:.0} | {} |",
            r.shards,
            r.index_secs,
            r.latency.p50,
            r.latency.p99,
            r.latency.max,
            r.loaded.p50,
            r.loaded.p99,
            r.qps,
            r.partial
        );
    }
}
