//! warehouse-svc: the warehouse team's service. It owns stock levels,
//! reservations and shipments, and publishes `evt.warehouse.>`. Admins set
//! stock with `cmd.warehouse.set-stock`; checkout's order events drive the
//! rest: `order.placed` reserves every line or none (never overselling, with
//! any number of instances), `order.rejected` / `order.cancelled` release
//! what is held, `order.confirmed` schedules a shipment that the dispatcher
//! sends once due, taking the stock off the shelf. Both versions of
//! `order.placed` are read (history still holds v1, upcast to v2); what it
//! reads is declared in `contracts::consumers::warehouse_svc`.

pub mod dispatcher;
pub mod domain;
pub mod handlers;
pub mod store;

use std::future::Future;
use std::time::Duration;

use contracts::consumers::warehouse_svc;
use contracts::subjects::{cmd, durable, WAREHOUSE_SVC};
use contracts::Team;
use platform::streams::ConsumerSpec;
use platform::{Runtime, ServiceArgs};

/// Orders handled at once per instance; one order's events share a lane.
const LANES: usize = 8;

/// The longest dispatch delay accepted: a day (keeps due times far from
/// any date arithmetic limit).
pub const MAX_DISPATCH_DELAY_MS: u64 = 86_400_000;

/// warehouse-svc's command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "warehouse-svc",
    version,
    about = "Bazaar's warehouse service: stock, reservations, shipments"
)]
pub struct Args {
    #[command(flatten)]
    pub service: ServiceArgs,

    /// How long after an order is confirmed its shipment is dispatched (ms, at most a day).
    #[arg(long, env = "BAZAAR_DISPATCH_DELAY_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(0..=MAX_DISPATCH_DELAY_MS))]
    pub dispatch_delay_ms: u64,
}

/// The durable consumer of the order events the warehouse declares it
/// reads (`contracts::consumers::warehouse_svc`).
pub fn consumer_spec() -> ConsumerSpec {
    let reads = warehouse_svc::ORDERS;
    ConsumerSpec::new(reads.from.stream(), durable::WAREHOUSE, reads.subjects).with_lanes(LANES)
}

/// Builds the service and runs it until `shutdown` resolves.
pub async fn run(
    args: Args,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut rt = Runtime::start(
        WAREHOUSE_SVC,
        Some(Team::Warehouse),
        &args.service,
        Some(&platform::migrations!()),
    )
    .await?;
    let commands = handlers::Commands::new(rt.db.clone(), rt.outbox.clone());
    rt.serve(cmd::WAREHOUSE_SET_STOCK, move |req| {
        let commands = commands.clone();
        async move { commands.set_stock(req).await }
    })
    .await?;
    let reactions = handlers::Reactions::new(Duration::from_millis(args.dispatch_delay_ms));
    rt.react(consumer_spec(), reactions).await?;
    let (db, outbox) = (rt.db.clone(), rt.outbox.clone());
    rt.spawn(move |stop| dispatcher::run(db, outbox, stop));
    rt.run_until_stopped(None, shutdown).await
}
