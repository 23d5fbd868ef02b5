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

/// Columns per tile of [`LumaTables::strip`]: 256 cells of 64 bytes fill a
/// third of a typical 48 KB L1 data cache.
const TILE: usize = 256;

use std::sync::OnceLock;

/// `R*0.299 + G*0.587` for index `R | G << 8`, and `B*0.114` for `B`, all f64.
pub(super) struct LumaTables {
    rg: Box<[f64; 1 << 16]>,
    b: [f64; 256],
}

impl LumaTables {
    /// Tables for Meta's C++ `fillFloatLumaFromRGB`, which vPDQ runs:
    /// `0.299f * R + 0.587f * G + 0.114f * B` in f32 (products and sums each
    /// rounded to f32). Each table entry holds the f32 value exactly; the one
    /// f64 addition of two such values is exact (their exponents are close),
    /// so its rounding to f32 is the f32 addition the C++ performs.
    pub(super) fn get_f32() -> &'static LumaTables {
        static TABLES: OnceLock<LumaTables> = OnceLock::new();
        TABLES.get_or_init(|| {
            Self::build(
                |r, g| f64::from(0.299f32 * f32::from(r) + 0.587f32 * f32::from(g)),
                |b| f64::from(0.114f32 * f32::from(b)),
            )
        })
    }

    /// The tables, built once per process (520 KB, shared by every hasher).
    pub(super) fn get() -> &'static LumaTables {
        static TABLES: OnceLock<LumaTables> = OnceLock::new();
        TABLES.get_or_init(|| Self::build(|r, g| f64::from(r) * 0.299 + f64::from(g) * 0.587, |b| f64::from(b) * 0.114))
    }

    /// Tables of `rg(R, G)` indexed by `R | G << 8`, and of `b(B)`.
    fn build(rg: impl Fn(u8, u8) -> f64, b: impl Fn(u8) -> f64) -> LumaTables {
        let mut table = Box::new([0f64; 1 << 16]);
        for (i, v) in table.iter_mut().enumerate() {
            *v = rg((i & 0xff) as u8, (i >> 8) as u8);
        }
        LumaTables { rg: table, b: std::array::from_fn(|v| b(v as u8)) }
    }

    #[inline(always)]
    fn luma(&self, px: &[u8]) -> f32 {
        let rg = usize::from(u16::from_le_bytes([px[0], px[1]]));
        (self.rg[rg] + self.b[px[2] as usize]) as f32
    }

    /// Luma of 8 pixels (24 bytes), reading the bytes as three u64 words: two
    /// table loads per pixel and shifts, instead of three byte loads.
    #[inline(always)]
    fn luma8(&self, px: &[u8; 24]) -> [f32; 8] {
        let word = |i: usize| {
            u64::from_le_bytes([px[i], px[i + 1], px[i + 2], px[i + 3], px[i + 4], px[i + 5], px[i + 6], px[i + 7]])
        };
        let (w0, w1, w2) = (word(0), word(8), word(16));
        // (R | G << 8, B) of each pixel.
        let parts: [(u64, u64); 8] = [
            (w0, w0 >> 16),
            (w0 >> 24, w0 >> 40),
            (w0 >> 48, w1),
            (w1 >> 8, w1 >> 24),
            (w1 >> 32, w1 >> 48),
            ((w1 >> 56) | (w2 << 8), w2 >> 8),
            (w2 >> 16, w2 >> 32),
            (w2 >> 40, w2 >> 56),
        ];
        parts.map(|(rg, b)| (self.rg[(rg & 0xffff) as usize] + self.b[(b & 0xff) as usize]) as f32)
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
        // Tiles of TILE columns: each row is read in long runs (which the
        // hardware prefetcher follows) while the tile being written stays in L1.
        for (t, tile) in strip.chunks_mut(TILE).enumerate() {
            let c0 = t * TILE;
            for (k, row) in rows.iter().enumerate() {
                let pixels = &row[3 * c0..3 * (c0 + tile.len())];
                let mut cells = tile.chunks_exact_mut(8);
                let mut groups = pixels.chunks_exact(24);
                for (cells, group) in (&mut cells).zip(&mut groups) {
                    let values = self.luma8(group.try_into().unwrap_or(&[0; 24]));
                    for (cell, v) in cells.iter_mut().zip(values) {
                        cell[k] = v;
                    }
                }
                for (cell, px) in cells.into_remainder().iter_mut().zip(groups.remainder().chunks_exact(3)) {
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

    #[test]
    fn eight_at_a_time_matches_one_at_a_time() {
        let t = LumaTables::get();
        let mut seed = 99u32;
        for _ in 0..20_000 {
            let px: [u8; 24] = std::array::from_fn(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 24) as u8
            });
            let one: Vec<u32> = px.chunks_exact(3).map(|p| t.luma(p).to_bits()).collect();
            assert_eq!(t.luma8(&px).map(f32::to_bits).to_vec(), one);
        }
    }
}
