//! Signal types: which hash function a bank's hashes come from.

use std::fmt;
use std::str::FromStr;

use frankly_hash::PdqHash;

use crate::index::Words;

/// The hash function of a bank's entries. A bank holds one signal type;
/// lists that mix types are split into one bank per type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignalType {
    /// PDQ, 256 bits, hex in ThreatExchange order.
    Pdq,
    /// pHash as `frankly hash` computes it, 64 bits.
    Phash,
    /// dHash, 64 bits.
    Dhash,
    /// aHash, 64 bits.
    Ahash,
    /// mHash, 64 bits.
    Mhash,
    /// Blockhash with 16x16 blocks, 256 bits.
    Blockhash,
    /// HMA's `video_md5`: the MD5 of a video file's bytes, 128 bits, matched
    /// exactly. A file digest, not an image hash.
    #[serde(rename = "video_md5")]
    VideoMd5,
}

impl SignalType {
    /// All of them.
    pub const ALL: [SignalType; 7] = [
        SignalType::Pdq,
        SignalType::Phash,
        SignalType::Dhash,
        SignalType::Ahash,
        SignalType::Mhash,
        SignalType::Blockhash,
        SignalType::VideoMd5,
    ];

    /// The hash of a decoded image under this signal type, with PDQ's
    /// quality (other types have none); `None` for a file digest
    /// ([`SignalType::VideoMd5`], see [`SignalType::hash_file`]). Hashing
    /// only: decoding, with its limits, is `frankly_hash::decode`'s.
    pub fn hash_image(
        self,
        image: &frankly_hash::RgbImage,
        pdq: &mut frankly_hash::PdqHasher,
    ) -> Option<(Words, Option<u8>)> {
        use frankly_hash::Perceptual;
        let perceptual = match self {
            SignalType::Pdq => {
                let out = pdq.hash(image);
                return Some((out.hash.to_words(), Some(out.quality)));
            }
            SignalType::Phash => Perceptual::PHash,
            SignalType::Dhash => Perceptual::DHash,
            SignalType::Ahash => Perceptual::AHash,
            SignalType::Mhash => Perceptual::MHash,
            SignalType::Blockhash => Perceptual::Blockhash,
            SignalType::VideoMd5 => return None,
        };
        // The same bytes as the hex form `frankly hash` prints, which is
        // what bank files hold.
        Some((self.words_from_bytes(&perceptual.hash(image)), None))
    }

    /// The hash of a file's bytes for a file digest type
    /// ([`SignalType::VideoMd5`]); `None` for image hashes.
    pub fn hash_file(self, bytes: &[u8]) -> Option<Words> {
        match self {
            SignalType::VideoMd5 => self.parse_hash(&frankly_hash::md5_hex(bytes)).ok(),
            _ => None,
        }
    }

    /// Whether this type hashes decoded pixels (all but the file digests).
    pub fn is_image_hash(self) -> bool {
        self != SignalType::VideoMd5
    }

    /// Hash width in bits.
    pub fn bits(self) -> u32 {
        match self {
            SignalType::Pdq | SignalType::Blockhash => 256,
            SignalType::VideoMd5 => 128,
            _ => 64,
        }
    }

    /// The name used in files and on the command line (the `frankly hash` algorithm name).
    pub fn name(self) -> &'static str {
        match self {
            SignalType::Pdq => "pdq",
            SignalType::Phash => "phash",
            SignalType::Dhash => "dhash",
            SignalType::Ahash => "ahash",
            SignalType::Mhash => "mhash",
            SignalType::Blockhash => "blockhash",
            SignalType::VideoMd5 => "video_md5",
        }
    }

    /// The stable one-byte code in binary bank files.
    pub(crate) fn code(self) -> u8 {
        match self {
            SignalType::Pdq => 1,
            SignalType::Phash => 2,
            SignalType::Dhash => 3,
            SignalType::Ahash => 4,
            SignalType::Mhash => 5,
            SignalType::Blockhash => 6,
            SignalType::VideoMd5 => 7,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        SignalType::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Default match threshold: 31 of 256 bits for PDQ (the ThreatExchange and
    /// HMA convention), the same fraction (8 of 64, 31 of 256) for the other
    /// perceptual hashes, 0 (exact) for a file digest.
    pub fn default_threshold(self) -> u32 {
        match self {
            SignalType::VideoMd5 => 0,
            _ if self.bits() == 256 => 31,
            _ => 8,
        }
    }

    /// Default quality floor for query hashes: 50 for PDQ, none for the others
    /// (they have no quality measure).
    pub fn default_quality_floor(self) -> u8 {
        if self == SignalType::Pdq { frankly_hash::PDQ_QUALITY_FLOOR } else { 0 }
    }

    /// Parses a hash written as `frankly hash` writes it (lowercase or
    /// uppercase hex, `bits / 4` digits).
    pub fn parse_hash(self, text: &str) -> Result<Words, HashParseError> {
        let digits = (self.bits() / 4) as usize;
        if text.len() != digits {
            return Err(HashParseError {
                signal: self,
                reason: format!("expected {digits} hex digits, found {}", text.len()),
            });
        }
        if let Some((at, c)) = text.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
            return Err(HashParseError {
                signal: self,
                reason: format!("{c:?} at position {} is not a hex digit", at + 1),
            });
        }
        let mut bytes = [0u8; 32];
        let bytes = &mut bytes[..digits / 2];
        hex::decode_to_slice(text, bytes).map_err(|e| HashParseError { signal: self, reason: e.to_string() })?;
        Ok(self.words_from_bytes(bytes))
    }

    /// The hash as raw bytes, in the order of its hex form.
    pub fn bytes_of(self, words: &Words) -> Vec<u8> {
        match self {
            SignalType::Pdq => {
                let mut out = Vec::with_capacity(32);
                for w in words.iter().rev() {
                    out.extend_from_slice(&w.to_be_bytes());
                }
                out
            }
            _ => words.iter().take((self.bits() / 64) as usize).flat_map(|w| w.to_le_bytes()).collect(),
        }
    }

    /// Inverse of [`SignalType::bytes_of`], for hashes that arrive as raw
    /// bytes (for example rows of a numpy array); refuses any other length
    /// than `bits / 8`.
    pub fn hash_from_bytes(self, bytes: &[u8]) -> Result<Words, HashParseError> {
        let expected = (self.bits() / 8) as usize;
        if bytes.len() != expected {
            return Err(HashParseError {
                signal: self,
                reason: format!("expected {expected} bytes, found {}", bytes.len()),
            });
        }
        Ok(self.words_from_bytes(bytes))
    }

    /// Inverse of [`SignalType::bytes_of`]; `bytes` has `bits / 8` bytes.
    pub(crate) fn words_from_bytes(self, bytes: &[u8]) -> Words {
        let mut words = [0u64; 4];
        match self {
            SignalType::Pdq => {
                let mut h = [0u8; 32];
                h.copy_from_slice(bytes);
                words = PdqHash(h).to_words();
            }
            _ => {
                for (w, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(chunk);
                    *w = u64::from_le_bytes(b);
                }
            }
        }
        words
    }

    /// Formats a hash as lowercase hex, as `frankly hash` prints it.
    pub fn format_hash(self, words: &Words) -> String {
        hex::encode(self.bytes_of(words))
    }
}

impl fmt::Display for SignalType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SignalType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SignalType::ALL.into_iter().find(|t| t.name() == s.trim().to_ascii_lowercase()).ok_or_else(|| {
            let known: Vec<_> = SignalType::ALL.iter().map(|t| t.name()).collect();
            format!("unknown signal type {s:?}; known: {}", known.join(", "))
        })
    }
}

/// A string that is not a hash of the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a {signal} hash: {reason}")]
pub struct HashParseError {
    /// The expected type.
    pub signal: SignalType,
    /// What is wrong.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_for_every_type() {
        for t in SignalType::ALL {
            let hex: String = (0..t.bits() / 4).map(|i| char::from_digit((i * 7 + 3) % 16, 16).unwrap()).collect();
            let w = t.parse_hash(&hex).unwrap();
            assert_eq!(t.format_hash(&w), hex, "{t}");
            assert_eq!(t.parse_hash(&hex.to_uppercase()).unwrap(), w);
            assert_eq!(SignalType::from_code(t.code()), Some(t));
            assert_eq!(t.name().parse::<SignalType>().unwrap(), t);
        }
    }

    #[test]
    fn pdq_words_agree_with_frankly_hash() {
        let hex = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
        let pdq: PdqHash = hex.parse().unwrap();
        assert_eq!(SignalType::Pdq.parse_hash(hex).unwrap(), pdq.to_words());
    }

    #[test]
    fn bad_hashes_say_why() {
        let e = SignalType::Pdq.parse_hash("abc").unwrap_err();
        assert_eq!(e.to_string(), "not a pdq hash: expected 64 hex digits, found 3");
        let e = SignalType::Phash.parse_hash("0123456789abcdeg").unwrap_err();
        assert_eq!(e.to_string(), "not a phash hash: 'g' at position 16 is not a hex digit");
        assert!("sha1".parse::<SignalType>().is_err());
    }
}
