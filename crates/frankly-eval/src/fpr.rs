//! `frankly eval fpr`: how often distinct images match by accident, and
//! what that means for a deployment.
//!
//! Every pair of distinct images of the corpus is a chance for a false
//! match. At threshold `t` the per-comparison false-match rate `p` is the
//! fraction of pairs within `t` (when none is, the 95% upper bound `3 /
//! pairs`, the "rule of three", is used and marked as a bound). A device
//! checks each image it sends against a bank of `B` hashes, so one innocent
//! image is flagged with probability `q = 1 - (1 - p)^B`; an account that
//! sends `M` images has `M q` false flags on average, and the number of
//! flags is `Binomial(M, q)`. Apple's 2021 design reported an account only
//! after `k = 30` matches; [`account_threshold`] finds the smallest `k` that
//! brings the chance of falsely reporting an account under a target.

use frankly_hash::{DecodeOptions, PdqHasher};
use rayon::prelude::*;

use crate::EvalError;
use crate::algo::{HashAlgo, distance};
use crate::corpus::{CorpusImage, load_image};
use crate::metrics::Histogram;

/// Most images in one false-positive study (every pair is compared).
pub const MAX_FPR_IMAGES: usize = 50_000;
/// The per-account match threshold of Apple's 2021 CSAM detection design.
pub const APPLE_ACCOUNT_THRESHOLD: u64 = 30;
/// How many closest pairs per algorithm a report lists.
pub const CLOSEST_PAIRS: usize = 20;
/// Most terms summed in a binomial tail.
const MAX_TAIL_TERMS: u64 = 10_000_000;

/// What a false-positive study runs.
#[derive(Clone, Debug)]
pub struct FprConfig {
    /// The hash algorithms.
    pub algos: Vec<HashAlgo>,
    /// Decoding limits.
    pub decode: DecodeOptions,
    /// Hashes in the bank each image is checked against (`B`).
    pub bank_size: u64,
    /// Images an account sends over the period considered (`M`).
    pub images_per_account: u64,
    /// Acceptable probability of falsely reporting one account over that period.
    pub target_account_rate: f64,
}

/// False matches at one threshold.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct FprRow {
    /// The algorithm.
    pub algo: HashAlgo,
    /// Match when the distance is `<=` this.
    pub threshold: u32,
    /// Pairs of distinct images within the threshold.
    pub false_matches: u64,
    /// Pairs compared.
    pub pairs: u64,
    /// False matches per million comparisons.
    pub per_million: f64,
}

/// What a threshold means for a deployment.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Deployment {
    /// The algorithm.
    pub algo: HashAlgo,
    /// The match threshold.
    pub threshold: u32,
    /// Per-comparison false-match rate used (`p`).
    pub rate: f64,
    /// True when no pair matched and `rate` is the 95% upper bound `3 / pairs`.
    pub rate_is_bound: bool,
    /// Probability that one innocent image matches some bank entry (`q`).
    pub per_image: f64,
    /// Expected false flags per account (`M q`).
    pub expected_per_account: f64,
    /// Probability that an account reaches [`APPLE_ACCOUNT_THRESHOLD`] false flags.
    pub account_rate_at_apple_k: f64,
    /// Smallest per-account threshold `k` whose false-report probability is
    /// within the target.
    pub account_threshold: u64,
}

/// Everything a false-positive study measured.
#[derive(Clone, Debug)]
pub struct FprReport {
    /// The config it ran with.
    pub config: FprConfig,
    /// Images that decoded.
    pub images: Vec<String>,
    /// Images that did not, with the reason.
    pub failures: Vec<(String, String)>,
    /// Pairwise distance histogram per algorithm.
    pub histograms: Vec<(HashAlgo, Histogram)>,
    /// One row per algorithm and threshold `0..=bits`.
    pub rows: Vec<FprRow>,
    /// One per algorithm, at its default threshold.
    pub deployments: Vec<Deployment>,
    /// The closest pairs per algorithm: (algorithm, image, image, distance).
    pub closest: Vec<(HashAlgo, String, String, u32)>,
}

/// `P(X >= k)` for `X ~ Binomial(n, p)`, summed in log space so that tiny
/// probabilities (1e-40) stay exact to a few digits.
pub fn binomial_tail(n: u64, p: f64, k: u64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    // log pmf(k) = log C(n, k) + k log p + (n - k) log(1 - p)
    let log_choose: f64 = (0..k).map(|i| ((n - i) as f64).ln() - ((i + 1) as f64).ln()).sum();
    let mut log_term = log_choose + k as f64 * p.ln() + (n - k) as f64 * (-p).ln_1p();
    let log_odds = p.ln() - (-p).ln_1p();
    let mean = n as f64 * p;
    let mut log_sum = f64::NEG_INFINITY;
    let mut j = k;
    while j <= n && j - k < MAX_TAIL_TERMS {
        let (hi, lo) = if log_sum > log_term { (log_sum, log_term) } else { (log_term, log_sum) };
        log_sum = hi + (lo - hi).exp().ln_1p();
        // Past the mode the terms shrink geometrically: stop when they no longer count.
        if j as f64 > mean && log_term < log_sum - 40.0 {
            break;
        }
        log_term += ((n - j) as f64).ln() - ((j + 1) as f64).ln() + log_odds;
        j += 1;
    }
    log_sum.exp().min(1.0)
}

/// The smallest `k` such that `P(Binomial(n, p) >= k) <= target`.
pub fn account_threshold(n: u64, p: f64, target: f64) -> u64 {
    // The tail decreases in k; binary search over 0..=n+1 (the tail at n+1 is 0).
    let (mut lo, mut hi) = (0u64, n + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if binomial_tail(n, p, mid) <= target { hi = mid } else { lo = mid + 1 }
    }
    lo
}

impl Deployment {
    /// The deployment numbers for a per-comparison rate.
    pub fn new(algo: HashAlgo, threshold: u32, rate: f64, rate_is_bound: bool, config: &FprConfig) -> Deployment {
        let per_image = -((config.bank_size as f64) * (-rate).ln_1p()).exp_m1();
        Deployment {
            algo,
            threshold,
            rate,
            rate_is_bound,
            per_image,
            expected_per_account: per_image * config.images_per_account as f64,
            account_rate_at_apple_k: binomial_tail(config.images_per_account, per_image, APPLE_ACCOUNT_THRESHOLD),
            account_threshold: account_threshold(config.images_per_account, per_image, config.target_account_rate),
        }
    }
}

/// Runs a false-positive study: hashes every image (in parallel, calling
/// `progress` per image), then compares every pair.
pub fn run_fpr(
    images: &[CorpusImage],
    config: &FprConfig,
    progress: &(dyn Fn() + Sync),
) -> Result<FprReport, EvalError> {
    if images.len() > MAX_FPR_IMAGES {
        return Err(EvalError::Invalid(format!(
            "{} images is over the limit of {MAX_FPR_IMAGES} for a pairwise study",
            images.len()
        )));
    }
    let hashed: Vec<Result<Vec<Vec<u8>>, String>> = images
        .par_iter()
        .map_init(PdqHasher::new, |pdq, image| {
            let r = load_image(&image.path, &config.decode)
                .map(|img| config.algos.iter().map(|a| a.hash(&img, pdq)).collect())
                .map_err(|e| e.to_string());
            progress();
            r
        })
        .collect();
    let mut names = Vec::new();
    let mut hashes = Vec::new();
    let mut failures = Vec::new();
    for (image, h) in images.iter().zip(hashed) {
        match h {
            Ok(h) => {
                names.push(image.name.clone());
                hashes.push(h);
            }
            Err(e) => failures.push((image.name.clone(), e)),
        }
    }
    if hashes.len() < 2 {
        return Err(EvalError::TooFewImages { what: "a false-positive study", needed: 2, found: hashes.len() });
    }
    let n = hashes.len();
    let mut histograms = Vec::new();
    let mut rows = Vec::new();
    let mut deployments = Vec::new();
    let mut closest = Vec::new();
    for (a, &algo) in config.algos.iter().enumerate() {
        let (hist, mut near) = (0..n)
            .into_par_iter()
            .map(|i| {
                let mut h = Histogram::new(algo.bits());
                let mut near: Vec<(u32, usize, usize)> = Vec::new();
                for j in i + 1..n {
                    let d = distance(&hashes[i][a], &hashes[j][a]);
                    h.add(d);
                    keep_closest(&mut near, (d, i, j));
                }
                (h, near)
            })
            .reduce(
                || (Histogram::new(algo.bits()), Vec::new()),
                |(mut h1, mut n1), (h2, n2)| {
                    h1.merge(&h2);
                    for p in n2 {
                        keep_closest(&mut n1, p);
                    }
                    (h1, n1)
                },
            );
        near.sort_unstable();
        closest.extend(near.into_iter().map(|(d, i, j)| (algo, names[i].clone(), names[j].clone(), d)));
        let pairs = hist.total();
        for t in 0..=algo.bits() {
            let false_matches = hist.at_most(t);
            rows.push(FprRow {
                algo,
                threshold: t,
                false_matches,
                pairs,
                per_million: 1e6 * false_matches as f64 / pairs as f64,
            });
        }
        let t = algo.default_threshold();
        let matched = hist.at_most(t);
        let (rate, bound) =
            if matched == 0 { (3.0 / pairs as f64, true) } else { (matched as f64 / pairs as f64, false) };
        deployments.push(Deployment::new(algo, t, rate, bound, config));
        histograms.push((algo, hist));
    }
    Ok(FprReport { config: config.clone(), images: names, failures, histograms, rows, deployments, closest })
}

fn keep_closest(list: &mut Vec<(u32, usize, usize)>, pair: (u32, usize, usize)) {
    if list.len() < CLOSEST_PAIRS {
        list.push(pair);
    } else if let Some((worst, _)) = list.iter().enumerate().max_by_key(|(_, p)| **p)
        && pair < list[worst]
    {
        list[worst] = pair;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_tail_by_hand() {
        // Binomial(3, 0.5): P(X >= 2) = (3 + 1) / 8.
        assert!((binomial_tail(3, 0.5, 2) - 0.5).abs() < 1e-12);
        assert!((binomial_tail(3, 0.5, 3) - 0.125).abs() < 1e-12);
        assert_eq!(binomial_tail(3, 0.5, 0), 1.0);
        assert_eq!(binomial_tail(3, 0.5, 4), 0.0);
        assert_eq!(binomial_tail(10, 0.0, 1), 0.0);
        // P(X >= 1) = 1 - (1 - p)^n.
        let p = 1e-6f64;
        let want = -(1000.0 * (-p).ln_1p()).exp_m1();
        assert!((binomial_tail(1000, p, 1) / want - 1.0).abs() < 1e-9);
        // Tiny tails stay accurate: P(X >= 30) ~ C(1000, 30) p^30.
        let t = binomial_tail(1000, 1e-6, 30);
        let log_c: f64 = (0..30u64).map(|i| ((1000 - i) as f64).ln() - ((i + 1) as f64).ln()).sum();
        let approx = (log_c + 30.0 * (1e-6f64).ln()).exp();
        assert!(t > 0.0 && (t / approx - 1.0).abs() < 1e-3, "{t} vs {approx}");
    }

    #[test]
    fn account_threshold_is_the_smallest_k() {
        for (n, p, target) in [(1000, 1e-3, 1e-12), (10_000, 1e-5, 1e-6), (50, 0.5, 1e-3)] {
            let k = account_threshold(n, p, target);
            assert!(binomial_tail(n, p, k) <= target);
            assert!(k == 0 || binomial_tail(n, p, k - 1) > target, "{n} {p} {target} -> {k}");
        }
    }

    #[test]
    fn keeps_the_closest_pairs() {
        let mut list = Vec::new();
        for d in (0..100u32).rev() {
            keep_closest(&mut list, (d, d as usize, 0));
        }
        list.sort_unstable();
        assert_eq!(list.len(), CLOSEST_PAIRS);
        assert_eq!(list[0].0, 0);
        assert_eq!(list[CLOSEST_PAIRS - 1].0, CLOSEST_PAIRS as u32 - 1);
    }
}
