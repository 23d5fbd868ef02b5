//! vPDQ's match rule, as Meta's `vpdq` and HMA apply it: each side's frames
//! are an unordered set of unique hashes of good quality, and two videos match
//! by the share of each side's frames that have a close frame on the other.

use std::collections::HashSet;

use frankly_hash::{PdqHash, VpdqFeature};

/// Frames below this PDQ quality are left out of matching (Meta's and HMA's
/// default, `VPDQ_QUALITY_THRESHOLD`).
pub const VPDQ_QUALITY_THRESHOLD: u8 = 50;
/// Two frames match at this Hamming distance or less (HMA's
/// `VPDQ_DISTANCE_THRESHOLD`).
pub const VPDQ_DISTANCE_THRESHOLD: u32 = 31;
/// Default share of the query's frames that must match, in percent (HMA's
/// `VPDQ_QUERY_MATCH_THRESHOLD_PERCENT`).
pub const VPDQ_QUERY_MATCH_PERCENT: f64 = 80.0;
/// Default share of the banked (compared) video's frames that must match
/// (HMA's `VPDQ_INDEX_MATCH_THRESHOLD_PERCENT`).
pub const VPDQ_COMPARED_MATCH_PERCENT: f64 = 0.0;
/// The match rule's parameters.
///
/// Meta's README and python-threatexchange put the 80 % on different sides:
/// the README asks that 80 % of the *compared* (banked) video match and 0 %
/// of the query; `vpdq_util.py`, which HMA runs, asks 80 % of the *query*
/// and 0 % of the compared video. frankly names each side and defaults to
/// HMA's, so a verdict agrees with HMA's on the same hashes. With HMA's
/// sides, a query that wraps a banked clip in unrelated frames (over 20 % of
/// its frames) does not match; `min_compared_percent` 80 catches that
/// instead, at the cost of missing a trimmed excerpt of a banked video.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VpdqThresholds {
    /// Frames below this quality are ignored on both sides.
    pub quality: u8,
    /// Frames match at this distance or less.
    pub distance: u32,
    /// Least share of the query's frames that must match, in percent.
    pub min_query_percent: f64,
    /// Least share of the compared video's frames that must match.
    pub min_compared_percent: f64,
}

impl Default for VpdqThresholds {
    fn default() -> Self {
        VpdqThresholds {
            quality: VPDQ_QUALITY_THRESHOLD,
            distance: VPDQ_DISTANCE_THRESHOLD,
            min_query_percent: VPDQ_QUERY_MATCH_PERCENT,
            min_compared_percent: VPDQ_COMPARED_MATCH_PERCENT,
        }
    }
}

/// The two percentages of vPDQ's match rule.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct VpdqMatch {
    /// Share of the query's unique, good-quality frames that have a match.
    pub query_percent: f64,
    /// Share of the compared video's unique, good-quality frames that have a
    /// match.
    pub compared_percent: f64,
}

impl VpdqMatch {
    /// Whether both percentages reach their thresholds (and at least one
    /// frame matched: two videos with no usable frame do not match).
    pub fn is_match(&self, thresholds: &VpdqThresholds) -> bool {
        (self.query_percent > 0.0 || self.compared_percent > 0.0)
            && self.query_percent >= thresholds.min_query_percent
            && self.compared_percent >= thresholds.min_compared_percent
    }
}

/// The unique hashes of features at or above `quality`, in first-seen order:
/// HMA's `quality_filter(dedupe(features))` (dedupe first, keeping each
/// hash's first occurrence, then drop low quality).
pub fn usable_hashes(features: &[VpdqFeature], quality: u8) -> Vec<PdqHash> {
    usable_features(features, quality).map(|f| f.hash).collect()
}

/// The features [`usable_hashes`] keeps, in order.
pub fn usable_features(features: &[VpdqFeature], quality: u8) -> impl Iterator<Item = &VpdqFeature> {
    let mut seen = HashSet::new();
    features.iter().filter(move |f| seen.insert(f.hash)).filter(move |f| f.quality >= quality)
}

/// `count` of `len` in percent, as every side of the rule computes it.
pub(crate) fn percent(count: usize, len: usize) -> f64 {
    count as f64 * 100.0 / len as f64
}

/// Meta's brute-force match of two vPDQ hashes: the percentage of each
/// side's usable frames within `distance` of some usable frame of the other.
/// A side with no usable frame gives 0 % both ways (where HMA's Python
/// divides by zero).
pub fn match_brute(query: &[VpdqFeature], compared: &[VpdqFeature], quality: u8, distance: u32) -> VpdqMatch {
    let q = usable_hashes(query, quality);
    let c = usable_hashes(compared, quality);
    percentages(&q, &c, distance)
}

/// [`match_brute`] on usable hashes.
pub fn percentages(query: &[PdqHash], compared: &[PdqHash], distance: u32) -> VpdqMatch {
    if query.is_empty() || compared.is_empty() {
        return VpdqMatch { query_percent: 0.0, compared_percent: 0.0 };
    }
    let count = |a: &[PdqHash], b: &[PdqHash]| a.iter().filter(|x| b.iter().any(|y| x.distance(y) <= distance)).count();
    VpdqMatch {
        query_percent: percent(count(query, compared), query.len()),
        compared_percent: percent(count(compared, query), compared.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(n: u64, quality: u8, byte: u8) -> VpdqFeature {
        VpdqFeature { frame_number: n, quality, hash: PdqHash([byte; 32]), timestamp: n as f64 / 30.0 }
    }

    #[test]
    fn dedupe_comes_before_the_quality_filter_as_in_hma() {
        // The first occurrence of a hash has low quality: HMA drops the hash.
        let features = vec![feature(0, 10, 1), feature(1, 90, 1), feature(2, 90, 2)];
        assert_eq!(usable_hashes(&features, 50), vec![PdqHash([2; 32])]);
    }

    #[test]
    fn percentages_are_per_side_and_thresholds_are_named_by_side() {
        // Query: 4 frames, one of them the banked clip's only frame.
        let query: Vec<VpdqFeature> = (0..4).map(|i| feature(i, 100, [0x00, 0x55, 0xaa, 0xff][i as usize])).collect();
        let banked = vec![feature(0, 100, 0x00)];
        let m = match_brute(&query, &banked, 50, 31);
        assert_eq!((m.query_percent, m.compared_percent), (25.0, 100.0));
        // HMA's sides: 25 % of the query is under 80 %, no match.
        assert!(!m.is_match(&VpdqThresholds::default()));
        // The README's sides: all of the banked clip found, a match.
        let readme = VpdqThresholds { min_query_percent: 0.0, min_compared_percent: 80.0, ..Default::default() };
        assert!(m.is_match(&readme));
        // No usable frame on one side: 0 %, never a match.
        let low = vec![feature(0, 10, 0x00)];
        let none = match_brute(&query, &low, 50, 31);
        assert_eq!((none.query_percent, none.compared_percent), (0.0, 0.0));
        assert!(!none.is_match(&VpdqThresholds { min_query_percent: 0.0, ..Default::default() }));
    }
}
