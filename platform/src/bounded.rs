//! A map that keeps only its latest entries: past its capacity, the oldest
//! goes. For memories that may forget (an answer given, a sequence
//! published) but must not grow without end.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

pub struct Bounded<K, V> {
    capacity: usize,
    values: HashMap<K, V>,
    oldest_first: VecDeque<K>,
}

impl<K: Eq + Hash + Clone, V> Bounded<K, V> {
    /// An empty map of at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Bounded {
            capacity: capacity.max(1),
            values: HashMap::new(),
            oldest_first: VecDeque::new(),
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.values.get(key)
    }

    /// Keeps `value` for `key` unless the map holds one already; returns
    /// the value that stands. The oldest entry goes when the map is full.
    pub fn insert(&mut self, key: K, value: V) -> &V {
        if !self.values.contains_key(&key) {
            if self.oldest_first.len() >= self.capacity {
                if let Some(oldest) = self.oldest_first.pop_front() {
                    self.values.remove(&oldest);
                }
            }
            self.oldest_first.push_back(key.clone());
        }
        self.values.entry(key).or_insert(value)
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::Bounded;

    #[test]
    fn the_first_value_of_a_key_stands() {
        let mut map = Bounded::new(4);
        assert_eq!(*map.insert("a", 1), 1);
        assert_eq!(*map.insert("a", 2), 1);
        assert_eq!(map.get("a"), Some(&1));
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn past_its_capacity_the_oldest_entries_go_first() {
        let mut map = Bounded::new(3);
        for (i, key) in ["a", "b", "c", "d"].into_iter().enumerate() {
            map.insert(key, i);
        }
        assert_eq!(map.len(), 3);
        assert_eq!(map.get("a"), None, "the oldest stayed");
        assert_eq!(map.get("d"), Some(&3));
        // A repeated key is not a new entry: it pushes nothing out.
        map.insert("b", 9);
        assert_eq!(map.get("c"), Some(&2));
    }
}
