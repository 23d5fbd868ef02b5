//! Banks, content and the live indexes, and the lookups HMA defines over
//! them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use frankly_bank::{LiveIndex, Rebuilt, SignalType, Snapshot, Words};

/// A bank's id in the store.
pub type BankId = i64;
/// A bank content's id in the store (HMA's `bank_content_id`).
pub type ContentId = i64;

/// What lookups need of a bank.
#[derive(Clone, Debug, PartialEq)]
pub struct BankInfo {
    /// The store's id.
    pub id: BankId,
    /// The name (already checked by [`crate::BankName`]).
    pub name: String,
    /// HMA's `matching_enabled_ratio`: the bank is consulted when a
    /// lookup's coin flip is at most this (1.0 always, 0.0 only when the
    /// flip is bypassed).
    pub matching_enabled_ratio: f64,
    /// A negative bank holds known false positives: a query that matches
    /// one of its enabled entries matches nothing (HMA has no such bank).
    pub negative: bool,
}

/// What lookups need of one piece of banked content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentInfo {
    /// The store's id.
    pub id: ContentId,
    /// The bank holding it.
    pub bank: BankId,
    /// HMA's `disable_until_ts`: 0 disabled for good, 1 enabled (the
    /// default), any other value disabled until that Unix time (seconds).
    pub disable_until_ts: i64,
    /// Its signals, at most one per type.
    pub signals: Vec<(SignalType, Words)>,
}

/// Whether content with this `disable_until_ts` matches at Unix time `now`
/// (HMA's rule: 0 never, otherwise from that time on; 1 is always past).
pub fn is_enabled_at(disable_until_ts: i64, now: i64) -> bool {
    disable_until_ts != 0 && disable_until_ts <= now
}

/// What is kept per content for lookups (its hashes live in the indexes).
#[derive(Clone, Copy, Debug)]
struct ContentMeta {
    bank: BankId,
    disable_until_ts: i64,
}

/// One match: the content and its distance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RawMatch {
    /// Hamming distance to the query.
    pub distance: u32,
    /// The content matched.
    pub content: ContentId,
}

/// How a lookup is made.
#[derive(Clone, Debug, Default)]
pub struct LookupOptions {
    /// Only these banks (by name); all when `None`.
    pub banks: Option<BTreeSet<String>>,
    /// The lookup's coin flip in [0, 1): a bank is consulted when its
    /// `matching_enabled_ratio` is at least this. 0 bypasses the flip.
    pub coinflip: f64,
    /// Match within this distance instead of the signal type's threshold;
    /// must not exceed it.
    pub max_distance: Option<u32>,
    /// Unix time (seconds), for `disable_until_ts`.
    pub now: i64,
}

/// Why a lookup cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The signal type is not indexed by this service.
    #[error("No such SignalType '{0}'")]
    UnknownSignalType(String),
    /// `max_distance` over the signal type's threshold.
    #[error("max_distance {asked} is over the {signal} threshold of {threshold}")]
    DistanceOverThreshold {
        /// The signal type.
        signal: &'static str,
        /// Asked for.
        asked: u32,
        /// The threshold.
        threshold: u32,
    },
}

/// What `GET /m/index/status` reports for one signal type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalStatus {
    /// Unix time (seconds) of the newest change the index holds, -1 when it
    /// holds none.
    pub built_to: i64,
    /// Signals indexed (enabled or not).
    pub size: usize,
}

/// Every bank, every content's state, and one live index per signal type.
#[derive(Debug)]
pub struct MatchState {
    banks: HashMap<BankId, BankInfo>,
    contents: HashMap<ContentId, ContentMeta>,
    indexes: BTreeMap<SignalType, LiveIndex<ContentId>>,
    thresholds: BTreeMap<SignalType, u32>,
    built_to: BTreeMap<SignalType, i64>,
}

impl MatchState {
    /// An empty state serving `signals`, each with its match threshold (HMA's
    /// defaults: PDQ 31, `video_md5` 0).
    pub fn new(signals: impl IntoIterator<Item = (SignalType, u32)>) -> Self {
        let thresholds: BTreeMap<SignalType, u32> = signals.into_iter().collect();
        let indexes = thresholds.keys().map(|s| (*s, LiveIndex::new(s.bits(), []))).collect();
        MatchState { banks: HashMap::new(), contents: HashMap::new(), indexes, thresholds, built_to: BTreeMap::new() }
    }

    /// A state loaded in one go: every bank and every content, each index
    /// built once (rather than content by content).
    pub fn load(
        signals: impl IntoIterator<Item = (SignalType, u32)>,
        banks: impl IntoIterator<Item = BankInfo>,
        contents: impl IntoIterator<Item = ContentInfo>,
        built_to: i64,
    ) -> Self {
        let mut state = MatchState::new(signals);
        state.banks = banks.into_iter().map(|b| (b.id, b)).collect();
        let mut entries: BTreeMap<SignalType, Vec<(ContentId, Words)>> = BTreeMap::new();
        for c in contents {
            if !state.banks.contains_key(&c.bank) {
                continue;
            }
            state.contents.insert(c.id, ContentMeta { bank: c.bank, disable_until_ts: c.disable_until_ts });
            for (signal, hash) in c.signals {
                if state.indexes.contains_key(&signal) {
                    entries.entry(signal).or_default().push((c.id, hash));
                }
            }
        }
        for (signal, list) in entries {
            state.indexes.insert(signal, LiveIndex::new(signal.bits(), list));
        }
        for signal in state.thresholds.keys() {
            state.built_to.insert(*signal, built_to);
        }
        state
    }

    /// The signal types served, with their thresholds.
    pub fn signal_types(&self) -> impl Iterator<Item = (SignalType, u32)> + '_ {
        self.thresholds.iter().map(|(s, t)| (*s, *t))
    }

    /// The signal type named `name`, if served.
    pub fn signal_type(&self, name: &str) -> Option<SignalType> {
        self.thresholds.keys().copied().find(|s| s.name() == name)
    }

    /// Adds or replaces a bank.
    pub fn upsert_bank(&mut self, bank: BankInfo) {
        self.banks.insert(bank.id, bank);
    }

    /// Removes a bank and all its content.
    pub fn remove_bank(&mut self, id: BankId, now: i64) {
        self.banks.remove(&id);
        let gone: Vec<ContentId> = self.contents.iter().filter(|(_, m)| m.bank == id).map(|(c, _)| *c).collect();
        for content in gone {
            self.remove_content(content, now);
        }
    }

    /// Adds or replaces a content and its signals (a signal type it no
    /// longer has is dropped from that index). Content of an unknown bank,
    /// and signals of types not served, are ignored.
    pub fn upsert_content(&mut self, content: ContentInfo, now: i64) {
        if !self.banks.contains_key(&content.bank) {
            return;
        }
        let meta = ContentMeta { bank: content.bank, disable_until_ts: content.disable_until_ts };
        self.contents.insert(content.id, meta);
        for (signal, index) in &mut self.indexes {
            match content.signals.iter().find(|(s, _)| s == signal) {
                Some((_, hash)) => index.insert(content.id, *hash),
                None => {
                    index.remove(&content.id);
                }
            }
            self.built_to.insert(*signal, now);
        }
    }

    /// Removes a content.
    pub fn remove_content(&mut self, id: ContentId, now: i64) {
        self.contents.remove(&id);
        for (signal, index) in &mut self.indexes {
            if index.remove(&id) {
                self.built_to.insert(*signal, now);
            }
        }
    }

    /// The bank holding a content, and whether the content matches at `now`.
    pub fn content_state(&self, id: ContentId, now: i64) -> Option<(&BankInfo, bool)> {
        let meta = self.contents.get(&id)?;
        let bank = self.banks.get(&meta.bank)?;
        Some((bank, is_enabled_at(meta.disable_until_ts, now)))
    }

    /// The bank with this id.
    pub fn bank(&self, id: BankId) -> Option<&BankInfo> {
        self.banks.get(&id)
    }

    /// The bank named `name`.
    pub fn bank_named(&self, name: &str) -> Option<&BankInfo> {
        self.banks.values().find(|b| b.name == name)
    }

    fn threshold(&self, signal: SignalType) -> Result<u32, LookupError> {
        self.thresholds.get(&signal).copied().ok_or_else(|| LookupError::UnknownSignalType(signal.name().into()))
    }

    /// HMA's `raw_lookup`: every indexed content within the threshold, in
    /// the named banks if given, enabled or not, sorted by distance then id.
    pub fn raw_lookup(
        &self,
        signal: SignalType,
        hash: &Words,
        banks: Option<&BTreeSet<String>>,
    ) -> Result<Vec<RawMatch>, LookupError> {
        let radius = self.threshold(signal)?;
        let Some(index) = self.indexes.get(&signal) else { return Ok(Vec::new()) };
        Ok(index
            .range(hash, radius)
            .into_iter()
            .filter(|hit| {
                banks.is_none_or(|names| {
                    self.contents
                        .get(&hit.key)
                        .and_then(|m| self.banks.get(&m.bank))
                        .is_some_and(|b| names.contains(&b.name))
                })
            })
            .map(|hit| RawMatch { distance: hit.distance, content: hit.key })
            .collect())
    }

    /// HMA's `lookup`: enabled content within the threshold (or the smaller
    /// `max_distance`), in the banks the coin flip and the bank filter
    /// leave, by bank name, each bank's matches by distance then id.
    /// Negative banks are never listed; a match in one (within the same
    /// distance) suppresses every other match of the query.
    pub fn lookup(
        &self,
        signal: SignalType,
        hash: &Words,
        options: &LookupOptions,
    ) -> Result<BTreeMap<String, Vec<RawMatch>>, LookupError> {
        let threshold = self.threshold(signal)?;
        let radius = match options.max_distance {
            Some(asked) if asked > threshold => {
                return Err(LookupError::DistanceOverThreshold { signal: signal.name(), asked, threshold });
            }
            Some(asked) => asked,
            None => threshold,
        };
        let mut out: BTreeMap<String, Vec<RawMatch>> = BTreeMap::new();
        let Some(index) = self.indexes.get(&signal) else { return Ok(out) };
        for hit in index.range(hash, radius) {
            let Some(meta) = self.contents.get(&hit.key) else { continue };
            let Some(bank) = self.banks.get(&meta.bank) else { continue };
            if !is_enabled_at(meta.disable_until_ts, options.now) {
                continue;
            }
            if bank.negative {
                return Ok(BTreeMap::new());
            }
            if bank.matching_enabled_ratio < options.coinflip
                || options.banks.as_ref().is_some_and(|names| !names.contains(&bank.name))
            {
                continue;
            }
            out.entry(bank.name.clone()).or_default().push(RawMatch { distance: hit.distance, content: hit.key });
        }
        Ok(out)
    }

    /// `GET /m/index/status` for each served signal type.
    pub fn status(&self) -> BTreeMap<SignalType, SignalStatus> {
        self.thresholds
            .keys()
            .map(|s| {
                let size = self.indexes.get(s).map_or(0, LiveIndex::len);
                let built_to = self.built_to.get(s).copied().unwrap_or(-1);
                (*s, SignalStatus { built_to, size })
            })
            .collect()
    }

    /// Snapshots of the indexes whose pending changes are worth a rebuild
    /// (over `min_pending`, and over 1/16 of the base), for
    /// [`Snapshot::build`] off the lock and [`Self::install`] after.
    pub fn snapshot(&mut self, min_pending: usize) -> Vec<(SignalType, Snapshot<ContentId>)> {
        self.indexes
            .iter_mut()
            .filter(|(_, index)| index.needs_compaction(min_pending))
            .map(|(signal, index)| (*signal, index.snapshot()))
            .collect()
    }

    /// Installs a rebuilt base (see [`LiveIndex::install`]).
    pub fn install(&mut self, signal: SignalType, rebuilt: Rebuilt<ContentId>) -> bool {
        self.indexes.get_mut(&signal).is_some_and(|index| index.install(rebuilt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(bits: &[usize]) -> Words {
        let mut w = [0u64; 4];
        for &b in bits {
            w[b / 64] |= 1 << (b % 64);
        }
        w
    }

    fn bank(id: BankId, name: &str, ratio: f64, negative: bool) -> BankInfo {
        BankInfo { id, name: name.into(), matching_enabled_ratio: ratio, negative }
    }

    fn content(id: ContentId, bank: BankId, h: Words) -> ContentInfo {
        ContentInfo { id, bank, disable_until_ts: 1, signals: vec![(SignalType::Pdq, h)] }
    }

    /// Options for a lookup at a time after every `disable_until_ts` of 1.
    fn at() -> LookupOptions {
        LookupOptions { now: 1_000, ..LookupOptions::default() }
    }

    fn state() -> MatchState {
        let mut s = MatchState::new([(SignalType::Pdq, 31), (SignalType::VideoMd5, 0)]);
        s.upsert_bank(bank(1, "A", 1.0, false));
        s.upsert_bank(bank(2, "B", 0.5, false));
        s.upsert_content(content(10, 1, hash(&[])), 100);
        s.upsert_content(content(11, 1, hash(&(0..31).collect::<Vec<_>>())), 100);
        s.upsert_content(content(12, 1, hash(&(0..32).collect::<Vec<_>>())), 100);
        s.upsert_content(content(20, 2, hash(&[1, 2])), 100);
        s
    }

    fn lookup(s: &MatchState, options: &LookupOptions) -> Vec<(String, ContentId, u32)> {
        s.lookup(SignalType::Pdq, &hash(&[]), options)
            .unwrap()
            .into_iter()
            .flat_map(|(b, ms)| ms.into_iter().map(move |m| (b.clone(), m.content, m.distance)))
            .collect()
    }

    #[test]
    fn lookups_follow_thresholds_coinflips_filters_and_disables() {
        let mut s = state();
        let all = at();
        assert_eq!(lookup(&s, &all), [("A".into(), 10, 0), ("A".into(), 11, 31), ("B".into(), 20, 2)]);
        // The coin flip leaves out banks whose ratio is under it.
        let flip = LookupOptions { coinflip: 0.7, ..at() };
        assert_eq!(lookup(&s, &flip), [("A".into(), 10, 0), ("A".into(), 11, 31)]);
        let only_b = LookupOptions { banks: Some(BTreeSet::from(["B".to_owned()])), ..at() };
        assert_eq!(lookup(&s, &only_b), [("B".into(), 20, 2)]);
        let near = LookupOptions { max_distance: Some(2), ..at() };
        assert_eq!(lookup(&s, &near), [("A".into(), 10, 0), ("B".into(), 20, 2)]);
        let far = LookupOptions { max_distance: Some(32), ..at() };
        assert!(matches!(s.lookup(SignalType::Pdq, &hash(&[]), &far), Err(LookupError::DistanceOverThreshold { .. })));
        // Disabled until a time: not matched before it, matched from it on.
        let mut c = content(10, 1, hash(&[]));
        c.disable_until_ts = 500;
        s.upsert_content(c, 200);
        assert_eq!(lookup(&s, &LookupOptions { now: 499, ..at() }).len(), 2);
        assert_eq!(lookup(&s, &LookupOptions { now: 500, ..at() }).len(), 3);
        // raw_lookup ignores enabled state.
        let raw = s.raw_lookup(SignalType::Pdq, &hash(&[]), None).unwrap();
        assert_eq!(raw.iter().map(|m| m.content).collect::<Vec<_>>(), [10, 20, 11]);
        assert_eq!(s.status()[&SignalType::Pdq], SignalStatus { built_to: 200, size: 4 });
        assert!(matches!(
            s.raw_lookup(SignalType::Phash, &hash(&[]), None),
            Err(LookupError::UnknownSignalType(name)) if name == "phash"
        ));
    }

    #[test]
    fn a_negative_bank_match_suppresses_the_query_and_deletes_take_effect() {
        let mut s = state();
        s.upsert_bank(bank(3, "KNOWN_FALSE_POSITIVES", 1.0, true));
        s.upsert_content(content(30, 3, hash(&[5])), 300);
        assert!(lookup(&s, &at()).is_empty(), "the query is a known false positive");
        // Disabled negative entries do not suppress.
        let mut c = content(30, 3, hash(&[5]));
        c.disable_until_ts = 0;
        s.upsert_content(c, 301);
        assert_eq!(lookup(&s, &at()).len(), 3);
        s.remove_bank(1, 302);
        assert_eq!(lookup(&s, &at()), [("B".into(), 20, 2)]);
        s.remove_content(20, 303);
        assert!(lookup(&s, &at()).is_empty());
        assert_eq!(s.status()[&SignalType::Pdq].size, 1);
    }

    #[test]
    fn loading_in_one_go_equals_applying_one_by_one_and_rebuilds_keep_answers() {
        let one_by_one = state();
        let mut loaded = MatchState::load(
            [(SignalType::Pdq, 31), (SignalType::VideoMd5, 0)],
            [bank(1, "A", 1.0, false), bank(2, "B", 0.5, false)],
            [
                content(10, 1, hash(&[])),
                content(11, 1, hash(&(0..31).collect::<Vec<_>>())),
                content(12, 1, hash(&(0..32).collect::<Vec<_>>())),
                content(20, 2, hash(&[1, 2])),
                content(99, 7, hash(&[])), // no such bank: ignored
            ],
            100,
        );
        let all = at();
        assert_eq!(lookup(&loaded, &all), lookup(&one_by_one, &all));
        for i in 0..100 {
            // Far from the query: the answers stay those of `one_by_one`.
            loaded.upsert_content(content(1000 + i, 2, hash(&(100..200).collect::<Vec<_>>())), 150);
        }
        let snapshots = loaded.snapshot(10);
        assert_eq!(snapshots.len(), 1);
        loaded.remove_content(1000, 160);
        for (signal, snapshot) in snapshots {
            assert!(loaded.install(signal, snapshot.build()));
        }
        assert_eq!(loaded.status()[&SignalType::Pdq].size, 4 + 99);
        assert_eq!(lookup(&loaded, &all), lookup(&one_by_one, &all));
        let far = hash(&(100..200).collect::<Vec<_>>());
        assert_eq!(loaded.raw_lookup(SignalType::Pdq, &far, None).unwrap().len(), 99);
    }
}
