//! Which frames of a video or an animation the image models score: an even,
//! bounded sample of a stream of frames whose length is not known in advance,
//! and the scoring of it.

use frankly_classify::ImageClassifier;
use frankly_hash::RgbImage;
use frankly_policy::{ScoreSignal, Signals, Source};

use crate::scanner::{Skipped, micros};

/// Most frames of one video or animation the image models score. A model
/// costs tens of milliseconds a frame on a phone-class core
/// (`docs/benchmarks.md`), so 16 frames keep an attachment's classification
/// under about a second while sampling every sixteenth of it: the sample is
/// spread evenly over the frames actually decoded (a reservoir that halves
/// itself and doubles its stride when full), so a container that declares a
/// false duration or frame count cannot steer which frames are scored.
/// Between 9 and 16 frames are scored when there are at least 9 frames to
/// sample, every one when there are fewer.
pub const MAX_CLASSIFIED_FRAMES: usize = 16;

/// An even sample of at most `limit` of a stream of frames of unknown
/// length: frame `i` is kept when `i` is a multiple of the stride; when the
/// sample overflows every other kept frame is dropped and the stride doubles
/// (one more entry than the limit is held for a moment). What is kept is
/// the models' input tensors, not the frames.
pub(crate) struct Sample {
    limit: usize,
    stride: u64,
    kept: Vec<(u64, Vec<Vec<f32>>)>,
}

impl Sample {
    /// A sample of at most `limit` frames (at least 1).
    pub(crate) fn new(limit: usize) -> Self {
        Sample { limit: limit.max(1), stride: 1, kept: Vec::new() }
    }

    /// Whether the `index`-th frame of the stream belongs in the sample.
    pub(crate) fn wants(&self, index: u64) -> bool {
        index.is_multiple_of(self.stride)
    }

    /// Each model's input tensor for the `index`-th frame of the stream
    /// (frame number `frame_number` of the attachment), when the sample
    /// wants it. A model that cannot preprocess the frame gets an empty
    /// tensor, whose error is reported when the sample is scored.
    pub(crate) fn offer(&mut self, index: u64, frame_number: u64, models: &[ImageClassifier], image: &RgbImage) {
        if models.is_empty() || !self.wants(index) {
            return;
        }
        let tensors = models.iter().map(|m| m.preprocess(image).unwrap_or_default()).collect();
        self.push(frame_number, tensors);
    }

    fn push(&mut self, frame_number: u64, tensors: Vec<Vec<f32>>) {
        self.kept.push((frame_number, tensors));
        if self.kept.len() > self.limit {
            let mut n = 0;
            self.kept.retain(|_| {
                n += 1;
                n % 2 == 1
            });
            self.stride *= 2;
        }
    }

    /// Runs the models on the kept tensors: one score signal per model,
    /// label and frame; a model that fails on a frame is skipped for that
    /// frame only. Returns the microseconds it took.
    pub(crate) fn score(
        self,
        source: Source,
        models: &[ImageClassifier],
        signals: &mut Signals,
        skipped: &mut Vec<Skipped>,
    ) -> u64 {
        let at = std::time::Instant::now();
        for (frame, tensors) in self.kept {
            for (model, tensor) in models.iter().zip(tensors) {
                let name = &model.manifest().name;
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
        micros(at.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampled(limit: usize, frames: u64) -> Vec<u64> {
        let mut s = Sample::new(limit);
        for i in 0..frames {
            if s.wants(i) {
                s.push(i, Vec::new());
            }
        }
        s.kept.iter().map(|(f, _)| *f).collect()
    }

    #[test]
    fn the_sample_is_even_and_bounded_whatever_the_length() {
        let max = MAX_CLASSIFIED_FRAMES;
        assert_eq!(sampled(max, 5), [0, 1, 2, 3, 4]);
        assert_eq!(sampled(max, 16), (0..16).collect::<Vec<_>>());
        assert_eq!(sampled(max, 17), (0..17).step_by(2).collect::<Vec<_>>());
        assert_eq!(sampled(max, 100), (0..100).step_by(8).collect::<Vec<_>>());
        assert_eq!(sampled(15, 63), (0..63).step_by(8).collect::<Vec<_>>());
        for limit in [1, 15, 16] {
            for n in [1, 7, 15, 16, 17, 31, 32, 33, 1_000, 36_000] {
                let s = sampled(limit, n);
                let floor = (limit / 2 + 1).min(n as usize);
                assert!(s.len() <= limit && s.len() >= floor, "{limit} {n}: {s:?}");
                // Evenly spaced from frame 0, covering the stream to its last stride.
                let stride = s.get(1).map_or(1, |b| b - s[0]);
                assert!(s.windows(2).all(|w| w[1] - w[0] == stride), "{limit} {n}: {s:?}");
                assert!(limit == 1 || n - 1 - s[s.len() - 1] < stride, "{limit} {n}: {s:?}");
            }
        }
    }
}
