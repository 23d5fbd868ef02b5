//! Hashes videos with vPDQ on one thread, for `bench/vpdq_vs_reference.py`.
//!
//! `cargo run --release -p frankly-video --example vpdq_bench -- [--seconds-per-hash S] OUT_DIR VIDEO...`
//! Writes `OUT_DIR/<name>.txt` in Meta's format (Meta's timestamps, every
//! frame unless `--seconds-per-hash` says otherwise) and prints one JSON object per video: frames, wall seconds of the
//! whole hash (decode included), and how many frames took libswscale.

#![allow(clippy::print_stdout, missing_docs)]

use std::path::Path;
use std::time::Instant;

use frankly_video::{Timestamps, VpdqOptions, format_meta, vpdq};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).peekable();
    let mut options = VpdqOptions { timestamps: Timestamps::FrameRate, ..Default::default() };
    if args.peek().map(String::as_str) == Some("--seconds-per-hash") {
        args.next();
        options.video.seconds_per_hash = args.next().ok_or("--seconds-per-hash needs a value")?.parse()?;
    }
    let out = args.next().ok_or("usage: vpdq_bench [--seconds-per-hash S] OUT_DIR VIDEO...")?;
    for video in args {
        let bytes = std::fs::read(&video)?;
        let start = Instant::now();
        let hashed = vpdq(&bytes, &options, |_, _| {})?;
        let seconds = start.elapsed().as_secs_f64();
        let stem = Path::new(&video).file_stem().ok_or("no file name")?.to_string_lossy().into_owned();
        std::fs::write(Path::new(&out).join(format!("{stem}.txt")), format_meta(&hashed.features))?;
        println!(
            "{}",
            serde_json::json!({
                "video": stem,
                "frames": hashed.features.len(),
                "decoded_frames": hashed.summary.decoded_frames,
                "seconds": seconds,
                "swscale_frames": hashed.summary.swscale_frames,
            })
        );
    }
    Ok(())
}
