//! How many order-update streams (`GET /orders/{id}/updates`) each customer
//! holds open at once. A stream is cheap but lasts up to ten minutes, so
//! without a bound one customer could open them faster than they end; past
//! [`PER_CUSTOMER`] the edge answers 429 until one closes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Streams one customer may hold open at once.
pub const PER_CUSTOMER: usize = 32;

/// The `Retry-After` (seconds) of a refusal: streams end as their clients go.
pub const RETRY_AFTER_S: u64 = 5;

/// The open streams, by customer.
#[derive(Debug)]
pub struct OpenStreams {
    limit: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One open stream; dropping it (the stream ended) frees its place.
#[derive(Debug)]
pub struct Held {
    streams: Arc<OpenStreams>,
    customer: String,
}

impl OpenStreams {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(OpenStreams {
            limit,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A place for one more stream of `customer`, or `None` when they hold
    /// the limit already.
    pub fn enter(self: &Arc<Self>, customer: &str) -> Option<Held> {
        let mut open = self.locked();
        let count = open.entry(customer.to_owned()).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(Held {
            streams: Arc::clone(self),
            customer: customer.to_owned(),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    fn locked(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        // Counts only; a panic elsewhere leaves nothing half-done here.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self.streams.locked();
        if let Some(count) = open.get_mut(&self.customer) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.customer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OpenStreams;

    #[test]
    fn a_customer_at_the_limit_is_refused_until_one_of_theirs_ends() {
        let streams = OpenStreams::new(2);
        let first = streams.enter("alice").expect("a first stream");
        let _second = streams.enter("alice").expect("a second stream");
        assert!(
            streams.enter("alice").is_none(),
            "a third is past the limit"
        );
        assert!(streams.enter("bob").is_some(), "bob has his own count");
        drop(first);
        assert!(streams.enter("alice").is_some(), "a place freed");
    }

    #[test]
    fn customers_whose_streams_all_ended_are_forgotten() {
        let streams = OpenStreams::new(2);
        drop(streams.enter("alice"));
        assert!(streams.locked().is_empty());
    }
}
