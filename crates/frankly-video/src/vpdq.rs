//! vPDQ: the PDQ hash of every frame (or one every so many seconds), as
//! Meta's `vpdq` computes it. The features' text forms are in
//! `frankly_hash::vpdq`, the match rule in `frankly_bank`.

use std::ops::ControlFlow;

use frankly_hash::{PdqHasher, VpdqFeature};

use crate::decode::{VideoError, VideoFrame, VideoOptions, VideoSummary, walk_frames};

/// Which timestamp a feature carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Timestamps {
    /// The frame's presentation time (right for variable frame rates).
    #[default]
    Presentation,
    /// Meta's column: frame number ÷ average frame rate, in single precision.
    FrameRate,
}

/// Options of [`vpdq`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VpdqOptions {
    /// Decoding and sampling.
    pub video: VideoOptions,
    /// Which timestamp to record.
    pub timestamps: Timestamps,
}

/// A video's vPDQ hash.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Vpdq {
    /// One feature per passed frame, in order.
    pub features: Vec<VpdqFeature>,
    /// How decoding went.
    pub summary: VideoSummary,
}

/// Hashes a video: the PDQ of each frame [`VideoOptions`] passes, computed
/// on the full-size float luma of its RGB as Meta's `PDQFrameBufferHasher`
/// does (frames under 5 pixels a side get the zero hash, quality 0).
/// `each` is called after each hashed frame with the frame (its number is
/// the frames decoded so far, less one) and its feature, for progress or for
/// more work on the same pixels.
pub fn vpdq(
    bytes: &[u8],
    options: &VpdqOptions,
    mut each: impl FnMut(&VideoFrame<'_>, &VpdqFeature),
) -> Result<Vpdq, VideoError> {
    // Meta's vPDQ computes luma in f32 (`fillFloatLumaFromRGB`).
    let mut hasher = PdqHasher::with_f32_luma();
    let mut features = Vec::new();
    let mut refused = None;
    let summary = walk_frames(bytes, &options.video, |frame: &VideoFrame<'_>| {
        let pdq = match hasher.hash_rgb8(frame.width, frame.height, frame.rgb) {
            Ok(pdq) => pdq,
            Err(e) => {
                refused = Some(e);
                return ControlFlow::Break(());
            }
        };
        let timestamp = match options.timestamps {
            Timestamps::Presentation => frame.presentation_seconds.or(frame.frame_rate_seconds),
            Timestamps::FrameRate => frame.frame_rate_seconds.or(frame.presentation_seconds),
        };
        let feature = VpdqFeature {
            frame_number: frame.number,
            quality: pdq.quality,
            hash: pdq.hash,
            timestamp: timestamp.unwrap_or(0.0),
        };
        each(frame, &feature);
        features.push(feature);
        ControlFlow::Continue(())
    })?;
    // Cannot happen (frames are packed to their size), but never reported as a
    // caller's stop.
    if let Some(e) = refused {
        return Err(VideoError::Decoder(format!("a converted frame is not hashable: {e}")));
    }
    Ok(Vpdq { features, summary })
}
