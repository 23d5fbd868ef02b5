//! The speed cost of Pillow-identical JPEG decoding: `frankly_hash::decode`
//! (libjpeg-turbo) against the `image` crate's own JPEG decoder (zune-jpeg),
//! alternating on the same file in the same run.
//!
//! ```sh
//! cargo run --release -p frankly-hash --example jpeg_decoders -- PHOTO.jpg [ROUNDS]
//! ```

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bytes = std::fs::read(&args[1]).unwrap();
    let rounds: usize = args.get(2).map_or(15, |r| r.parse().unwrap());
    let (mut turbo, mut zune) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let a = frankly_hash::decode(&bytes, &frankly_hash::DecodeOptions::default()).unwrap();
        turbo.push(t.elapsed());
        let t = Instant::now();
        let b = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap().to_rgb8();
        zune.push(t.elapsed());
        assert_eq!(a.rgb.dimensions(), b.dimensions());
    }
    let (t, z) = (median(turbo), median(zune));
    println!(
        "{}: libjpeg-turbo {:.1} ms, image/zune-jpeg {:.1} ms, ratio {:.2} (median of {rounds})",
        args[1],
        t.as_secs_f64() * 1e3,
        z.as_secs_f64() * 1e3,
        t.as_secs_f64() / z.as_secs_f64()
    );
}
