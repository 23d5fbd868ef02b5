//! The partial 2-D DCT and the hash bits, as in Meta's `dct64To16` and
//! `pdqBuffer16x16ToBits`.

use super::filter::Grid64;
use super::hash::PdqHash;

/// DCT coefficients kept: frequencies 1..=16 in each direction (DC dropped).
pub(super) type Coeffs = [[f32; 16]; 16];

/// `D[i][j] = sqrt(2/64) * cos(pi/128 * (i+1) * (2j+1))`, rounded as the
/// reference rounds it: the scale factor is stored as f32, the product is taken
/// in f64 and stored as f32.
fn dct_matrix() -> [[f32; 64]; 16] {
    let scale = (2.0f64 / 64.0).sqrt() as f32 as f64;
    std::array::from_fn(|i| {
        std::array::from_fn(|j| {
            (scale * ((std::f64::consts::PI / 2.0 / 64.0) * (i + 1) as f64 * (2 * j + 1) as f64).cos()) as f32
        })
    })
}

/// `B = D A D^T` with every sum taken in f32 with `k` ascending. Loops are
/// ordered so that independent outputs are computed side by side.
pub(super) fn dct64_to_16(a: &Grid64) -> Coeffs {
    let d = dct_matrix();
    // T = D A: T[i][j] = sum_k D[i][k] A[k][j]
    let mut t = [[0f32; 64]; 16];
    for (ti, di) in t.iter_mut().zip(d.iter()) {
        for (ak, &dik) in a.iter().zip(di.iter()) {
            for (tij, &akj) in ti.iter_mut().zip(ak.iter()) {
                *tij += dik * akj;
            }
        }
    }
    // B = T D^T: B[i][j] = sum_k T[i][k] D[j][k]
    let mut dt = [[0f32; 16]; 64];
    for (j, dj) in d.iter().enumerate() {
        for (k, &v) in dj.iter().enumerate() {
            dt[k][j] = v;
        }
    }
    let mut b = [[0f32; 16]; 16];
    for (bi, ti) in b.iter_mut().zip(t.iter()) {
        for (&tik, dtk) in ti.iter().zip(dt.iter()) {
            for (bij, &djk) in bi.iter_mut().zip(dtk.iter()) {
                *bij += tik * djk;
            }
        }
    }
    b
}

/// The 128th smallest of the 256 coefficients: the value Torben's median
/// returns for an even count (it never averages).
fn median(c: &Coeffs) -> f32 {
    let mut v: Vec<f32> = c.iter().flatten().copied().collect();
    let (_, m, _) = v.select_nth_unstable_by(127, f32::total_cmp);
    *m
}

/// Bit `16 i + j` is set where coefficient `(i, j)` is strictly above the median.
pub(super) fn to_hash(c: &Coeffs) -> PdqHash {
    let m = median(c);
    let mut h = PdqHash::ZERO;
    for (i, row) in c.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            if v > m {
                h.set_bit((16 * i + j) as u32);
            }
        }
    }
    h
}

/// The eight dihedral transforms of the coefficients, in the order Meta's
/// `pdqDihedralHash256esFromFloatLuma` returns them: original, rot90, rot180,
/// rot270, flipX, flipY, flipPlus1 (transpose), flipMinus1 (anti-transpose).
/// Index `i` is vertical frequency `i + 1`, so "odd `i`" is an even frequency,
/// whose basis function is symmetric.
pub(super) fn dihedral(a: &Coeffs) -> [Coeffs; 8] {
    let neg = |v: f32, negate: bool| if negate { -v } else { v };
    let mut out = [[[0f32; 16]; 16]; 8];
    for i in 0..16 {
        for j in 0..16 {
            let v = a[i][j];
            out[0][i][j] = v;
            out[1][j][i] = neg(v, j % 2 == 0);
            out[2][i][j] = neg(v, (i + j) % 2 == 1);
            out[3][j][i] = neg(v, i % 2 == 0);
            out[4][i][j] = neg(v, i % 2 == 0);
            out[5][i][j] = neg(v, j % 2 == 0);
            out[6][j][i] = v;
            out[7][j][i] = neg(v, (i + j) % 2 == 1);
        }
    }
    out
}

/// The reference's image-domain quality metric over the 64x64 downsample.
pub(super) fn quality(a: &Grid64) -> u8 {
    let step = |u: f32, v: f32| ((((u - v) * 100.0) / 255.0) as i32).abs();
    let mut sum: i32 = 0;
    for i in 0..63 {
        for j in 0..64 {
            sum += step(a[i][j], a[i + 1][j]);
        }
    }
    for row in a.iter() {
        for j in 0..63 {
            sum += step(row[j], row[j + 1]);
        }
    }
    (sum / 90).min(100) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Torben's algorithm exactly as published, to check `median` against.
    fn torben(m: &[f32]) -> f32 {
        let n = m.len();
        let (mut min, mut max) = (m[0], m[0]);
        for &x in &m[1..] {
            min = min.min(x);
            max = max.max(x);
        }
        let half = n.div_ceil(2);
        loop {
            let guess = (min + max) / 2.0;
            let (mut less, mut greater, mut equal) = (0, 0, 0);
            let (mut maxlt, mut mingt) = (min, max);
            for &x in m {
                if x < guess {
                    less += 1;
                    if x > maxlt {
                        maxlt = x;
                    }
                } else if x > guess {
                    greater += 1;
                    if x < mingt {
                        mingt = x;
                    }
                } else {
                    equal += 1;
                }
            }
            if less <= half && greater <= half {
                return if less >= half {
                    maxlt
                } else if less + equal >= half {
                    guess
                } else {
                    mingt
                };
            } else if less > greater {
                max = maxlt;
            } else {
                min = mingt;
            }
        }
    }

    #[test]
    fn median_equals_torben() {
        let mut seed = 7u64;
        for round in 0..200 {
            let c: Coeffs = std::array::from_fn(|_| {
                std::array::from_fn(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    // Few distinct values in some rounds, to exercise ties.
                    let modulus = if round % 2 == 0 { 7 } else { 1 << 20 };
                    ((seed >> 33) % modulus) as f32 - 3.0
                })
            });
            let flat: Vec<f32> = c.iter().flatten().copied().collect();
            assert_eq!(median(&c), torben(&flat), "round {round}");
        }
    }

    #[test]
    fn dct_rows_are_orthonormal() {
        let d = dct_matrix();
        for i in 0..16 {
            for j in 0..16 {
                let dot: f64 = (0..64).map(|k| d[i][k] as f64 * d[j][k] as f64).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-5, "rows {i},{j}: {dot}");
            }
        }
    }

    #[test]
    fn dihedral_group_is_closed() {
        // rot90 applied four times is the identity; flipX twice is the identity.
        let a: Coeffs = std::array::from_fn(|i| std::array::from_fn(|j| (i * 16 + j) as f32 + 1.0));
        let mut r = a;
        for _ in 0..4 {
            r = dihedral(&r)[1];
        }
        assert_eq!(r, a);
        assert_eq!(dihedral(&dihedral(&a)[4])[4], a);
        assert_eq!(dihedral(&dihedral(&a)[1])[1], dihedral(&a)[2]);
    }
}
