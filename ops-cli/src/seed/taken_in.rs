//! Waiting until every service has taken the seeded catalog in. The edge
//! answered each write once its own view had it, but checkout prices
//! orders from its own copy of the catalog: an order placed the moment
//! `seed` returned could name a product checkout has not heard of yet, and
//! be refused as unknown.

use std::path::Path;
use std::time::Duration;

use contracts::Team;
use tokio::time::Instant;

use crate::connect::ConnectArgs;

/// How long `seed` waits for the services before it says they lag.
pub const WAIT: Duration = Duration::from_secs(30);

/// Whether every durable consumer of the product stream has handled all
/// of it within `within`. The broker is the one `NATS_URL` (with
/// `NATS_USER`, `NATS_PASSWORD`) names, else the one in up.json. None when
/// it cannot be reached (a shop given by `--url` alone): then nothing can
/// be told.
pub async fn wait(data_dir: &Path, within: Duration) -> Option<bool> {
    let args = ConnectArgs {
        data_dir: data_dir.to_path_buf(),
        nats_url: std::env::var("NATS_URL").ok(),
        nats_user: std::env::var("NATS_USER").ok(),
        nats_password: std::env::var("NATS_PASSWORD").ok(),
    };
    let client = args.connect().await.ok()?;
    let js = async_nats::jetstream::new(client);
    let deadline = Instant::now() + within;
    loop {
        let lags = crate::check::consumer_lags(&js).await.ok()?;
        let behind = lags
            .iter()
            .filter(|(name, _)| name.starts_with(Team::Product.stream()))
            .any(|(_, lag)| lag.is_some_and(|(pending, unacked)| pending + unacked > 0));
        if !behind {
            return Some(true);
        }
        if Instant::now() >= deadline {
            return Some(false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
