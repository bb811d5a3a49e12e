//! Which orders the order projections' events touched, by stream position,
//! so an order's SSE follower re-reads its order only when one of them did
//! (it used to re-read on every commit of any of the three projections:
//! with many orders followed, those reads outnumbered the projections'
//! own writes).
//!
//! A touch is recorded when the live follower *receives* an event, before
//! its transaction commits and so before the projection reports progress
//! past it (`Projector::observe`). A follower that snapshots the three
//! projections' progress before it reads the order, and later finds no
//! touch of its order above that snapshot, has missed nothing: any event of
//! its order applied since was received, and so recorded, before the
//! progress that woke it. Recording on receipt rather than on apply also
//! covers an event another edge instance applied to a shared database.
//! Touches are kept per process (the edges of one process share them,
//! which only costs extra reads), bounded: past [`CAPACITY`] orders the
//! map is cleared and every order counts as touched up to the highest
//! position seen so far.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};

use contracts::Team;
use platform::delivery::Delivery;
use uuid::Uuid;

/// Orders remembered at most before the map is cleared.
pub const CAPACITY: usize = 65_536;

/// The streams that feed the order view, in `Views::order_watches` order.
pub const STREAMS: [Team; 3] = [Team::Checkout, Team::Warehouse, Team::Finance];

/// A position in each of the [`STREAMS`].
pub type Positions = [u64; 3];

#[derive(Default)]
struct Touches {
    /// The highest position of an event that touched each order.
    orders: HashMap<Uuid, Positions>,
    /// What an order not in `orders` counts as touched up to (the highest
    /// positions seen when the map was last cleared).
    floor: Positions,
    /// The highest position seen on each stream.
    seen: Positions,
}

fn touches() -> MutexGuard<'static, Touches> {
    static TOUCHES: OnceLock<Mutex<Touches>> = OnceLock::new();
    // A panic while holding the lock leaves whole entries behind.
    TOUCHES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Where `stream` stands in [`STREAMS`] (and so in [`Positions`]).
pub fn index_of(stream: &str) -> Option<usize> {
    STREAMS.iter().position(|t| t.stream() == stream)
}

/// Records the orders a batch of events of one stream names (an event
/// without a readable `data.order_id` touches no order view).
pub fn observe(batch: &[Delivery]) {
    let Some(first) = batch.first() else {
        return;
    };
    let Some(stream) = index_of(&first.stream) else {
        return;
    };
    let named: Vec<(Uuid, u64)> = batch
        .iter()
        .filter_map(|d| order_of(&d.payload).map(|id| (id, d.stream_seq)))
        .collect();
    let mut t = touches();
    for (order, seq) in named {
        record(&mut t, stream, order, seq);
    }
}

fn record(t: &mut Touches, stream: usize, order: Uuid, seq: u64) {
    if t.orders.len() >= CAPACITY && !t.orders.contains_key(&order) {
        t.orders.clear();
        t.floor = t.seen;
    }
    let floor = t.floor;
    let at = t.orders.entry(order).or_insert(floor);
    at[stream] = at[stream].max(seq);
    t.seen[stream] = t.seen[stream].max(seq);
}

/// After a stream started its sequences over, positions taken before no
/// longer compare with new ones: from now on, until the process restarts,
/// every order counts as touched (its cached answer is not used, and its
/// SSE follower reads it on every commit). Correct, slower; it follows a
/// deleted stream or a lost broker store, both rare.
pub fn forget_positions() {
    forget(&mut touches());
}

fn forget(t: &mut Touches) {
    t.orders.clear();
    t.floor = [u64::MAX; 3];
    t.seen = [u64::MAX; 3];
}

/// Whether an event above `since` (per stream) may have touched `order`.
pub fn touched_since(order: Uuid, since: &Positions) -> bool {
    is_touched(&touches(), order, since)
}

fn is_touched(t: &Touches, order: Uuid, since: &Positions) -> bool {
    let at = t.orders.get(&order).unwrap_or(&t.floor);
    at.iter().zip(since).any(|(at, since)| at > since)
}

/// The `data.order_id` of an envelope, read without decoding the rest.
fn order_of(payload: &[u8]) -> Option<Uuid> {
    #[derive(serde::Deserialize)]
    struct Data<'a> {
        #[serde(borrow)]
        order_id: Option<std::borrow::Cow<'a, str>>,
    }
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        data: Option<Data<'a>>,
    }
    let envelope: Envelope = serde_json::from_slice(payload).ok()?;
    Uuid::parse_str(&envelope.data?.order_id?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_counts_as_touched_only_above_the_positions_seen() {
        let mut t = Touches::default();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        record(&mut t, 1, a, 10);
        let at = |t: &Touches, o: Uuid| *t.orders.get(&o).unwrap_or(&t.floor);

        assert_eq!(at(&t, a), [0, 10, 0]);
        assert_eq!(at(&t, b), [0, 0, 0], "never touched");
        record(&mut t, 1, a, 7);
        assert_eq!(at(&t, a), [0, 10, 0], "positions only grow");
        assert!(is_touched(&t, a, &[0, 9, 0]));
        assert!(!is_touched(&t, a, &[0, 10, 0]));
        assert!(!is_touched(&t, b, &[0, 0, 0]));
    }

    #[test]
    fn past_capacity_every_order_counts_as_touched_up_to_what_was_seen() {
        let mut t = Touches::default();
        for i in 0..CAPACITY {
            record(&mut t, 0, Uuid::from_u128(i as u128 + 1), i as u64 + 1);
        }
        let forgotten = Uuid::from_u128(1);
        let fresh = Uuid::now_v7();

        record(&mut t, 2, fresh, 5);

        assert_eq!(t.orders.len(), 1);
        let floor = t.floor;
        assert_eq!(floor, [CAPACITY as u64, 0, 0]);
        assert_eq!(*t.orders.get(&forgotten).unwrap_or(&floor), floor);
        assert_eq!(t.orders[&fresh], [CAPACITY as u64, 0, 5]);
    }

    #[test]
    fn after_a_stream_started_over_every_order_counts_as_touched() {
        let mut t = Touches::default();
        let (old, new) = (Uuid::now_v7(), Uuid::now_v7());
        record(&mut t, 0, old, 500);

        forget(&mut t);
        record(&mut t, 0, new, 3);

        assert!(is_touched(&t, old, &[500, 0, 0]), "cached before");
        assert!(is_touched(&t, new, &[3, 0, 0]), "seen after");
    }

    #[test]
    fn the_order_id_is_read_from_the_envelope_data_and_anything_else_names_none() {
        let id = Uuid::now_v7();
        let envelope = format!(r#"{{"id":"x","data":{{"order_id":"{id}","lines":[]}}}}"#);

        assert_eq!(order_of(envelope.as_bytes()), Some(id));
        assert_eq!(order_of(br#"{"data":{"product_id":"p"}}"#), None);
        assert_eq!(order_of(br#"{"data":{"order_id":"not a uuid"}}"#), None);
        assert_eq!(order_of(b"not json"), None);
    }
}
