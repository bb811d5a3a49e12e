//! Rendered answers of the hottest reads (`GET /api/v1/products/{id}`,
//! `GET /api/v1/orders/{id}`, and the one category list), kept in memory
//! so a repeated read costs no round trip to SQLite's worker thread and no
//! JSON encoding.
//!
//! Freshness comes from the projections' progress, not from the writers:
//! an entry remembers, for each projection whose tables the view reads,
//! the version of its progress watch as it was *before* the database was
//! read, and is used only while none of those projections has reported
//! progress since. A projection reports after every commit (and a replay
//! after its commit), so:
//! - a read that waited for a projection to apply an event (the edge's
//!   read-your-writes, `routes::caught_up`) never gets an entry read
//!   before that commit;
//! - an entry read while a write was in flight is dropped as soon as the
//!   write is reported;
//! - it holds with several edge instances on one database too: a follower
//!   that finds a batch already applied by another instance still reports.
//!
//! For products, any event on those streams makes every entry of the view
//! stale, so under a steady stream of orders most product reads still go
//! to the database. Orders are finer ([`Freshness::ByOrder`]): an entry
//! remembers the three projections' positions before the read and stays
//! fresh until an event of *that* order above them arrives
//! (`views::touches`, recorded on receipt, before the commit and before
//! the progress report that follows it), so an order read while other
//! orders flow is still a hit.
//!
//! Memory is bounded by entries: two generations of at most `capacity / 2`
//! each; when the young one is full it becomes the old one (whose entries
//! are dropped), and a hit in the old one moves back to the young one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use platform::projection::{Progress, ProjectionHandle};
use tokio::sync::watch;
use uuid::Uuid;

use crate::views::touches;

/// Entries kept per view at most: product and order answers are a few
/// hundred bytes to a few KiB, so this stays within a few MiB.
pub const DEFAULT_CAPACITY: usize = 4096;

/// The category list is one answer (two generations of one entry).
pub const CATEGORY_ENTRIES: usize = 2;

/// The caches of the edge's hottest reads.
pub struct ReadCache {
    /// Products: the catalog's and the warehouse's projections.
    pub products: ViewCache,
    /// Orders: checkout's, warehouse's and finance's projections.
    pub orders: ViewCache,
    /// The category list (one entry, under the nil id): the catalog's
    /// projection. A cache of its own, so no product id reaches it.
    pub categories: ViewCache,
}

/// When an entry goes stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// When any feeding projection reports progress.
    AnyProgress,
    /// When an event of the entry's order moves a feeding projection past
    /// the positions seen before the read (feeds on streams other than the
    /// order projections' are ignored).
    ByOrder,
}

/// One view's rendered answers by id.
pub struct ViewCache {
    feeds: Vec<ProjectionHandle>,
    freshness: Freshness,
    capacity: usize,
    inner: Mutex<Generations>,
}

/// A rendered answer and whom it belongs to (empty for public views).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub owner: Arc<str>,
    pub body: Bytes,
}

/// The projections' progress, taken before a database read.
pub enum Seen {
    /// Their watch versions.
    Versions(Vec<watch::Receiver<Progress>>),
    /// Their applied positions.
    Positions(touches::Positions),
}

impl Seen {
    /// Whether nothing that could change `id`'s answer was reported since.
    fn unchanged(&self, id: Uuid) -> bool {
        match self {
            // An error means the projection is gone (shutdown): stale.
            Seen::Versions(rxs) => rxs.iter().all(|rx| matches!(rx.has_changed(), Ok(false))),
            Seen::Positions(positions) => !touches::touched_since(id, positions),
        }
    }
}

struct Entry {
    rendered: Rendered,
    seen: Seen,
}

#[derive(Default)]
struct Generations {
    young: HashMap<Uuid, Entry>,
    old: HashMap<Uuid, Entry>,
}

impl ViewCache {
    /// A cache of a view fed by `feeds`, holding at most `capacity` entries.
    pub fn new(feeds: Vec<ProjectionHandle>, freshness: Freshness, capacity: usize) -> Self {
        ViewCache {
            feeds,
            freshness,
            capacity: capacity.max(2),
            inner: Mutex::new(Generations::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        // A panic while holding the lock leaves whole entries behind, and
        // every entry is checked before use.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The rendered answer for `id`, if one is held and still fresh.
    pub fn get(&self, id: Uuid) -> Option<Rendered> {
        let mut inner = self.lock();
        if let Some(entry) = inner.young.get(&id) {
            if entry.seen.unchanged(id) {
                return Some(entry.rendered.clone());
            }
            inner.young.remove(&id);
            return None;
        }
        let entry = inner.old.remove(&id)?;
        if !entry.seen.unchanged(id) {
            return None;
        }
        let rendered = entry.rendered.clone();
        self.put(&mut inner, id, entry);
        Some(rendered)
    }

    /// What the projections have reported so far; take it before reading
    /// the database, and give it to [`ViewCache::insert`] with the answer.
    pub fn seen(&self) -> Seen {
        match self.freshness {
            Freshness::AnyProgress => Seen::Versions(
                self.feeds
                    .iter()
                    .map(|handle| {
                        let mut rx = handle.subscribe();
                        rx.borrow_and_update();
                        rx
                    })
                    .collect(),
            ),
            Freshness::ByOrder => {
                let mut positions = touches::Positions::default();
                for handle in &self.feeds {
                    if let Some(i) = touches::index_of(handle.stream) {
                        positions[i] = handle.progress().applied;
                    }
                }
                Seen::Positions(positions)
            }
        }
    }

    /// Keeps `rendered` for `id`, unless a projection has reported progress
    /// since `seen` was taken (the answer may predate that commit).
    pub fn insert(&self, id: Uuid, rendered: Rendered, seen: Seen) {
        if !seen.unchanged(id) {
            return;
        }
        let mut inner = self.lock();
        inner.old.remove(&id);
        self.put(&mut inner, id, Entry { rendered, seen });
    }

    fn put(&self, inner: &mut Generations, id: Uuid, entry: Entry) {
        if inner.young.len() >= self.capacity / 2 && !inner.young.contains_key(&id) {
            inner.old = std::mem::take(&mut inner.young);
        }
        inner.young.insert(id, entry);
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        let inner = self.lock();
        inner.young.len() + inner.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(text: &'static str) -> Rendered {
        Rendered {
            owner: Arc::from("c1"),
            body: Bytes::from_static(text.as_bytes()),
        }
    }

    fn cache(capacity: usize) -> (ViewCache, watch::Sender<Progress>) {
        let (handle, progress) = ProjectionHandle::detached("edge.test", "EVT_TEST");
        (
            ViewCache::new(vec![handle], Freshness::AnyProgress, capacity),
            progress,
        )
    }

    #[test]
    fn an_answer_is_served_until_its_projection_reports_progress() {
        let (cache, progress) = cache(8);
        let id = Uuid::new_v4();
        cache.insert(id, rendered("v1"), cache.seen());
        assert_eq!(cache.get(id), Some(rendered("v1")));

        progress.send_modify(|p| p.applied += 1);

        assert_eq!(cache.get(id), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn an_answer_read_before_a_commit_that_was_reported_meanwhile_is_not_kept() {
        let (cache, progress) = cache(8);
        let id = Uuid::new_v4();
        let seen = cache.seen();
        // The projection commits and reports while the answer is rendered.
        progress.send_modify(|p| p.applied += 1);

        cache.insert(id, rendered("old"), seen);

        assert_eq!(cache.get(id), None);
    }

    #[test]
    fn a_report_that_changes_nothing_still_counts_as_progress() {
        // A replay that ends at the head the view already had rewrote the
        // tables all the same.
        let (cache, progress) = cache(8);
        let id = Uuid::new_v4();
        cache.insert(id, rendered("v1"), cache.seen());

        progress.send_modify(|_| {});

        assert_eq!(cache.get(id), None);
    }

    /// An order event for `order` at `seq` on `team`'s stream, as the
    /// live follower receives it.
    fn received(team: contracts::Team, order: Uuid, seq: u64) {
        let payload = format!(r#"{{"data":{{"order_id":"{order}"}}}}"#);
        touches::observe(&[platform::delivery::Delivery {
            stream: team.stream().to_owned(),
            subject: contracts::subjects::evt::ORDER_CONFIRMED_V1.into(),
            payload: Bytes::from(payload),
            headers: None,
            stream_seq: seq,
            delivered: 1,
        }]);
    }

    #[test]
    fn an_order_answer_stays_fresh_while_other_orders_move_and_not_once_its_own_does() {
        let (feeds, progress): (Vec<_>, Vec<_>) = touches::STREAMS
            .iter()
            .map(|team| ProjectionHandle::detached(format!("edge.{}", team.name()), team.stream()))
            .unzip();
        let cache = ViewCache::new(feeds, Freshness::ByOrder, 8);
        let (mine, other) = (Uuid::now_v7(), Uuid::now_v7());
        // Positions far above what other tests of this process record.
        let base = 1 << 40;
        for p in &progress {
            p.send_modify(|p| p.applied = base);
        }
        cache.insert(mine, rendered("v1"), cache.seen());

        received(contracts::Team::Warehouse, other, base + 1);
        progress[1].send_modify(|p| p.applied = base + 1);
        assert_eq!(cache.get(mine), Some(rendered("v1")), "another order moved");

        received(contracts::Team::Finance, mine, base + 2);
        assert_eq!(cache.get(mine), None, "stale once its event is received");
    }

    #[test]
    fn entries_are_bounded_by_the_capacity() {
        let (cache, _progress) = cache(8);
        let ids: Vec<Uuid> = (0..100).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            cache.insert(*id, rendered("x"), cache.seen());
        }
        assert!(cache.len() <= 8, "{}", cache.len());
        assert_eq!(cache.get(ids[99]), Some(rendered("x")));
        assert_eq!(cache.get(ids[0]), None);
    }

    #[test]
    fn a_hit_in_the_old_generation_survives_the_next_turnover() {
        let (cache, _progress) = cache(4);
        let first = Uuid::new_v4();
        cache.insert(first, rendered("first"), cache.seen());
        cache.insert(Uuid::new_v4(), rendered("x"), cache.seen());
        // The young generation (2) is full: `first` moves to the old one.
        cache.insert(Uuid::new_v4(), rendered("x"), cache.seen());
        assert_eq!(cache.get(first), Some(rendered("first")));
        cache.insert(Uuid::new_v4(), rendered("x"), cache.seen());
        assert_eq!(cache.get(first), Some(rendered("first")));
    }
}
