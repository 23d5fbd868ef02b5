//! Matching query hashes against several banks.

use crate::bank::Bank;
use crate::index::{HammingIndex, Words};
use crate::signal::SignalType;

/// One bank entry that a query matched.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BankMatch {
    /// The entry's hash, hex.
    pub hash: String,
    /// Hamming distance to the query.
    pub distance: u32,
    /// The bank's name.
    pub bank: String,
    /// The entry's labels.
    pub labels: Vec<String>,
}

/// Banks with their indexes, ready to answer queries; immutable, so queries
/// can run in parallel.
#[derive(Debug)]
pub struct Matcher {
    banks: Vec<(Bank, HammingIndex)>,
}

impl Matcher {
    /// Indexes each bank.
    pub fn new(banks: Vec<Bank>) -> Self {
        let banks = banks
            .into_iter()
            .map(|bank| {
                let index = HammingIndex::new(bank.signal.bits(), bank.entries.iter().map(|e| e.hash).collect());
                (bank, index)
            })
            .collect();
        Matcher { banks }
    }

    /// The banks.
    pub fn banks(&self) -> impl Iterator<Item = &Bank> {
        self.banks.iter().map(|(b, _)| b)
    }

    /// Matches of a `signal` hash in every bank of that type, within each
    /// bank's threshold (or `threshold` if given), sorted by distance, then
    /// bank, then hash. A query whose `quality` is under a bank's floor does not
    /// match in that bank.
    pub fn query(
        &self,
        signal: SignalType,
        hash: &Words,
        quality: Option<u8>,
        threshold: Option<u32>,
    ) -> Vec<BankMatch> {
        let mut out = Vec::new();
        for (bank, index) in &self.banks {
            if bank.signal != signal || quality.is_some_and(|q| q < bank.quality_floor) {
                continue;
            }
            let radius = threshold.unwrap_or(bank.threshold);
            for hit in index.range(hash, radius) {
                let entry = &bank.entries[hit.id as usize];
                out.push(BankMatch {
                    hash: signal.format_hash(&entry.hash),
                    distance: hit.distance,
                    bank: bank.name.clone(),
                    labels: entry.labels.iter().cloned().collect(),
                });
            }
        }
        out.sort_by(|a, b| (a.distance, &a.bank, &a.hash).cmp(&(b.distance, &b.bank, &b.hash)));
        out
    }
}
