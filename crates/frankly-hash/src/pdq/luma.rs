//! Luma from 8-bit RGB, as the reference binding computes it.
//!
//! The `pdqhash` binding evaluates `R*0.299 + G*0.587 + B*0.114` in numpy, that
//! is in f64 with this order of additions, and hands the result to the C++ as
//! f32. Computing it in f32 instead flips hash bits on some images (the
//! synthetic gradient vector among them). Each product of a byte and a
//! coefficient has only 256 possible values, so three small tables hold the
//! exact f64 products and leave two f64 additions per pixel.

use super::filter::LANES;

/// Exact f64 products `v * coefficient` for every byte value.
pub(super) struct LumaTables {
    r: [f64; 256],
    g: [f64; 256],
    b: [f64; 256],
}

impl LumaTables {
    pub(super) fn new() -> Self {
        LumaTables {
            r: std::array::from_fn(|v| v as f64 * 0.299),
            g: std::array::from_fn(|v| v as f64 * 0.587),
            b: std::array::from_fn(|v| v as f64 * 0.114),
        }
    }

    #[inline(always)]
    fn luma(&self, px: &[u8]) -> f32 {
        ((self.r[px[0] as usize] + self.g[px[1] as usize]) + self.b[px[2] as usize]) as f32
    }

    /// Luma of one row of RGB8 pixels.
    pub(super) fn row(&self, rgb: &[u8], out: &mut [f32]) {
        for (px, y) in rgb.chunks_exact(3).zip(out.iter_mut()) {
            *y = self.luma(px);
        }
    }

    /// Luma of `n <= LANES` consecutive rows, written transposed: `strip[c][k]`
    /// is the pixel at column `c` of row `k`. Lanes `n..` are zeroed.
    pub(super) fn strip(&self, rows: &[&[u8]], strip: &mut [[f32; LANES]]) {
        let n = rows.len();
        if n == LANES {
            // The common case, with every row bound known to the compiler.
            let rows: &[&[u8]; LANES] = rows.try_into().unwrap_or_else(|_| unreachable!());
            for (c, cell) in strip.iter_mut().enumerate() {
                for (k, row) in rows.iter().enumerate() {
                    cell[k] = self.luma(&row[3 * c..3 * c + 3]);
                }
            }
        } else {
            for (c, cell) in strip.iter_mut().enumerate() {
                *cell = [0.0; LANES];
                for (k, row) in rows.iter().enumerate() {
                    cell[k] = self.luma(&row[3 * c..3 * c + 3]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_match_direct_f64_evaluation() {
        let t = LumaTables::new();
        let mut seed = 1u32;
        for _ in 0..100_000 {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let px = seed.to_le_bytes();
            let direct = (f64::from(px[0]) * 0.299 + f64::from(px[1]) * 0.587 + f64::from(px[2]) * 0.114) as f32;
            assert_eq!(t.luma(&px[..3]).to_bits(), direct.to_bits());
        }
    }
}
