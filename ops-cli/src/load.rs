//! `bazaar load`: real REST traffic against a running shop. Virtual
//! customers place orders for products `bazaar seed` recorded, each order
//! is followed until the saga settles it, and the run reports rates,
//! latency percentiles (placed→settled as the customer sees it, and the
//! saga's own by its events' times) and what became of every order.
//! The run is bounded twice: by `--orders` and by `--timeout`.

mod mix;
mod order;
mod report;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use contracts::auth::Role;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::duration::parse_duration;
use crate::exit;
use crate::progress::{rate, Progress};
use crate::seed::record::SeedFile;
use crate::shop_client::{CallError, Request, ShopArgs, ShopClient};
use mix::{Kind, Mix};
use order::{Address, Follow, Item, NewOrder, Outcome};
use report::{Report, Setup, Waits};

const EXAMPLES: &str = "\
Examples:
  bazaar seed && bazaar load                  100 orders, 8 at a time, all tok_visa
  bazaar load --orders 2000 --concurrency 32 --json
  bazaar load --orders 500 --mix succeed=90,decline=5,out_of_stock=5
  bazaar load --orders 3000 --rate 100 --concurrency 64   latency at 100 orders/s
  bazaar load --url http://127.0.0.1:8080 --data-dir /tmp/shop --timeout 5m

Orders are placed for the products in <data-dir>/seed.json (run `bazaar seed`
first). Kinds: succeed pays with tok_visa, decline with tok_declined,
out_of_stock orders the seeded sold-out product. Succeeding orders use up
stock: `bazaar seed` again restocks. Each customer is held to the edge's
rate limit (BAZAAR_RATE_LIMIT_PER_S, 50 requests/s by default; an order
followed over SSE is two requests, a polled one a GET more every 50 ms):
an answer of 429 is waited out for its Retry-After and asked again, and
the report counts these as `throttled`. Raise --customers to measure the
shop rather than the limit. Latency: placed→settled is from sending the
POST to seeing the order settled; POST /orders the POST alone; saga
(events) is order.placed → order.confirmed by the events' own times, off
each confirmed order's timeline (the saga without HTTP, the edge's view
and the updates stream). Exit code 0 when every order was placed
and settled, 1 when some were not, 2 when the run could not start (no shop,
no seed.json), 3 when the shop does not answer, 130 on Ctrl-C (the report of
what it saw so far, \"ended\": \"interrupted\" with --json: orders being followed
are left to the shop and counted unsettled, ones still being placed count as
failed, \"interrupted\", and may have been placed).";

/// Countries the orders ship to, so that finance computes several VAT rates.
const ADDRESSES: [(&str, &str, &str); 4] = [
    ("Berlin", "10115", "DE"),
    ("Paris", "75001", "FR"),
    ("Utrecht", "3511 AB", "NL"),
    ("London", "SW1A 1AA", "GB"),
];

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct LoadArgs {
    #[command(flatten)]
    shop: ShopArgs,
    /// Orders to place
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    orders: u64,
    /// Orders in flight at once (each is followed until it settles)
    #[arg(long, value_name = "C", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    concurrency: u16,
    /// Start orders on a fixed schedule, this many per second, instead of
    /// each as soon as one settles; --concurrency then caps the orders in
    /// flight (an order whose start finds all of them busy starts late, and
    /// is counted as late)
    #[arg(long, value_name = "ORDERS_PER_S", value_parser = parse_rate)]
    rate: Option<f64>,
    /// Virtual customers the orders are spread over [default: --concurrency]
    #[arg(long, value_name = "M",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    customers: Option<u32>,
    /// Kinds of orders by weight: succeed, decline, out_of_stock
    #[arg(long, value_name = "KIND=W,…", default_value = "succeed=100", value_parser = mix::parse)]
    mix: Mix,
    /// The whole run stops after this; orders not settled by then are reported as such
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    timeout: Duration,
    /// How to learn that an order settled
    #[arg(long, value_enum, default_value_t = Follow::Sse)]
    follow: Follow,
    /// Print one JSON object with the figures instead of text
    #[arg(long)]
    json: bool,
}

/// How far behind its place in the --rate schedule an order may start
/// before it counts as late.
pub(crate) const LATE_AFTER: Duration = Duration::from_millis(10);

fn parse_rate(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= 100_000.0 => Ok(rate),
        Ok(_) => Err("must be more than 0 and at most 100000 orders per second".into()),
        Err(_) => Err(format!("{raw:?} is not a number of orders per second")),
    }
}

pub fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    exit::block_on(load(args))
}

/// What every worker shares.
struct Run {
    client: ShopClient,
    tokens: Vec<String>,
    catalog: Vec<Uuid>,
    sold_out: Option<Uuid>,
    plan: Vec<Kind>,
    follow: Follow,
    /// When the run began: the --rate schedule counts from it.
    begun: tokio::time::Instant,
    deadline: tokio::time::Instant,
    rate: Option<f64>,
    /// Orders that started more than LATE_AFTER behind the schedule.
    late: AtomicU64,
    next: AtomicU64,
    placed: AtomicU64,
    settled: AtomicU64,
    /// True once the shop's port has been closed for GONE_AFTER: the
    /// workers stop, and the run exits 3.
    gone: tokio::sync::watch::Receiver<bool>,
    /// True once Ctrl-C was pressed: the workers stop starting orders and
    /// stop following theirs, and the run reports what it saw.
    interrupted: tokio::sync::watch::Receiver<bool>,
}

/// How long the shop's port may stay closed before the run stops.
const GONE_AFTER: Duration = Duration::from_secs(10);

/// Probes the shop's `/healthz` every second; says `gone` once nothing has
/// listened on its address for GONE_AFTER (any answer, even an error
/// status, means it is there).
async fn watch_for_the_shop_going(base_url: String, gone: tokio::sync::watch::Sender<bool>) {
    let Ok(http) = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
    else {
        // No watch, but `gone` must stay: the workers would read a dropped
        // sender as the shop gone. The run aborts this task when it ends.
        return std::future::pending().await;
    };
    let url = format!("{base_url}/healthz");
    let mut closed_since: Option<tokio::time::Instant> = None;
    while !gone.is_closed() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        match http.get(&url).send().await {
            Err(e) if e.is_connect() => {
                let since = *closed_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() >= GONE_AFTER {
                    let _ = gone.send(true);
                    return;
                }
            }
            _ => closed_since = None,
        }
    }
}

async fn load(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let client = ShopClient::connect(&args.shop).await?;
    let seeded = SeedFile::load(client.data_dir())?.ok_or_else(|| {
        exit::usage(format!(
            "no seeded catalog in {} (seed.json missing): run `bazaar seed` first",
            client.data_dir().display()
        ))
    })?;
    let catalog: Vec<Uuid> = seeded
        .products
        .iter()
        .filter(|p| p.stock > 0)
        .map(|p| p.id)
        .collect();
    if catalog.is_empty() && args.mix.weight(Kind::Succeed) + args.mix.weight(Kind::Decline) > 0 {
        return Err(exit::usage(
            "seed.json lists no product with stock: run `bazaar seed`",
        ));
    }
    if seeded.sold_out.is_none() && args.mix.weight(Kind::OutOfStock) > 0 {
        return Err(exit::usage(
            "seed.json names no sold-out product for out_of_stock orders: run `bazaar seed` again",
        ));
    }
    let customers = args.customers.unwrap_or(u32::from(args.concurrency));
    // Valid for the whole run and then some, whatever the clock skew.
    let ttl = args.timeout + Duration::from_secs(600);
    let tokens = (1..=customers)
        .map(|n| client.token(&format!("load-{n:05}"), Role::Customer, ttl))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let setup = Setup {
        url: client.base_url().to_owned(),
        requested: args.orders,
        concurrency: args.concurrency,
        customers,
        mix: args.mix.weights().clone(),
        follow: args.follow,
        rate: args.rate,
        timeout_s: args.timeout.as_secs_f64(),
    };
    let started = Instant::now();
    let begun = tokio::time::Instant::now();
    let (gone_tx, gone) = tokio::sync::watch::channel(false);
    // Kept until the workers are done: a dropped sender would read as Ctrl-C.
    let (interrupt, interrupted) = tokio::sync::watch::channel(false);
    let watchdog = tokio::spawn(watch_for_the_shop_going(
        client.base_url().to_owned(),
        gone_tx,
    ));
    let run = Arc::new(Run {
        client,
        tokens,
        catalog,
        sold_out: seeded.sold_out,
        plan: args.mix.plan(args.orders),
        follow: args.follow,
        begun,
        deadline: begun + args.timeout,
        rate: args.rate,
        late: AtomicU64::new(0),
        next: AtomicU64::new(0),
        placed: AtomicU64::new(0),
        settled: AtomicU64::new(0),
        gone,
        interrupted,
    });
    let progress = {
        let run = Arc::clone(&run);
        let total = args.orders;
        Progress::start(started, move |elapsed| {
            let placed = run.placed.load(Ordering::Relaxed);
            let settled = run.settled.load(Ordering::Relaxed);
            format!(
                "load: placed {placed}/{total}, settled {settled} ({:.1} orders/s settled)",
                rate(settled, elapsed)
            )
        })
    };
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| tokio::spawn(worker(Arc::clone(&run))))
        .collect();
    let collect = async {
        let mut outcomes = Vec::new();
        for worker in workers {
            outcomes.extend(worker.await.context("a load worker panicked")?);
        }
        anyhow::Ok(outcomes)
    };
    tokio::pin!(collect);
    let (outcomes, interrupted) = tokio::select! {
        outcomes = &mut collect => (outcomes?, false),
        _ = tokio::signal::ctrl_c() => {
            // The workers stop at once: no new order, and the ones in
            // flight are left to the shop.
            let _ = interrupt.send(true);
            let outcomes = tokio::time::timeout(STOP_WITHIN, &mut collect)
                .await
                .map_err(|_| anyhow::anyhow!("interrupted, and the workers did not stop within {STOP_WITHIN:?}"))??;
            (outcomes, true)
        }
    };
    watchdog.abort();
    drop(progress);

    let stopped = if interrupted {
        Some(report::Ended::Interrupted)
    } else {
        run.gone.borrow().then_some(report::Ended::ShopGone)
    };
    let report = Report::new(
        setup,
        outcomes,
        Waits {
            throttled: run.client.throttled(),
            late: run.late.load(Ordering::Relaxed),
        },
        started.elapsed(),
        stopped,
    );
    drop(interrupt);
    print_report(&report, args.json)?;
    if interrupted {
        errln!(
            "load: interrupted after {:.1} s: {} of {} orders placed, {} settled; \
             the placed ones go on in the shop (see `bazaar check`)",
            report.elapsed_s,
            report.placed,
            report.setup.requested,
            report.settled,
        );
        return Ok(ExitCode::from(exit::INTERRUPTED));
    }
    if !report.ok {
        let when = match report.ended {
            report::Ended::ShopGone => format!(
                "before the shop stopped answering ({:.1} s into the run)",
                report.elapsed_s
            ),
            _ => format!("within {:?}", args.timeout),
        };
        errln!(
            "load: {} of {} orders did not settle ({} unsettled, {} failed to place, {} not placed) {when}",
            report.setup.requested - report.settled,
            report.setup.requested,
            report.unsettled,
            report.failed,
            report.not_placed,
        );
    }
    if report.ok {
        return Ok(ExitCode::SUCCESS);
    }
    // A shop that stopped answering during the run is exit 3, not a
    // failed run: the report above says how far it got.
    let probe = run
        .client
        .send::<(), serde_json::Value>(Request::get("/healthz", ""))
        .await;
    if let Err(CallError::Transport(e)) = probe {
        return Err(exit::unreachable(format!(
            "the shop at {} stopped answering during the run: {e}",
            report.setup.url
        )));
    }
    Ok(ExitCode::FAILURE)
}

/// How long the workers may take to stop after Ctrl-C (they stop at once:
/// each waits on the interruption).
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// The report as text, or as one JSON object with --json.
fn print_report(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        outln!(
            "{}",
            serde_json::to_string(report).context("cannot encode the report")?
        );
    } else {
        report.print_text();
    }
    Ok(())
}

/// Takes the next order of the plan until the plan or the time runs out.
async fn worker(run: Arc<Run>) -> Vec<(Kind, Outcome)> {
    let mut outcomes = Vec::new();
    // Bounded: `next` only grows, and the plan has --orders entries.
    let mut gone = run.gone.clone();
    let mut interrupted = run.interrupted.clone();
    while tokio::time::Instant::now() < run.deadline && !*gone.borrow() && !*interrupted.borrow() {
        let n = run.next.fetch_add(1, Ordering::Relaxed);
        let Some(&kind) = usize::try_from(n).ok().and_then(|i| run.plan.get(i)) else {
            break;
        };
        if let Some(rate) = run.rate {
            let at = run.begun + Duration::from_secs_f64(n as f64 / rate);
            if at >= run.deadline {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = interrupted.wait_for(|stop| *stop) => break,
            }
            if tokio::time::Instant::now() > at + LATE_AFTER {
                run.late.fetch_add(1, Ordering::Relaxed);
            }
        }
        let token = &run.tokens[(n % run.tokens.len() as u64) as usize];
        let (city, postal_code, country) = ADDRESSES[(n % ADDRESSES.len() as u64) as usize];
        let order = NewOrder {
            items: items_for(&run, kind, n),
            shipping_address: Address {
                name: "Load Tester",
                line1: "1 Benchmark Way",
                city,
                postal_code,
                country,
            },
            payment_method: kind.payment_method(),
        };
        let placing = order::place_and_follow(
            &run.client,
            token,
            &order,
            run.follow,
            run.deadline,
            &run.placed,
            run.interrupted.clone(),
        );
        // An order in flight when the shop went away ends with the run.
        let outcome = tokio::select! {
            outcome = placing => outcome,
            _ = gone.wait_for(|gone| *gone) => Outcome::Failed {
                label: "shop gone".into(),
                message: format!("nothing listened at the shop's address for {GONE_AFTER:?}"),
            },
        };
        if matches!(outcome, Outcome::Settled { .. }) {
            run.settled.fetch_add(1, Ordering::Relaxed);
        }
        outcomes.push((kind, outcome));
    }
    outcomes
}

/// One to three different in-stock products, one unit each (reproducible
/// per order number); or the sold-out product for an out-of-stock order.
fn items_for(run: &Run, kind: Kind, n: u64) -> Vec<Item> {
    if let (Kind::OutOfStock, Some(product_id)) = (kind, run.sold_out) {
        return vec![Item {
            product_id,
            quantity: 1,
        }];
    }
    let mut rng = StdRng::seed_from_u64(n);
    let lines = rng.gen_range(1..=3).min(run.catalog.len());
    run.catalog
        .choose_multiple(&mut rng, lines)
        .map(|&product_id| Item {
            product_id,
            quantity: 1,
        })
        .collect()
}
