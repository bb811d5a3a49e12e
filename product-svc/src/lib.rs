//! product-svc: the product team's service. It owns the catalog (products,
//! prices) and publishes `evt.product.>` events; it answers the
//! `cmd.product.*` commands. (Search shards arrive with the search issue.)

pub mod domain;
pub mod handlers;
pub mod store;

use std::future::Future;

use contracts::subjects::{cmd, PRODUCT_SVC};
use contracts::Team;
use platform::{Runtime, ServiceArgs};

/// product-svc's command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "product-svc",
    version,
    about = "Bazaar's product service: catalog and prices"
)]
pub struct Args {
    #[command(flatten)]
    pub service: ServiceArgs,
}

/// Builds the service and runs it until `shutdown` resolves.
pub async fn run(
    args: Args,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut rt = Runtime::start(
        PRODUCT_SVC,
        Some(Team::Product),
        &args.service,
        Some(&platform::migrations!()),
    )
    .await?;
    let handlers = handlers::Handlers::new(rt.db.clone(), rt.outbox.clone());
    let h = handlers.clone();
    rt.serve(cmd::PRODUCT_CREATE, move |req| {
        let h = h.clone();
        async move { h.create(req).await }
    })
    .await?;
    let h = handlers;
    rt.serve(cmd::PRODUCT_UPDATE, move |req| {
        let h = h.clone();
        async move { h.update(req).await }
    })
    .await?;
    rt.run_until_stopped(None, shutdown).await
}
