//! finance-svc: the finance team's service. It owns payments, tax and
//! invoices and publishes `evt.finance.>`. It reacts to checkout's order
//! events: a placed order is taxed by shipping country and authorised with
//! the (simulated) card provider; a confirmed one is captured and invoiced
//! with a gap-free number per year; a rejected or cancelled one has its
//! hold voided or its capture refunded. Every reaction happens exactly once
//! (inbox and outbox in the reaction's transaction), whatever the number of
//! instances and the order in which the events arrive. Both versions of
//! `order.placed` are read (history still holds v1, upcast to v2).

pub mod domain;
pub mod handlers;
pub mod provider;
pub mod store;

use std::future::Future;
use std::time::Duration;

use contracts::consumers::finance_svc;
use contracts::subjects::{durable, FINANCE_SVC};
use contracts::Team;
use platform::streams::ConsumerSpec;
use platform::{Runtime, ServiceArgs};

/// Orders handled at once; one order's events stay in order in its lane.
/// Worth more than one mainly because `tok_slow` keeps its lane waiting.
const LANES: usize = 8;

/// finance-svc's command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "finance-svc",
    version,
    about = "Bazaar's finance service: payments, tax, invoices"
)]
pub struct Args {
    #[command(flatten)]
    pub service: ServiceArgs,

    /// How long the simulated card provider takes to answer for `tok_slow`,
    /// in milliseconds.
    #[arg(long, env = "BAZAAR_SLOW_TOKEN_MS", default_value_t = 2000)]
    pub slow_token_ms: u64,
}

/// finance's durable consumer of the order events it declares it reads
/// (`contracts::consumers::finance_svc`).
pub fn consumer_spec() -> ConsumerSpec {
    let reads = finance_svc::ORDERS;
    ConsumerSpec::new(reads.from.stream(), durable::FINANCE, reads.subjects).with_lanes(LANES)
}

/// Builds the service and runs it until `shutdown` resolves.
pub async fn run(
    args: Args,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut rt = Runtime::start(
        FINANCE_SVC,
        Some(Team::Finance),
        &args.service,
        Some(&platform::migrations!()),
    )
    .await?;
    let spec = consumer_spec();
    let slow = Duration::from_millis(args.slow_token_ms);
    let provider = provider::CardProvider::new(slow);
    let finance = handlers::Finance::new(rt.db.clone(), provider);
    rt.react(spec, finance).await?;
    rt.run_until_stopped(None, shutdown).await
}
