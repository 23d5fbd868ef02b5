//! The classic perceptual hashes, through `image_hasher` with fixed parameters.
//!
//! Parameters are part of a hash's identity: a pHash computed with another
//! resize filter or size is a different function. They are fixed here, written
//! down in `docs/hashes.md`, and covered by known-answer tests so a dependency
//! update cannot change them silently.

use image::imageops::FilterType;
use image_hasher::{BitOrder, HashAlg, HasherConfig};

/// A perceptual hash that `image_hasher` computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Perceptual {
    /// pHash: 16x16 Lanczos3 greyscale, DCT, top-left 8x8 coefficients against
    /// their median; 64 bits.
    PHash,
    /// dHash: 9x8 greyscale, each pixel compared with its right neighbour; 64 bits.
    DHash,
    /// Vertical dHash: 8x9, each pixel compared with the one below; 64 bits.
    DHashVertical,
    /// Double dHash: horizontal and vertical gradients of a 9x9 image; 144 bits.
    DHashDouble,
    /// aHash: 8x8 greyscale against the mean; 64 bits.
    AHash,
    /// mHash: 8x8 greyscale against the median; 64 bits.
    MHash,
    /// Blockhash (Yang, Gu, Niu 2006; blockhash.io) with 16x16 blocks; 256 bits.
    Blockhash,
}

impl Perceptual {
    /// All of them.
    pub const ALL: [Perceptual; 7] = [
        Perceptual::PHash,
        Perceptual::DHash,
        Perceptual::DHashVertical,
        Perceptual::DHashDouble,
        Perceptual::AHash,
        Perceptual::MHash,
        Perceptual::Blockhash,
    ];

    /// Hash width in bits.
    pub fn bits(self) -> u32 {
        match self {
            Perceptual::DHashDouble => 144,
            Perceptual::Blockhash => 256,
            _ => 64,
        }
    }

    fn config(self) -> HasherConfig {
        let base = HasherConfig::new().resize_filter(FilterType::Lanczos3).bit_order(BitOrder::LsbFirst);
        match self {
            Perceptual::PHash => base.hash_alg(HashAlg::Median).hash_size(8, 8).preproc_dct(),
            Perceptual::DHash => base.hash_alg(HashAlg::Gradient).hash_size(8, 8),
            Perceptual::DHashVertical => base.hash_alg(HashAlg::VertGradient).hash_size(8, 8),
            Perceptual::DHashDouble => base.hash_alg(HashAlg::DoubleGradient).hash_size(16, 16),
            Perceptual::AHash => base.hash_alg(HashAlg::Mean).hash_size(8, 8),
            Perceptual::MHash => base.hash_alg(HashAlg::Median).hash_size(8, 8),
            Perceptual::Blockhash => base.hash_alg(HashAlg::Blockhash).hash_size(16, 16),
        }
    }

    /// The hash of an image, as bytes in `image_hasher`'s LSB-first order.
    pub fn hash(self, image: &image::RgbImage) -> Vec<u8> {
        self.config().to_hasher().hash_image(image).as_bytes().to_vec()
    }

    /// The hash as lowercase hex of those bytes.
    pub fn hash_hex(self, image: &image::RgbImage) -> String {
        hex::encode(self.hash(image))
    }
}

/// Hamming distance between two equally long hashes; `None` if lengths differ.
pub fn hamming(a: &[u8], b: &[u8]) -> Option<u32> {
    (a.len() == b.len()).then(|| a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(name: &str) -> image::RgbImage {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/photos").join(name);
        image::open(path).unwrap().to_rgb8()
    }

    #[test]
    fn widths_match_bit_counts() {
        let img = photo("skimage_chelsea.png");
        for p in Perceptual::ALL {
            assert_eq!(p.hash(&img).len() as u32 * 8, p.bits(), "{p:?}");
        }
    }

    #[test]
    fn resized_copies_are_near_and_other_photos_far() {
        let a = photo("skimage_chelsea.png");
        let a_small = image::imageops::resize(&a, 225, 150, FilterType::Triangle);
        let b = photo("skimage_coffee.png");
        for p in Perceptual::ALL {
            let near = hamming(&p.hash(&a), &p.hash(&a_small)).unwrap();
            let far = hamming(&p.hash(&a), &p.hash(&b)).unwrap();
            assert!(near * 8 <= p.bits(), "{p:?}: resized copy {near} bits away");
            assert!(far > 2 * near.max(1), "{p:?}: other photo {far} bits away, resized copy {near}");
        }
    }

    /// Pins the parameters: these values were produced by this module with
    /// `image_hasher` 3.1.1. A change means the hash functions changed, and
    /// every stored hash of that kind would stop matching; that needs a new
    /// algorithm name, not a silent update.
    #[test]
    fn known_answers_on_a_shipped_photo() {
        let img = photo("skimage_chelsea.png");
        let want = [
            (Perceptual::PHash, "8dfa67628a84e87a"),
            (Perceptual::DHash, "2a281a59d5f6e5a1"),
            (Perceptual::DHashVertical, "b3edba7987d2ae2b"),
            (Perceptual::DHashDouble, "2a283a5b5996f6e5f1b3eda2394397f2ae2b"),
            (Perceptual::AHash, "414171d290c5cee7"),
            (Perceptual::MHash, "436371d290c5cfef"),
            (Perceptual::Blockhash, "9b388d181d393f1911bf113f1c2704f36cf3000a7bf236f026e0aec83ef03e98"),
        ];
        for (p, hex) in want {
            assert_eq!(p.hash_hex(&img), hex, "{p:?}");
        }
    }

    #[test]
    fn hamming_requires_equal_lengths() {
        assert_eq!(hamming(&[0xff, 0], &[0x0f, 1]), Some(5));
        assert_eq!(hamming(&[0], &[0, 0]), None);
    }
}
