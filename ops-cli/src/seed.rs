//! `bazaar seed`: a demo catalog with stock, created through the REST API
//! as an admin, as any client would. Idempotent: every product is created
//! with an `Idempotency-Key` derived from its SKU, so a repeat returns the
//! product the first run made, and stock is set (not added), so a second
//! run changes nothing but restocking.

mod catalog;
pub mod record;
mod taken_in;

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use contracts::auth::Role;
use futures::StreamExt;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::exit;
use crate::progress::{rate, Progress};
use crate::shop_client::{CallError, Request, ShopArgs, ShopClient};
use catalog::ProductSpec;
use record::{SeedFile, SeededProduct};

const EXAMPLES: &str = "\
Examples:
  bazaar seed                                 24 demo products (and a sold-out one), 100 units each
  bazaar seed --stock 1000 --json             restock them all, print a JSON summary
  bazaar seed --products 100000               add 100,000 synthetic products for a benchmark
  bazaar seed --url http://127.0.0.1:8080 --data-dir /tmp/shop

Running it again creates nothing new and sets the stock again. The products
are recorded in <data-dir>/seed.json, which `bazaar load` orders from.
Exit code 0 when every product is there with its stock, 1 when some failed,
2 when no shop is configured, 3 when the shop does not answer.";

/// The token subject seed creates products as. Idempotency keys are scoped
/// to the caller, so it must never change.
const SEEDER_SUB: &str = "bazaar-seed";
/// Tries to set the stock of a product the edge has not shown yet (its
/// create answered 202); 100 ms apart.
const STOCK_TRIES: u32 = 50;
/// Failures printed one by one; the rest are only counted.
const SHOWN_FAILURES: usize = 5;

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct SeedArgs {
    #[command(flatten)]
    shop: ShopArgs,
    /// Also create N synthetic products (SYN-000001, …) for benchmarks
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    products: u64,
    /// Units on hand to set for every product (the sold-out one stays at 0)
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(i64).range(0..=1_000_000_000))]
    stock: i64,
    /// Requests in flight at once
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Print one JSON object with the summary instead of text
    #[arg(long)]
    json: bool,
}

pub fn run(args: SeedArgs) -> anyhow::Result<ExitCode> {
    exit::block_on(seed(args))
}

/// What happened to one product.
enum Seeded {
    /// Ours (created now or by an earlier run), with its stock set.
    Ours { product: SeededProduct, known: bool },
    /// The SKU exists but seed did not create it; left alone.
    Foreign { sku: String },
}

struct Failure {
    sku: String,
    step: &'static str,
    error: CallError,
}

struct Seeder {
    client: ShopClient,
    token: String,
    stock: i64,
    /// SKU → product from the previous run's seed.json.
    previous: HashMap<String, SeededProduct>,
}

/// The part of a product answer seed reads.
#[derive(Deserialize)]
struct ProductBody {
    id: Uuid,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    url: String,
    products: u64,
    created: u64,
    already_present: u64,
    not_ours: u64,
    failed: u64,
    stock_set: u64,
    stock: i64,
    elapsed_s: f64,
    rate_per_s: f64,
    errors: BTreeMap<String, u64>,
    /// Products the seed file lists for `bazaar load` (this run's and
    /// earlier runs' that still exist).
    recorded: usize,
    seed_file: String,
}

async fn seed(args: SeedArgs) -> anyhow::Result<ExitCode> {
    let client = ShopClient::connect(&args.shop).await?;
    let token = client.token(SEEDER_SUB, Role::Admin, Duration::from_secs(24 * 3600))?;
    let previous = SeedFile::load(client.data_dir())?
        .map(|r| r.products.into_iter().map(|p| (p.sku.clone(), p)).collect())
        .unwrap_or_default();
    let ctx = Seeder {
        client,
        token,
        stock: args.stock,
        previous,
    };
    let total = catalog::demo().len() as u64 + args.products;
    let specs = catalog::demo()
        .into_iter()
        .chain((1..=args.products).map(catalog::synthetic));

    let started = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let progress = {
        let done = Arc::clone(&done);
        Progress::start(started, move |elapsed| {
            let n = done.load(Ordering::Relaxed);
            format!("seed: {n}/{total} products ({:.0}/s)", rate(n, elapsed))
        })
    };
    let mut outcomes = futures::stream::iter(specs)
        .map(|spec| seed_one(&ctx, spec))
        .buffer_unordered(usize::from(args.concurrency));
    let mut summary = Summary {
        url: ctx.client.base_url().to_owned(),
        products: total,
        stock: args.stock,
        ..Summary::default()
    };
    let mut record = SeedFile {
        http_url: summary.url.clone(),
        ..SeedFile::default()
    };
    let mut foreign = Vec::new();
    // Bounded: one item per product spec.
    while let Some(outcome) = outcomes.next().await {
        done.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(Seeded::Ours { product, known }) => {
                *if known {
                    &mut summary.already_present
                } else {
                    &mut summary.created
                } += 1;
                summary.stock_set += 1;
                if product.sku == catalog::SOLD_OUT_SKU {
                    record.sold_out = Some(product.id);
                }
                record.products.push(product);
            }
            Ok(Seeded::Foreign { sku }) => {
                summary.not_ours += 1;
                foreign.push(sku);
            }
            Err(failure) => {
                // What an earlier run recorded stays recorded: the product
                // is still in the shop, and `load` may still order it.
                if let Some(product) = ctx.previous.get(&failure.sku) {
                    if product.sku == catalog::SOLD_OUT_SKU {
                        record.sold_out = Some(product.id);
                    }
                    record.products.push(product.clone());
                }
                summary.failed += 1;
                *summary.errors.entry(failure.error.label()).or_default() += 1;
                if summary.failed <= SHOWN_FAILURES as u64 {
                    errln!(
                        "seed: cannot {} {}: {}",
                        failure.step,
                        failure.sku,
                        failure.error
                    );
                }
            }
        }
    }
    drop(outcomes);
    drop(progress);
    if summary.failed == 0 {
        if let Some(false) = taken_in::wait(ctx.client.data_dir(), taken_in::WAIT).await {
            errln!(
                "seed: after {:?} the services have not all taken the catalog in; \
                 orders may be refused as naming unknown products for a while (see `bazaar streams`)",
                taken_in::WAIT
            );
        }
    }
    let elapsed = started.elapsed();
    // Milliseconds are precision enough for a summary.
    summary.elapsed_s = (elapsed.as_secs_f64() * 1000.0).round() / 1000.0;
    summary.rate_per_s = rate(done.load(Ordering::Relaxed), elapsed).round();

    record.products.sort_by(|a, b| a.sku.cmp(&b.sku));
    std::fs::create_dir_all(ctx.client.data_dir())
        .with_context(|| format!("cannot create {}", ctx.client.data_dir().display()))?;
    summary.seed_file = record.save(ctx.client.data_dir())?.display().to_string();
    summary.recorded = record.products.len();

    print(&summary, &foreign, args.json)?;
    Ok(if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn seed_one(ctx: &Seeder, spec: ProductSpec) -> Result<Seeded, Failure> {
    let fail = |step, error| Failure {
        sku: spec.sku.clone(),
        step,
        error,
    };
    // Readable rather than hashed: SKUs are already short visible ASCII,
    // and a readable key can be found in the command log.
    let key = format!("{SEEDER_SUB}-v1-{}", spec.sku);
    let created = ctx
        .client
        .send::<_, ProductBody>(Request {
            method: Method::POST,
            path: "/api/v1/products",
            token: &ctx.token,
            body: Some(&spec),
            idempotency_key: Some(&key),
        })
        .await;
    let recorded = ctx.previous.get(&spec.sku).map(|p| p.id);
    let id = match created {
        Ok(product) => product.id,
        // The SKU exists without our key: ours only if we recorded it.
        Err(e) if e.status() == Some(409) => match recorded {
            Some(id) => id,
            None => return Ok(Seeded::Foreign { sku: spec.sku }),
        },
        Err(e) => return Err(fail("create", e)),
    };
    let stock = spec.stock.unwrap_or(ctx.stock);
    set_stock(ctx, id, stock)
        .await
        .map_err(|e| fail("set the stock of", e))?;
    Ok(Seeded::Ours {
        known: recorded == Some(id),
        product: SeededProduct {
            sku: spec.sku,
            id,
            stock,
        },
    })
}

/// Sets the units on hand. A 404 right after the create means the edge has
/// not shown the product yet (the create answered 202), so it is retried.
async fn set_stock(ctx: &Seeder, id: Uuid, on_hand: i64) -> Result<(), CallError> {
    let path = format!("/api/v1/products/{id}/stock");
    let body = serde_json::json!({ "on_hand": on_hand });
    let mut tries = 1;
    loop {
        let answer = ctx
            .client
            .send::<_, serde_json::Value>(Request {
                method: Method::PUT,
                path: &path,
                token: &ctx.token,
                body: Some(&body),
                idempotency_key: None,
            })
            .await;
        match answer {
            Err(e) if e.status() == Some(404) && tries < STOCK_TRIES => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other.map(|_| ()),
        }
    }
}

fn print(summary: &Summary, foreign: &[String], json: bool) -> anyhow::Result<()> {
    if json {
        outln!(
            "{}",
            serde_json::to_string(summary).context("cannot encode the summary")?
        );
        return Ok(());
    }
    outln!(
        "seeded {}: created {} products, {} already present, stock set on {} ({} each, {} kept at 0)",
        summary.url,
        summary.created,
        summary.already_present,
        summary.stock_set,
        summary.stock,
        catalog::SOLD_OUT_SKU,
    );
    if !foreign.is_empty() {
        let shown: Vec<&str> = foreign.iter().take(10).map(String::as_str).collect();
        outln!(
            "{} SKUs exist but were not created by bazaar seed, left alone: {}{}",
            foreign.len(),
            shown.join(", "),
            if foreign.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        );
    }
    if summary.failed > 0 {
        let counts: Vec<String> = summary
            .errors
            .iter()
            .map(|(label, n)| format!("{n} × {label}"))
            .collect();
        outln!("{} failed: {}", summary.failed, counts.join(", "));
    }
    outln!(
        "{} of {} products done in {:.1} s ({:.0}/s); {} listed in {}",
        summary.created + summary.already_present,
        summary.products,
        summary.elapsed_s,
        summary.rate_per_s,
        summary.recorded,
        summary.seed_file
    );
    Ok(())
}
