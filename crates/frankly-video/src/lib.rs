//! Video for frankly: decoding within limits through FFmpeg's libraries,
//! vPDQ hashes identical to Meta's (with Meta's and HMA's text forms from
//! `frankly_hash::vpdq`; the match rule is `frankly_bank::vpdq`'s), and the
//! `video_md5` signal.
//!
//! Videos are read from memory (never written to disk), probed only among
//! the containers in [`CONTAINER_FORMATS`], decoded only with the codecs in
//! [`VIDEO_CODECS`], and bounded by [`VideoLimits`]. Frames reach vPDQ as
//! RGB converted exactly as libswscale's portable C code converts them (see
//! `yuv.rs`), so hashes are the same on every CPU and equal to Meta's
//! published ones.
//!
//! ```no_run
//! let bytes = std::fs::read("clip.mp4").unwrap();
//! let hash = frankly_video::vpdq(&bytes, &Default::default(), |_, _| {}).unwrap();
//! print!("{}", frankly_video::format_meta(&hash.features));
//! ```

mod decode;
mod ffi;
mod limits;
mod vpdq;
mod yuv;

pub use decode::{VideoEnd, VideoError, VideoFrame, VideoInfo, VideoOptions, VideoSummary, walk_frames};
pub use limits::{
    CONTAINER_FORMATS, MAX_DECODE_ERRORS, MAX_DECODED_FRAMES, MAX_DECODED_PIXELS, MAX_PACKETS, MAX_VIDEO_BYTES,
    MAX_VIDEO_DIMENSION, MAX_VIDEO_PIXELS, VIDEO_CODECS, VideoLimits,
};
// The features and their text forms, which need no FFmpeg, live in frankly-hash.
pub use frankly_hash::vpdq::{
    MAX_HMA_SIGNAL_BYTES, MAX_VPDQ_FEATURES, ParseVpdqError, VpdqFeature, format_meta, parse_hma_signal, parse_meta,
    to_hma_signal,
};
pub use vpdq::{Timestamps, Vpdq, VpdqOptions, vpdq};

/// HMA's `video_md5` signal: the MD5 of the file's bytes, in lowercase hex.
pub fn video_md5(bytes: &[u8]) -> String {
    frankly_hash::md5_hex(bytes)
}
