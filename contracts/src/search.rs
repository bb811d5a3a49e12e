//! Product search, scattered over shards and gathered by relevance
//! (DESIGN §6): which shard owns a product, and the messages of
//! `qry.product.search`.
//!
//! The edge publishes one [`SearchQuery`] with a reply inbox; every shard
//! (a queue group per shard, see [`Shard::queue_group`]) answers with one or
//! more [`SearchAnswer`] parts holding its best hits. The edge merges them
//! with [`compare_hits`], the same order each shard used to pick its best.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;

/// The most shards a catalog can be split into.
pub const MAX_SHARDS: u32 = 64;

/// The most hits one shard returns for one query (the edge's largest
/// offset plus its largest page).
pub const MAX_TOP: u32 = 10_100;

/// The shard that owns a product, out of `shards` (0 when `shards` is 0).
///
/// FNV-1a over the id's 16 bytes: unlike std's randomly seeded hasher it
/// gives the same answer in every process, version and platform, which the
/// edge, every shard and the tools rely on. Changing it moves products
/// between shards, so it never changes without rebuilding every index.
pub fn shard_of(product_id: Uuid, shards: u32) -> u32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    if shards == 0 {
        return 0;
    }
    let hash = product_id
        .as_bytes()
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME));
    // The remainder is below `shards`, a u32, so it always fits.
    u32::try_from(hash % u64::from(shards)).unwrap_or(0)
}

/// One shard of the catalog: `index` of `count` (written `i/K`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// Why a shard specification is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("a shard is written i/K, e.g. 0/3 (got {0:?})")]
    Syntax(String),
    #[error("the shard count K must be 1 to {MAX_SHARDS} (got {0})")]
    Count(u32),
    #[error("the shard index i must be below the count K (got {index}/{count})")]
    Index { index: u32, count: u32 },
}

impl Shard {
    /// The only shard of an unsharded catalog.
    pub const SINGLE: Shard = Shard { index: 0, count: 1 };

    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        if !(1..=MAX_SHARDS).contains(&count) {
            return Err(ShardError::Count(count));
        }
        if index >= count {
            return Err(ShardError::Index { index, count });
        }
        Ok(Shard { index, count })
    }

    pub fn index(self) -> u32 {
        self.index
    }

    pub fn count(self) -> u32 {
        self.count
    }

    /// Whether the product belongs to this shard.
    pub fn owns(self, product_id: Uuid) -> bool {
        shard_of(product_id, self.count) == self.index
    }

    /// The queue group of this shard's instances on `qry.product.search`:
    /// instances of one shard share the load, every shard answers once.
    pub fn queue_group(self) -> String {
        format!("search-shard-{}-of-{}", self.index, self.count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || ShardError::Syntax(s.to_owned());
        let (index, count) = s.trim().split_once('/').ok_or_else(syntax)?;
        let index = index.trim().parse().map_err(|_| syntax())?;
        let count = count.trim().parse().map_err(|_| syntax())?;
        Shard::new(index, count)
    }
}

/// A search, as the edge sends it to every shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchQuery {
    /// Free text; blank lists products by name.
    pub q: String,
    /// Only products of this category (exact, case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// How many of its best hits each shard returns: the page's offset
    /// plus its limit, since any of them may land on the merged page.
    pub top: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// One part of a shard's answer. A large answer is split into several
/// parts so that each fits the broker's message size; most have one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchAnswer {
    pub shard: u32,
    /// The shard count the answering shard belongs to.
    pub of: u32,
    /// Every product of this shard that matches (not only the hits sent).
    pub total: u64,
    /// Best first, in [`compare_hits`] order.
    pub hits: Vec<SearchHit>,
    /// This part's number, from 0.
    #[serde(default)]
    pub part: u32,
    /// How many parts the answer has.
    #[serde(default = "one")]
    pub parts: u32,
    /// Set when the shard could not search; the edge counts it as missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn one() -> u32 {
    1
}

/// A product that matched, with what a result list shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchHit {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: Money,
    /// `active` (discontinued products never match).
    pub status: String,
    pub on_hand: i64,
    /// Units that can be ordered now, as the warehouse last reported.
    pub available: i64,
    /// Relevance; 0 when listing without text.
    pub score: f32,
}

/// How hits are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    /// Best score first; equal scores by product id.
    Relevance,
    /// By name (case-insensitive), then product id: listing without text.
    Name,
}

impl Ranking {
    pub fn for_query(q: &str) -> Ranking {
        if q.trim().is_empty() {
            Ranking::Name
        } else {
            Ranking::Relevance
        }
    }
}

/// The key hits are listed by when there is no text to rank them.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// The order of hits: every shard picks its best in this order and the
/// edge merges in it, so a merged page never depends on the shard count.
pub fn compare_hits(ranking: Ranking, a: &SearchHit, b: &SearchHit) -> Ordering {
    let first = match ranking {
        Ranking::Relevance => b.score.total_cmp(&a.score),
        Ranking::Name => name_key(&a.name).cmp(&name_key(&b.name)),
    };
    first.then_with(|| a.product_id.cmp(&b.product_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_of_is_stable_across_releases() {
        // Pinned values (FNV-1a 64 of the id's bytes is 0x483b42a79949170d,
        // computed independently): a change here moves products between shards.
        let id = Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001);
        assert_eq!(shard_of(id, 1), 0);
        assert_eq!(
            (shard_of(id, 2), shard_of(id, 3), shard_of(id, 64)),
            (1, 2, 13)
        );
    }

    #[test]
    fn shard_of_spreads_products_evenly() {
        let mut counts = [0u32; 4];
        for n in 0..4000u128 {
            let id = Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0000 + n * 7919);
            counts[shard_of(id, 4) as usize] += 1;
        }
        assert!(
            counts.iter().all(|c| (800..=1200).contains(c)),
            "{counts:?}"
        );
    }

    #[test]
    fn a_shard_is_parsed_from_i_slash_k() {
        assert_eq!("2/3".parse::<Shard>(), Shard::new(2, 3));
        assert_eq!("0/1".parse::<Shard>(), Ok(Shard::SINGLE));
        assert_eq!(
            "3/3".parse::<Shard>(),
            Err(ShardError::Index { index: 3, count: 3 })
        );
        assert_eq!("0/65".parse::<Shard>(), Err(ShardError::Count(65)));
        assert_eq!("0/0".parse::<Shard>(), Err(ShardError::Count(0)));
        assert!(matches!("x".parse::<Shard>(), Err(ShardError::Syntax(_))));
        assert!(matches!(
            "-1/2".parse::<Shard>(),
            Err(ShardError::Syntax(_))
        ));
    }

    fn hit(id: u128, name: &str, score: f32) -> SearchHit {
        SearchHit {
            product_id: Uuid::from_u128(id),
            sku: format!("SKU-{id}"),
            name: name.into(),
            description: String::new(),
            category: "c".into(),
            price: Money::eur(100),
            status: "active".into(),
            on_hand: 0,
            available: 0,
            score,
        }
    }

    #[test]
    fn hits_rank_by_score_then_id_or_by_name_then_id() {
        let mut hits = [
            hit(3, "b", 1.0),
            hit(1, "B", 2.0),
            hit(2, "a", 1.0),
            hit(0, "b", 1.0),
        ];
        hits.sort_by(|a, b| compare_hits(Ranking::Relevance, a, b));
        let ids: Vec<u128> = hits.iter().map(|h| h.product_id.as_u128()).collect();
        assert_eq!(ids, [1, 0, 2, 3]);
        hits.sort_by(|a, b| compare_hits(Ranking::Name, a, b));
        let ids: Vec<u128> = hits.iter().map(|h| h.product_id.as_u128()).collect();
        assert_eq!(ids, [2, 0, 1, 3]);
    }
}
