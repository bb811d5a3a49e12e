//! finance-svc: the finance team's service. It will own payments, tax and
//! invoices and publish `evt.finance.>`; so far (walking skeleton) it starts
//! on the platform runtime, declares its stream and serves health and
//! metrics. The order saga issue fills it in.

use std::future::Future;

use contracts::subjects::FINANCE_SVC;
use contracts::Team;
use platform::{Runtime, ServiceArgs};

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
}

pub async fn run(
    args: Args,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let rt = Runtime::start(FINANCE_SVC, Some(Team::Finance), &args.service, None).await?;
    rt.run_until_stopped(None, shutdown).await
}
