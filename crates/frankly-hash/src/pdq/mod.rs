//! PDQ, Meta's 256-bit perceptual hash, bit-exact with the reference C++.
//!
//! Why it is written here: no crate computes the reference's bits. The `pdqhash`
//! crate is pinned to `image` 0.23, uses a different quality metric and has no
//! dihedral API. Hash-sharing lists (ThreatExchange, HMA, StopNCII) exchange PDQ
//! hashes computed by Meta's code, so a hash that differs by even a few bits on
//! the same pixels silently shrinks every match radius.
//!
//! The pipeline, step by step as the reference does it (`pdqhashing.cpp`, called
//! through the `pdqhash` Python binding that produced our conformance vectors):
//!
//! 1. luma `0.299 R + 0.587 G + 0.114 B`, evaluated in f64 (the binding does it in
//!    numpy) and stored as f32; alpha is ignored;
//! 2. two passes of a Jarosz box filter (rows, then columns) with window
//!    `ceil(dim / 128)`, then 64x64 cell-centre decimation (see `filter`);
//! 3. a 16x16 slice of the 2-D DCT (frequencies 1..=16), summed in f32;
//! 4. one bit per coefficient: set where it is above the median;
//! 5. a quality score 0..=100 from the gradients of the 64x64 downsample.
//!
//! Images under 5 pixels on either side hash to zero with quality 0. A 64x64
//! image skips the blur in [`PdqHasher::hash`] but not in
//! [`PdqHasher::hash_dihedral`]: that asymmetry is the reference's, kept so
//! that both outputs stay identical to Meta's.

mod dct;
mod filter;
mod hash;
mod luma;

pub use hash::{PDQ_BITS, ParsePdqError, PdqHash};

/// Sides under this many pixels hash to zero with quality 0, as in the reference.
pub const PDQ_MIN_DIMENSION: u32 = 5;

/// Consumers usually discard PDQ hashes whose quality is under this value.
pub const PDQ_QUALITY_FLOOR: u8 = 50;

/// A PDQ hash with its quality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Pdq {
    /// The 256-bit hash.
    pub hash: PdqHash,
    /// 0..=100; low values mean flat images whose hashes match too easily.
    pub quality: u8,
}

/// The eight dihedral transforms of an image, in the order of [`PdqDihedral::hashes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dihedral {
    /// The image as given.
    Original,
    /// Rotated 90 degrees (counter-clockwise, as in the reference).
    Rotate90,
    /// Rotated 180 degrees.
    Rotate180,
    /// Rotated 270 degrees.
    Rotate270,
    /// Mirrored left to right.
    FlipX,
    /// Mirrored top to bottom.
    FlipY,
    /// Transposed (mirrored about the main diagonal).
    FlipPlus1,
    /// Anti-transposed (mirrored about the anti-diagonal).
    FlipMinus1,
}

impl Dihedral {
    /// All eight, in the reference's order.
    pub const ALL: [Dihedral; 8] = [
        Dihedral::Original,
        Dihedral::Rotate90,
        Dihedral::Rotate180,
        Dihedral::Rotate270,
        Dihedral::FlipX,
        Dihedral::FlipY,
        Dihedral::FlipPlus1,
        Dihedral::FlipMinus1,
    ];

    /// The reference's name for the transform.
    pub fn name(self) -> &'static str {
        match self {
            Dihedral::Original => "original",
            Dihedral::Rotate90 => "rotate90",
            Dihedral::Rotate180 => "rotate180",
            Dihedral::Rotate270 => "rotate270",
            Dihedral::FlipX => "flipx",
            Dihedral::FlipY => "flipy",
            Dihedral::FlipPlus1 => "flipplus1",
            Dihedral::FlipMinus1 => "flipminus1",
        }
    }
}

/// The hashes of the eight dihedral transforms of one image, from one DCT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PdqDihedral {
    /// Indexed as [`Dihedral::ALL`].
    pub hashes: [PdqHash; 8],
    /// Quality of the image (the same for every transform).
    pub quality: u8,
}

impl PdqDihedral {
    /// The hash of one transform.
    pub fn get(&self, which: Dihedral) -> PdqHash {
        self.hashes[which as usize]
    }
}

/// Why a pixel buffer cannot be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PixelBufferError {
    /// The buffer does not hold `width * height * 3` bytes.
    #[error("RGB buffer for {width}x{height} needs {expected} bytes, got {actual}")]
    Length {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// `width * height * 3`.
        expected: u64,
        /// Bytes supplied.
        actual: usize,
    },
}

/// Computes PDQ hashes, reusing its buffers between images.
///
/// Hashing a 12-megapixel photo needs about 50 MB of working memory; keep one
/// hasher per thread to avoid reallocating it.
///
/// ```
/// use frankly_hash::{PdqHasher, RgbImage};
/// let image = RgbImage::from_fn(640, 480, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
/// let pdq = PdqHasher::new().hash(&image);
/// assert_eq!(pdq.hash.to_string().len(), 64);
/// assert!(pdq.quality <= 100);
/// ```
pub struct PdqHasher {
    scratch: filter::Scratch,
    luma: &'static luma::LumaTables,
}

impl Default for PdqHasher {
    fn default() -> Self {
        PdqHasher { scratch: filter::Scratch::default(), luma: luma::LumaTables::get() }
    }
}

impl std::fmt::Debug for PdqHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PdqHasher")
    }
}

impl PdqHasher {
    /// A hasher with empty buffers; they grow to fit the largest image hashed.
    pub fn new() -> Self {
        Self::default()
    }

    /// A hasher whose luma is computed in f32, as Meta's C++
    /// `fillFloatLumaFromRGB` does, which Meta's vPDQ runs on every video
    /// frame. [`PdqHasher::new`] follows the `pdqhash` binding that HMA uses
    /// for photos (luma in f64, then f32); the two differ by a bit on rare
    /// near-ties (one frame in 5,722 of Meta's sample videos).
    pub fn with_f32_luma() -> Self {
        PdqHasher { scratch: filter::Scratch::default(), luma: luma::LumaTables::get_f32() }
    }

    /// The PDQ hash and quality of an RGB image.
    pub fn hash(&mut self, image: &image::RgbImage) -> Pdq {
        self.hash_pixels(image.width(), image.height(), image.as_raw())
    }

    /// The PDQ hash of interleaved 8-bit RGB pixels, row-major without padding.
    pub fn hash_rgb8(&mut self, width: u32, height: u32, rgb: &[u8]) -> Result<Pdq, PixelBufferError> {
        check_len(width, height, rgb)?;
        Ok(self.hash_pixels(width, height, rgb))
    }

    /// The hashes of all eight dihedral transforms of an RGB image, from one DCT.
    pub fn hash_dihedral(&mut self, image: &image::RgbImage) -> PdqDihedral {
        self.dihedral_pixels(image.width(), image.height(), image.as_raw())
    }

    /// [`PdqHasher::hash_dihedral`] on interleaved 8-bit RGB pixels.
    pub fn hash_dihedral_rgb8(&mut self, width: u32, height: u32, rgb: &[u8]) -> Result<PdqDihedral, PixelBufferError> {
        check_len(width, height, rgb)?;
        Ok(self.dihedral_pixels(width, height, rgb))
    }

    /// The 256 DCT coefficients the hash thresholds at their median (bit
    /// `16 i + j` is coefficient `[i][j]`, vertical frequency `i + 1`,
    /// horizontal `j + 1`), for research on the hash itself (for example
    /// `frankly-eval`'s PDQ-aware collision attack). `None` for images under
    /// [`PDQ_MIN_DIMENSION`].
    pub fn coefficients(&mut self, image: &image::RgbImage) -> Option<[[f32; 16]; 16]> {
        let (width, height) = image.dimensions();
        if width < PDQ_MIN_DIMENSION || height < PDQ_MIN_DIMENSION {
            return None;
        }
        Some(dct::dct64_to_16(&self.grid(width, height, image.as_raw())))
    }

    /// The 64x64 luma grid the DCT reads.
    fn grid(&mut self, width: u32, height: u32, rgb: &[u8]) -> filter::Grid64 {
        if width == 64 && height == 64 {
            // The reference copies a 64x64 input straight to the DCT.
            let mut grid = [[0f32; 64]; 64];
            for (r, row) in grid.iter_mut().enumerate() {
                self.luma.row(&rgb[r * 64 * 3..(r + 1) * 64 * 3], row);
            }
            grid
        } else {
            self.downsample(width, height, rgb)
        }
    }

    fn hash_pixels(&mut self, width: u32, height: u32, rgb: &[u8]) -> Pdq {
        if width < PDQ_MIN_DIMENSION || height < PDQ_MIN_DIMENSION {
            return Pdq { hash: PdqHash::ZERO, quality: 0 };
        }
        let grid = self.grid(width, height, rgb);
        let coeffs = dct::dct64_to_16(&grid);
        Pdq { hash: dct::to_hash(&coeffs), quality: dct::quality(&grid) }
    }

    fn dihedral_pixels(&mut self, width: u32, height: u32, rgb: &[u8]) -> PdqDihedral {
        if width < PDQ_MIN_DIMENSION || height < PDQ_MIN_DIMENSION {
            return PdqDihedral { hashes: [PdqHash::ZERO; 8], quality: 0 };
        }
        let grid = self.downsample(width, height, rgb);
        let coeffs = dct::dct64_to_16(&grid);
        let hashes = dct::dihedral(&coeffs).map(|c| dct::to_hash(&c));
        PdqDihedral { hashes, quality: dct::quality(&grid) }
    }

    fn downsample(&mut self, width: u32, height: u32, rgb: &[u8]) -> filter::Grid64 {
        let (w, h) = (width as usize, height as usize);
        let mut grid = [[0f32; 64]; 64];
        filter::downsample(&mut self.scratch, self.luma, rgb, h, w, &mut grid);
        grid
    }
}

fn check_len(width: u32, height: u32, rgb: &[u8]) -> Result<(), PixelBufferError> {
    let expected = u64::from(width) * u64::from(height) * 3;
    if rgb.len() as u64 != expected {
        return Err(PixelBufferError::Length { width, height, expected, actual: rgb.len() });
    }
    Ok(())
}

/// The PDQ hash of an RGB image, with a fresh hasher (see [`PdqHasher`] to
/// reuse buffers).
pub fn pdq(image: &image::RgbImage) -> Pdq {
    PdqHasher::new().hash(image)
}

/// The eight dihedral PDQ hashes of an RGB image, with a fresh hasher.
pub fn pdq_dihedral(image: &image::RgbImage) -> PdqDihedral {
    PdqHasher::new().hash_dihedral(image)
}
