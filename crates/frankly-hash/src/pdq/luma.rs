//! Luma from 8-bit RGB, as the reference binding computes it.
//!
//! The `pdqhash` binding evaluates `R*0.299 + G*0.587 + B*0.114` in numpy, that
//! is in f64 with this order of additions, and hands the result to the C++ as
//! f32. Computing it in f32 instead flips hash bits on some images (the
//! synthetic gradient vector among them). Each product of a byte and a
//! coefficient has only 256 possible values, and the first sum only 65536, so
//! two tables hold exactly the f64 values the binding computes: `R*0.299 +
//! G*0.587` indexed by the adjacent bytes R and G read as one `u16`, and
//! `B*0.114`. One f64 addition per pixel remains.

use super::filter::LANES;

use std::sync::OnceLock;

/// `R*0.299 + G*0.587` for index `R | G << 8`, and `B*0.114` for `B`, all f64.
pub(super) struct LumaTables {
    rg: Box<[f64; 1 << 16]>,
    b: [f64; 256],
}

impl LumaTables {
    /// The tables, built once per process (520 KB, shared by every hasher).
    pub(super) fn get() -> &'static LumaTables {
        static TABLES: OnceLock<LumaTables> = OnceLock::new();
        TABLES.get_or_init(|| {
            let mut rg = Box::new([0f64; 1 << 16]);
            for (i, v) in rg.iter_mut().enumerate() {
                let (r, g) = ((i & 0xff) as f64, (i >> 8) as f64);
                *v = r * 0.299 + g * 0.587;
            }
            LumaTables { rg, b: std::array::from_fn(|v| v as f64 * 0.114) }
        })
    }

    #[inline(always)]
    fn luma(&self, px: &[u8]) -> f32 {
        let rg = usize::from(u16::from_le_bytes([px[0], px[1]]));
        (self.rg[rg] + self.b[px[2] as usize]) as f32
    }

    /// Luma of one row of RGB8 pixels.
    pub(super) fn row(&self, rgb: &[u8], out: &mut [f32]) {
        for (px, y) in rgb.chunks_exact(3).zip(out.iter_mut()) {
            *y = self.luma(px);
        }
    }

    /// Luma of `n <= LANES` consecutive rows, written transposed: `strip[c][k]`
    /// is the pixel at column `c` of row `k`. Lanes `n..` are left as they are
    /// (every lane is an independent computation).
    #[inline(never)]
    pub(super) fn strip(&self, rows: &[&[u8]], strip: &mut [[f32; LANES]]) {
        // Tiles of LANES columns: one bounds check per row and tile, and the
        // tile being written stays in L1.
        for (t, tile) in strip.chunks_mut(LANES).enumerate() {
            let c0 = t * LANES;
            for (k, row) in rows.iter().enumerate() {
                let pixels = &row[3 * c0..3 * (c0 + tile.len())];
                for (cell, px) in tile.iter_mut().zip(pixels.chunks_exact(3)) {
                    cell[k] = self.luma(px);
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
        let t = LumaTables::get();
        let mut seed = 1u32;
        for _ in 0..100_000 {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let px = seed.to_le_bytes();
            let direct = (f64::from(px[0]) * 0.299 + f64::from(px[1]) * 0.587 + f64::from(px[2]) * 0.114) as f32;
            assert_eq!(t.luma(&px[..3]).to_bits(), direct.to_bits());
        }
    }
}
