//! Image hashing for frankly: decoding untrusted images within limits, PDQ
//! bit-exact with Meta's reference, the `image_hasher` perceptual hashes, and
//! digests of file bytes.
//!
//! Everything here is a pure function of the input bytes: no banks, no policy,
//! no I/O beyond what the caller passes in.
//!
//! PDQ is implemented in this crate because no crate reproduces the reference
//! bits (see [`PdqHasher`]); the other perceptual hashes come from `image_hasher`
//! with fixed parameters so that hashes stay comparable across releases.

mod pdq;

pub use image::RgbImage;
pub use pdq::{
    Dihedral, PDQ_BITS, PDQ_MIN_DIMENSION, PDQ_QUALITY_FLOOR, ParsePdqError, Pdq, PdqDihedral, PdqHash, PdqHasher,
    PixelBufferError, pdq, pdq_dihedral,
};
