//! 8-bit planar YUV to RGB24, byte for byte as libswscale's portable C code
//! converts it (`yuv2rgb_c_24_rgb` with the tables of
//! `ff_yuv2rgb_c_init_tables`, FFmpeg 5.1).
//!
//! Written by hand because no crate does it: Meta's vPDQ asks libswscale for
//! RGB24 at the decoded size, and libswscale's x86 SIMD version of this
//! conversion gives other bytes than its own C code (and so other hashes, up
//! to 76 bits away on Meta's sample videos). Meta's published hashes were made
//! by the C code. Doing the same integer arithmetic here gives those bytes on
//! every CPU.
//!
//! What libswscale does, for source formats YUV420P, YUV422P and YUVA420P
//! (the JPEG-range YUVJ variants are the same with `full_range`), destination
//! RGB24 at the same size, an even height and default colour details (BT.601
//! coefficients whatever the stream says; limited range unless the pixel
//! format is a YUVJ one):
//! - one 2048-entry luma table `y_table[i] = clip((yb + i cy + 0x8000) >> 16)`;
//! - per chroma value, an offset into it for red (from V), green (from U and V)
//!   and blue (from U);
//! - each output byte is `y_table[offset + Y]`, with the chroma of the pixel's
//!   2x2 block (4:2:0) or of the even row of its pair of rows (4:2:2: the odd
//!   row's chroma is not read).
//!
//! libswscale writes pixels in pairs and leaves the last column of an odd
//! width unwritten (whatever was in memory); here it gets the chroma of its
//! own column's block, as the rest of its block would.

/// Table size: 1024 plus a luma headroom of 512 on either side.
const TABLE_LEN: usize = 1024 + 2 * 512;
const LUMA_HEADROOM: i64 = 512;

/// ITU-R BT.601 (`SWS_CS_DEFAULT`): crv, cbu, cgu, cgv.
const BT601: [i64; 4] = [104597, 132201, 25675, 53279];

/// The pixel layouts the exact converter handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chroma {
    /// One chroma sample per 2x2 block.
    Yuv420,
    /// One chroma sample per horizontal pair; rows in pairs.
    Yuv422,
}

/// A converter for one colour range.
pub(crate) struct YuvToRgb {
    table: [u8; TABLE_LEN],
    red: [i32; 256],
    green_u: [i32; 256],
    green_v: [i32; 256],
    blue: [i32; 256],
}

impl YuvToRgb {
    /// The converter for limited-range (`full_range == false`) or JPEG
    /// full-range YUV.
    pub(crate) fn new(full_range: bool) -> YuvToRgb {
        let [mut crv, mut cbu, cgu, cgv] = BT601;
        let (mut cgu, mut cgv) = (-cgu, -cgv);
        let (mut cy, mut oy) = (1i64 << 16, 0i64);
        if full_range {
            crv = (crv * 224) / 255;
            cbu = (cbu * 224) / 255;
            cgu = (cgu * 224) / 255;
            cgv = (cgv * 224) / 255;
        } else {
            cy = (cy * 255) / 219;
            oy = 16 << 16;
        }
        // Default contrast and saturation (1 << 16) and brightness (0) leave
        // the coefficients as they are. Scale the chroma ones by cy:
        let scale = |c: i64| ((c * (1 << 16)) + 0x8000) / cy.max(1);
        let (crv, cbu, cgu, cgv) = (scale(crv), scale(cbu), scale(cgu), scale(cgv));

        let mut table = [0u8; TABLE_LEN];
        let mut yb = -(384i64 << 16) - LUMA_HEADROOM * cy - oy;
        for entry in table.iter_mut() {
            *entry = ((yb + 0x8000) >> 16).clamp(0, 255) as u8;
            yb += cy;
        }
        let yoffs = (if full_range { 384 } else { 326 }) + LUMA_HEADROOM;
        // fill_table: base pointer moved back by inc >> 9, then (c * inc) >> 16.
        let offsets = |inc: i64, base: i64| -> [i32; 256] {
            std::array::from_fn(|c| (base - (inc >> 9) + ((c as i64 * inc) >> 16)) as i32)
        };
        let converter = YuvToRgb {
            table,
            red: offsets(crv, yoffs),
            green_u: offsets(cgu, yoffs),
            green_v: offsets(cgv, 0),
            blue: offsets(cbu, yoffs),
        };
        debug_assert!(converter.in_bounds());
        converter
    }

    /// Every offset plus every luma value indexes the table (true for both
    /// ranges, checked by a test, so indexing never panics).
    fn in_bounds(&self) -> bool {
        let range = |offsets: &[i32; 256]| {
            (*offsets.iter().min().unwrap_or(&0) as i64, *offsets.iter().max().unwrap_or(&0) as i64)
        };
        let (r, b) = (range(&self.red), range(&self.blue));
        let (gu, gv) = (range(&self.green_u), range(&self.green_v));
        let low = r.0.min(b.0).min(gu.0 + gv.0);
        let high = r.1.max(b.1).max(gu.1 + gv.1) + 255;
        low >= 0 && high < TABLE_LEN as i64
    }

    /// Converts one frame into `out` (tightly packed RGB24, resized to fit).
    /// `planes` are (bytes, stride) for Y, U and V. The caller checks that the
    /// planes hold `height` rows of `width` (luma) or half-width (chroma)
    /// samples and that `height` is even.
    pub(crate) fn convert(
        &self,
        chroma: Chroma,
        width: usize,
        height: usize,
        planes: [(&[u8], usize); 3],
        out: &mut Vec<u8>,
    ) {
        out.clear();
        out.resize(width * height * 3, 0);
        let [(y_plane, y_stride), (u_plane, u_stride), (v_plane, v_stride)] = planes;
        let chroma_width = width.div_ceil(2);
        for pair in 0..height / 2 {
            let chroma_row = match chroma {
                Chroma::Yuv420 => pair,
                Chroma::Yuv422 => 2 * pair,
            };
            let u = &u_plane[chroma_row * u_stride..][..chroma_width];
            let v = &v_plane[chroma_row * v_stride..][..chroma_width];
            for row in [2 * pair, 2 * pair + 1] {
                let luma = &y_plane[row * y_stride..][..width];
                let dst = &mut out[row * width * 3..][..width * 3];
                for (x, (&y, px)) in luma.iter().zip(dst.chunks_exact_mut(3)).enumerate() {
                    let (cu, cv) = (u[x / 2] as usize, v[x / 2] as usize);
                    let y = y as i32;
                    px[0] = self.table[(self.red[cv] + y) as usize];
                    px[1] = self.table[(self.green_u[cu] + self.green_v[cv] + y) as usize];
                    px[2] = self.table[(self.blue[cu] + y) as usize];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_stay_in_bounds_for_both_ranges() {
        assert!(YuvToRgb::new(false).in_bounds());
        assert!(YuvToRgb::new(true).in_bounds());
    }

    #[test]
    fn full_range_grey_is_identity_and_limited_range_stretches() {
        let full = YuvToRgb::new(true);
        let limited = YuvToRgb::new(false);
        let mut out = Vec::new();
        for y in [0u8, 16, 128, 235, 255] {
            let luma = [y; 4];
            let neutral = [128u8; 2];
            full.convert(Chroma::Yuv420, 2, 2, [(&luma, 2), (&neutral, 1), (&neutral, 1)], &mut out);
            assert_eq!(out, vec![y; 12], "full range keeps grey {y}");
            limited.convert(Chroma::Yuv420, 2, 2, [(&luma, 2), (&neutral, 1), (&neutral, 1)], &mut out);
            assert!(out.iter().all(|&c| c == out[0]), "limited range keeps grey {y} grey");
        }
        let (black, white) = ([16u8; 4], [235u8; 4]);
        let neutral = [128u8; 2];
        limited.convert(Chroma::Yuv420, 2, 2, [(&black, 2), (&neutral, 1), (&neutral, 1)], &mut out);
        assert!(out[0] <= 1, "limited-range black is near 0, got {}", out[0]);
        limited.convert(Chroma::Yuv420, 2, 2, [(&white, 2), (&neutral, 1), (&neutral, 1)], &mut out);
        assert!(out[0] >= 250, "limited-range white is near 255, got {}", out[0]);
    }
}
