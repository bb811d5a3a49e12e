//! The edge's read models, each fed by a projection (platform::projection)
//! and queried by the routes. Rebuildable from the streams at any time.

pub mod products;
