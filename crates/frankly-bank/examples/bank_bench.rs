//! Benchmarks the exact index against brute force on synthetic PDQ-sized data,
//! for `bench/bank_vs_faiss.py` (which adds FAISS on the same data).
//!
//! ```text
//! cargo run --release -p frankly-bank --example bank_bench -- \
//!     [--n 10000000] [--queries 1000] [--radius 31] [--data uniform|clustered] \
//!     [--seed 1] [--brute-queries 100] [--write DIR]
//! ```
//!
//! Data: `uniform` draws every bit at random; `clustered` draws `n / 10`
//! random centres and 10 variants of each with 0 to 24 random bits flipped,
//! as real hash lists hold near-duplicates. Queries: half are entries with 0 to
//! 31 bits flipped (planted matches), half are random. One thread throughout.
//!
//! Prints one JSON object: build time, heap bytes per entry, query latency
//! median/p99/mean, matches found; brute force latency on the first
//! `--brute-queries` queries and whether its results equal the index's. With
//! `--write DIR`, writes `hashes.bin` and `queries.bin` (32 bytes per hash,
//! bit `k` in byte `k / 8`, bit `k % 8`) and `frankly_results.txt` (per query,
//! the sorted matching ids), for the FAISS side.

#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::io::Write;
use std::time::Instant;

use frankly_bank::{HammingIndex, Words, brute_force};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn words(&mut self) -> Words {
        [self.next(), self.next(), self.next(), self.next()]
    }

    fn flip(&mut self, h: &Words, flips: u32) -> Words {
        let mut out = *h;
        let mut done = 0;
        while done < flips {
            let k = (self.next() % 256) as usize;
            let bit = 1u64 << (k % 64);
            if (out[k / 64] ^ h[k / 64]) & bit == 0 {
                out[k / 64] ^= bit;
                done += 1;
            }
        }
        out
    }
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn to_bytes(h: &Words) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, w) in h.iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = arg(&args, "--n", 10_000_000);
    let nq: usize = arg(&args, "--queries", 1000);
    let radius: u32 = arg(&args, "--radius", 31);
    let data: String = arg(&args, "--data", "uniform".to_string());
    let seed: u64 = arg(&args, "--seed", 1);
    let brute_queries: usize = arg(&args, "--brute-queries", 100);
    let write: Option<String> = args.iter().position(|a| a == "--write").and_then(|i| args.get(i + 1)).cloned();

    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let hashes: Vec<Words> = match data.as_str() {
        "uniform" => (0..n).map(|_| rng.words()).collect(),
        "clustered" => {
            let mut v = Vec::with_capacity(n);
            while v.len() < n {
                let centre = rng.words();
                for _ in 0..10.min(n - v.len()) {
                    let flips = (rng.next() % 25) as u32;
                    v.push(rng.flip(&centre, flips));
                }
            }
            v
        }
        other => panic!("unknown --data {other}"),
    };
    let queries: Vec<Words> = (0..nq)
        .map(|i| {
            if i % 2 == 0 {
                let base = hashes[(rng.next() % n as u64) as usize];
                let flips = (rng.next() % 32) as u32;
                rng.flip(&base, flips)
            } else {
                rng.words()
            }
        })
        .collect();

    let start = Instant::now();
    let index = HammingIndex::new(256, hashes.clone());
    let build_s = start.elapsed().as_secs_f64();

    let mut latencies = Vec::with_capacity(nq);
    let mut results = Vec::with_capacity(nq);
    for q in &queries {
        let t = Instant::now();
        let hits = index.range(q, radius);
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        results.push(hits);
    }
    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);

    let mut brute_ms = Vec::new();
    let mut brute_equal = true;
    for (q, hits) in queries.iter().zip(&results).take(brute_queries) {
        let t = Instant::now();
        let want = brute_force(&hashes, q, radius);
        brute_ms.push(t.elapsed().as_secs_f64() * 1e3);
        brute_equal &= &want == hits;
    }
    brute_ms.sort_by(f64::total_cmp);

    if let Some(dir) = write {
        let dir = std::path::Path::new(&dir);
        std::fs::create_dir_all(dir).unwrap();
        let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("hashes.bin")).unwrap());
        for h in &hashes {
            f.write_all(&to_bytes(h)).unwrap();
        }
        let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("queries.bin")).unwrap());
        for q in &queries {
            f.write_all(&to_bytes(q)).unwrap();
        }
        let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("frankly_results.txt")).unwrap());
        for hits in &results {
            let mut ids: Vec<u32> = hits.iter().map(|h| h.id).collect();
            ids.sort_unstable();
            writeln!(f, "{}", ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")).unwrap();
        }
    }

    let matches: usize = results.iter().map(Vec::len).sum();
    println!(
        "{{\"data\": \"{data}\", \"n\": {n}, \"queries\": {nq}, \"radius\": {radius}, \"substrings\": {}, \
         \"build_s\": {build_s:.3}, \"bytes_per_entry\": {:.1}, \"median_ms\": {:.4}, \"p99_ms\": {:.4}, \
         \"mean_ms\": {:.4}, \"matches\": {matches}, \"brute_queries\": {}, \"brute_median_ms\": {:.3}, \
         \"brute_equal\": {brute_equal}}}",
        index.substrings(),
        index.heap_bytes() as f64 / n as f64,
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.99),
        latencies.iter().sum::<f64>() / nq as f64,
        brute_ms.len(),
        if brute_ms.is_empty() { 0.0 } else { percentile(&brute_ms, 0.5) },
    );
}
