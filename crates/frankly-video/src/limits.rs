//! What a video from an untrusted sender may cost, as named constants.

/// Largest video file accepted, in bytes (512 MiB).
pub const MAX_VIDEO_BYTES: u64 = 512 * 1024 * 1024;
/// Largest frame width or height (8K).
pub const MAX_VIDEO_DIMENSION: u32 = 8192;
/// Largest frame, in pixels (8192 x 4320). Enforced by FFmpeg's decoder
/// (`max_pixels`) before it allocates a frame, whatever the container says.
pub const MAX_VIDEO_PIXELS: u64 = 8192 * 4320;
/// Most frames decoded: 20 minutes at 30 frames per second. A longer video
/// is hashed up to here and reported as cut short ([`crate::VideoEnd::Limit`]).
pub const MAX_DECODED_FRAMES: u64 = 36_000;
/// Most pixels decoded in all, which bounds the decoding time of large
/// frames: 36,000 frames of 1920x1080.
pub const MAX_DECODED_PIXELS: u64 = 36_000 * 1920 * 1080;
/// Most packets read from the container (of any stream), so a file of tiny
/// packets for other streams cannot keep the demuxer busy.
pub const MAX_PACKETS: u64 = 1_000_000;
/// Decoding errors tolerated (the decoder conceals a damaged packet) before
/// the walk stops with [`crate::VideoEnd::Failed`].
pub const MAX_DECODE_ERRORS: u32 = 64;

/// The FFmpeg demuxers a video may be probed as: the containers messengers
/// send. Image demuxers, playlists, concatenation and network formats are
/// left out.
pub const CONTAINER_FORMATS: &str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,mpeg,flv,ogg";

/// The video codecs decoded (FFmpeg codec names).
pub const VIDEO_CODECS: &[&str] =
    &["h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mpeg2video", "mpeg1video", "h263", "theora", "mjpeg"];

/// Limits on one video. [`Default`] is the constants above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoLimits {
    /// [`MAX_VIDEO_BYTES`].
    pub max_file_bytes: u64,
    /// [`MAX_VIDEO_DIMENSION`].
    pub max_dimension: u32,
    /// [`MAX_VIDEO_PIXELS`].
    pub max_pixels: u64,
    /// [`MAX_DECODED_FRAMES`].
    pub max_decoded_frames: u64,
    /// [`MAX_DECODED_PIXELS`].
    pub max_decoded_pixels: u64,
    /// [`MAX_PACKETS`].
    pub max_packets: u64,
    /// [`MAX_DECODE_ERRORS`].
    pub max_decode_errors: u32,
}

impl Default for VideoLimits {
    fn default() -> Self {
        VideoLimits {
            max_file_bytes: MAX_VIDEO_BYTES,
            max_dimension: MAX_VIDEO_DIMENSION,
            max_pixels: MAX_VIDEO_PIXELS,
            max_decoded_frames: MAX_DECODED_FRAMES,
            max_decoded_pixels: MAX_DECODED_PIXELS,
            max_packets: MAX_PACKETS,
            max_decode_errors: MAX_DECODE_ERRORS,
        }
    }
}
