//! What every request handler can reach.

use std::sync::Arc;
use std::time::Duration;

use platform::projection::ProjectionHandle;
use platform::Db;

use crate::auth::Verifier;
use crate::bus::Bus;
use crate::rate_limit::RateLimiter;
use crate::search::Gatherer;

#[derive(Clone)]
pub struct AppState {
    /// The views, for reading only (`Db::reader`): the projections write.
    pub db: Db,
    pub bus: Bus,
    /// Scatters searches over the product search shards.
    pub search: Arc<Gatherer>,
    pub verifier: Arc<Verifier>,
    /// Per-caller token buckets (`rate_limit::limit`).
    pub rate_limiter: Arc<RateLimiter>,
    pub views: Views,
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
