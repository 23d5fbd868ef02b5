//! Image hashing for frankly: decoding untrusted images within limits, PDQ
//! bit-exact with Meta's reference, the classic perceptual hashes, and digests
//! of file bytes.
//!
//! # Design
//!
//! Everything here is a pure function of the bytes the caller passes in: no
//! files, no banks, no policy. [`decode`] turns untrusted bytes into 8-bit RGB,
//! refusing oversized images from their header before allocating
//! ([`DecodeLimits`]); [`decode_frames`] walks every frame of an animated GIF, WebP or PNG
//! within a frame and pixel budget. [`sniff`] says what bytes are from their
//! magic numbers, whatever they were labelled. [`PdqHasher`] computes PDQ exactly as Meta's C++ does
//! (the conformance vectors in `tests/vectors/pdq` prove it), several times
//! faster, reusing its buffers between images. [`Perceptual`] wraps
//! `image_hasher` with fixed parameters. [`hash_bytes`] computes any set of
//! [`Algorithm`]s over one file, which is what `frankly hash` runs per path.
//!
//! ```
//! use frankly_hash::{hash_bytes, Algorithm, DecodeOptions, PdqHasher};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let image = image::RgbImage::from_fn(300, 200, |x, y| image::Rgb([x as u8, y as u8, 0]));
//! let mut png = Vec::new();
//! image.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
//! let out = hash_bytes(&png, &[Algorithm::Pdq], &DecodeOptions::default(), &mut PdqHasher::new());
//! let report = out.report;
//! assert_eq!(report.pdq.map(|h| h.to_string().len()), Some(64));
//! # Ok(()) }
//! ```

mod decode;
mod digest;
mod jpeg;
mod pdq;
mod perceptual;
mod report;
mod sniff;
pub mod vpdq;

pub use decode::{
    DecodeError, DecodeLimits, DecodeOptions, DecodedImage, Frames, FramesEnd, MAX_ANIMATION_PIXELS, MAX_DECODE_ALLOC,
    MAX_DIMENSION, MAX_FILE_BYTES, MAX_FRAMES, MAX_PIXELS, SUPPORTED_FORMATS, decode, decode_frames,
};
pub use digest::{md5_hex, sha256_hex};
pub use image::{ImageFormat, RgbImage};
pub use jpeg::{MAX_JPEG_SCANS, jpeg_round_trip};
pub use pdq::{
    Dihedral, PDQ_BITS, PDQ_MIN_DIMENSION, PDQ_QUALITY_FLOOR, ParsePdqError, Pdq, PdqDihedral, PdqHash, PdqHasher,
    PixelBufferError, pdq, pdq_dihedral,
};
pub use perceptual::{Perceptual, hamming};
pub use report::{Algorithm, HashOutcome, HashReport, UnknownAlgorithm, hash_bytes};
pub use sniff::{Sniffed, is_truncated, sniff};
pub use vpdq::{
    MAX_HMA_SIGNAL_BYTES, MAX_VPDQ_FEATURES, ParseVpdqError, VpdqFeature, format_meta, parse_hma_signal, parse_meta,
    to_hma_signal,
};
