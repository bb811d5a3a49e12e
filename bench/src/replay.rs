//! `bench replay`: how fast `bazaar replay` rebuilds the edge's catalog
//! projection (`edge.product`), against how fast the very same reader
//! (ordered consumer, reader task, channel; `platform::replay::read_through`)
//! goes through the stream when it applies nothing. Both in one run, over
//! the same stream, so the ratio is what the database costs.
//!
//! The history is synthetic but valid: product events (created, then
//! updates and price changes of those products) published as product-svc
//! would. The replay is the platform's own (`platform::replay::rebuild`,
//! one transaction, the edge's own projector and migrations), in this
//! process, with nothing else writing: what an operator's replay does,
//! minus the NATS request that starts it.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use async_nats::jetstream::{self, message::PublishMessage};
use contracts::product::{ProductCreatedV1, ProductPriceChangedV1, ProductUpdatedV1};
use contracts::subjects::PRODUCT_SVC;
use contracts::{Envelope, Event, EventContext, Money, Team};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use platform::nats_server::NatsServer;
use platform::replay::{Start, Target};
use platform::Secret;
use uuid::Uuid;

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Events in the stream.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// One product per this many events (the rest update them).
    #[arg(long, default_value_t = 10)]
    events_per_product: u64,
    /// The database to replay into (default: a fresh SQLite file).
    #[arg(long, env = "BENCH_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let work = tempfile::Builder::new()
        .prefix("bazaar-bench-replay-")
        .tempdir()
        .context("a temp dir")?;
    let server = NatsServer::builder(work.path().join("nats"))
        .start()
        .context("starting nats-server")?;
    let nats = async_nats::connect(server.url())
        .await
        .context("connecting to NATS")?;
    let js = jetstream::new(nats);
    platform::streams::ensure(&js, platform::streams::event_stream(Team::Product, 1)).await?;

    let started = Instant::now();
    publish(&js, &args).await?;
    eprintln!(
        "published {} events in {:.1}s",
        args.events,
        started.elapsed().as_secs_f64()
    );

    let url = args.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            work.path().join("edge-api.db").display()
        )
    });
    let db = platform::Db::connect(&Secret::new(url)).await?;
    db.migrate(&edge_api::migrations()).await?;
    let spec = edge_api::views::spec(Team::Product);
    let target = Target {
        name: spec.name,
        stream: spec.stream,
        filter_subjects: spec.filter_subjects,
        projector: Arc::new(edge_api::views::TeamProjector(Team::Product)),
    };

    // Warm the broker's cache the same way for both runs.
    platform::replay::read_through(&js, &target, 1, args.events).await?;
    let started = Instant::now();
    let read = tokio::spawn({
        let (js, target) = (js.clone(), target.clone());
        async move { platform::replay::read_through(&js, &target, 1, args.events).await }
    })
    .await
    .context("the read task")??;
    let read_secs = started.elapsed().as_secs_f64();
    let read_rate = read as f64 / read_secs;
    eprintln!("read {read} events in {read_secs:.2}s ({read_rate:.0}/s)");

    // On a runtime worker, as in a service (not on the thread that blocks on
    // the benchmark).
    let started = Instant::now();
    let report =
        tokio::spawn({
            let (js, db) = (js.clone(), db.clone());
            async move {
                platform::replay::rebuild(&js, &db, &[target], &Start::Beginning, &|_| {}).await
            }
        })
        .await
        .context("the replay task")?
        .context("replaying")?;
    let replay_secs = started.elapsed().as_secs_f64();
    let replayed = report.applied + report.skipped;
    let replay_rate = replayed as f64 / replay_secs;

    println!("| what | events | seconds | events/s |");
    println!("|---|---:|---:|---:|");
    println!(
        "| read only (same reader, applies nothing) | {read} | {read_secs:.2} | {read_rate:.0} |"
    );
    println!(
        "| replay of edge.product into {:?} (one transaction) | {replayed} | {replay_secs:.2} | {replay_rate:.0} |",
        db.backend()
    );
    println!(
        "\nreplay / read: {:.0} % ({} poison events skipped)",
        100.0 * replay_rate / read_rate,
        report.skipped
    );
    Ok(())
}

/// Publishes the synthetic history, keeping a window of acks in flight.
async fn publish(js: &jetstream::Context, args: &ReplayArgs) -> anyhow::Result<()> {
    const WINDOW: usize = 4_096;
    let ctx = EventContext::root("bench", None);
    let per_product = args.events_per_product.max(1);
    let mut products: Vec<Uuid> = Vec::new();
    let mut acks = FuturesUnordered::new();
    for n in 0..args.events {
        let price = Money {
            amount_minor: 1000 + i64::try_from(n % 5000).unwrap_or(0),
            currency: "EUR".to_owned(),
        };
        let future = if n % per_product == 0 || products.is_empty() {
            let id = Uuid::now_v7();
            products.push(id);
            let created = ProductCreatedV1 {
                product_id: id,
                sku: format!("SKU-{n}"),
                name: format!("Product {n}"),
                description: "A product made up for the replay benchmark".to_owned(),
                category: format!("category-{}", n % 20),
                price,
            };
            send(js, created, &ctx).await?
        } else {
            let index =
                usize::try_from(n.wrapping_mul(2_654_435_761) % products.len() as u64).unwrap_or(0);
            let id = products[index];
            if n % 3 == 0 {
                send(
                    js,
                    ProductPriceChangedV1 {
                        product_id: id,
                        old_price: price.clone(),
                        new_price: Money {
                            amount_minor: price.amount_minor + 1,
                            currency: price.currency.clone(),
                        },
                    },
                    &ctx,
                )
                .await?
            } else {
                send(
                    js,
                    ProductUpdatedV1 {
                        product_id: id,
                        sku: format!("SKU-{index}"),
                        name: format!("Product {index}, version {n}"),
                        description: "A product made up for the replay benchmark".to_owned(),
                        category: format!("category-{}", index % 20),
                        price,
                        changed: vec!["name".to_owned()],
                    },
                    &ctx,
                )
                .await?
            }
        };
        acks.push(future.into_future());
        while acks.len() >= WINDOW {
            if let Some(ack) = acks.next().await {
                ack.context("publish ack")?;
            }
        }
    }
    while let Some(ack) = acks.next().await {
        ack.context("publish ack")?;
    }
    Ok(())
}

async fn send<T: Event>(
    js: &jetstream::Context,
    data: T,
    ctx: &EventContext,
) -> anyhow::Result<async_nats::jetstream::context::PublishAckFuture> {
    let envelope = Envelope::new(PRODUCT_SVC, data, ctx);
    let message = PublishMessage::build()
        .payload(envelope.to_json().into())
        .message_id(envelope.id.to_string());
    js.send_publish(T::SUBJECT, message)
        .await
        .context("publishing the history")
}
