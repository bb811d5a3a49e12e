//! edge-api: the customers' single REST entry point. It turns requests into
//! commands on the teams' services (NATS request/reply) and answers reads
//! from its own projections of their events; it never reads another
//! service's database and never publishes events.

pub mod auth;
pub mod bus;
pub mod dto;
pub mod json;
pub mod open_streams;
pub mod openapi;
pub mod problem;
pub mod query_params;
pub mod rate_limit;
pub mod read_cache;
pub mod routes;
pub mod search;
pub mod state;
pub mod trace;
pub mod views;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use contracts::subjects::EDGE_API;
use contracts::Team;
use platform::{Runtime, Secret, ServiceArgs};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The default address of the API.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";

/// edge-api's command line.
#[derive(Debug, clap::Parser)]
#[command(name = "edge-api", version, about = "Bazaar's REST gateway")]
pub struct Args {
    #[command(flatten)]
    pub service: ServiceArgs,

    /// Secret that signs customer tokens (HS256), at least 32 bytes.
    #[arg(long, env = "BAZAAR_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Secret,

    /// How long a write waits for the edge's own view before answering 202.
    #[arg(long, env = "BAZAAR_WRITE_WAIT_MS", default_value_t = 2000)]
    pub write_wait_ms: u64,

    /// How long a command may take before the request fails with 503.
    #[arg(long, env = "BAZAAR_COMMAND_TIMEOUT_MS", default_value_t = 5000)]
    pub command_timeout_ms: u64,

    /// How many search shards product-svc runs (its `--shard i/K`'s K).
    #[arg(long, env = "BAZAAR_SEARCH_SHARDS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(contracts::search::MAX_SHARDS)))]
    pub search_shards: u32,

    /// How long a search waits for the shards; later answers are left out
    /// and the result is marked partial.
    #[arg(long, env = "BAZAAR_SEARCH_DEADLINE_MS", default_value_t = 250,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub search_deadline_ms: u64,

    /// Requests a second each customer (token `sub`; client IP without a
    /// token) may make on average; 0 disables the limit. Admin tokens and
    /// the health routes are never limited.
    #[arg(long, env = "BAZAAR_RATE_LIMIT_PER_S", default_value_t = 50)]
    pub rate_limit_per_s: u32,

    /// How many requests a customer may make at once above the rate (the
    /// token bucket's size); 0 disables the limit.
    #[arg(long, env = "BAZAAR_RATE_LIMIT_BURST", default_value_t = 100)]
    pub rate_limit_burst: u32,
}

/// The edge's migrations (its view tables), for tools that build the views
/// outside the service (`bench replay`).
pub fn migrations() -> platform::db::Migrations {
    platform::migrations!()
}

/// Builds the gateway and serves until `shutdown` resolves.
pub async fn run(
    mut args: Args,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if args.jwt_secret.expose().len() < 32 {
        anyhow::bail!("the JWT secret must be at least 32 bytes (BAZAAR_JWT_SECRET)");
    }
    if args.service.http_addr.is_none() {
        args.service.http_addr = Some(DEFAULT_HTTP_ADDR.parse()?);
    }
    // Every table of the edge's database is a projection whose checkpoint
    // commits with it: a commit a power cut takes is applied again from the
    // stream, so commits need not wait for the disk.
    let mut rt = Runtime::start_with(
        EDGE_API,
        None,
        &args.service,
        Some(&platform::migrations!()),
        platform::Durability::Rebuildable,
    )
    .await?;
    let mut handles = Vec::new();
    for team in Team::ALL {
        handles.push(
            rt.project(views::spec(team), views::TeamProjector(team))
                .await?,
        );
    }
    let [products, checkout, warehouse, finance]: [_; 4] = handles
        .try_into()
        .map_err(|_| anyhow::anyhow!("one projection per team expected"))?;
    let state = state::AppState::new(state::Shared {
        // Requests only read, and must not wait behind a replay's long
        // write transaction on SQLite's single writer connection.
        db: rt.db.reader(),
        bus: bus::Bus::new(
            rt.nats.clone(),
            Duration::from_millis(args.command_timeout_ms),
        ),
        search: Arc::new(
            search::Gatherer::new(
                rt.nats.clone(),
                args.search_shards,
                Duration::from_millis(args.search_deadline_ms),
            )
            .await?,
        ),
        verifier: Arc::new(auth::Verifier::new(args.jwt_secret.expose().as_bytes())),
        open_streams: open_streams::OpenStreams::new(open_streams::PER_CUSTOMER),
        rate_limiter: Arc::new(rate_limit::RateLimiter::new(rate_limit::Limits {
            per_s: args.rate_limit_per_s,
            burst: args.rate_limit_burst,
            max_keys: rate_limit::DEFAULT_MAX_KEYS,
        })),
        cache: Arc::new(read_cache::ReadCache {
            products: read_cache::ViewCache::new(
                vec![products.clone(), warehouse.clone()],
                read_cache::Freshness::AnyProgress,
                read_cache::DEFAULT_CAPACITY,
            ),
            orders: read_cache::ViewCache::new(
                vec![checkout.clone(), warehouse.clone(), finance.clone()],
                read_cache::Freshness::ByOrder,
                read_cache::DEFAULT_CAPACITY,
            ),
            categories: read_cache::ViewCache::new(
                vec![products.clone()],
                read_cache::Freshness::AnyProgress,
                read_cache::CATEGORY_ENTRIES,
            ),
        }),
        views: state::Views {
            products,
            checkout,
            warehouse,
            finance,
        },
        write_wait: Duration::from_millis(args.write_wait_ms),
    });
    let router = routes::app(state)
        .merge(rt.health_router())
        .layer(axum::middleware::from_fn(routes::browser_safeguards));
    rt.run_until_stopped(Some(router), shutdown).await
}
