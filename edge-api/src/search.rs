//! Scatter and gather (DESIGN §6): one query on `qry.product.search`
//! reaches every search shard; the answers are gathered until every shard
//! has replied or the deadline has passed, then merged by relevance. A
//! shard that does not answer in time makes the result partial, never an
//! error.
//!
//! Replies come back on one wildcard inbox subscription shared by every
//! query (a token per query), rather than a subscription per query, so a
//! search costs the broker two messages per shard and nothing else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{Client, Message, StatusCode};
use contracts::search::{compare_hits, Ranking, SearchAnswer, SearchHit, SearchQuery};
use contracts::subjects::qry;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A search as the API received it, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchParams {
    pub q: String,
    pub category: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// The merged page.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResults {
    pub items: Vec<SearchHit>,
    /// Matches over the shards that answered.
    pub total: u64,
    /// Shards that did not answer in time, or answered with an error.
    pub missing_shards: Vec<u32>,
}

/// Why a search could not even be sent.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    #[error("could not send the search: {0}")]
    Send(String),
}

type Waiting = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Message>>>>;

/// Sends searches to the shards and gathers their answers.
pub struct Gatherer {
    nats: Client,
    shards: u32,
    deadline: Duration,
    inbox: String,
    waiting: Waiting,
    next: AtomicU64,
    router: JoinHandle<()>,
}

impl Gatherer {
    /// A gatherer for `shards` shards that waits at most `deadline`.
    pub async fn new(nats: Client, shards: u32, deadline: Duration) -> anyhow::Result<Gatherer> {
        let inbox = nats.new_inbox();
        let mut replies = nats
            .subscribe(format!("{inbox}.*"))
            .await
            .map_err(|e| anyhow::anyhow!("subscribing to the search inbox: {e}"))?;
        let waiting: Waiting = Arc::default();
        let routes = waiting.clone();
        let router = tokio::spawn(async move {
            while let Some(message) = replies.next().await {
                let token = message
                    .subject
                    .rsplit('.')
                    .next()
                    .and_then(|t| t.parse().ok());
                let sender = token.and_then(|t: u64| routes.lock().ok()?.get(&t).cloned());
                // A reply after its query gave up has nobody to go to.
                if let Some(sender) = sender {
                    let _ = sender.send(message);
                }
            }
        });
        Ok(Gatherer {
            nats,
            shards: shards.max(1),
            deadline,
            inbox,
            waiting,
            next: AtomicU64::new(0),
            router,
        })
    }

    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// Searches every shard and merges their answers into one page.
    pub async fn search(&self, params: &SearchParams) -> Result<SearchResults, GatherError> {
        let deadline = Instant::now() + self.deadline;
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _registered = Registration::new(&self.waiting, token, tx);

        let traceparent = platform::telemetry::TraceParent::new_root().to_string();
        let query = SearchQuery {
            q: params.q.clone(),
            category: params.category.clone(),
            top: params.offset.saturating_add(params.limit),
            traceparent: Some(traceparent.clone()),
        };
        let payload = serde_json::to_vec(&query).map_err(|e| GatherError::Send(e.to_string()))?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(platform::telemetry::TRACEPARENT, traceparent.as_str());
        self.nats
            .publish_with_reply_and_headers(
                qry::PRODUCT_SEARCH,
                format!("{}.{token}", self.inbox),
                headers,
                payload.into(),
            )
            .await
            .map_err(|e| GatherError::Send(e.to_string()))?;

        let mut answers = Answers::new(self.shards);
        while !answers.complete() {
            let message = match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(message)) => message,
                Ok(None) | Err(_) => break,
            };
            // The broker says at once when no shard at all is listening.
            if message.status == Some(StatusCode::NO_RESPONDERS) {
                break;
            }
            match serde_json::from_slice::<SearchAnswer>(&message.payload) {
                Ok(answer) => answers.add(answer),
                Err(error) => tracing::warn!(%error, "unreadable search answer"),
            }
        }
        Ok(answers.merge(Ranking::for_query(&params.q), params.offset, params.limit))
    }
}

impl Drop for Gatherer {
    fn drop(&mut self) {
        self.router.abort();
    }
}

/// A query's place in the reply routing table, removed when it is done.
struct Registration<'a> {
    waiting: &'a Waiting,
    token: u64,
}

impl<'a> Registration<'a> {
    fn new(waiting: &'a Waiting, token: u64, tx: mpsc::UnboundedSender<Message>) -> Self {
        if let Ok(mut map) = waiting.lock() {
            map.insert(token, tx);
        }
        Registration { waiting, token }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.waiting.lock() {
            map.remove(&self.token);
        }
    }
}

/// One shard's answer as its parts arrive.
#[derive(Debug, Default)]
struct ShardAnswer {
    total: u64,
    hits: Vec<SearchHit>,
    parts: u32,
    received: Vec<u32>,
    failed: bool,
}

impl ShardAnswer {
    fn complete(&self) -> bool {
        self.failed || (self.parts > 0 && self.received.len() >= self.parts as usize)
    }
}

/// The answers gathered so far for one query.
#[derive(Debug)]
pub struct Answers {
    shards: Vec<ShardAnswer>,
}

impl Answers {
    pub fn new(shards: u32) -> Answers {
        Answers {
            shards: (0..shards).map(|_| ShardAnswer::default()).collect(),
        }
    }

    /// Takes one answer part; parts of another shard layout, repeated
    /// parts and parts of a shard that already answered are ignored.
    pub fn add(&mut self, answer: SearchAnswer) {
        let expected = self.shards.len();
        if usize::try_from(answer.of).ok() != Some(expected) {
            tracing::warn!(
                shard = answer.shard,
                of = answer.of,
                expected,
                "a search shard of another layout answered; check BAZAAR_SEARCH_SHARDS"
            );
            return;
        }
        let Some(shard) = usize::try_from(answer.shard)
            .ok()
            .and_then(|i| self.shards.get_mut(i))
        else {
            return;
        };
        if shard.complete() || shard.received.contains(&answer.part) {
            return;
        }
        if let Some(error) = answer.error {
            tracing::warn!(shard = answer.shard, %error, "a search shard failed");
            shard.failed = true;
            return;
        }
        if shard.parts != 0 && shard.parts != answer.parts {
            return; // parts of two different answers (two instances)
        }
        shard.parts = answer.parts.max(1);
        shard.total = answer.total;
        shard.received.push(answer.part);
        shard.hits.extend(answer.hits);
    }

    pub fn complete(&self) -> bool {
        self.shards.iter().all(ShardAnswer::complete)
    }

    /// The page `[offset, offset + limit)` of every complete answer.
    pub fn merge(self, ranking: Ranking, offset: u32, limit: u32) -> SearchResults {
        let mut total = 0u64;
        let mut missing_shards = Vec::new();
        let mut hits = Vec::new();
        for (index, shard) in self.shards.into_iter().enumerate() {
            if shard.complete() && !shard.failed {
                total = total.saturating_add(shard.total);
                hits.extend(shard.hits);
            } else {
                missing_shards.push(u32::try_from(index).unwrap_or(u32::MAX));
            }
        }
        hits.sort_by(|a, b| compare_hits(ranking, a, b));
        // A product is on one shard; should two layouts ever overlap while
        // resharding, it is still listed once.
        hits.dedup_by_key(|h| h.product_id);
        let items = hits
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect();
        SearchResults {
            items,
            total,
            missing_shards,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::Money;
    use uuid::Uuid;

    fn hit(id: u128, score: f32) -> SearchHit {
        SearchHit {
            product_id: Uuid::from_u128(id),
            sku: format!("S{id}"),
            name: format!("product {id}"),
            description: String::new(),
            category: "c".into(),
            price: Money::eur(1),
            status: "active".into(),
            on_hand: 1,
            available: 1,
            score,
        }
    }

    fn answer(shard: u32, of: u32, total: u64, hits: Vec<SearchHit>) -> SearchAnswer {
        SearchAnswer {
            shard,
            of,
            total,
            hits,
            part: 0,
            parts: 1,
            error: None,
        }
    }

    fn ids(results: &SearchResults) -> Vec<u128> {
        results
            .items
            .iter()
            .map(|h| h.product_id.as_u128())
            .collect()
    }

    #[test]
    fn answers_merge_by_score_then_id_and_paginate() {
        let mut answers = Answers::new(2);
        answers.add(answer(0, 2, 5, vec![hit(4, 3.0), hit(2, 1.0)]));
        answers.add(answer(1, 2, 7, vec![hit(3, 2.0), hit(1, 1.0)]));
        assert!(answers.complete());
        let page = answers.merge(Ranking::Relevance, 1, 2);
        assert_eq!(ids(&page), [3, 1]);
        assert_eq!(page.total, 12);
        assert!(page.missing_shards.is_empty());
    }

    #[test]
    fn a_shard_that_did_not_answer_is_named_missing() {
        let mut answers = Answers::new(3);
        answers.add(answer(0, 3, 1, vec![hit(1, 1.0)]));
        answers.add(answer(2, 3, 0, vec![]));
        assert!(!answers.complete());
        let page = answers.merge(Ranking::Relevance, 0, 10);
        assert_eq!((ids(&page), page.total), (vec![1], 1));
        assert_eq!(page.missing_shards, [1]);
    }

    #[test]
    fn answers_of_another_layout_and_failed_shards_do_not_count() {
        let mut answers = Answers::new(2);
        answers.add(answer(0, 3, 9, vec![hit(9, 9.0)]));
        let mut failed = answer(1, 2, 0, vec![]);
        failed.error = Some("disk on fire".into());
        answers.add(failed);
        answers.add(answer(0, 2, 1, vec![hit(1, 1.0)]));
        assert!(answers.complete());
        let page = answers.merge(Ranking::Relevance, 0, 10);
        assert_eq!((ids(&page), page.missing_shards), (vec![1], vec![1]));
    }

    #[test]
    fn an_answer_in_parts_is_complete_when_every_part_arrived() {
        let mut answers = Answers::new(1);
        let mut first = answer(0, 1, 3, vec![hit(1, 3.0), hit(2, 2.0)]);
        first.parts = 2;
        let mut second = answer(0, 1, 3, vec![hit(3, 1.0)]);
        (second.part, second.parts) = (1, 2);
        answers.add(first.clone());
        answers.add(first);
        assert!(!answers.complete());
        answers.add(second);
        assert!(answers.complete());
        assert_eq!(ids(&answers.merge(Ranking::Relevance, 0, 10)), [1, 2, 3]);
    }
}
