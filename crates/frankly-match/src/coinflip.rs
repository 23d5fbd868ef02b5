//! HMA's coin flip, value for value.
//!
//! HMA draws `random.Random(seed).random()` per lookup, with the request's
//! `seed` string (OS entropy without one), and consults a bank when its
//! `matching_enabled_ratio` is at least the draw. A client that passes a
//! seed expects the same banks on frankly as on HMA, so this reproduces
//! CPython: a `str` seed becomes the integer `int.from_bytes(s + sha512(s),
//! "big")`, whose 32-bit words (least significant first) seed MT19937 with
//! `init_by_array`; `random()` is `((a >> 5) * 2^26 + (b >> 6)) / 2^53` of
//! two outputs. MT19937 itself is `rand_mt`'s.

use rand_mt::Mt;
use sha2::{Digest, Sha512};

/// CPython's `random.Random(seed).random()` for a `str` seed.
pub fn python_random(seed: &str) -> f64 {
    let mut bytes = seed.as_bytes().to_vec();
    bytes.extend_from_slice(&Sha512::digest(seed.as_bytes()));
    // The integer's 32-bit digits, least significant first, without
    // leading zero digits (at least one), as CPython's init_by_array gets them.
    let mut key: Vec<u32> =
        bytes.rchunks(4).map(|chunk| chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))).collect();
    while key.len() > 1 && key.last() == Some(&0) {
        key.pop();
    }
    let mut mt = Mt::new_with_key(key);
    let a = mt.next_u32() >> 5;
    let b = mt.next_u32() >> 6;
    (f64::from(a) * 67_108_864.0 + f64::from(b)) / 9_007_199_254_740_992.0
}

/// A draw for a lookup without a seed: uniform in [0, 1), from the OS.
pub fn entropy_random(entropy: [u8; 8]) -> f64 {
    (u64::from_le_bytes(entropy) >> 11) as f64 / 9_007_199_254_740_992.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_give_cpython_s_values() {
        // CPython 3.11 `random.Random(seed).random()`, from the HMA study.
        for (seed, value) in [
            ("", 0.9602256525641875),
            ("0", 0.3616904771377427),
            ("1", 0.4782479962566343),
            ("7", 0.7124376338974682),
            ("10", 0.8038117609963674),
            ("42", 0.473659421919327),
            ("1234", 0.24836460312826447),
            ("abc", 0.7720246314157545),
            ("test", 0.6555960613392863),
            ("content-123", 0.9523770924322945),
        ] {
            assert_eq!(python_random(seed), value, "{seed:?}");
        }
    }
}
