//! product-svc: the product team's service. It owns the catalog (products,
//! prices) and publishes `evt.product.>` events; it answers the
//! `cmd.product.*` commands. Each instance is also one search shard
//! (`--shard i/K`): it indexes its share of the catalog from the product
//! and warehouse streams and answers `qry.product.search` for it.

pub mod domain;
pub mod handlers;
pub mod search;
pub mod store;

use std::future::Future;

use contracts::search::Shard;
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

    /// The search shard this instance serves: `i/K` with 0 <= i < K <= 64.
    /// A product belongs to shard `contracts::search::shard_of(id, K)`.
    #[arg(long, env = "BAZAAR_SHARD", default_value = "0/1")]
    pub shard: Shard,
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
    let failure = search::start(
        &mut rt,
        search::SearchConfig {
            shard: args.shard,
            data_dir: args.service.data_dir.clone(),
            commit: search::indexer::CommitPolicy::default(),
        },
    )
    .await?;
    let failed = failure.clone();
    rt.run_until_stopped(None, async move {
        tokio::select! {
            _ = shutdown => {}
            _ = failed.occurred() => {}
        }
    })
    .await?;
    failure.into_result()
}
