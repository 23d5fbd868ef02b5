//! The hash functions a study compares, with one name each.

use frankly_hash::{PdqHasher, Perceptual, RgbImage};

/// A perceptual hash under study.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgo {
    /// Meta's PDQ, 256 bits, bit-exact with the reference.
    Pdq,
    /// pHash (DCT), 64 bits.
    PHash,
    /// dHash (horizontal gradient), 64 bits.
    DHash,
    /// aHash (mean), 64 bits.
    AHash,
    /// Blockhash with 16x16 blocks, 256 bits.
    Blockhash,
}

/// Default match radius of PDQ in bits: Meta's recommended threshold (31 of 256).
pub const PDQ_MATCH_THRESHOLD: u32 = 31;
/// Default match radius of the 64-bit hashes, in bits (about 12% of the hash, as PDQ's 31/256).
pub const SHORT_HASH_MATCH_THRESHOLD: u32 = 8;

impl HashAlgo {
    /// Every algorithm, in report order.
    pub const ALL: [HashAlgo; 5] =
        [HashAlgo::Pdq, HashAlgo::PHash, HashAlgo::DHash, HashAlgo::AHash, HashAlgo::Blockhash];

    /// The name used on the command line and in CSV files.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Pdq => "pdq",
            HashAlgo::PHash => "phash",
            HashAlgo::DHash => "dhash",
            HashAlgo::AHash => "ahash",
            HashAlgo::Blockhash => "blockhash",
        }
    }

    /// Hash width in bits; distances range over `0..=bits`.
    pub fn bits(self) -> u32 {
        match self {
            HashAlgo::Pdq => frankly_hash::PDQ_BITS,
            HashAlgo::PHash => Perceptual::PHash.bits(),
            HashAlgo::DHash => Perceptual::DHash.bits(),
            HashAlgo::AHash => Perceptual::AHash.bits(),
            HashAlgo::Blockhash => Perceptual::Blockhash.bits(),
        }
    }

    /// The usual match threshold: a hash at most this many bits away matches.
    pub fn default_threshold(self) -> u32 {
        match self {
            HashAlgo::Pdq | HashAlgo::Blockhash => PDQ_MATCH_THRESHOLD,
            HashAlgo::PHash | HashAlgo::DHash | HashAlgo::AHash => SHORT_HASH_MATCH_THRESHOLD,
        }
    }

    /// The hash of `image` as bytes (`bits / 8` of them). `pdq` is reused
    /// between calls to avoid reallocating its buffers.
    pub fn hash(self, image: &RgbImage, pdq: &mut PdqHasher) -> Vec<u8> {
        match self {
            HashAlgo::Pdq => pdq.hash(image).hash.0.to_vec(),
            HashAlgo::PHash => Perceptual::PHash.hash(image),
            HashAlgo::DHash => Perceptual::DHash.hash(image),
            HashAlgo::AHash => Perceptual::AHash.hash(image),
            HashAlgo::Blockhash => Perceptual::Blockhash.hash(image),
        }
    }
}

impl std::fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A hash algorithm name that frankly-eval does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown hash algorithm {0:?} (known: pdq, phash, dhash, ahash, blockhash)")]
pub struct UnknownHashAlgo(pub String);

impl std::str::FromStr for HashAlgo {
    type Err = UnknownHashAlgo;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HashAlgo::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownHashAlgo(s.to_owned()))
    }
}

/// Hamming distance between two hashes of the same algorithm (bytes of equal length).
/// Hashes of different lengths are as far apart as the longer one is wide.
pub fn distance(a: &[u8], b: &[u8]) -> u32 {
    frankly_hash::hamming(a, b).unwrap_or(8 * a.len().max(b.len()) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_widths_match() {
        let image = RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 7]));
        let mut pdq = PdqHasher::new();
        for a in HashAlgo::ALL {
            assert_eq!(a.name().parse::<HashAlgo>(), Ok(a));
            assert_eq!(a.hash(&image, &mut pdq).len() as u32 * 8, a.bits(), "{a}");
            assert!(a.default_threshold() < a.bits() / 2);
        }
        assert!("md5".parse::<HashAlgo>().is_err());
    }

    #[test]
    fn distance_counts_bits() {
        assert_eq!(distance(&[0b1011, 0], &[0, 1]), 4);
        assert_eq!(distance(&[0], &[0, 0]), 16);
    }
}
