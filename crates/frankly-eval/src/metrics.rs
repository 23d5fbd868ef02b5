//! The metrics of a robustness study, as pure functions of distances.
//!
//! A *query* is a transformed image. Its **positive** distance is to the hash
//! of its own original; its **negatives** are its distances to every other
//! original. Two families of numbers come out:
//!
//! - **recall at a fixed precision**, exactly as Thorn's `perception`
//!   computes it (`compute_threshold_precision_recall` in
//!   `perception/benchmarking/common.py`): each query contributes its
//!   positive distance and its distance to the *nearest* wrong original.
//!   Queries are sorted by positive distance; at the i-th (1-based) the
//!   candidate threshold is its positive distance, `tp = i` and `fp` = the
//!   number of queries whose nearest-wrong distance is within it. The
//!   threshold kept is the one just before precision first falls under the
//!   target, and recall is the fraction of queries whose positive distance
//!   is within it.
//! - **recall at a fixed false-positive rate** and the **ROC curve**, over
//!   all pairs: the false-positive rate at threshold `t` is the fraction of
//!   (query, other original) pairs at distance `<= t`, the true-positive rate
//!   the fraction of queries within `t` of their original.

/// Recall at a precision target, as perception defines it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct PrecisionPoint {
    /// The distance threshold chosen (a hash within it matches).
    pub threshold: u32,
    /// Fraction of queries matched at that threshold, 0..=1.
    pub recall: f64,
    /// The lowest precision (0..=1) among the matched queries' thresholds;
    /// `None` where perception reports NaN (nothing matched).
    pub precision: Option<f64>,
}

/// Recall at a fixed precision, following perception's
/// `compute_threshold_precision_recall`: `queries` are (positive distance,
/// distance to the nearest wrong original), `precision_target` is in 0..=1
/// (perception's default is 0.999). `None` without queries.
pub fn recall_at_precision(queries: &[(u32, u32)], precision_target: f64) -> Option<PrecisionPoint> {
    if queries.is_empty() {
        return None;
    }
    let mut pos: Vec<u32> = queries.iter().map(|q| q.0).collect();
    pos.sort_unstable();
    let mut neg: Vec<u32> = queries.iter().map(|q| q.1).collect();
    neg.sort_unstable();
    let n = pos.len();
    // precision[i] in percent, as perception compares it against 100 * target.
    let precision: Vec<f64> = pos
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let tp = (i + 1) as f64;
            let fp = neg.partition_point(|&d| d <= t) as f64;
            100.0 * tp / (tp + fp)
        })
        .collect();
    let target = 100.0 * precision_target;
    let bad = precision.iter().position(|&p| p < target);
    Some(match bad {
        Some(b) if b > 0 => {
            let threshold = pos[b - 1];
            let recovered = pos.partition_point(|&d| d <= threshold);
            let min_precision = precision[..recovered].iter().copied().fold(f64::INFINITY, f64::min);
            PrecisionPoint {
                threshold,
                recall: round3(100.0 * recovered as f64 / n as f64) / 100.0,
                precision: Some(min_precision / 100.0),
            }
        }
        Some(_) => PrecisionPoint { threshold: pos[0], recall: 0.0, precision: None },
        None => PrecisionPoint { threshold: pos[n - 1], recall: 1.0, precision: Some(1.0) },
    })
}

/// Rounds to 3 decimals as numpy's `round(x, 3)` does for these values.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Counts of distances `0..=bits`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Histogram {
    /// `counts[d]` = how many distances equal `d`.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// An empty histogram for hashes of `bits` bits.
    pub fn new(bits: u32) -> Histogram {
        Histogram { counts: vec![0; bits as usize + 1] }
    }

    /// Counts a distance (clamped to the widest bin).
    pub fn add(&mut self, distance: u32) {
        let last = self.counts.len() - 1;
        self.counts[(distance as usize).min(last)] += 1;
    }

    /// Adds another histogram of the same width.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// Total count.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// How many distances are `<= threshold`.
    pub fn at_most(&self, threshold: u32) -> u64 {
        self.counts.iter().take(threshold as usize + 1).sum()
    }

    /// The fraction of distances `<= threshold` (0 when empty).
    pub fn rate_at_most(&self, threshold: u32) -> f64 {
        let total = self.total();
        if total == 0 { 0.0 } else { self.at_most(threshold) as f64 / total as f64 }
    }

    /// The lower median: the smallest `d` with `2 * at_most(d) >= total`; `None` when empty.
    pub fn median(&self) -> Option<u32> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let mut seen = 0;
        for (d, &c) in self.counts.iter().enumerate() {
            seen += c;
            if 2 * seen >= total {
                return Some(d as u32);
            }
        }
        None
    }

    /// Mean distance; `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        let total = self.total();
        (total > 0)
            .then(|| self.counts.iter().enumerate().map(|(d, &c)| d as f64 * c as f64).sum::<f64>() / total as f64)
    }
}

/// One point of a ROC curve.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct RocPoint {
    /// The threshold (match when distance `<=` it).
    pub threshold: u32,
    /// True-positive rate (recall), 0..=1.
    pub tpr: f64,
    /// False-positive rate over all negative pairs, 0..=1.
    pub fpr: f64,
}

/// The ROC curve, one point per threshold `0..=bits`.
pub fn roc(positives: &Histogram, negatives: &Histogram) -> Vec<RocPoint> {
    (0..positives.counts.len().max(negatives.counts.len()) as u32)
        .map(|t| RocPoint { threshold: t, tpr: positives.rate_at_most(t), fpr: negatives.rate_at_most(t) })
        .collect()
}

/// Area under a ROC curve, by trapezoids from (0, 0) to (1, 1).
pub fn auc(curve: &[RocPoint]) -> f64 {
    let mut area = 0.0;
    let (mut x, mut y) = (0.0, 0.0);
    for p in curve.iter().chain(std::iter::once(&RocPoint { threshold: u32::MAX, tpr: 1.0, fpr: 1.0 })) {
        area += (p.fpr - x) * (p.tpr + y) / 2.0;
        (x, y) = (p.fpr, p.tpr);
    }
    area
}

/// Recall at a false-positive-rate target.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct FprPoint {
    /// The largest threshold whose false-positive rate is within the target;
    /// `None` if even distance 0 exceeds it.
    pub threshold: Option<u32>,
    /// Recall at that threshold (0 without one).
    pub recall: f64,
    /// The false-positive rate measured at that threshold.
    pub fpr: f64,
}

/// Recall at the largest threshold whose false-positive rate is `<= fpr_target`.
pub fn recall_at_fpr(positives: &Histogram, negatives: &Histogram, fpr_target: f64) -> FprPoint {
    let curve = roc(positives, negatives);
    match curve.iter().rev().find(|p| p.fpr <= fpr_target) {
        Some(p) => FprPoint { threshold: Some(p.threshold), recall: p.tpr, fpr: p.fpr },
        None => FprPoint { threshold: None, recall: 0.0, fpr: 0.0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Hand-checked: positives sorted 1,2,3,5,8; nearest wrong 4,9,9,9,9.
    /// Thresholds 1,2,3: precision 100% (no negative within). At 5: one
    /// negative (4) within, tp = 4, precision 4/5 = 80%. So the threshold is
    /// 3 and recall 3/5.
    #[test]
    fn precision_by_hand() {
        let q = [(5, 9), (1, 4), (3, 9), (8, 9), (2, 9)];
        let p = recall_at_precision(&q, 0.999).unwrap();
        assert_eq!(p, PrecisionPoint { threshold: 3, recall: 0.6, precision: Some(1.0) });
        // At 80%: precision at 5 is exactly 80% and at 8 it is 5/6, so
        // nothing falls under the target and every query matches.
        let p = recall_at_precision(&q, 0.8).unwrap();
        assert_eq!(p.threshold, 8);
        assert_eq!(p.recall, 1.0);
    }

    #[test]
    fn precision_edge_cases() {
        assert_eq!(recall_at_precision(&[], 0.9), None);
        // The closest positive is already beaten by a negative at distance 0.
        let p = recall_at_precision(&[(3, 0), (4, 10)], 0.999).unwrap();
        assert_eq!(p, PrecisionPoint { threshold: 3, recall: 0.0, precision: None });
        // Ties: positives 2,2,2 with a negative at 2 -> precision at i=0 is 1/2.
        let p = recall_at_precision(&[(2, 2), (2, 50), (2, 50)], 0.999).unwrap();
        assert_eq!(p.recall, 0.0);
        // Perception's tie quirk: tp counts the sorted index, so with positives
        // 1,3,3 and a negative at 3, precision at the first 3 is 2/3 (< target),
        // the threshold stays 1, recall 1/3 rounded to 33.333%.
        let p = recall_at_precision(&[(1, 9), (3, 3), (3, 9)], 0.9).unwrap();
        assert_eq!(p.threshold, 1);
        assert!((p.recall - 0.33333).abs() < 1e-12, "{}", p.recall);
    }

    #[test]
    fn histogram_and_roc_by_hand() {
        let mut pos = Histogram::new(4);
        for d in [0, 1, 1, 3] {
            pos.add(d);
        }
        let mut neg = Histogram::new(4);
        for d in [2, 3, 4, 4, 4, 4, 4, 4, 4, 4] {
            neg.add(d);
        }
        assert_eq!(pos.median(), Some(1));
        assert_eq!(pos.mean(), Some(1.25));
        let curve = roc(&pos, &neg);
        assert_eq!(curve.len(), 5);
        assert_eq!((curve[1].tpr, curve[1].fpr), (0.75, 0.0));
        assert_eq!((curve[2].tpr, curve[2].fpr), (0.75, 0.1));
        assert_eq!(recall_at_fpr(&pos, &neg, 0.0), FprPoint { threshold: Some(1), recall: 0.75, fpr: 0.0 });
        assert_eq!(recall_at_fpr(&pos, &neg, 0.2), FprPoint { threshold: Some(3), recall: 1.0, fpr: 0.2 });
        // Perfect separation has area 1; identical distributions about 0.5.
        let area = auc(&curve);
        assert!(area > 0.95 && area <= 1.0, "{area}");
        assert!((auc(&roc(&neg, &neg)) - 0.5).abs() < 0.1);
        let mut zero = Histogram::new(4);
        zero.add(0);
        assert_eq!(recall_at_fpr(&pos, &zero, 0.5).threshold, None);
    }

    /// Brute force of perception's definition, written as directly as the
    /// numpy code: for each candidate threshold (each positive distance in
    /// sorted order) count fp by scanning every negative.
    fn brute(queries: &[(u32, u32)], target: f64) -> PrecisionPoint {
        let mut idx: Vec<usize> = (0..queries.len()).collect();
        idx.sort_by_key(|&i| queries[i].0);
        let pos: Vec<u32> = idx.iter().map(|&i| queries[i].0).collect();
        let precision: Vec<f64> = (0..pos.len())
            .map(|i| {
                let fp = queries.iter().filter(|q| q.1 <= pos[i]).count() as f64;
                100.0 * (i + 1) as f64 / ((i + 1) as f64 + fp)
            })
            .collect();
        let bad: Vec<usize> = (0..pos.len()).filter(|&i| precision[i] < 100.0 * target).collect();
        if !bad.is_empty() && bad[0] > 0 {
            let t = pos[bad[0] - 1];
            let recovered = pos.iter().filter(|&&d| d <= t).count();
            let prec = (0..pos.len()).filter(|&i| pos[i] <= t).map(|i| precision[i]).fold(f64::INFINITY, f64::min);
            PrecisionPoint {
                threshold: t,
                recall: ((100.0 * recovered as f64 / pos.len() as f64) * 1000.0).round() / 100_000.0,
                precision: Some(prec / 100.0),
            }
        } else if !bad.is_empty() {
            PrecisionPoint { threshold: pos[0], recall: 0.0, precision: None }
        } else {
            PrecisionPoint { threshold: *pos.iter().max().unwrap_or(&0), recall: 1.0, precision: Some(1.0) }
        }
    }

    proptest! {
        #[test]
        fn precision_matches_brute_force(
            queries in prop::collection::vec((0u32..40, 0u32..40), 1..60),
            target in prop::sample::select(vec![0.5, 0.8, 0.9, 0.95, 0.999]),
        ) {
            let fast = recall_at_precision(&queries, target).unwrap();
            let slow = brute(&queries, target);
            prop_assert_eq!(fast.threshold, slow.threshold);
            prop_assert!((fast.recall - slow.recall).abs() < 1e-12, "{} vs {}", fast.recall, slow.recall);
            prop_assert_eq!(fast.precision.is_some(), slow.precision.is_some());
            if let (Some(a), Some(b)) = (fast.precision, slow.precision) {
                prop_assert!((a - b).abs() < 1e-12);
            }
        }

        #[test]
        fn fpr_threshold_is_the_largest_within_target(
            pos in prop::collection::vec(0u32..20, 1..40),
            neg in prop::collection::vec(0u32..20, 1..80),
            target in 0.0f64..0.5,
        ) {
            let (mut hp, mut hn) = (Histogram::new(20), Histogram::new(20));
            pos.iter().for_each(|&d| hp.add(d));
            neg.iter().for_each(|&d| hn.add(d));
            let got = recall_at_fpr(&hp, &hn, target);
            let rate = |t: u32| neg.iter().filter(|&&d| d <= t).count() as f64 / neg.len() as f64;
            let best = (0..=20u32).filter(|&t| rate(t) <= target).max();
            prop_assert_eq!(got.threshold, best);
            if let Some(t) = best {
                let recall = pos.iter().filter(|&&d| d <= t).count() as f64 / pos.len() as f64;
                prop_assert!((got.recall - recall).abs() < 1e-12);
            }
        }
    }
}
