//! Answers `qry.product.search` for one shard. Instances of a shard join
//! the shard's queue group, so every shard answers each query once while
//! its instances share the load. The answer goes to the query's reply
//! inbox, split into parts when it would not fit one message.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use async_nats::{Client, Message};
use contracts::search::{SearchAnswer, SearchHit, SearchQuery, Shard};
use contracts::subjects::qry;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::query::{Found, ShardSearcher};

/// Queries one instance searches at once; more wait in the subscription.
const CONCURRENCY: usize = 16;

/// Room left in a message for the answer's own fields and headers.
const PART_HEADROOM: usize = 16 * 1024;

/// A shard's subscription to the queries.
pub struct Responder {
    nats: Client,
    shard: Shard,
    searcher: ShardSearcher,
    queries: async_nats::Subscriber,
}

/// Subscribes now, so that a shard that reports ready is reachable.
pub async fn serve(
    nats: Client,
    shard: Shard,
    searcher: ShardSearcher,
) -> anyhow::Result<Responder> {
    let queries = nats
        .queue_subscribe(qry::PRODUCT_SEARCH, shard.queue_group())
        .await
        .with_context(|| format!("subscribing to {}", qry::PRODUCT_SEARCH))?;
    Ok(Responder {
        nats,
        shard,
        searcher,
        queries,
    })
}

impl Responder {
    /// Answers queries until `stop`, then lets those in flight finish.
    pub async fn run(mut self, stop: CancellationToken) {
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        loop {
            let message = tokio::select! {
                _ = stop.cancelled() => break,
                next = self.queries.next() => match next {
                    Some(message) => message,
                    None => break,
                },
            };
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let (nats, searcher, shard) = (self.nats.clone(), self.searcher.clone(), self.shard);
            tokio::spawn(async move {
                answer(&nats, shard, searcher, message).await;
                drop(permit);
            });
        }
        let _ = self.queries.unsubscribe().await;
        let _ = permits.acquire_many(CONCURRENCY as u32).await;
    }
}

async fn answer(nats: &Client, shard: Shard, searcher: ShardSearcher, message: Message) {
    let Some(reply) = message.reply.clone() else {
        return; // a query nobody waits for
    };
    let started = Instant::now();
    let query = serde_json::from_slice::<SearchQuery>(&message.payload);
    let trace = platform::telemetry::TraceParent::continue_or_start(
        query.as_ref().ok().and_then(|q| q.traceparent.as_deref()),
    );
    let span = tracing::info_span!("search", %shard, trace_id = %trace.trace_id);
    let (found, outcome) = async {
        match query {
            Err(error) => (Err(format!("malformed query: {error}")), "malformed"),
            Ok(query) => {
                let result = tokio::task::spawn_blocking(move || searcher.search(&query)).await;
                match result {
                    Ok(Ok(found)) => (Ok(found), "ok"),
                    Ok(Err(error)) => {
                        tracing::error!(error = %format!("{error:#}"), "search failed");
                        (Err("the shard could not search".to_owned()), "error")
                    }
                    Err(error) => {
                        tracing::error!(%error, "search task failed");
                        (Err("the shard could not search".to_owned()), "error")
                    }
                }
            }
        }
    }
    .instrument(span)
    .await;
    let max_bytes = nats.server_info().max_payload.saturating_sub(PART_HEADROOM);
    for part in encode(shard, found, max_bytes) {
        if let Err(error) = nats.publish(reply.clone(), part.into()).await {
            tracing::warn!(%error, "could not send a search answer");
            break;
        }
    }
    platform::metrics::command_handled(qry::PRODUCT_SEARCH, outcome, started.elapsed());
}

/// The answer's parts, each at most about `max_bytes` (a single hit larger
/// than that still goes, alone, and the broker decides).
pub fn encode(shard: Shard, found: Result<Found, String>, max_bytes: usize) -> Vec<Vec<u8>> {
    let answer = |total, hits, part, parts, error| SearchAnswer {
        shard: shard.index(),
        of: shard.count(),
        total,
        hits,
        part,
        parts,
        error,
    };
    let found = match found {
        Ok(found) => found,
        Err(error) => {
            return vec![
                serde_json::to_vec(&answer(0, Vec::new(), 0, 1, Some(error))).unwrap_or_default(),
            ]
        }
    };
    // JSON escapes a character in at most 6 bytes, so most answers are
    // known to fit without encoding any hit twice.
    let worst_case: usize = found
        .hits
        .iter()
        .map(|h| 6 * (h.sku.len() + h.name.len() + h.description.len() + h.category.len()) + 256)
        .sum();
    let mut groups: Vec<Vec<SearchHit>> = Vec::new();
    if worst_case <= max_bytes {
        groups.push(found.hits);
    } else {
        let (mut group, mut size) = (Vec::new(), 0);
        for hit in found.hits {
            let hit_size = serde_json::to_vec(&hit).map_or(0, |v| v.len() + 1);
            if !group.is_empty() && size + hit_size > max_bytes {
                groups.push(std::mem::take(&mut group));
                size = 0;
            }
            size += hit_size;
            group.push(hit);
        }
        groups.push(group);
    }
    let parts = u32::try_from(groups.len()).unwrap_or(u32::MAX);
    groups
        .into_iter()
        .zip(0..)
        .map(|(hits, part)| {
            serde_json::to_vec(&answer(found.total, hits, part, parts, None)).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use contracts::Money;
    use uuid::Uuid;

    use super::*;

    fn found(hits: usize) -> Found {
        let hit = |n: usize| SearchHit {
            product_id: Uuid::from_u128(n as u128),
            sku: format!("SKU-{n}"),
            name: format!("Product {n}"),
            description: "d".repeat(500),
            category: "c".into(),
            price: Money::eur(1),
            status: "active".into(),
            on_hand: 1,
            available: 1,
            score: 1.0,
        };
        Found {
            total: 1000,
            hits: (0..hits).map(hit).collect(),
        }
    }

    fn decode(parts: &[Vec<u8>]) -> Vec<SearchAnswer> {
        parts
            .iter()
            .map(|p| serde_json::from_slice(p).expect("an answer"))
            .collect()
    }

    #[test]
    fn a_small_answer_is_one_part() {
        let answers = decode(&encode(Shard::SINGLE, Ok(found(20)), 1 << 20));
        assert_eq!(answers.len(), 1);
        assert_eq!((answers[0].part, answers[0].parts), (0, 1));
        assert_eq!((answers[0].hits.len(), answers[0].total), (20, 1000));
    }

    #[test]
    fn a_large_answer_is_split_into_parts_that_fit() {
        let max = 16 * 1024;
        let parts = encode(Shard::SINGLE, Ok(found(200)), max);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.len() <= max + 1024));
        let answers = decode(&parts);
        let ids: Vec<u128> = answers
            .iter()
            .flat_map(|a| a.hits.iter().map(|h| h.product_id.as_u128()))
            .collect();
        assert_eq!(ids, (0..200).collect::<Vec<_>>());
        assert!(answers
            .iter()
            .enumerate()
            .all(|(i, a)| a.part as usize == i && a.parts as usize == parts.len()));
    }

    #[test]
    fn a_failed_search_is_one_part_with_the_error() {
        let answers = decode(&encode(Shard::SINGLE, Err("broken".into()), 1 << 20));
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].error.as_deref(), Some("broken"));
    }
}
