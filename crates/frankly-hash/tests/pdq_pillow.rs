//! PDQ as HMA computes it (`PIL.Image.open(path).convert("RGB")`, then Meta's
//! C++ through `pdqhash`), on every photo of `../shared/corpus`: the
//! reference is `tests/vectors/pdq-pillow/shared-corpus.json`, made by
//! `tests/vectors/pdq-pillow/generate.py`. JPEGs decode through libjpeg-turbo
//! to Pillow's pixels, so hash and quality must be equal, not close.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::path::Path;

use frankly_hash::{DecodeOptions, PdqHasher, decode};
use serde_json::Value;

#[test]
fn every_shared_photo_hashes_as_pillow_and_meta_s_cpp_do() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("tests/vectors/pdq-pillow/shared-corpus.json")).unwrap();
    let rows: Vec<Value> = serde_json::from_str(&text).unwrap();
    let rows: Vec<&Value> = rows.iter().filter(|r| r.get("file").is_some()).collect();
    assert_eq!(rows.len(), 58, "the reference should cover the 58 shared photos");
    let corpus = root.join("../shared/corpus");
    let mut hasher = PdqHasher::new();
    let mut failures = Vec::new();
    let mut jpegs = 0;
    for r in &rows {
        let file = r["file"].as_str().unwrap();
        let bytes =
            std::fs::read(corpus.join(file)).unwrap_or_else(|e| panic!("{file}: {e} (../shared/corpus is needed)"));
        let image = decode(&bytes, &DecodeOptions::default()).unwrap();
        jpegs += usize::from(image.format == image::ImageFormat::Jpeg);
        let pdq = hasher.hash(&image.rgb);
        let (want, quality) = (r["pdq"].as_str().unwrap(), r["quality"].as_u64().unwrap());
        if pdq.hash.to_string() != want || u64::from(pdq.quality) != quality {
            failures.push(format!("{file}: frankly {} q{}, Pillow + Meta {want} q{quality}", pdq.hash, pdq.quality));
        }
    }
    println!("{} of {} photos ({jpegs} JPEGs) hash as HMA does", rows.len() - failures.len(), rows.len());
    assert_eq!(jpegs, 53);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
