//! PDQ conformance against Meta's reference outputs.
//!
//! `tests/vectors/pdq/vectors.json` (copied from the project's shared vectors)
//! lists lossless PNGs and what Meta's C++ PDQ computes from exactly those
//! pixels. Every hash, quality and dihedral hash must be identical.

use std::path::{Path, PathBuf};

use frankly_hash::{PdqHash, PdqHasher};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/pdq")
}

#[derive(serde::Deserialize)]
struct Vector {
    file: String,
    width: u32,
    height: u32,
    pdq: PdqHash,
    quality: u8,
    dihedral: [PdqHash; 8],
}

fn load_vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(vectors_dir().join("vectors.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn rgb(file: &str) -> image::RgbImage {
    image::open(vectors_dir().join(file)).unwrap().to_rgb8()
}

#[test]
fn every_vector_is_bit_identical() {
    let vectors = load_vectors();
    assert_eq!(vectors.len(), 54, "the conformance set has 54 images");
    let mut hasher = PdqHasher::new();
    let mut failures = Vec::new();
    for v in &vectors {
        let img = rgb(&v.file);
        assert_eq!((img.width(), img.height()), (v.width, v.height), "{}", v.file);
        let got = hasher.hash(&img);
        if got.hash != v.pdq || got.quality != v.quality {
            failures.push(format!(
                "{}: got {} q{} want {} q{} ({} bits apart)",
                v.file,
                got.hash,
                got.quality,
                v.pdq,
                v.quality,
                got.hash.distance(&v.pdq)
            ));
        }
        let dih = hasher.hash_dihedral(&img);
        for (k, (g, w)) in dih.hashes.iter().zip(v.dihedral.iter()).enumerate() {
            if g != w {
                failures.push(format!("{} dihedral {k}: got {g} want {w}", v.file));
            }
        }
        if dih.quality != v.quality {
            failures.push(format!("{} dihedral quality {} want {}", v.file, dih.quality, v.quality));
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
