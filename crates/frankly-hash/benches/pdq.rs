//! PDQ throughput at three sizes, on a real photo resized to each size.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use frankly_hash::PdqHasher;
use image::imageops::FilterType;

fn photo() -> image::RgbImage {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/photos/lomiri_Bridge_by_Sander_Klootwijk.jpg");
    image::open(path).expect("shipped test photo").to_rgb8()
}

fn pdq(c: &mut Criterion) {
    let src = photo();
    let mut group = c.benchmark_group("pdq");
    group.sample_size(20);
    for (w, h) in [(512, 512), (1024, 768), (4000, 3000)] {
        let img = image::imageops::resize(&src, w, h, FilterType::Triangle);
        let mut hasher = PdqHasher::new();
        group.throughput(Throughput::Elements(u64::from(w) * u64::from(h)));
        group.bench_function(format!("hash/{w}x{h}"), |b| b.iter(|| hasher.hash(&img)));
        group.bench_function(format!("dihedral/{w}x{h}"), |b| b.iter(|| hasher.hash_dihedral(&img)));
    }
    group.finish();
}

criterion_group!(benches, pdq);
criterion_main!(benches);
