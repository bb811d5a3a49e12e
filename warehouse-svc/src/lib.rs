//! warehouse-svc: the warehouse team's service. It will own stock levels,
//! reservations and shipments and publish `evt.warehouse.>`; so far (walking
//! skeleton) it starts on the platform runtime, declares its stream and
//! serves health and metrics. The order saga issue fills it in.

use std::future::Future;

use contracts::subjects::WAREHOUSE_SVC;
use contracts::Team;
use platform::{Runtime, ServiceArgs};

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
}

pub async fn run(
    args: Args,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let rt = Runtime::start(WAREHOUSE_SVC, Some(Team::Warehouse), &args.service, None).await?;
    rt.run_until_stopped(None, shutdown).await
}
