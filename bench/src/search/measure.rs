//! Timing searches: one at a time for latency, several clients at once
//! for throughput.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use edge_api::search::Gatherer;

use super::catalog::Rng;
use super::{queries, SearchArgs};

/// Latency of queries sent one at a time.
pub async fn sequential(
    gatherer: &Gatherer,
    rng: &mut Rng,
    count: u32,
) -> anyhow::Result<(Percentiles, u64)> {
    let mut samples = Vec::with_capacity(count as usize);
    let mut partial = 0;
    for _ in 0..count {
        let query = queries::next(rng);
        let started = Instant::now();
        let results = gatherer.search(&query).await?;
        samples.push(started.elapsed());
        partial += u64::from(!results.missing_shards.is_empty());
    }
    Ok((Percentiles::of(samples), partial))
}

/// Latency and queries per second with `concurrency` clients at once.
pub async fn concurrent(
    gatherer: &Arc<Gatherer>,
    args: &SearchArgs,
) -> anyhow::Result<(Percentiles, f64, u64)> {
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let mut clients = Vec::new();
    for client in 0..args.concurrency {
        let gatherer = gatherer.clone();
        let mut rng = Rng::new(args.seed.wrapping_add(1 + client as u64));
        clients.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut partial = 0u64;
            while Instant::now() < until {
                let query = queries::next(&mut rng);
                let sent = Instant::now();
                let results = gatherer.search(&query).await?;
                samples.push(sent.elapsed());
                partial += u64::from(!results.missing_shards.is_empty());
            }
            anyhow::Ok((samples, partial))
        }));
    }
    let mut samples = Vec::new();
    let mut partial = 0;
    for client in clients {
        let (mine, missing) = client.await.context("a client panicked")??;
        samples.extend(mine);
        partial += missing;
    }
    let qps = samples.len() as f64 / started.elapsed().as_secs_f64();
    Ok((Percentiles::of(samples), qps, partial))
}

/// Latency percentiles in milliseconds.
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(mut samples: Vec<Duration>) -> Percentiles {
        samples.sort();
        let at = |q: f64| {
            let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples
                .get(index)
                .map_or(0.0, |d| d.as_secs_f64() * 1_000.0)
        };
        Percentiles {
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}
