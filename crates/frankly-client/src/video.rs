//! Video attachments: vPDQ matched against the video banks, the file's MD5
//! against the `video_md5` banks, and the image models on an even sample of
//! frames, bounded whatever the container declares.

use frankly_bank::{SignalType, VideoMatcher};
use frankly_classify::ImageClassifier;
use frankly_hash::RgbImage;
use frankly_policy::{BankSignal, Signals, Source, UnscannableReason, VideoMatchSignal};
use frankly_video::{VideoEnd, VideoError, VideoFrame, VideoLimits, VideoOptions, VpdqOptions};

use crate::sample::{MAX_CLASSIFIED_FRAMES, Sample};
use crate::scanner::{Skipped, Timings, micros};

/// Seconds between the frames of a video that are hashed: HMA's default
/// (python-threatexchange hashes a video file at one frame per second).
/// Every frame is still decoded; this bounds the hashing and matching.
pub const VIDEO_SECONDS_PER_HASH: f64 = 1.0;

/// The reason for a video error.
fn video_reason(error: &VideoError) -> UnscannableReason {
    match error {
        VideoError::FileTooLarge { .. } | VideoError::BadDimensions { .. } => UnscannableReason::TooLarge,
        VideoError::NotVideo { .. } | VideoError::NoVideoStream | VideoError::UnsupportedCodec { .. } => {
            UnscannableReason::UnsupportedFormat
        }
        VideoError::TruncatedHeader => UnscannableReason::Truncated,
        _ => UnscannableReason::Malformed,
    }
}

/// What went wrong part-way, for the unscannable signal (`None`: complete).
fn video_end(end: &VideoEnd, hashed: u64) -> Option<(UnscannableReason, String)> {
    let why = end.cut_short()?;
    let reason = match end {
        VideoEnd::Truncated { .. } => UnscannableReason::Truncated,
        VideoEnd::Limit { .. } => UnscannableReason::TooManyFrames,
        _ => UnscannableReason::Malformed,
    };
    Some((reason, format!("{why}: the {hashed} hashed frames before were scanned")))
}

/// What the scanner needs to scan a video.
pub(crate) struct VideoScan<'a> {
    pub(crate) matcher: &'a frankly_bank::Matcher,
    pub(crate) video_matcher: &'a VideoMatcher,
    pub(crate) md5_banks: bool,
    pub(crate) image_models: &'a [ImageClassifier],
    pub(crate) limits: &'a VideoLimits,
}

impl VideoScan<'_> {
    /// Scans one video attachment into `signals`; returns what could not be
    /// scanned, if anything.
    pub(crate) fn scan(
        &self,
        source: Source,
        bytes: &[u8],
        signals: &mut Signals,
        skipped: &mut Vec<Skipped>,
        t: &mut Timings,
    ) -> Option<(UnscannableReason, String)> {
        if self.md5_banks
            && let Some(md5) = SignalType::VideoMd5.hash_file(bytes)
        {
            for m in self.matcher.query(SignalType::VideoMd5, &md5, None, None) {
                signals.bank_matches.push(BankSignal {
                    source,
                    bank: m.bank,
                    labels: m.labels,
                    distance: m.distance,
                    algorithm: SignalType::VideoMd5.name().to_owned(),
                    frame: 0,
                });
            }
        }
        let options = VpdqOptions {
            video: VideoOptions {
                limits: self.limits.clone(),
                seconds_per_hash: VIDEO_SECONDS_PER_HASH,
                downsample: None,
                threads: 1,
            },
            ..VpdqOptions::default()
        };
        let mut sample = Sample::new(MAX_CLASSIFIED_FRAMES);
        let mut hashed = 0u64;
        let mut classify_us = 0;
        let walk_start = std::time::Instant::now();
        let result = frankly_video::vpdq(bytes, &options, |frame: &VideoFrame<'_>, _| {
            if !self.image_models.is_empty() && sample.wants(hashed) {
                let at = std::time::Instant::now();
                if let Some(image) = RgbImage::from_raw(frame.width, frame.height, frame.rgb.to_vec()) {
                    sample.offer(hashed, frame.number, self.image_models, &image);
                }
                classify_us += micros(at.elapsed());
            }
            hashed += 1;
        });
        // Decoding and hashing are one pass here; the hashing share is not
        // measured apart.
        t.decode_us += micros(walk_start.elapsed()).saturating_sub(classify_us);
        let hash = match result {
            Ok(hash) => hash,
            Err(e) => return Some((video_reason(&e), e.to_string())),
        };
        let at = std::time::Instant::now();
        for m in self.video_matcher.query(&hash.features) {
            signals.video_matches.push(VideoMatchSignal {
                source,
                bank: m.bank,
                labels: m.labels,
                query_percent: m.query_percent,
                compared_percent: m.compared_percent,
                frames: m.query_frames,
            });
        }
        t.match_us += micros(at.elapsed());
        classify_us += sample.score(source, self.image_models, signals, skipped);
        t.classify_image_us += classify_us;
        t.classify_wait_us += classify_us;
        video_end(&hash.summary.end, hashed)
    }
}
