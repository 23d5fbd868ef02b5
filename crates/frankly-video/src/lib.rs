//! Video for frankly: decoding within limits through FFmpeg's libraries,
//! vPDQ hashes identical to Meta's, Meta's and HMA's vPDQ formats and match
//! rule, and the `video_md5` signal.
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
//! let hash = frankly_video::vpdq(&bytes, &Default::default(), |_| {}).unwrap();
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
pub use vpdq::{
    MAX_VPDQ_FEATURES, ParseVpdqError, Timestamps, VPDQ_COMPARED_MATCH_PERCENT, VPDQ_DISTANCE_THRESHOLD,
    VPDQ_QUALITY_THRESHOLD, VPDQ_QUERY_MATCH_PERCENT, Vpdq, VpdqFeature, VpdqMatch, VpdqOptions, VpdqThresholds,
    format_meta, match_brute, parse_hma_signal, parse_meta, percentages, to_hma_signal, usable_hashes, vpdq,
};

/// HMA's `video_md5` signal: the MD5 of the file's bytes, in lowercase hex.
pub fn video_md5(bytes: &[u8]) -> String {
    frankly_hash::md5_hex(bytes)
}
