//! What every request handler can reach.

use std::sync::Arc;
use std::time::Duration;

use platform::projection::ProjectionHandle;
use platform::Db;

use crate::auth::Verifier;
use crate::bus::Bus;
use crate::rate_limit::RateLimiter;
use crate::read_cache::ReadCache;
use crate::search::Gatherer;

/// Cloned for every request (each `State` extractor and the rate-limit
/// middleware): one `Arc`, so a clone is one atomic increment.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    /// The views, for reading only (`Db::reader`): the projections write.
    pub db: Db,
    pub bus: Bus,
    /// Scatters searches over the product search shards.
    pub search: Arc<Gatherer>,
    pub verifier: Arc<Verifier>,
    /// Order-update streams each customer holds open.
    pub open_streams: Arc<crate::open_streams::OpenStreams>,
    /// Per-caller token buckets (`rate_limit::limit`).
    pub rate_limiter: Arc<RateLimiter>,
    pub views: Views,
    /// Rendered answers of the hottest reads, fresh by the views' progress.
    pub cache: Arc<ReadCache>,
    /// How long a write waits for the edge's own view (read-your-writes).
    pub write_wait: Duration,
}

/// Handles on the edge's projections (one per team stream), for
/// read-your-writes and for following an order.
#[derive(Clone)]
pub struct Views {
    pub products: ProjectionHandle,
    pub checkout: ProjectionHandle,
    pub warehouse: ProjectionHandle,
    pub finance: ProjectionHandle,
}

impl Views {
    /// Receivers for every stream that feeds the orders view.
    pub fn order_watches(
        &self,
    ) -> [tokio::sync::watch::Receiver<platform::projection::Progress>; 3] {
        [
            self.checkout.subscribe(),
            self.warehouse.subscribe(),
            self.finance.subscribe(),
        ]
    }
}
