//! The disk tier's index: which keys have a complete file, how many bytes they use, and in which
//! order they were last used (LRU by bytes). Pure bookkeeping, no I/O: [`crate::tiers::disk`]
//! does the file work and calls in here under one mutex, so the accounting can be unit-tested.
//!
//! Hits only need shared access ([`DiskIndex::touch`] takes `&self`, so the disk tier keeps the
//! index behind an `RwLock` and concurrent hits never wait for each other): a hit stores a fresh
//! tick in the entry's atomic `last_used`, and the LRU order (a `BTreeMap` by tick) is corrected
//! lazily when eviction pops an entry that was used after it was placed: it is moved to its
//! `last_used` position instead of being evicted. Every entry's recency is
//! `max(placed, last_used)`, and the popped entry with no later use is the least recently used
//! one, so eviction is exact LRU.
//!
//! Every entry also carries a generation number assigned when it was inserted, so a caller that
//! found a file missing can remove exactly the entry it looked up and not a newer one stored in
//! the meantime.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What a lookup tells about an indexed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// File size in bytes (what the entry costs against the capacity).
    pub size: u64,
    /// Generation: unique per insert.
    pub generation: u64,
}

#[derive(Debug)]
struct Slot {
    size: u64,
    generation: u64,
    /// Key of this entry in `order`.
    placed: u64,
    /// Tick of the last hit (0 = none since placed).
    last_used: AtomicU64,
}

/// An object that does not fit into the tier at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

/// LRU-by-bytes index with a byte capacity.
#[derive(Debug, Default)]
pub struct DiskIndex {
    capacity: u64,
    used: u64,
    tick: AtomicU64,
    entries: HashMap<String, Slot>,
    /// placement tick → key, least recently placed first.
    order: BTreeMap<u64, String>,
}

impl DiskIndex {
    pub fn new(capacity: u64) -> Self {
        Self {
            capacity,
            ..Self::default()
        }
    }

    /// Rebuild from the files found at start-up: `(key, size, age_order)` where a smaller
    /// `age_order` (e.g. modification time) means older. Returns the index and the keys that did
    /// not fit (oldest first), whose files the caller deletes.
    pub fn rebuild(capacity: u64, mut files: Vec<(String, u64, u128)>) -> (Self, Vec<String>) {
        // Oldest first, so the newest files end up most recently used and survive the cap.
        files.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
        let mut index = Self::new(capacity);
        let mut dropped = Vec::new();
        for (key, size, _) in files {
            match index.insert(&key, size) {
                Ok(evicted) => dropped.extend(evicted),
                Err(TooLarge) => dropped.push(key),
            }
        }
        (index, dropped)
    }

    /// Every key, least recently used first (recency = `max(placed, last_used)`): what the
    /// disk tier saves at shutdown so a restart keeps the LRU order instead of fill order.
    pub fn recency_order(&self) -> Vec<String> {
        let mut keys: Vec<(u64, &str)> = self
            .entries
            .iter()
            .map(|(k, s)| (s.placed.max(s.last_used.load(Relaxed)), k.as_str()))
            .collect();
        keys.sort_unstable();
        keys.into_iter().map(|(_, k)| k.to_string()).collect()
    }

    /// Look `key` up and mark it most recently used (shared access only).
    pub fn touch(&self, key: &str) -> Option<IndexEntry> {
        let slot = self.entries.get(key)?;
        slot.last_used.store(self.next_tick(), Relaxed);
        Some(IndexEntry {
            size: slot.size,
            generation: slot.generation,
        })
    }

    /// Insert (or replace) `key` with `size` bytes as the most recently used entry, evicting
    /// least recently used entries until it fits. Returns the evicted keys (not including `key`
    /// itself when it replaced an older entry); `Err(TooLarge)` leaves the index unchanged.
    pub fn insert(&mut self, key: &str, size: u64) -> Result<Vec<String>, TooLarge> {
        if size > self.capacity {
            return Err(TooLarge);
        }
        self.remove(key);
        let mut evicted = Vec::new();
        while self.used + size > self.capacity {
            let Some((placed, oldest)) = self.order.pop_first() else {
                break;
            };
            let Some(slot) = self.entries.get_mut(&oldest) else {
                continue;
            };
            let last_used = slot.last_used.load(Relaxed);
            if last_used > placed {
                // Used since it was placed: move it to its real position and look again.
                slot.placed = last_used;
                self.order.insert(last_used, oldest);
                continue;
            }
            if let Some(e) = self.entries.remove(&oldest) {
                self.used -= e.size;
            }
            evicted.push(oldest);
        }
        let tick = self.next_tick();
        self.entries.insert(
            key.to_string(),
            Slot {
                size,
                generation: tick,
                placed: tick,
                last_used: AtomicU64::new(0),
            },
        );
        self.order.insert(tick, key.to_string());
        self.used += size;
        Ok(evicted)
    }

    /// Remove `key`; returns its entry.
    pub fn remove(&mut self, key: &str) -> Option<IndexEntry> {
        let e = self.entries.remove(key)?;
        self.order.remove(&e.placed);
        self.used -= e.size;
        Some(IndexEntry {
            size: e.size,
            generation: e.generation,
        })
    }

    /// Remove `key` only if it is still the entry of `generation`.
    pub fn remove_generation(&mut self, key: &str, generation: u64) -> bool {
        if self
            .entries
            .get(key)
            .is_some_and(|e| e.generation == generation)
        {
            self.remove(key);
            true
        } else {
            false
        }
    }

    /// Bytes of all indexed files.
    /// Keys starting with `prefix` (for purge by prefix: an admin operation, a full scan).
    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.entries
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A tick larger than every tick handed out before (placements and hits share the counter,
    /// so no two are equal).
    fn next_tick(&self) -> u64 {
        self.tick.fetch_add(1, Relaxed) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recency_order_follows_hits_not_fills() {
        let mut idx = DiskIndex::new(100);
        for k in ["a", "b", "c"] {
            idx.insert(k, 10).expect("fits");
        }
        idx.touch("a");
        assert_eq!(idx.recency_order(), ["b", "c", "a"]);
        idx.touch("b");
        assert_eq!(idx.recency_order(), ["c", "a", "b"]);
        // Rebuilt from that order, eviction takes the least recently used first.
        let files = idx
            .recency_order()
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, 40, i as u128))
            .collect();
        let (rebuilt, dropped) = DiskIndex::rebuild(80, files);
        assert_eq!(dropped, ["c"]);
        assert_eq!(rebuilt.recency_order(), ["a", "b"]);
    }

    #[test]
    fn accounting_follows_inserts_replacements_and_removals() {
        let mut ix = DiskIndex::new(100);
        assert_eq!(ix.insert("a", 30), Ok(vec![]));
        assert_eq!(ix.insert("b", 30), Ok(vec![]));
        assert_eq!((ix.used(), ix.len()), (60, 2));
        // Replacing a key re-counts it instead of adding.
        assert_eq!(ix.insert("a", 10), Ok(vec![]));
        assert_eq!((ix.used(), ix.len()), (40, 2));
        assert_eq!(ix.remove("b").map(|e| e.size), Some(30));
        assert_eq!(ix.remove("b"), None);
        assert_eq!((ix.used(), ix.len()), (10, 1));
        assert_eq!(ix.insert("huge", 101), Err(TooLarge));
        assert_eq!(
            (ix.used(), ix.len()),
            (10, 1),
            "a refused insert changes nothing"
        );
        assert_eq!(
            ix.insert("exact", 90),
            Ok(vec![]),
            "exactly full is allowed"
        );
        assert_eq!(ix.used(), 100);
    }

    #[test]
    fn evicts_least_recently_used_bytes_first() {
        let mut ix = DiskIndex::new(100);
        for k in ["a", "b", "c"] {
            ix.insert(k, 30).expect("fits");
        }
        // Use "a": "b" is now the least recently used.
        assert!(ix.touch("a").is_some());
        assert_eq!(ix.insert("d", 30), Ok(vec!["b".to_string()]));
        // A big object evicts as many as needed, oldest first.
        assert_eq!(
            ix.insert("e", 80),
            Ok(vec!["c".to_string(), "a".to_string(), "d".to_string()])
        );
        assert_eq!((ix.used(), ix.len()), (80, 1));
        assert!(ix.touch("a").is_none());
    }

    #[test]
    fn lazy_reordering_is_exact_lru() {
        let mut ix = DiskIndex::new(40);
        for k in ["a", "b", "c", "d"] {
            ix.insert(k, 10).expect("fits");
        }
        // Recency now: b < d < a < c (touches after placement, in this order).
        for k in ["b", "d", "a", "c"] {
            ix.touch(k).expect("present");
        }
        let mut order = Vec::new();
        for k in ["w", "x", "y", "z"] {
            order.extend(ix.insert(k, 10).expect("fits"));
        }
        assert_eq!(order, ["b", "d", "a", "c"]);
        assert_eq!(ix.used(), 40);
    }

    #[test]
    fn generations_protect_newer_entries() {
        let mut ix = DiskIndex::new(100);
        ix.insert("k", 1).expect("fits");
        let old = ix.touch("k").expect("present").generation;
        ix.insert("k", 2).expect("fits");
        assert!(!ix.remove_generation("k", old), "a newer entry survives");
        let new = ix.touch("k").expect("present").generation;
        assert_ne!(old, new);
        assert!(ix.remove_generation("k", new));
        assert!(ix.is_empty());
        assert_eq!(ix.used(), 0);
    }

    #[test]
    fn rebuild_keeps_the_newest_files_within_the_cap() {
        let files = vec![
            ("new".to_string(), 40, 300),
            ("old".to_string(), 40, 100),
            ("mid".to_string(), 40, 200),
            ("giant".to_string(), 500, 400),
        ];
        let (mut ix, dropped) = DiskIndex::rebuild(100, files);
        assert_eq!(dropped, vec!["old".to_string(), "giant".to_string()]);
        assert_eq!((ix.used(), ix.len()), (80, 2));
        // "mid" is older than "new", so it goes first on the next eviction.
        assert_eq!(ix.insert("x", 40), Ok(vec!["mid".to_string()]));
    }
}
