//! Deterministic random PDQ hashes (SplitMix64), for tests and examples.

/// `n` PDQ hashes as lower-case hex from `seed`: random 256-bit strings,
/// so any two are about 128 bits apart.
pub fn pdqs(seed: u64, n: usize) -> Vec<String> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            (0..4)
                .map(|_| {
                    s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut z = s;
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    format!("{:016x}", z ^ (z >> 31))
                })
                .collect::<String>()
        })
        .collect()
}
