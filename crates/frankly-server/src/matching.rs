//! The server's own evidence on verified attachments: every frame of an
//! image or animation PDQ-hashed against the PDQ banks, and every video
//! MD5-hashed against the `video_md5` banks and vPDQ-hashed against the
//! video banks, bounded like the device's scan. Attachments are recognised
//! by their bytes, never by the type the sender declared. Domain rules only:
//! no HTTP, no SQL.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use frankly_bank::{Matcher, SignalType, VideoMatcher};
use frankly_hash::{DecodeLimits, DecodeOptions, PdqHasher, RgbImage, decode_frames, sniff};
use frankly_report::{Verdict, VerifiedReport};
use frankly_video::{VideoFrame, VideoLimits, VideoOptions, VpdqOptions};

/// Largest attachment the server decodes for bank matching, image or video.
pub const MAX_MATCH_ATTACHMENT_BYTES: usize = 32 << 20;

/// Seconds between the hashed frames of a video: HMA's default, as on the
/// device (`frankly_client::VIDEO_SECONDS_PER_HASH`), so the server's vPDQ
/// is the hash a device or HMA computes of the same file.
pub const SERVER_SECONDS_PER_HASH: f64 = 1.0;

/// Most frames in a review page's frame strip.
pub const STRIP_FRAMES: usize = 12;

/// Height of one frame in the strip, in pixels.
pub const STRIP_TILE_HEIGHT: u32 = 96;

/// The banks the server matches verified attachments against.
#[derive(Debug)]
pub struct ServerBanks {
    /// PDQ and `video_md5` banks.
    pub matcher: Matcher,
    /// vPDQ banks.
    pub videos: VideoMatcher,
}

impl Default for ServerBanks {
    fn default() -> Self {
        ServerBanks { matcher: Matcher::new(Vec::new()), videos: VideoMatcher::new(Vec::new()) }
    }
}

/// Which hash matched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchSignal {
    /// PDQ of an image, or of one frame of an animation.
    #[default]
    Pdq,
    /// MD5 of a video file's bytes (HMA's `video_md5`).
    VideoMd5,
    /// vPDQ of a video.
    Vpdq,
}

impl MatchSignal {
    /// The signal type's name, as banks and HMA spell it.
    pub fn name(self) -> &'static str {
        match self {
            MatchSignal::Pdq => "pdq",
            MatchSignal::VideoMd5 => "video_md5",
            MatchSignal::Vpdq => "vpdq",
        }
    }
}

/// A verified attachment that matched one of the server's banks.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ServerMatch {
    /// Which message (index in the report).
    pub message: usize,
    /// Which attachment of that message.
    pub attachment: usize,
    /// The bank.
    pub bank: String,
    /// The entry's labels.
    pub labels: Vec<String>,
    /// Which hash matched (reports stored before video support: PDQ).
    #[serde(default)]
    pub signal: MatchSignal,
    /// PDQ: the Hamming distance; video MD5 and vPDQ: 0 (vPDQ's evidence
    /// is in `video`).
    pub distance: u32,
    /// PDQ: which frame of an animation matched (0 for a still image).
    #[serde(default)]
    pub frame: u64,
    /// vPDQ: the match percentages and the matched frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoEvidence>,
}

/// Why a video matched a banked one.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VideoEvidence {
    /// The banked video's source id.
    pub source_id: Option<String>,
    /// Share of the attachment's usable frames that match the banked video.
    pub query_percent: f64,
    /// Share of the banked video's usable frames that match the attachment.
    pub compared_percent: f64,
    /// The attachment's frames (frame numbers) that matched.
    pub matched_frames: Vec<u64>,
}

/// A verified video attachment as the server hashed it: its vPDQ, for the
/// review page's frame strip and timeline, and for feeding hash lists.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredVideo {
    /// Which message.
    pub message: usize,
    /// Which attachment of that message.
    pub attachment: usize,
    /// The media type sniffed from the bytes (`video/mp4`, ...).
    pub media_type: String,
    /// The hashed frames (one a [`SERVER_SECONDS_PER_HASH`]), in order.
    pub frames: Vec<HashedFrame>,
    /// Why the video was not hashed to its end (a limit, damage), if so.
    pub problem: Option<String>,
}

/// One hashed frame of a video.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HashedFrame {
    /// Frame number, from 0, in decoder output order.
    pub number: u64,
    /// Presentation time, in seconds.
    pub seconds: f64,
    /// PDQ quality.
    pub quality: u8,
    /// PDQ hash (hex in JSON).
    pub pdq: frankly_hash::PdqHash,
}

/// What matching found in one report.
#[derive(Debug, Default)]
pub(crate) struct Evidence {
    pub(crate) matches: Vec<ServerMatch>,
    pub(crate) videos: Vec<StoredVideo>,
}

/// The video options the server hashes and draws strips with.
fn video_options(max_decode_pixels: u64) -> VpdqOptions {
    VpdqOptions {
        video: VideoOptions {
            limits: VideoLimits {
                max_file_bytes: MAX_MATCH_ATTACHMENT_BYTES as u64,
                max_pixels: max_decode_pixels.min(frankly_video::MAX_VIDEO_PIXELS),
                ..VideoLimits::default()
            },
            seconds_per_hash: SERVER_SECONDS_PER_HASH,
            downsample: None,
            threads: 1,
        },
        ..VpdqOptions::default()
    }
}

/// Hashes every verified attachment of at most [`MAX_MATCH_ATTACHMENT_BYTES`]
/// and queries the banks: images (every frame of an animation) decoded
/// within `max_decode_pixels` a frame (the decoder may allocate 8 bytes a
/// pixel), videos within [`VideoLimits`] with that frame size. A video is
/// hashed even when no video bank is loaded: the review page shows its
/// frames. What cannot be decoded is skipped (the moderator still sees it);
/// one bad attachment never stops the others.
pub(crate) fn match_attachments(verified: &VerifiedReport, banks: &ServerBanks, max_decode_pixels: u64) -> Evidence {
    let mut out = Evidence::default();
    let mut pdq = PdqHasher::new();
    let image_options = DecodeOptions {
        limits: DecodeLimits {
            max_pixels: max_decode_pixels,
            max_alloc: max_decode_pixels.saturating_mul(8),
            max_file_bytes: MAX_MATCH_ATTACHMENT_BYTES as u64,
            ..DecodeLimits::default()
        },
        ..DecodeOptions::default()
    };
    let video_options = video_options(max_decode_pixels);
    for (i, (m, verdict)) in verified.report().messages.iter().zip(verified.verdicts()).enumerate() {
        let (Verdict::Verified, Some(opening)) = (verdict, &m.opening) else { continue };
        for (j, a) in opening.attachments.iter().enumerate() {
            let bytes = &a.plaintext;
            if bytes.len() > MAX_MATCH_ATTACHMENT_BYTES {
                continue;
            }
            let kind = sniff(bytes);
            if kind.is_video() {
                match_video(i, j, bytes, kind.media_type().unwrap_or("video"), banks, &video_options, &mut out);
                continue;
            }
            let matcher = &banks.matcher;
            // An undecodable image, or the frames after a damaged one, are skipped.
            let _ = decode_frames(bytes, &image_options, |frame, rgb| {
                let Some((words, quality)) = SignalType::Pdq.hash_image(rgb, &mut pdq) else { return };
                for hit in matcher.query(SignalType::Pdq, &words, quality, None) {
                    out.matches.push(ServerMatch {
                        message: i,
                        attachment: j,
                        bank: hit.bank,
                        labels: hit.labels,
                        signal: MatchSignal::Pdq,
                        distance: hit.distance,
                        frame: frame as u64,
                        video: None,
                    });
                }
            });
        }
    }
    out
}

fn match_video(
    message: usize,
    attachment: usize,
    bytes: &[u8],
    media_type: &str,
    banks: &ServerBanks,
    options: &VpdqOptions,
    out: &mut Evidence,
) {
    if let Some(md5) = SignalType::VideoMd5.hash_file(bytes) {
        for hit in banks.matcher.query(SignalType::VideoMd5, &md5, None, None) {
            out.matches.push(ServerMatch {
                message,
                attachment,
                bank: hit.bank,
                labels: hit.labels,
                signal: MatchSignal::VideoMd5,
                distance: hit.distance,
                frame: 0,
                video: None,
            });
        }
    }
    let hashed = match frankly_video::vpdq(bytes, options, |_, _| {}) {
        Ok(hashed) => hashed,
        Err(e) => {
            out.videos.push(StoredVideo {
                message,
                attachment,
                media_type: media_type.to_owned(),
                frames: Vec::new(),
                problem: Some(e.to_string()),
            });
            return;
        }
    };
    for hit in banks.videos.query(&hashed.features) {
        out.matches.push(ServerMatch {
            message,
            attachment,
            bank: hit.bank,
            labels: hit.labels,
            signal: MatchSignal::Vpdq,
            distance: 0,
            frame: 0,
            video: Some(VideoEvidence {
                source_id: hit.source_id,
                query_percent: hit.query_percent,
                compared_percent: hit.compared_percent,
                matched_frames: hit.query_frames,
            }),
        });
    }
    let problem = hashed.summary.end.cut_short();
    out.videos.push(StoredVideo {
        message,
        attachment,
        media_type: media_type.to_owned(),
        frames: hashed
            .features
            .iter()
            .map(|f| HashedFrame { number: f.frame_number, seconds: f.timestamp, quality: f.quality, pdq: f.hash })
            .collect(),
        problem,
    });
}

/// The frames a strip of at most `n` shows, in order: up to half of them
/// spread evenly over the `matched` frames, the rest spread evenly over the
/// other `hashed` frames, so matches are always in view and the strip still
/// covers the video.
pub fn strip_frames(hashed: &[u64], matched: &[u64], n: usize) -> Vec<u64> {
    fn spread(from: &[u64], k: usize) -> impl Iterator<Item = u64> + '_ {
        let k = k.min(from.len());
        (0..k).map(move |i| from[i * from.len() / k])
    }
    let matched: Vec<u64> = {
        let set: BTreeSet<u64> = hashed.iter().copied().collect();
        matched.iter().copied().filter(|f| set.contains(f)).collect::<BTreeSet<_>>().into_iter().collect()
    };
    let others: Vec<u64> = hashed.iter().copied().filter(|f| matched.binary_search(f).is_err()).collect();
    let from_matched = matched.len().min(if others.is_empty() { n } else { n / 2 });
    let mut out: BTreeSet<u64> = spread(&matched, from_matched).collect();
    out.extend(spread(&others, n - out.len()));
    out.into_iter().collect()
}

/// Why a strip could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum StripError {
    /// The video did not decode.
    #[error("the video does not decode: {0}")]
    Video(#[from] frankly_video::VideoError),
    /// None of the frames asked for was decoded.
    #[error("none of the strip's frames was decoded")]
    NoFrames,
    /// JPEG encoding failed.
    #[error("cannot encode the strip: {0}")]
    Encode(String),
}

/// Draws the given frames of a video side by side, each scaled to
/// [`STRIP_TILE_HEIGHT`] pixels high and the first frame's aspect ratio, as
/// one JPEG: one decoding pass, stopped after the last frame wanted, within
/// the same limits as matching.
pub fn render_strip(bytes: &[u8], frames: &[u64], max_decode_pixels: u64) -> Result<Vec<u8>, StripError> {
    let wanted: BTreeSet<u64> = frames.iter().copied().take(STRIP_FRAMES).collect();
    let Some(&last) = wanted.iter().next_back() else { return Err(StripError::NoFrames) };
    let mut options = video_options(max_decode_pixels).video;
    options.seconds_per_hash = 0.0;
    let mut tiles: Vec<RgbImage> = Vec::new();
    let mut tile_width = 0;
    frankly_video::walk_frames(bytes, &options, |frame: &VideoFrame<'_>| {
        if wanted.contains(&frame.number)
            && let Some(image) = RgbImage::from_raw(frame.width, frame.height, frame.rgb.to_vec())
        {
            if tile_width == 0 {
                let w = u64::from(STRIP_TILE_HEIGHT) * u64::from(frame.width) / u64::from(frame.height.max(1));
                tile_width = u32::try_from(w.clamp(16, 4 * u64::from(STRIP_TILE_HEIGHT))).unwrap_or(16);
            }
            tiles.push(image::imageops::thumbnail(&image, tile_width, STRIP_TILE_HEIGHT));
        }
        if frame.number >= last { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    })?;
    if tiles.is_empty() {
        return Err(StripError::NoFrames);
    }
    let mut strip = RgbImage::new(tile_width * tiles.len() as u32, STRIP_TILE_HEIGHT);
    for (k, tile) in tiles.iter().enumerate() {
        image::imageops::replace(&mut strip, tile, i64::from(tile_width) * k as i64, 0);
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .encode_image(&strip)
        .map_err(|e| StripError::Encode(e.to_string()))?;
    Ok(jpeg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_strip_keeps_matches_in_view_and_covers_the_video() {
        let hashed: Vec<u64> = (0..100).map(|s| s * 30).collect();
        assert_eq!(strip_frames(&hashed[..5], &[], 12), hashed[..5]);
        let all = strip_frames(&hashed, &[], 12);
        assert_eq!(all.len(), 12);
        assert_eq!(all[0], 0);
        assert!(all[11] >= 2640, "reaches the end: {all:?}");
        // Three matched frames near the end are all shown.
        let matched = [2850, 2880, 2910];
        let strip = strip_frames(&hashed, &matched, 12);
        assert_eq!(strip.len(), 12);
        assert!(matched.iter().all(|m| strip.contains(m)), "{strip:?}");
        assert_eq!(strip[0], 0);
        // Every frame matched: still 12, spread.
        let strip = strip_frames(&hashed, &hashed, 12);
        assert_eq!(strip.len(), 12);
        assert!(strip.windows(2).all(|w| w[0] < w[1]));
        // A matched frame the video does not have is ignored.
        assert_eq!(strip_frames(&[0, 30], &[45], 12), [0, 30]);
        assert!(strip_frames(&[], &[1], 12).is_empty());
    }
}
