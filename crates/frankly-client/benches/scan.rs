//! `scan_incoming` of a 12-megapixel JPEG photo and of a text message with
//! the child policy (every stage runs: decode, PDQ, bank match, open_nsfw,
//! profanity_check, policy). Prints the per-stage medians of the scanner's
//! own timings, then criterion's measurement of the whole call.
//!
//! The photo is encoded twice, as a camera does (libjpeg-turbo, quality 90,
//! 4:2:0 chroma) and with full-resolution chroma (4:4:4, what the `image`
//! crate's encoder writes). The image models' matrix products run on as
//! many threads as the process may use (`ImageClassifier::with_threads`),
//! so `taskset -c 0` gives the one-core figures (`FRANKLY_MODEL_THREADS=N`
//! sets the number instead):
//!
//! `cargo bench -p frankly-client --bench scan` (two cores here)
//! `taskset -c 0 cargo bench -p frankly-client --bench scan` (one core)

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stderr)]

use std::collections::BTreeSet;
use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use frankly_bank::{Bank, Entry, SignalType};
use frankly_classify::{ImageClassifier, TextClassifier};
use frankly_client::{Attachment, Message, Scanner, Timings, trust_local_bank, trust_local_policy};
use frankly_hash::{DecodeOptions, PdqHasher, decode};
use frankly_policy::{Audience, Facts};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A 4000x3000 photo made from a sample photo, as JPEGs (quality 90) with
/// 4:2:0 and with 4:4:4 chroma, and a bank with its PDQ hash.
fn photo_12mp() -> ([Vec<u8>; 2], Bank) {
    let src = std::fs::read(root().join("tests/data/photos/lomiri_Bridge_by_Sander_Klootwijk.jpg")).unwrap();
    let image = decode(&src, &DecodeOptions::default()).unwrap().rgb;
    let big = image::imageops::resize(&image, 4000, 3000, image::imageops::FilterType::Triangle);
    let jpeg = |subsamp| {
        let mut compressor = turbojpeg::Compressor::new().unwrap();
        compressor.set_quality(90).unwrap();
        compressor.set_subsamp(subsamp).unwrap();
        let pixels = turbojpeg::Image {
            pixels: big.as_raw().as_slice(),
            width: 4000,
            pitch: 12000,
            height: 3000,
            format: turbojpeg::PixelFormat::RGB,
        };
        compressor.compress_to_vec(pixels).unwrap()
    };
    let jpegs = [jpeg(turbojpeg::Subsamp::Sub2x2), jpeg(turbojpeg::Subsamp::None)];
    let (hash, _) = SignalType::Pdq.hash_image(&big, &mut PdqHasher::new()).expect("PDQ hashes images");
    let mut bank = Bank::new("demo", SignalType::Pdq).unwrap();
    bank.entries.push(Entry { hash, labels: BTreeSet::from(["csam".to_owned()]), source_id: None });
    (jpegs, bank)
}

fn median(mut v: Vec<u64>) -> f64 {
    v.sort_unstable();
    v[v.len() / 2] as f64 / 1000.0
}

fn report(name: &str, runs: &[Timings]) {
    let m = |f: fn(&Timings) -> u64| median(runs.iter().map(f).collect());
    eprintln!(
        "{name}: median of {} scans, ms: total {:.2} = decode {:.2} + digest {:.2} + hash {:.2} + match {:.3} + image models {:.2} (own time; the scan waited {:.2} for them after hashing) + text models {:.3} + policy {:.3}",
        runs.len(),
        m(|t| t.total_us),
        m(|t| t.decode_us),
        m(|t| t.digest_us),
        m(|t| t.hash_us),
        m(|t| t.match_us),
        m(|t| t.classify_image_us),
        m(|t| t.classify_wait_us),
        m(|t| t.classify_text_us),
        m(|t| t.policy_us),
    );
}

fn bench(c: &mut Criterion) {
    let ([camera, full_chroma], bank) = photo_12mp();
    let threads = std::env::var("FRANKLY_MODEL_THREADS")
        .map_or_else(|_| std::thread::available_parallelism().map_or(1, usize::from), |t| t.parse().unwrap());
    eprintln!("image model threads: {threads}");
    let policy = trust_local_policy(&std::fs::read_to_string(root().join("policies/child.toml")).unwrap()).unwrap();
    let scanner = Scanner::builder(policy, Audience::Child)
        .bank(trust_local_bank(&bank).unwrap())
        .image_model(ImageClassifier::load(&root().join("models/open_nsfw.toml")).unwrap().with_threads(threads))
        .text_model(TextClassifier::load(&root().join("models/profanity_check.toml")).unwrap())
        .build()
        .unwrap();
    let photo = Message::text("").with_attachment(Attachment::new(camera, "image/jpeg"));
    let photo_444 = Message::text("").with_attachment(Attachment::new(full_chroma, "image/jpeg"));
    let text = Message::text("nobody likes you, you ugly freak, see you at school tomorrow");
    for (name, message) in [("12 MP JPEG 4:2:0", &photo), ("12 MP JPEG 4:4:4", &photo_444)] {
        let verdict = scanner.scan_incoming(message, Facts::default());
        assert_eq!(verdict.signals.bank_matches.len(), 1, "the photo must match its bank");
        let runs: Vec<Timings> = (0..15).map(|_| scanner.scan_incoming(message, Facts::default()).timings).collect();
        report(name, &runs);
    }
    let runs: Vec<Timings> = (0..200).map(|_| scanner.scan_incoming(&text, Facts::default()).timings).collect();
    report("text message", &runs);

    let mut group = c.benchmark_group("scan_incoming");
    group.sample_size(10);
    group.bench_function("jpeg_12mp", |b| b.iter(|| scanner.scan_incoming(black_box(&photo), Facts::default())));
    group
        .bench_function("jpeg_12mp_444", |b| b.iter(|| scanner.scan_incoming(black_box(&photo_444), Facts::default())));
    group.bench_function("text", |b| b.iter(|| scanner.scan_incoming(black_box(&text), Facts::default())));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
