//! Benchmarks vPDQ matching against a video bank: `VideoMatcher` (candidates
//! through the exact PDQ index over every banked frame, then the rule)
//! against the brute-force rule over every banked video, which is what
//! python-threatexchange's `VPDQBruteMatcher` does.
//!
//! ```text
//! cargo run --release -p frankly-bank --example vpdq_bank_bench -- \
//!     [--videos 100000] [--frames 60] [--queries 200] [--brute-queries 4] [--seed 1]
//! ```
//!
//! Data: each banked video has 1 to 4 scenes; each frame is its scene's
//! random 256-bit hash with 0 to 11 bits flipped (consecutive frames of real
//! video are near-duplicates), quality 50 to 100. Queries of `--frames`
//! frames: half are banked videos re-encoded (every frame 0 to 20 more bits
//! flipped), half unrelated videos made the same way. HMA's thresholds
//! (quality 50, distance 31, 80 % of the query). One thread.
//!
//! Prints one JSON object: build time, per-query latency of the matcher
//! (median, p99, mean), of brute force on the first `--brute-queries`
//! queries, the ratio of their means, and whether their answers were equal.

#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::time::Instant;

use frankly_bank::vpdq::{VpdqThresholds, match_brute};
use frankly_bank::{VideoBank, VideoEntry, VideoMatcher};
use frankly_hash::{PdqHash, VpdqFeature};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn hash(&mut self) -> PdqHash {
        let mut h = [0u8; 32];
        for chunk in h.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        PdqHash(h)
    }
    fn flip(&mut self, mut h: PdqHash, bits: u64) -> PdqHash {
        for _ in 0..bits {
            let b = self.below(256) as usize;
            h.0[b / 8] ^= 1 << (b % 8);
        }
        h
    }
    fn video(&mut self, frames: usize) -> Vec<VpdqFeature> {
        let scenes: Vec<PdqHash> = (0..1 + self.below(4)).map(|_| self.hash()).collect();
        (0..frames)
            .map(|i| {
                let bits = self.below(12);
                VpdqFeature {
                    frame_number: i as u64,
                    quality: 50 + self.below(51) as u8,
                    hash: self.flip(scenes[i * scenes.len() / frames], bits),
                    timestamp: i as f64,
                }
            })
            .collect()
    }
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn stats(mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    (ms[ms.len() / 2], ms[(ms.len() * 99 / 100).min(ms.len() - 1)], mean)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let videos: usize = arg(&args, "--videos", 100_000);
    let frames: usize = arg(&args, "--frames", 60);
    let queries: usize = arg(&args, "--queries", 200);
    let brute_queries: usize = arg(&args, "--brute-queries", 4);
    let mut rng = Rng(arg(&args, "--seed", 1u64).max(1));

    let mut bank = VideoBank::new("bench").unwrap();
    for _ in 0..videos {
        let entry = VideoEntry { features: rng.video(frames), labels: Default::default(), source_id: None };
        bank.entries.push(entry);
    }
    let query_set: Vec<(Option<usize>, Vec<VpdqFeature>)> = (0..queries)
        .map(|q| {
            if q % 2 == 0 {
                let v = rng.below(videos as u64) as usize;
                let features = bank.entries[v]
                    .features
                    .iter()
                    .map(|f| {
                        let bits = rng.below(21);
                        VpdqFeature { hash: rng.flip(f.hash, bits), ..*f }
                    })
                    .collect();
                (Some(v), features)
            } else {
                (None, rng.video(frames))
            }
        })
        .collect();
    let rule = VpdqThresholds::default();
    let start = Instant::now();
    let matcher = VideoMatcher::new(vec![bank.clone()]);
    let build_s = start.elapsed().as_secs_f64();

    let mut times = Vec::new();
    let mut answers = Vec::new();
    let mut planted_found = 0;
    for (planted, q) in &query_set {
        let at = Instant::now();
        let found = matcher.query(q);
        times.push(at.elapsed().as_secs_f64() * 1e3);
        if let Some(v) = planted
            && found.iter().any(|m| m.video == *v)
        {
            planted_found += 1;
        }
        answers.push(found.iter().map(|m| (m.video, m.query_percent, m.compared_percent)).collect::<Vec<_>>());
    }
    let mut brute_times = Vec::new();
    let mut identical = true;
    for (i, (_, q)) in query_set.iter().take(brute_queries).enumerate() {
        let at = Instant::now();
        let mut found = Vec::new();
        for (v, e) in bank.entries.iter().enumerate() {
            let m = match_brute(q, &e.features, rule.quality, rule.distance);
            if m.is_match(&rule) {
                found.push((v, m.query_percent, m.compared_percent));
            }
        }
        brute_times.push(at.elapsed().as_secs_f64() * 1e3);
        let mut mine = answers[i].clone();
        mine.sort_by_key(|m| m.0);
        identical &= mine == found;
    }
    let (median, p99, mean) = stats(times);
    let (brute_median, _, brute_mean) = stats(brute_times);
    println!(
        "{}",
        serde_json::json!({
            "videos": videos,
            "frames_per_video": frames,
            "banked_frames": videos * frames,
            "queries": queries,
            "build_s": build_s,
            "matcher_ms": {"median": median, "p99": p99, "mean": mean},
            "planted_found": planted_found,
            "planted": queries.div_ceil(2),
            "brute_force_queries": brute_queries,
            "brute_force_ms": {"median": brute_median, "mean": brute_mean},
            "brute_over_matcher": brute_mean / mean,
            "identical": identical,
        })
    );
    if !identical {
        std::process::exit(1);
    }
}
