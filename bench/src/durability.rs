//! `bench durability`: what "acknowledged means durable" costs on this
//! machine, each setting against its faster, less durable peer, in one run:
//!
//! 1. JetStream on one node: publishes of a real event with message ids and
//!    256 acks in flight (the outbox relay's batch), with the server's
//!    default (the OS writes, the server fsyncs every 2 minutes) and with
//!    `sync_interval: always` (fsync before every ack);
//! 2. a service's SQLite database: serial one-row transactions (a handler's
//!    commit: one connection, as every service has), `synchronous=FULL`
//!    (Bazaar's setting) against `NORMAL`;
//! 3. PostgreSQL, if reachable: the same with `synchronous_commit` on
//!    (Bazaar's setting) against off.

use std::time::Instant;

use anyhow::Context as _;
use async_nats::jetstream;
use contracts::Team;
use serde::Serialize;
use sqlx::any::AnyPoolOptions;
use sqlx::Executor;

use crate::broker::{publish_all, Broker};

/// The golden sample of `order.placed`, sent compact as checkout does.
const ORDER_PLACED: &str =
    include_str!("../../contracts/samples/checkout.order.placed.v2/with-contact-email.json");
/// Publish acks awaited at once: the outbox relay's batch.
const WINDOW: usize = 256;

#[derive(Debug, clap::Args)]
pub struct DurabilityArgs {
    /// Events published per broker setting
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(100..=1_000_000))]
    events: u64,
    /// Transactions committed per database setting
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(10..=100_000))]
    commits: u64,
    /// PostgreSQL to measure; skipped when it does not answer
    #[arg(
        long,
        env = "TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
    /// Leave PostgreSQL out
    #[arg(long)]
    no_postgres: bool,
}

/// One setting against its peer: per-second rates and what the durable one costs.
#[derive(Debug, Serialize)]
struct Pair {
    what: &'static str,
    durable: &'static str,
    durable_per_s: f64,
    relaxed: &'static str,
    relaxed_per_s: f64,
    /// durable ÷ relaxed.
    ratio: f64,
}

impl Pair {
    fn new(
        what: &'static str,
        (durable, durable_per_s): (&'static str, f64),
        (relaxed, relaxed_per_s): (&'static str, f64),
    ) -> Pair {
        Pair {
            what,
            durable,
            durable_per_s,
            relaxed,
            relaxed_per_s,
            ratio: durable_per_s / relaxed_per_s,
        }
    }
}

pub async fn run(args: DurabilityArgs) -> anyhow::Result<()> {
    let work = tempfile::tempdir().context("a temporary directory")?;
    let mut pairs = Vec::new();

    eprintln!("JetStream: {} publishes per setting …", args.events);
    let default = publish_rate(&work.path().join("nats-default"), false, args.events).await?;
    let always = publish_rate(&work.path().join("nats-always"), true, args.events).await?;
    pairs.push(Pair::new(
        "JetStream publish, one node",
        ("sync_interval: always", always),
        ("default (2 min)", default),
    ));

    eprintln!("SQLite: {} commits per setting …", args.commits);
    let file = |name: &str| format!("sqlite://{}?mode=rwc", work.path().join(name).display());
    let full = commit_rate(
        &file("full.db"),
        &["PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL"],
        args.commits,
    )
    .await?;
    let normal = commit_rate(
        &file("normal.db"),
        &["PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"],
        args.commits,
    )
    .await?;
    pairs.push(Pair::new(
        "SQLite commit (WAL)",
        ("synchronous=FULL", full),
        ("synchronous=NORMAL", normal),
    ));

    if !args.no_postgres {
        eprintln!("PostgreSQL: {} commits per setting …", args.commits);
        match postgres_pair(&args.postgres_url, args.commits).await {
            Ok(pair) => pairs.push(pair),
            Err(error) => eprintln!("PostgreSQL left out: {error:#}"),
        }
    }

    println!(
        "{:<30} {:<24} {:>12} {:<22} {:>12} {:>8}",
        "what", "durable", "per s", "relaxed", "per s", "ratio"
    );
    for p in &pairs {
        println!(
            "{:<30} {:<24} {:>12.0} {:<22} {:>12.0} {:>8.3}",
            p.what, p.durable, p.durable_per_s, p.relaxed, p.relaxed_per_s, p.ratio
        );
    }
    println!("{}", serde_json::to_string(&pairs)?);
    Ok(())
}

/// Events per second published to the checkout stream, acks awaited in a window.
async fn publish_rate(
    dir: &std::path::Path,
    sync_always: bool,
    events: u64,
) -> anyhow::Result<f64> {
    let payload: serde_json::Value =
        serde_json::from_str(ORDER_PLACED).context("the order.placed sample")?;
    let payload = serde_json::to_vec(&payload).context("encoding the sample")?;
    let broker = Broker::start(dir, sync_always).await?;
    let js = jetstream::new(broker.connect().await?);
    let team = Team::Checkout;
    platform::streams::ensure(&js, platform::streams::event_stream(team, 1)).await?;
    let subject = <contracts::checkout::OrderPlacedV2 as contracts::Event>::SUBJECT;
    let started = Instant::now();
    publish_all(&js, subject, &payload, events, WINDOW).await?;
    Ok(events as f64 / started.elapsed().as_secs_f64())
}

/// Serial one-row transactions per second on one connection set up by `setup`.
async fn commit_rate(
    url: &str,
    setup: &'static [&'static str],
    commits: u64,
) -> anyhow::Result<f64> {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                for statement in setup {
                    conn.execute(*statement).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await
        .with_context(|| {
            format!(
                "connecting to {}",
                url.split('@').next_back().unwrap_or(url)
            )
        })?;
    pool.execute("DROP TABLE IF EXISTS bench_commits").await?;
    pool.execute("CREATE TABLE bench_commits (id TEXT PRIMARY KEY, payload TEXT NOT NULL)")
        .await?;
    let payload = "x".repeat(1_000);
    let started = Instant::now();
    for _ in 0..commits {
        let mut tx = pool.begin().await?;
        sqlx::query("INSERT INTO bench_commits (id, payload) VALUES ($1, $2)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&payload)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    let rate = commits as f64 / started.elapsed().as_secs_f64();
    pool.execute("DROP TABLE bench_commits").await?;
    pool.close().await;
    Ok(rate)
}

async fn postgres_pair(url: &str, commits: u64) -> anyhow::Result<Pair> {
    let on = commit_rate(url, &["SET synchronous_commit TO ON"], commits).await?;
    let off = commit_rate(url, &["SET synchronous_commit TO OFF"], commits).await?;
    Ok(Pair::new(
        "PostgreSQL commit",
        ("synchronous_commit=on", on),
        ("synchronous_commit=off", off),
    ))
}
