//! An exact index that takes insertions and removals while it answers
//! queries: what a bank being curated needs, where a change must be visible
//! to the next lookup, not after the next full rebuild.
//!
//! Why it is written here: [`HammingIndex`] is immutable (counting-sorted
//! tables addressed by key), and the crates that take insertions are
//! approximate. This wraps it log-structured: an immutable base, a small
//! list of entries added since (scanned linearly: a few thousand 256-bit
//! distances cost microseconds), and the keys removed since (filtered out of
//! the base's answers). [`LiveIndex::compact`] folds both into a new base;
//! [`LiveIndex::snapshot`] and [`LiveIndex::install`] let that rebuild run
//! on another thread while changes keep arriving. Every answer is exactly
//! what a linear scan of the live entries returns, at every radius, before,
//! during and after a rebuild (tested against brute force).

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

use crate::index::{HammingIndex, Words, distance};

/// An immutable base index and the key of each of its entries, sorted by
/// key (membership is a binary search: no second table of keys).
#[derive(Debug)]
struct Base<K> {
    index: HammingIndex,
    keys: Vec<K>,
}

impl<K: Ord + Copy> Base<K> {
    /// Indexes `entries`, whose keys are unique.
    fn new(bits: u32, mut entries: Vec<(K, Words)>) -> Self {
        entries.sort_unstable_by_key(|(k, _)| *k);
        let (keys, hashes): (Vec<K>, Vec<Words>) = entries.into_iter().unzip();
        Base { index: HammingIndex::new(bits, hashes), keys }
    }

    fn contains(&self, key: &K) -> bool {
        self.keys.binary_search(key).is_ok()
    }
}

/// One match of a [`LiveIndex`] query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LiveHit<K> {
    /// Hamming distance to the query.
    pub distance: u32,
    /// The entry's key.
    pub key: K,
}

/// What a rebuild started from: the live entries when snapshot `id` was
/// taken.
#[derive(Debug)]
pub struct Snapshot<K> {
    bits: u32,
    id: u64,
    base: Arc<Base<K>>,
    added: Vec<(K, Words)>,
    removed: HashSet<K>,
}

impl<K: Copy + Eq + Hash + Ord> Snapshot<K> {
    /// Builds the base a [`LiveIndex::install`] takes: the snapshot's live
    /// entries, indexed. Slow (seconds at millions of entries); call it
    /// without holding the index's lock.
    pub fn build(self) -> Rebuilt<K> {
        let live_base = self.base.keys.iter().zip(self.base.index.hashes()).filter(|(k, _)| !self.removed.contains(k));
        let entries: Vec<(K, Words)> = live_base.map(|(k, h)| (*k, *h)).chain(self.added).collect();
        Rebuilt { id: self.id, base: Arc::new(Base::new(self.bits, entries)) }
    }
}

/// A base built from a [`Snapshot`], ready for [`LiveIndex::install`].
#[derive(Debug)]
pub struct Rebuilt<K> {
    id: u64,
    base: Arc<Base<K>>,
}

/// One change, kept while a rebuild is under way so that it can be applied
/// again to the rebuilt base.
#[derive(Clone, Copy, Debug)]
enum Change<K> {
    Insert(K, Words),
    Remove(K),
}

/// An exact Hamming range index over keyed hashes that takes changes.
///
/// A key names one entry; inserting a key that is present replaces its hash.
#[derive(Debug)]
pub struct LiveIndex<K> {
    bits: u32,
    base: Arc<Base<K>>,
    /// Entries added since the base (a key of the base too when its hash
    /// was replaced).
    added: HashMap<K, Words>,
    /// Base entries removed or replaced since the base.
    removed: HashSet<K>,
    /// The id of the last snapshot taken, and the changes made since (only
    /// while it is outstanding).
    since_snapshot: Option<(u64, Vec<Change<K>>)>,
    /// Snapshots taken.
    snapshots: u64,
}

impl<K: Copy + Eq + Hash + Ord> LiveIndex<K> {
    /// An index of `entries` (`bits`: 64, 128 or 256). A key given twice
    /// keeps its last hash.
    ///
    /// # Panics
    /// As [`HammingIndex::new`]: on other widths, or `u32::MAX` entries.
    pub fn new(bits: u32, entries: impl IntoIterator<Item = (K, Words)>) -> Self {
        let unique: HashMap<K, Words> = entries.into_iter().collect();
        let base = Arc::new(Base::new(bits, unique.into_iter().collect()));
        LiveIndex { bits, base, added: HashMap::new(), removed: HashSet::new(), since_snapshot: None, snapshots: 0 }
    }

    /// The hash width.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        // Every added key that is also in the base is in `removed`.
        self.base.keys.len() - self.removed.len() + self.added.len()
    }

    /// Whether no entry is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Changes not yet folded into the base.
    pub fn pending(&self) -> usize {
        self.added.len() + self.removed.len()
    }

    /// Whether the changes since the base are worth a rebuild: over
    /// `min_pending` of them, and over 1/16 of the base.
    pub fn needs_compaction(&self, min_pending: usize) -> bool {
        let pending = self.pending();
        pending > min_pending && pending > self.base.keys.len() / 16
    }

    fn apply(&mut self, change: Change<K>) {
        match change {
            Change::Insert(key, hash) => {
                if self.base.contains(&key) {
                    self.removed.insert(key);
                }
                self.added.insert(key, hash);
            }
            Change::Remove(key) => {
                self.added.remove(&key);
                if self.base.contains(&key) {
                    self.removed.insert(key);
                }
            }
        }
    }

    fn record(&mut self, change: Change<K>) {
        if let Some((_, log)) = &mut self.since_snapshot {
            log.push(change);
        }
        self.apply(change);
    }

    /// Adds `key` with `hash`, replacing its hash if present.
    pub fn insert(&mut self, key: K, hash: Words) {
        self.record(Change::Insert(key, hash));
    }

    /// Removes `key`; returns whether it was live.
    pub fn remove(&mut self, key: &K) -> bool {
        let was = self.contains(key);
        if was {
            self.record(Change::Remove(*key));
        }
        was
    }

    /// Whether `key` is live.
    pub fn contains(&self, key: &K) -> bool {
        self.added.contains_key(key) || (!self.removed.contains(key) && self.base.contains(key))
    }

    /// Every live entry within `radius` of `query`, sorted by (distance,
    /// key): exactly what a linear scan of the live entries returns.
    pub fn range(&self, query: &Words, radius: u32) -> Vec<LiveHit<K>> {
        let mut hits: Vec<LiveHit<K>> = self
            .base
            .index
            .range(query, radius)
            .into_iter()
            .map(|hit| LiveHit { distance: hit.distance, key: self.base.keys[hit.id as usize] })
            .filter(|hit| !self.removed.contains(&hit.key))
            .collect();
        for (key, hash) in &self.added {
            let d = distance(hash, query);
            if d <= radius {
                hits.push(LiveHit { distance: d, key: *key });
            }
        }
        hits.sort_unstable();
        hits
    }

    /// The live entries as of now, for a rebuild on another thread; changes
    /// from now on are kept until [`Self::install`] (a later snapshot
    /// supersedes this one).
    pub fn snapshot(&mut self) -> Snapshot<K> {
        self.snapshots += 1;
        self.since_snapshot = Some((self.snapshots, Vec::new()));
        Snapshot {
            bits: self.bits,
            id: self.snapshots,
            base: Arc::clone(&self.base),
            added: self.added.iter().map(|(k, h)| (*k, *h)).collect(),
            removed: self.removed.clone(),
        }
    }

    /// Installs a base rebuilt from this index's latest snapshot and applies
    /// again the changes made since. A base from an older snapshot is
    /// refused: returns false and nothing changes.
    pub fn install(&mut self, rebuilt: Rebuilt<K>) -> bool {
        let Some((_, log)) = self.since_snapshot.take_if(|(id, _)| *id == rebuilt.id) else {
            return false;
        };
        self.base = rebuilt.base;
        self.added.clear();
        self.removed.clear();
        for change in log {
            self.apply(change);
        }
        true
    }

    /// Folds every change into a new base, on this thread.
    pub fn compact(&mut self) {
        let rebuilt = self.snapshot().build();
        self.install(rebuilt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::brute_force;
    use proptest::prelude::*;

    /// The live entries, by a plain map, and a linear scan of them.
    fn scan(model: &HashMap<u32, Words>, query: &Words, radius: u32) -> Vec<LiveHit<u32>> {
        let keys: Vec<u32> = model.keys().copied().collect();
        let hashes: Vec<Words> = keys.iter().map(|k| model[k]).collect();
        let mut hits: Vec<LiveHit<u32>> = brute_force(&hashes, query, radius)
            .into_iter()
            .map(|h| LiveHit { distance: h.distance, key: keys[h.id as usize] })
            .collect();
        hits.sort_unstable();
        hits
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u32, u64),
        Remove(u32),
        Snapshot,
        Install,
        Compact,
        Query(u64, u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u32..40, any::<u64>()).prop_map(|(k, h)| Op::Insert(k, h)),
            2 => (0u32..40).prop_map(Op::Remove),
            1 => Just(Op::Snapshot),
            1 => Just(Op::Install),
            1 => Just(Op::Compact),
            3 => (any::<u64>(), 0u32..64).prop_map(|(h, r)| Op::Query(h, r)),
        ]
    }

    proptest! {
        /// Any sequence of changes, rebuilds started and finished out of
        /// step: every answer equals a linear scan of the live entries.
        #[test]
        fn answers_equal_a_linear_scan_through_every_change(
            start in proptest::collection::vec((0u32..40, any::<u64>()), 0..30),
            ops in proptest::collection::vec(op(), 0..80),
        ) {
            // 64-bit hashes near each other: one random word, few bits apart.
            let word = |h: u64| [h & 0xffff_0000_0000_ffff, 0, 0, 0];
            let mut model: HashMap<u32, Words> = HashMap::new();
            for (k, h) in &start {
                model.insert(*k, word(*h));
            }
            let mut index = LiveIndex::new(64, start.iter().map(|(k, h)| (*k, word(*h))));
            // A rebuild under way, and whether it is still the latest one.
            let mut pending: Option<(Rebuilt<u32>, bool)> = None;
            for op in ops {
                match op {
                    Op::Insert(k, h) => {
                        index.insert(k, word(h));
                        model.insert(k, word(h));
                    }
                    Op::Remove(k) => prop_assert_eq!(index.remove(&k), model.remove(&k).is_some()),
                    Op::Snapshot => pending = Some((index.snapshot().build(), true)),
                    Op::Install => {
                        if let Some((rebuilt, latest)) = pending.take() {
                            prop_assert_eq!(index.install(rebuilt), latest);
                        }
                    }
                    Op::Compact => {
                        index.compact();
                        if let Some((_, latest)) = &mut pending {
                            *latest = false;
                        }
                    }
                    Op::Query(h, r) => {
                        prop_assert_eq!(index.range(&word(h), r), scan(&model, &word(h), r));
                    }
                }
                prop_assert_eq!(index.len(), model.len());
                for k in 0..40 {
                    prop_assert_eq!(index.contains(&k), model.contains_key(&k));
                }
            }
            let q = word(0);
            prop_assert_eq!(index.range(&q, 64), scan(&model, &q, 64));
        }
    }

    #[test]
    fn a_stale_rebuild_is_refused() {
        let mut index = LiveIndex::new(64, [(1u32, [1, 0, 0, 0])]);
        let old = index.snapshot().build();
        let newer = index.snapshot().build();
        assert!(!index.install(old), "superseded by a later snapshot");
        assert!(index.install(newer));
        assert!(index.contains(&1));
    }
}
