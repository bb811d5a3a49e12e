//! checkout-svc: the checkout team's service. It owns baskets, orders and the
//! order saga (to come with the saga issue) and publishes `evt.checkout.>`.
//! Prices arrive as product events into its own replica (never a call to
//! product-svc): a reaction through the inbox, so each event counts once.

pub mod prices;

use std::future::Future;

use contracts::subjects::CHECKOUT_SVC;
use contracts::Team;
use platform::{Runtime, ServiceArgs};

/// checkout-svc's command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "checkout-svc",
    version,
    about = "Bazaar's checkout service: baskets, orders, the order saga"
)]
pub struct Args {
    #[command(flatten)]
    pub service: ServiceArgs,
}

pub async fn run(
    args: Args,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut rt = Runtime::start(
        CHECKOUT_SVC,
        Some(Team::Checkout),
        &args.service,
        Some(&platform::migrations!()),
    )
    .await?;
    rt.consume(
        prices::consumer_spec(),
        prices::PriceReplica::new(rt.db.clone()),
    )
    .await?;
    rt.run_until_stopped(None, shutdown).await
}
