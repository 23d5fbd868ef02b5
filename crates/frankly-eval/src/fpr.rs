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
//!
//! Two things make a raw corpus overstate the rate. **Duplicates**: the same
//! picture stored twice (another container, other metadata) is one image,
//! not a false match; with `dedup`, images whose decoded pixels are
//! identical (same size, same SHA-256 of the RGB bytes) are counted once,
//! and the dropped copies are listed. **Families**: images from one source
//! (one package, one photographer, one sky survey) are often versions of
//! each other. Each image's source is the first directory of its path in
//! the corpus, or, for a flat corpus, the part of its file name before the
//! first `_` (the shared corpus names files `source_name.jpg`). The study
//! counts matches within each source and across sources separately; the
//! cross-source rate is the one that stands for unrelated images.

use std::collections::BTreeMap;

use frankly_hash::{DecodeOptions, PdqHasher};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

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
    /// Count pixel-identical images once.
    pub dedup: bool,
}

/// Matches at an algorithm's default threshold among the pairs of one
/// source, or (with `source` `None`) among pairs from two different sources.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SourceRow {
    /// The algorithm.
    pub algo: HashAlgo,
    /// The source; `None` for the cross-source pairs.
    pub source: Option<String>,
    /// Images of the source (all images for the cross-source row).
    pub images: u64,
    /// Pairs compared.
    pub pairs: u64,
    /// Pairs within the default threshold.
    pub matches: u64,
}

/// The source of a corpus image: its first directory, or for a file at the
/// root the part of its name before the first `_` (the whole stem if none).
pub fn source_of(name: &str) -> &str {
    match name.split_once('/') {
        Some((dir, _)) => dir,
        None => {
            let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
            stem.split_once('_').map_or(stem, |(s, _)| s)
        }
    }
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
    /// Pixel-identical copies left out (copy, the image kept), with `dedup`.
    pub duplicates: Vec<(String, String)>,
    /// Per algorithm: one row per source, then the cross-source row.
    pub sources: Vec<SourceRow>,
    /// Per algorithm: the deployment numbers from the cross-source rate.
    pub cross_source_deployments: Vec<Deployment>,
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
    let hashed: Vec<Result<Hashed, String>> = images
        .par_iter()
        .map_init(PdqHasher::new, |pdq, image| {
            let r = load_image(&image.path, &config.decode)
                .map(|img| {
                    let mut pixels = Sha256::new();
                    pixels.update(img.width().to_be_bytes());
                    pixels.update(img.height().to_be_bytes());
                    pixels.update(img.as_raw());
                    (config.algos.iter().map(|a| a.hash(&img, pdq)).collect(), pixels.finalize().into())
                })
                .map_err(|e| e.to_string());
            progress();
            r
        })
        .collect();
    let mut names = Vec::new();
    let mut hashes = Vec::new();
    let mut failures = Vec::new();
    let mut duplicates = Vec::new();
    let mut seen: BTreeMap<[u8; 32], String> = BTreeMap::new();
    for (image, h) in images.iter().zip(hashed) {
        match h {
            Ok((h, pixels)) => {
                if config.dedup {
                    if let Some(kept) = seen.get(&pixels) {
                        duplicates.push((image.name.clone(), kept.clone()));
                        continue;
                    }
                    seen.insert(pixels, image.name.clone());
                }
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
    // Sources as small integers, for counting pairs.
    let mut source_ids: BTreeMap<&str, usize> = BTreeMap::new();
    let source: Vec<usize> = names
        .iter()
        .map(|name| {
            let next = source_ids.len();
            *source_ids.entry(source_of(name)).or_insert(next)
        })
        .collect();
    let source_count = source_ids.len();
    let mut histograms = Vec::new();
    let mut rows = Vec::new();
    let mut deployments = Vec::new();
    let mut cross_source_deployments = Vec::new();
    let mut sources = Vec::new();
    let mut closest = Vec::new();
    for (a, &algo) in config.algos.iter().enumerate() {
        let t = algo.default_threshold();
        let empty = || Pairs {
            hist: Histogram::new(algo.bits()),
            near: Vec::new(),
            within: vec![(0, 0); source_count],
            cross: (0, 0),
        };
        let pairs = (0..n)
            .into_par_iter()
            .map(|i| {
                let mut p = empty();
                for j in i + 1..n {
                    let d = distance(&hashes[i][a], &hashes[j][a]);
                    p.hist.add(d);
                    keep_closest(&mut p.near, (d, i, j));
                    let counts = if source[i] == source[j] { &mut p.within[source[i]] } else { &mut p.cross };
                    counts.0 += 1;
                    counts.1 += u64::from(d <= t);
                }
                p
            })
            .reduce(empty, Pairs::merge);
        let Pairs { hist, mut near, within, cross } = pairs;
        near.sort_unstable();
        closest.extend(near.into_iter().map(|(d, i, j)| (algo, names[i].clone(), names[j].clone(), d)));
        let total = hist.total();
        for threshold in 0..=algo.bits() {
            let false_matches = hist.at_most(threshold);
            rows.push(FprRow {
                algo,
                threshold,
                false_matches,
                pairs: total,
                per_million: 1e6 * false_matches as f64 / total as f64,
            });
        }
        deployments.push(deployment(algo, t, hist.at_most(t), total, config));
        for (name, &id) in &source_ids {
            let images = source.iter().filter(|&&s| s == id).count() as u64;
            let (pairs, matches) = within[id];
            sources.push(SourceRow { algo, source: Some((*name).to_owned()), images, pairs, matches });
        }
        sources.push(SourceRow { algo, source: None, images: n as u64, pairs: cross.0, matches: cross.1 });
        if cross.0 > 0 {
            cross_source_deployments.push(deployment(algo, t, cross.1, cross.0, config));
        }
        histograms.push((algo, hist));
    }
    Ok(FprReport {
        config: config.clone(),
        images: names,
        failures,
        histograms,
        rows,
        deployments,
        closest,
        duplicates,
        sources,
        cross_source_deployments,
    })
}

/// The deployment numbers from `matched` of `pairs` (the rule-of-three
/// bound when none matched).
fn deployment(algo: HashAlgo, threshold: u32, matched: u64, pairs: u64, config: &FprConfig) -> Deployment {
    let (rate, bound) = if matched == 0 { (3.0 / pairs as f64, true) } else { (matched as f64 / pairs as f64, false) };
    Deployment::new(algo, threshold, rate, bound, config)
}

/// One image's hashes (per algorithm) and the SHA-256 of its pixels.
type Hashed = (Vec<Vec<u8>>, [u8; 32]);

/// What one worker counted over its pairs.
struct Pairs {
    hist: Histogram,
    near: Vec<(u32, usize, usize)>,
    /// Per source: (pairs, matches at the default threshold).
    within: Vec<(u64, u64)>,
    cross: (u64, u64),
}

impl Pairs {
    fn merge(mut self, other: Pairs) -> Pairs {
        self.hist.merge(&other.hist);
        for p in other.near {
            keep_closest(&mut self.near, p);
        }
        for (w, o) in self.within.iter_mut().zip(other.within) {
            w.0 += o.0;
            w.1 += o.1;
        }
        self.cross.0 += other.cross.0;
        self.cross.1 += other.cross.1;
        self
    }
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
    fn sources_from_directories_or_name_prefixes() {
        assert_eq!(source_of("libjxl-testdata/a/b.png"), "libjxl-testdata");
        assert_eq!(source_of("scratch_castle.jpg"), "scratch");
        assert_eq!(source_of("lomiri_Bridge_by_x.jpg"), "lomiri");
        assert_eq!(source_of("plain.png"), "plain");
        assert_eq!(source_of("noext"), "noext");
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
