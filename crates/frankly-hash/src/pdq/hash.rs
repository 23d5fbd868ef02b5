//! The 256-bit PDQ hash value and its ThreatExchange hex form.

use std::fmt;
use std::str::FromStr;

/// Number of bits in a PDQ hash.
pub const PDQ_BITS: u32 = 256;

/// A 256-bit PDQ hash.
///
/// The bytes are stored in ThreatExchange order: the hash is the 256-bit integer
/// `sum(bit_k << k)` written big-endian, so `bytes[0]` holds bits 255..248 and
/// `bytes[31]` holds bits 7..0. Bit `k = 16 * i + j` is set when DCT coefficient
/// `(i + 1, j + 1)` (vertical, horizontal frequency) is above the median.
/// `Display` and `FromStr` use the 64 lowercase hex digits every PDQ tool exchanges.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PdqHash(pub [u8; 32]);

impl PdqHash {
    /// The all-zero hash (what the reference returns for images under 5 pixels).
    pub const ZERO: PdqHash = PdqHash([0; 32]);

    /// Whether bit `k` (0..256, see the type docs) is set.
    pub fn bit(&self, k: u32) -> bool {
        assert!(k < PDQ_BITS, "PDQ bit index {k} out of range");
        let byte = 31 - (k / 8) as usize;
        (self.0[byte] >> (k % 8)) & 1 == 1
    }

    pub(crate) fn set_bit(&mut self, k: u32) {
        let byte = 31 - (k / 8) as usize;
        self.0[byte] |= 1 << (k % 8);
    }

    /// Hamming distance: the number of differing bits, 0..=256.
    pub fn distance(&self, other: &PdqHash) -> u32 {
        self.0.iter().zip(other.0.iter()).map(|(a, b)| (a ^ b).count_ones()).sum()
    }

    /// The hash as four little-endian 64-bit words (word 0 holds bits 0..64),
    /// a convenient layout for matching indexes.
    pub fn to_words(&self) -> [u64; 4] {
        let mut w = [0u64; 4];
        for (i, word) in w.iter_mut().enumerate() {
            let start = 32 - 8 * (i + 1);
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.0[start..start + 8]);
            *word = u64::from_be_bytes(b);
        }
        w
    }

    /// Number of set bits.
    pub fn count_ones(&self) -> u32 {
        self.0.iter().map(|b| b.count_ones()).sum()
    }
}

impl fmt::Display for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PdqHash({self})")
    }
}

/// Why a string is not a PDQ hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParsePdqError {
    /// The string does not have exactly 64 characters.
    #[error("a PDQ hash has 64 hex digits, found {0} characters")]
    Length(usize),
    /// A character is not a hex digit.
    #[error("a PDQ hash has only hex digits, found {found:?} at position {position}")]
    Digit {
        /// The offending character.
        found: char,
        /// Its 0-based position.
        position: usize,
    },
}

impl FromStr for PdqHash {
    type Err = ParsePdqError;

    /// Parses 64 hex digits, either case, in ThreatExchange order.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 {
            return Err(ParsePdqError::Length(s.chars().count()));
        }
        if let Some((position, found)) = s.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
            return Err(ParsePdqError::Digit { found, position });
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| ParsePdqError::Length(s.len()))?;
        Ok(PdqHash(out))
    }
}

impl serde::Serialize for PdqHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PdqHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

    #[test]
    fn hex_round_trip_and_bit_order() {
        let h: PdqHash = H.parse().unwrap();
        assert_eq!(h.to_string(), H);
        // The last hex digit (0x2) holds bits 3..0.
        assert!(!h.bit(0));
        assert!(h.bit(1));
        assert!(!h.bit(2));
        // The first hex digit (0xf) holds bits 255..252.
        assert!(h.bit(255) && h.bit(252));
        assert_eq!(H.to_uppercase().parse::<PdqHash>().unwrap(), h);
    }

    #[test]
    fn words_are_little_endian_over_bits() {
        let mut h = PdqHash::ZERO;
        h.set_bit(0);
        h.set_bit(64);
        h.set_bit(255);
        assert_eq!(h.to_words(), [1, 1, 0, 1 << 63]);
    }

    #[test]
    fn distance_counts_bits() {
        let a: PdqHash = H.parse().unwrap();
        let mut b = a;
        b.0[0] ^= 0xff;
        b.0[31] ^= 0x01;
        assert_eq!(a.distance(&b), 9);
        assert_eq!(a.distance(&a), 0);
        assert_eq!(PdqHash::ZERO.distance(&PdqHash([0xff; 32])), 256);
    }

    #[test]
    fn parse_errors_name_the_problem() {
        assert_eq!("abc".parse::<PdqHash>(), Err(ParsePdqError::Length(3)));
        let bad = format!("{}g", &H[..63]);
        assert_eq!(bad.parse::<PdqHash>(), Err(ParsePdqError::Digit { found: 'g', position: 63 }));
        let multibyte = format!("{}é", &H[..62]);
        assert!(multibyte.parse::<PdqHash>().is_err());
    }
}
