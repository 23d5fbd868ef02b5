//! Video attachments: vPDQ matched against the video banks, the file's MD5
//! against the `video_md5` banks, and the image models on an even sample of
//! frames, bounded whatever the container declares.

use frankly_bank::{SignalType, VideoMatcher};
use frankly_classify::ImageClassifier;
use frankly_hash::RgbImage;
use frankly_policy::{BankSignal, ScoreSignal, Signals, Source, UnscannableReason, VideoMatchSignal};
use frankly_video::{VideoEnd, VideoError, VideoFrame, VideoLimits, VideoOptions, VpdqOptions};

use crate::scanner::{Skipped, Timings, micros};

/// Seconds between the frames of a video that are hashed: HMA's default
/// (python-threatexchange hashes a video file at one frame per second).
/// Every frame is still decoded; this bounds the hashing and matching.
pub const VIDEO_SECONDS_PER_HASH: f64 = 1.0;

/// Most frames of one video the image models score. A model costs tens of
/// milliseconds a frame on a phone-class core (`docs/benchmarks.md`), so 16
/// frames keep a video's classification under about a second while
/// sampling every sixteenth of it: the sample is spread evenly over the
/// frames actually decoded (a reservoir that halves itself and doubles its
/// stride when full), so a container that declares a false duration cannot
/// steer which frames are scored. Between 9 and 16 frames are scored when
/// the video has at least 9 hashed frames, every one when it has fewer.
pub const MAX_CLASSIFIED_FRAMES: usize = 16;

/// An even sample of at most [`MAX_CLASSIFIED_FRAMES`] of a stream of frames
/// of unknown length: frame `i` is kept when `i` is a multiple of the stride;
/// when the sample overflows every other kept frame is dropped and the
/// stride doubles (one more tensor than the sample is held for a moment). What is kept is the models' input tensors, not the frames.
struct Sample {
    stride: u64,
    kept: Vec<(u64, Vec<Vec<f32>>)>,
}

impl Sample {
    fn new() -> Self {
        Sample { stride: 1, kept: Vec::new() }
    }

    /// Whether the `index`-th hashed frame belongs in the sample.
    fn wants(&self, index: u64) -> bool {
        index.is_multiple_of(self.stride)
    }

    fn push(&mut self, index: u64, frame_number: u64, tensors: Vec<Vec<f32>>) {
        debug_assert!(self.wants(index));
        self.kept.push((frame_number, tensors));
        if self.kept.len() > MAX_CLASSIFIED_FRAMES {
            let mut n = 0;
            self.kept.retain(|_| {
                n += 1;
                n % 2 == 1
            });
            self.stride *= 2;
        }
    }
}

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
        let mut sample = Sample::new();
        let mut hashed = 0u64;
        let mut classify_us = 0;
        let walk_start = std::time::Instant::now();
        let result = frankly_video::vpdq(bytes, &options, |frame: &VideoFrame<'_>, _| {
            if !self.image_models.is_empty() && sample.wants(hashed) {
                let at = std::time::Instant::now();
                let image = RgbImage::from_raw(frame.width, frame.height, frame.rgb.to_vec());
                // Each model's input tensor; a model that cannot preprocess
                // the frame is reported when the sample is scored.
                let tensors = image
                    .map(|image| self.image_models.iter().map(|m| m.preprocess(&image).unwrap_or_default()).collect())
                    .unwrap_or_default();
                sample.push(hashed, frame.number, tensors);
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
        let at = std::time::Instant::now();
        for (frame, tensors) in sample.kept {
            for (model, tensor) in self.image_models.iter().zip(tensors) {
                let name = model.manifest().name.clone();
                match model.run_tensor(tensor) {
                    Ok(scores) => signals.scores.extend(scores.0.into_iter().map(|(label, score)| ScoreSignal {
                        source,
                        model: name.clone(),
                        label,
                        score,
                        frame,
                    })),
                    Err(e) => skipped.push(Skipped { source, reason: format!("{name} on frame {frame}: {e}") }),
                }
            }
        }
        classify_us += micros(at.elapsed());
        t.classify_image_us += classify_us;
        t.classify_wait_us += classify_us;
        video_end(&hash.summary.end, hashed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampled(frames: u64) -> Vec<u64> {
        let mut s = Sample::new();
        for i in 0..frames {
            if s.wants(i) {
                s.push(i, i, Vec::new());
            }
        }
        s.kept.iter().map(|(f, _)| *f).collect()
    }

    #[test]
    fn the_sample_is_even_and_bounded_whatever_the_length() {
        assert_eq!(sampled(5), [0, 1, 2, 3, 4]);
        assert_eq!(sampled(16), (0..16).collect::<Vec<_>>());
        assert_eq!(sampled(17), (0..17).step_by(2).collect::<Vec<_>>());
        assert_eq!(sampled(100), (0..100).step_by(8).collect::<Vec<_>>());
        for n in [1, 7, 15, 16, 17, 31, 32, 33, 1_000, 36_000] {
            let s = sampled(n);
            assert!(s.len() <= MAX_CLASSIFIED_FRAMES && (s.len() >= 9 || s.len() as u64 == n), "{n}: {s:?}");
            // Evenly spaced from frame 0, covering the video to its last stride.
            let stride = s.get(1).map_or(1, |b| b - s[0]);
            assert!(s.windows(2).all(|w| w[1] - w[0] == stride), "{n}: {s:?}");
            assert!(n - 1 - s[s.len() - 1] < stride, "{n}: {s:?}");
        }
    }
}
