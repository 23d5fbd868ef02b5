//! Computing a chosen set of hashes of one file's bytes.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::decode::{DecodeError, DecodeOptions, decode};
use crate::digest::{md5_hex, sha256_hex};
use crate::pdq::{PdqHash, PdqHasher};
use crate::perceptual::Perceptual;

/// A hash that [`hash_bytes`] can compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// PDQ and its quality.
    Pdq,
    /// The eight dihedral PDQ hashes (and quality).
    PdqDihedral,
    /// A perceptual hash from `image_hasher`.
    Perceptual(Perceptual),
    /// SHA-256 of the file bytes.
    Sha256,
    /// MD5 of the file bytes.
    Md5,
}

impl Algorithm {
    /// Every algorithm, in output order.
    pub fn all() -> Vec<Algorithm> {
        let mut v = vec![Algorithm::Pdq, Algorithm::PdqDihedral];
        v.extend(Perceptual::ALL.map(Algorithm::Perceptual));
        v.extend([Algorithm::Sha256, Algorithm::Md5]);
        v
    }

    /// The name used on the command line and as the JSON key.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Pdq => "pdq",
            Algorithm::PdqDihedral => "pdq-dihedral",
            Algorithm::Perceptual(Perceptual::PHash) => "phash",
            Algorithm::Perceptual(Perceptual::DHash) => "dhash",
            Algorithm::Perceptual(Perceptual::DHashVertical) => "dhash-vertical",
            Algorithm::Perceptual(Perceptual::DHashDouble) => "dhash-double",
            Algorithm::Perceptual(Perceptual::AHash) => "ahash",
            Algorithm::Perceptual(Perceptual::MHash) => "mhash",
            Algorithm::Perceptual(Perceptual::Blockhash) => "blockhash",
            Algorithm::Sha256 => "sha256",
            Algorithm::Md5 => "md5",
        }
    }

    /// Whether the algorithm needs decoded pixels (digests do not).
    pub fn needs_pixels(self) -> bool {
        !matches!(self, Algorithm::Sha256 | Algorithm::Md5)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown algorithm name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown hash algorithm {name:?}; known: {known}")]
pub struct UnknownAlgorithm {
    /// The name given.
    pub name: String,
    /// The known names, comma-separated.
    pub known: String,
}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        Algorithm::all().into_iter().find(|a| a.name() == wanted).ok_or_else(|| UnknownAlgorithm {
            name: s.to_string(),
            known: Algorithm::all().iter().map(|a| a.name()).collect::<Vec<_>>().join(","),
        })
    }
}

/// The hashes of one input. Only the requested fields are `Some`; JSON output
/// omits the others. Perceptual hashes are lowercase hex.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HashReport {
    /// Decoded size, when the image was decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Decoded size, when the image was decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// PDQ hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pdq: Option<PdqHash>,
    /// PDQ quality 0..=100 (with `pdq` or `pdq_dihedral`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    /// The eight dihedral PDQ hashes in the reference's order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pdq_dihedral: Option<[PdqHash; 8]>,
    /// pHash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phash: Option<String>,
    /// dHash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dhash: Option<String>,
    /// Vertical dHash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dhash_vertical: Option<String>,
    /// Double dHash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dhash_double: Option<String>,
    /// aHash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ahash: Option<String>,
    /// mHash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mhash: Option<String>,
    /// Blockhash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blockhash: Option<String>,
    /// SHA-256 of the file bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// MD5 of the file bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
}

impl HashReport {
    /// The value of one algorithm as text, if it was computed (dihedral hashes
    /// joined with commas).
    pub fn get(&self, algorithm: Algorithm) -> Option<String> {
        match algorithm {
            Algorithm::Pdq => self.pdq.map(|h| h.to_string()),
            Algorithm::PdqDihedral => {
                self.pdq_dihedral.map(|hs| hs.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(","))
            }
            Algorithm::Perceptual(p) => self.perceptual_slot(p).clone(),
            Algorithm::Sha256 => self.sha256.clone(),
            Algorithm::Md5 => self.md5.clone(),
        }
    }

    fn perceptual_slot(&self, p: Perceptual) -> &Option<String> {
        match p {
            Perceptual::PHash => &self.phash,
            Perceptual::DHash => &self.dhash,
            Perceptual::DHashVertical => &self.dhash_vertical,
            Perceptual::DHashDouble => &self.dhash_double,
            Perceptual::AHash => &self.ahash,
            Perceptual::MHash => &self.mhash,
            Perceptual::Blockhash => &self.blockhash,
        }
    }

    fn perceptual_slot_mut(&mut self, p: Perceptual) -> &mut Option<String> {
        match p {
            Perceptual::PHash => &mut self.phash,
            Perceptual::DHash => &mut self.dhash,
            Perceptual::DHashVertical => &mut self.dhash_vertical,
            Perceptual::DHashDouble => &mut self.dhash_double,
            Perceptual::AHash => &mut self.ahash,
            Perceptual::MHash => &mut self.mhash,
            Perceptual::Blockhash => &mut self.blockhash,
        }
    }
}

/// What [`hash_bytes`] produced: the hashes it could compute, and the decoding
/// error if the pixels were needed and could not be had (digests are still
/// filled in then).
#[derive(Debug)]
pub struct HashOutcome {
    /// The hashes computed.
    pub report: HashReport,
    /// Why the image hashes are missing, if they are.
    pub error: Option<DecodeError>,
}

/// Computes `algorithms` over one file's bytes. Decodes only if a requested
/// algorithm needs pixels.
///
/// ```
/// use frankly_hash::{hash_bytes, Algorithm, DecodeOptions, PdqHasher};
/// let out = hash_bytes(b"abc", &[Algorithm::Sha256], &DecodeOptions::default(), &mut PdqHasher::new());
/// assert!(out.error.is_none());
/// assert_eq!(out.report.sha256.as_deref(), Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
/// ```
pub fn hash_bytes(bytes: &[u8], algorithms: &[Algorithm], options: &DecodeOptions, pdq: &mut PdqHasher) -> HashOutcome {
    let algorithms: BTreeSet<Algorithm> = algorithms.iter().copied().collect();
    let mut report = HashReport::default();
    if algorithms.contains(&Algorithm::Sha256) {
        report.sha256 = Some(sha256_hex(bytes));
    }
    if algorithms.contains(&Algorithm::Md5) {
        report.md5 = Some(md5_hex(bytes));
    }
    if !algorithms.iter().any(|a| a.needs_pixels()) {
        return HashOutcome { report, error: None };
    }
    let image = match decode(bytes, options) {
        Ok(decoded) => decoded.rgb,
        Err(error) => return HashOutcome { report, error: Some(error) },
    };
    report.width = Some(image.width());
    report.height = Some(image.height());
    for algorithm in algorithms {
        match algorithm {
            Algorithm::Pdq => {
                let out = pdq.hash(&image);
                report.pdq = Some(out.hash);
                report.quality = Some(out.quality);
            }
            Algorithm::PdqDihedral => {
                let out = pdq.hash_dihedral(&image);
                report.pdq_dihedral = Some(out.hashes);
                report.quality = Some(out.quality);
            }
            Algorithm::Perceptual(p) => *report.perceptual_slot_mut(p) = Some(p.hash_hex(&image)),
            Algorithm::Sha256 | Algorithm::Md5 => {}
        }
    }
    HashOutcome { report, error: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Algorithm::all() {
            assert_eq!(a.name().parse::<Algorithm>().unwrap(), a);
        }
        assert_eq!("PDQ_Dihedral".parse::<Algorithm>().unwrap(), Algorithm::PdqDihedral);
        let err = "sha1".parse::<Algorithm>().unwrap_err();
        assert!(err.to_string().contains("unknown hash algorithm \"sha1\""), "{err}");
        assert!(err.known.contains("blockhash"));
    }

    #[test]
    fn digests_survive_a_decoding_error() {
        let out = hash_bytes(
            b"definitely not an image",
            &[Algorithm::Pdq, Algorithm::Md5],
            &DecodeOptions::default(),
            &mut PdqHasher::new(),
        );
        assert!(matches!(out.error, Some(DecodeError::UnknownFormat)));
        assert!(out.report.md5.is_some());
        assert!(out.report.pdq.is_none());
    }
}
