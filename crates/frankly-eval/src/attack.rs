//! Black-box attacks on perceptual hashes: they only query the hash
//! function, as an adversary with the on-device hasher would.
//!
//! The perturbation lives in a low-frequency basis: the 2-D cosines
//! `cos(pi u (x + 1/2) / w) cos(pi v (y + 1/2) / h)` for `u, v <`
//! [`ATTACK_FREQUENCIES`], the frequencies that PDQ's 16x16 DCT slice and
//! pHash's 8x8 one read, added as a luma offset to all three channels. The
//! search is SimBA-DCT (Guo et al., ICML 2019): pick a random basis function
//! and sign, add one step of it, keep the change if the objective strictly
//! improves (else try the opposite sign), and also keep moves that shrink
//! the perturbation without losing ground. A candidate whose PSNR would fall
//! under the floor is never queried. Each hash computed counts as a query,
//! bounded by [`AttackConfig::max_queries`] (at most [`MAX_ATTACK_QUERIES`]).
//!
//! - [`evade`] pushes the hash of an image further than the match threshold
//!   from its original hash, then shrinks the perturbation (a binary search
//!   on its global scale) while it still evades: the distance to the
//!   original is what a hash-based filter would see.
//! - [`collide`] pulls the hash of an innocent image towards a target hash
//!   until it is within the threshold: an image that a bank containing the
//!   target would flag, although it shows something else.
//! - [`collide_pdq`] does the same knowing how PDQ works (white box): PDQ's
//!   256 bits threshold, at their median, 16x16 DCT coefficients that are a
//!   linear function of the luma. It measures how each of the 256 matching
//!   cosines moves each coefficient (a 256x256 Jacobian, one query per
//!   cosine), then solves for the amplitudes that put each coefficient on
//!   the target's side of the median, with a margin, repeating as rounding
//!   and clipping bend the linear model. Only as many bits are flipped as
//!   needed to get within half the threshold; the costliest stay as they
//!   are, which keeps the change small.

use frankly_hash::{PdqHasher, RgbImage};
use image::imageops::FilterType;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::EvalError;
use crate::algo::{HashAlgo, distance};
use crate::quality::{psnr, ssim};

/// Cosine frequencies per axis of the perturbation basis (0 to 16
/// half-periods per image side).
pub const ATTACK_FREQUENCIES: u32 = 17;
/// Attacked images are first scaled down to at most this side (Lanczos3),
/// as messengers do before sending; PSNR and SSIM compare with that copy.
pub const ATTACK_MAX_SIDE: u32 = 512;
/// Hard cap on the hash queries of one attack.
pub const MAX_ATTACK_QUERIES: u32 = 100_000;
/// Default query budget of one attack.
pub const DEFAULT_ATTACK_QUERIES: u32 = 3_000;
/// Default PSNR floor in dB: candidates below it are not tried.
pub const DEFAULT_MIN_PSNR: f64 = 30.0;
/// Amplitude (intensity levels) of one step along a basis function.
const ATTACK_STEP: f32 = 4.0;
/// Largest amplitude of any basis function.
const MAX_AMPLITUDE: f32 = 64.0;
/// Steps of the binary search that shrinks a successful evasion.
const SHRINK_STEPS: u32 = 8;
/// Amplitude (intensity levels) of the probe that measures one cosine's effect.
const PDQ_PROBE: f32 = 8.0;
/// Most solve rounds of [`collide_pdq`].
const PDQ_ROUNDS: u32 = 24;
/// First margin of [`collide_pdq`], as a fraction of the coefficients' mean
/// distance to their median; it grows by half each round that falls short.
const PDQ_MARGIN: f64 = 0.05;

/// What an attack wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttackGoal {
    /// Distance to the original hash above the threshold.
    Evade,
    /// Distance to a target hash at most the threshold.
    Collide,
}

/// Parameters of an attack.
#[derive(Clone, Copy, Debug)]
pub struct AttackConfig {
    /// The hash attacked.
    pub algo: HashAlgo,
    /// The match threshold in bits.
    pub threshold: u32,
    /// Query budget (capped at [`MAX_ATTACK_QUERIES`]).
    pub max_queries: u32,
    /// PSNR floor in dB.
    pub min_psnr: f64,
    /// Seed of the random search.
    pub seed: u64,
}

impl AttackConfig {
    /// Defaults for `algo`: its usual threshold, [`DEFAULT_ATTACK_QUERIES`], [`DEFAULT_MIN_PSNR`].
    pub fn new(algo: HashAlgo) -> AttackConfig {
        AttackConfig {
            algo,
            threshold: algo.default_threshold(),
            max_queries: DEFAULT_ATTACK_QUERIES,
            min_psnr: DEFAULT_MIN_PSNR,
            seed: 0,
        }
    }
}

/// The result of one attack.
#[derive(Clone, Debug)]
pub struct AttackOutcome {
    /// What was attempted.
    pub goal: AttackGoal,
    /// Whether the goal was reached.
    pub success: bool,
    /// Hash queries used.
    pub queries: u32,
    /// Distance before the attack (to the original for evade, the target for collide).
    pub start_distance: u32,
    /// Distance after the attack.
    pub final_distance: u32,
    /// PSNR of the result against the (scaled) input, dB.
    pub psnr: f64,
    /// SSIM of the result against the (scaled) input.
    pub ssim: f64,
    /// The perturbed image.
    pub image: RgbImage,
}

/// Scales `image` down so that neither side exceeds [`ATTACK_MAX_SIDE`].
pub fn prepare_attack_image(image: &RgbImage) -> RgbImage {
    let (w, h) = image.dimensions();
    let side = w.max(h);
    if side <= ATTACK_MAX_SIDE {
        return image.clone();
    }
    let scale = f64::from(ATTACK_MAX_SIDE) / f64::from(side);
    let nw = ((f64::from(w) * scale).round() as u32).max(1);
    let nh = ((f64::from(h) * scale).round() as u32).max(1);
    image::imageops::resize(image, nw, nh, FilterType::Lanczos3)
}

/// Pushes the hash of `image` more than `config.threshold` bits away from
/// its own hash.
pub fn evade(image: &RgbImage, config: &AttackConfig) -> Result<AttackOutcome, EvalError> {
    let mut pdq = PdqHasher::new();
    let original = config.algo.hash(image, &mut pdq);
    search(image, &original, AttackGoal::Evade, config, &mut pdq)
}

/// Pulls the hash of `image` within `config.threshold` bits of `target`
/// (a hash of `config.algo`).
pub fn collide(image: &RgbImage, target: &[u8], config: &AttackConfig) -> Result<AttackOutcome, EvalError> {
    if target.len() as u32 * 8 != config.algo.bits() {
        return Err(EvalError::Invalid(format!(
            "target hash has {} bits, {} hashes have {}",
            target.len() * 8,
            config.algo,
            config.algo.bits()
        )));
    }
    let mut pdq = PdqHasher::new();
    search(image, target, AttackGoal::Collide, config, &mut pdq)
}

/// Pulls the PDQ hash of `image` within `config.threshold` bits of `target`
/// (32 bytes) with the white-box attack described in the module docs. Each
/// coefficient evaluation and each hash counts as a query; the PSNR floor
/// does not constrain it (the PSNR reached is reported).
pub fn collide_pdq(image: &RgbImage, target: &[u8], config: &AttackConfig) -> Result<AttackOutcome, EvalError> {
    if config.algo != HashAlgo::Pdq {
        return Err(EvalError::Invalid(format!("the white-box collision attacks PDQ, not {}", config.algo)));
    }
    if target.len() != 32 {
        return Err(EvalError::Invalid(format!("target hash has {} bits, PDQ hashes have 256", target.len() * 8)));
    }
    if image.width() < frankly_hash::PDQ_MIN_DIMENSION || image.height() < frankly_hash::PDQ_MIN_DIMENSION {
        return Err(EvalError::Invalid(format!("{}x{} is too small to attack", image.width(), image.height())));
    }
    let budget = config.max_queries.min(MAX_ATTACK_QUERIES);
    let mut pdq = PdqHasher::new();
    let mut queries = 0u32;
    let mut coefficients = |img: &RgbImage, queries: &mut u32| -> Result<Vec<f64>, EvalError> {
        *queries += 1;
        let c = pdq.coefficients(img).ok_or_else(|| EvalError::Invalid("image too small for PDQ".into()))?;
        Ok(c.iter().flatten().map(|&v| f64::from(v)).collect())
    };
    // Bit k of a PDQ hash as the 32 bytes store it (frankly_hash::PdqHash::bit).
    let bit = |hash: &[u8], k: usize| (hash[31 - k / 8] >> (k % 8)) & 1 == 1;
    // Coefficient (i, j) is vertical frequency i + 1, horizontal j + 1.
    let render = |amplitudes: &[f64]| {
        let mut p = Perturbation::new(image);
        for (k, &a) in amplitudes.iter().enumerate() {
            if a != 0.0 {
                p.add(k % 16 + 1, k / 16 + 1, a as f32);
            }
        }
        p.render(1.0)
    };
    let start = distance(&HashAlgo::Pdq.hash(image, &mut PdqHasher::new()), target);
    queries += 1;
    let base = coefficients(image, &mut queries)?;
    let mut jacobian = vec![vec![0.0f64; 256]; 256];
    for k in 0..256 {
        if queries >= budget {
            break;
        }
        let mut probe = vec![0.0; 256];
        probe[k] = f64::from(PDQ_PROBE);
        let c = coefficients(&render(&probe), &mut queries)?;
        for (row, (&after, &before)) in jacobian.iter_mut().zip(c.iter().zip(&base)) {
            row[k] = (after - before) / f64::from(PDQ_PROBE);
        }
    }
    let mut amplitudes = vec![0.0f64; 256];
    let mut best = (start, image.clone());
    let mut margin = PDQ_MARGIN;
    for _ in 0..PDQ_ROUNDS {
        if queries + 2 > budget {
            break;
        }
        let candidate = render(&amplitudes);
        let d = distance(&HashAlgo::Pdq.hash(&candidate, &mut PdqHasher::new()), target);
        queries += 1;
        if d < best.0 || (d <= config.threshold && d == best.0) {
            best = (d, candidate.clone());
        }
        if d <= config.threshold {
            break;
        }
        let c = coefficients(&candidate, &mut queries)?;
        let mut sorted = c.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[127];
        let spread = c.iter().map(|v| (v - median).abs()).sum::<f64>() / 256.0;
        let tau = margin * spread;
        // The change each coefficient needs, and which bits are wrong now.
        let mut want = vec![0.0f64; 256];
        let mut wrong: Vec<(f64, usize)> = Vec::new();
        for k in 0..256 {
            let (up, v) = (bit(target, k), c[k]);
            if up && v <= median + tau {
                want[k] = median + tau - v;
            } else if !up && v >= median - tau {
                want[k] = median - tau - v;
            }
            if up != (v > median) {
                wrong.push((want[k].abs(), k));
            }
        }
        // Leave the costliest wrong bits alone, up to half the threshold.
        wrong.sort_by(|a, b| b.0.total_cmp(&a.0));
        for &(_, k) in wrong.iter().take((config.threshold / 2) as usize) {
            want[k] = 0.0;
        }
        let Some(step) = solve(&jacobian, &want) else { break };
        for (a, s) in amplitudes.iter_mut().zip(step) {
            *a += s;
        }
        margin *= 1.5;
    }
    let (final_distance, result) = best;
    Ok(AttackOutcome {
        goal: AttackGoal::Collide,
        success: final_distance <= config.threshold,
        queries,
        start_distance: start,
        final_distance,
        psnr: psnr(image, &result).unwrap_or(f64::INFINITY),
        ssim: ssim(image, &result).unwrap_or(1.0),
        image: result,
    })
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting; `None`
/// when `a` is singular.
fn solve(a: &[Vec<f64>], b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    let mut m: Vec<Vec<f64>> = a.iter().zip(b).map(|(row, &v)| row.iter().copied().chain([v]).collect()).collect();
    for col in 0..n {
        let pivot = (col..n).max_by(|&x, &y| m[x][col].abs().total_cmp(&m[y][col].abs()))?;
        if m[pivot][col].abs() < 1e-12 {
            return None;
        }
        m.swap(col, pivot);
        for row in col + 1..n {
            let f = m[row][col] / m[col][col];
            if f != 0.0 {
                for k in col..=n {
                    m[row][k] -= f * m[col][k];
                }
            }
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| m[row][k] * x[k]).sum();
        x[row] = (m[row][n] - s) / m[row][row];
    }
    Some(x)
}

/// `cos(pi u (i + 1/2) / len)` for every frequency `u` and position `i`, frequency-major.
fn cosines(len: u32) -> Vec<Vec<f32>> {
    (0..ATTACK_FREQUENCIES)
        .map(|u| {
            (0..len)
                .map(|i| (std::f64::consts::PI * f64::from(u) * (f64::from(i) + 0.5) / f64::from(len)).cos() as f32)
                .collect()
        })
        .collect()
}

/// The perturbation as a luma offset per pixel, kept in sync with its
/// amplitudes in the cosine basis.
struct Perturbation<'a> {
    base: &'a RgbImage,
    xs: Vec<Vec<f32>>,
    ys: Vec<Vec<f32>>,
    offsets: Vec<f32>,
}

impl<'a> Perturbation<'a> {
    fn new(base: &'a RgbImage) -> Perturbation<'a> {
        let (w, h) = base.dimensions();
        Perturbation { base, xs: cosines(w), ys: cosines(h), offsets: vec![0.0; (w * h) as usize] }
    }

    /// Adds `amount` times basis function (u, v).
    fn add(&mut self, u: usize, v: usize, amount: f32) {
        let w = self.base.width() as usize;
        for (row, &cy) in self.offsets.chunks_exact_mut(w).zip(&self.ys[v]) {
            for (o, &cx) in row.iter_mut().zip(&self.xs[u]) {
                *o += amount * cx * cy;
            }
        }
    }

    fn render(&self, scale: f32) -> RgbImage {
        let mut out = self.base.clone();
        for (px, &d) in out.pixels_mut().zip(&self.offsets) {
            for v in px.0.iter_mut() {
                *v = (f32::from(*v) + scale * d).round().clamp(0.0, 255.0) as u8;
            }
        }
        out
    }
}

fn search(
    image: &RgbImage,
    reference: &[u8],
    goal: AttackGoal,
    config: &AttackConfig,
    pdq: &mut PdqHasher,
) -> Result<AttackOutcome, EvalError> {
    if image.width() < 8 || image.height() < 8 {
        return Err(EvalError::Invalid(format!("{}x{} is too small to attack", image.width(), image.height())));
    }
    let budget = config.max_queries.min(MAX_ATTACK_QUERIES);
    let mut perturbation = Perturbation::new(image);
    let mut rng = StdRng::seed_from_u64(config.seed);
    let n = ATTACK_FREQUENCIES as usize;
    let mut amplitudes = vec![0.0f32; n * n];
    let mut queries = 0u32;
    let mut query = |img: &RgbImage, queries: &mut u32| {
        *queries += 1;
        distance(&config.algo.hash(img, pdq), reference)
    };
    let start = query(image, &mut queries);
    let done = |d: u32| match goal {
        AttackGoal::Evade => d > config.threshold,
        AttackGoal::Collide => d <= config.threshold,
    };
    // Higher is better.
    let score = |d: u32| match goal {
        AttackGoal::Evade => i64::from(d),
        AttackGoal::Collide => -i64::from(d),
    };
    let mut current = start;
    let mut best_image = image.clone();
    while !done(current) && queries < budget {
        let (u, v) = (rng.random_range(0..n), rng.random_range(0..n));
        let first_sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
        for sign in [first_sign, -first_sign] {
            if queries >= budget {
                break;
            }
            let old = amplitudes[v * n + u];
            let new = (old + sign * ATTACK_STEP).clamp(-MAX_AMPLITUDE, MAX_AMPLITUDE);
            if new == old {
                continue;
            }
            perturbation.add(u, v, new - old);
            let candidate = perturbation.render(1.0);
            let accepted = psnr(image, &candidate).unwrap_or(0.0) >= config.min_psnr && {
                let d = query(&candidate, &mut queries);
                let better = score(d) > score(current) || (score(d) == score(current) && new.abs() < old.abs());
                if better {
                    current = d;
                }
                better
            };
            if accepted {
                amplitudes[v * n + u] = new;
                best_image = candidate;
                break;
            }
            perturbation.add(u, v, old - new);
        }
    }
    if goal == AttackGoal::Evade && done(current) {
        // Shrink: the smallest global scale of the perturbation that still evades.
        let (mut lo, mut hi) = (0.0f32, 1.0f32);
        for _ in 0..SHRINK_STEPS {
            if queries >= budget {
                break;
            }
            let mid = (lo + hi) / 2.0;
            let candidate = perturbation.render(mid);
            let d = query(&candidate, &mut queries);
            if done(d) {
                hi = mid;
                current = d;
                best_image = candidate;
            } else {
                lo = mid;
            }
        }
    }
    Ok(AttackOutcome {
        goal,
        success: done(current),
        queries,
        start_distance: start,
        final_distance: current,
        psnr: psnr(image, &best_image).unwrap_or(0.0),
        ssim: ssim(image, &best_image).unwrap_or(0.0),
        image: best_image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_basis_is_orthogonal() {
        let c = cosines(64);
        assert!(c[0].iter().all(|&v| v == 1.0));
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        assert!(dot(&c[3], &c[5]).abs() < 1e-3);
        assert!((dot(&c[3], &c[3]) - 32.0).abs() < 1e-3);
    }

    #[test]
    fn perturbation_adds_and_removes_exactly() {
        let img = RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 5, y as u8 * 7, 9]));
        let mut p = Perturbation::new(&img);
        assert_eq!(p.render(1.0), img);
        p.add(2, 3, 16.0);
        assert_ne!(p.render(1.0), img);
        assert_eq!(p.render(0.0), img);
        p.add(2, 3, -16.0);
        assert_eq!(p.render(1.0), img);
    }

    #[test]
    fn solve_inverts_a_small_system() {
        let a = vec![vec![2.0, 1.0], vec![1.0, 3.0]];
        let x = solve(&a, &[3.0, 5.0]).unwrap();
        assert!((x[0] - 0.8).abs() < 1e-12 && (x[1] - 1.4).abs() < 1e-12, "{x:?}");
        assert!(solve(&[vec![1.0, 2.0], vec![2.0, 4.0]], &[1.0, 2.0]).is_none());
    }

    #[test]
    fn collide_refuses_a_target_of_the_wrong_width() {
        let img = RgbImage::new(64, 64);
        assert!(collide(&img, &[0u8; 8], &AttackConfig::new(HashAlgo::Pdq)).is_err());
    }
}
