//! Times PDQ on raw RGB8 files, for `bench/pdq_vs_reference.py`.
//!
//! `cargo run --release -p frankly-hash --example pdq_bench -- --reps N WxH.rgb...`
//! Each file holds `W * H * 3` bytes of interleaved RGB, its size in its name.
//! Prints one JSON object per file: size, the nanoseconds of each of `N` runs on
//! one thread (after two warm-up runs) and their median, hash and quality.

#![allow(clippy::print_stdout, missing_docs)]

use std::time::Instant;

use frankly_hash::PdqHasher;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).peekable();
    let mut reps = 15usize;
    if args.peek().map(String::as_str) == Some("--reps") {
        args.next();
        reps = args.next().ok_or("--reps needs a value")?.parse()?;
    }
    let mut hasher = PdqHasher::new();
    for file in args {
        let name = std::path::Path::new(&file).file_stem().and_then(|s| s.to_str()).ok_or("bad file name")?;
        let (w, h) = name.split_once('x').ok_or("file name must be WxH.rgb")?;
        let (width, height): (u32, u32) = (w.parse()?, h.parse()?);
        let rgb = std::fs::read(&file)?;
        let mut times = Vec::with_capacity(reps);
        // Two warm-up runs; the first also gives the result every run must repeat.
        let result = hasher.hash_rgb8(width, height, &rgb)?;
        hasher.hash_rgb8(width, height, &rgb)?;
        for _ in 0..reps.max(1) {
            let start = Instant::now();
            let r = hasher.hash_rgb8(width, height, &rgb)?;
            times.push(start.elapsed().as_nanos());
            assert_eq!(r, result, "PDQ must be deterministic");
        }
        let samples = times.iter().map(u128::to_string).collect::<Vec<_>>().join(", ");
        times.sort_unstable();
        println!(
            "{{\"file\": \"{file}\", \"width\": {width}, \"height\": {height}, \"median_ns\": {}, \"samples_ns\": [{samples}], \"pdq\": \"{}\", \"quality\": {}}}",
            times[times.len() / 2],
            result.hash,
            result.quality
        );
    }
    Ok(())
}
