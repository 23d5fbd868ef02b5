//! The scanner: one message in, a local verdict out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use frankly_bank::{Bank, Matcher, SignalType, VerifiedBank, VerifiedVideoBank, VideoBank, VideoMatcher};
use frankly_classify::{ImageClassifier, Kind, Manifest, TextClassifier};
use frankly_hash::{
    DecodeError, DecodeOptions, Frames, FramesEnd, PdqHasher, RgbImage, SUPPORTED_FORMATS, Sniffed, decode_frames,
    is_truncated, sha256_hex, sniff,
};
use frankly_policy::{
    Audience, BankSignal, Context, Decision, DigestSignal, Direction, Facts, Policy, ScoreSignal, Signals, Source,
    TypeMismatchSignal, UnscannableReason, UnscannableSignal, VerifiedPolicy,
};
use frankly_video::VideoLimits;
use serde::Serialize;

use crate::ClientError;
use crate::message::{MAX_ATTACHMENTS, Message};
use crate::sample::{MAX_CLASSIFIED_FRAMES, Sample};
use crate::video::VideoScan;

/// Time spent per stage of one scan, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Timings {
    /// SHA-256 of the attachments.
    pub digest_us: u64,
    /// Image decoding; for a video, decoding and vPDQ hashing together
    /// (one pass over the frames).
    pub decode_us: u64,
    /// Perceptual hashing (the signal types of the loaded banks).
    pub hash_us: u64,
    /// Bank lookups.
    pub match_us: u64,
    /// Image models, preprocessing included (on a second thread, beside the
    /// hashing: this is their own time, not added to the scan's wall time).
    pub classify_image_us: u64,
    /// How long the scan waited for the image models after hashing (the
    /// part of `classify_image_us` the overlap did not hide).
    pub classify_wait_us: u64,
    /// Text models, tokenizing included.
    pub classify_text_us: u64,
    /// Policy evaluation.
    pub policy_us: u64,
    /// The whole scan.
    pub total_us: u64,
}

/// A model that failed on an input, and why. (Attachments that cannot be
/// scanned are a policy signal, [`Signals::unscannable`], not this.)
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Skipped {
    /// Which attachment, or the text.
    pub source: Source,
    /// Why.
    pub reason: String,
}

/// The outcome of scanning one message: what to do, why, from which
/// signals, and how long each stage took. It stays on the device.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// Outgoing or incoming.
    pub direction: Direction,
    /// The policy's decision: actions, message and resource keys, fired rules.
    pub decision: Decision,
    /// Every signal found.
    pub signals: Signals,
    /// Models that failed on an input (attachments that could not be
    /// scanned are in `signals.unscannable`, where policies see them).
    pub skipped: Vec<Skipped>,
    /// Per-stage timings.
    pub timings: Timings,
}

/// Configures a [`Scanner`].
#[derive(Debug)]
pub struct ScannerBuilder {
    policy: Policy,
    audience: Audience,
    settings: BTreeMap<String, bool>,
    banks: Vec<Bank>,
    video_banks: Vec<VideoBank>,
    image_models: Vec<ImageClassifier>,
    text_models: Vec<TextClassifier>,
    decode: DecodeOptions,
    video_limits: VideoLimits,
}

impl ScannerBuilder {
    /// Adds a video (vPDQ) bank, verified as [`ScannerBuilder::bank`]'s are:
    /// [`crate::DeviceState::verify_video_bank`] or
    /// [`crate::trust_local_video_bank`]. (`video_md5` lists are hash banks
    /// of signal type `video_md5`, added with [`ScannerBuilder::bank`].)
    pub fn video_bank(mut self, bank: VerifiedVideoBank) -> Self {
        self.video_banks.push(bank.into_bank());
        self
    }

    /// Limits for video attachments (default: `frankly_video`'s).
    pub fn video_limits(mut self, limits: VideoLimits) -> Self {
        self.video_limits = limits;
        self
    }

    /// Adds a bank. Only verification makes a [`VerifiedBank`]: on a
    /// device, [`crate::DeviceState::verify_bank`] (which refuses rollbacks);
    /// in tools and tests, [`crate::trust_local_bank`].
    pub fn bank(mut self, bank: VerifiedBank) -> Self {
        self.banks.push(bank.into_bank());
        self
    }

    /// Adds an image model.
    pub fn image_model(mut self, model: ImageClassifier) -> Self {
        self.image_models.push(model);
        self
    }

    /// Adds a text model.
    pub fn text_model(mut self, model: TextClassifier) -> Self {
        self.text_models.push(model);
        self
    }

    /// Loads every model the policy's rules read from `dir`, one manifest
    /// `dir/NAME.toml` per model (its ONNX file and tokenizer beside it, as
    /// shipped in `models/`). Manifests pin each file's SHA-256, so a model
    /// that was swapped or damaged is refused here.
    pub fn models_from_dir(mut self, dir: &Path) -> Result<Self, ClientError> {
        let names: BTreeSet<String> = self.policy.classifier_labels().into_iter().map(|(m, _)| m).collect();
        for name in names {
            let path = dir.join(format!("{name}.toml"));
            let model_error = |e: frankly_classify::ClassifyError| ClientError::Model {
                model: name.clone(),
                path: path.display().to_string(),
                message: e.to_string(),
            };
            let (manifest, _) = Manifest::load(&path).map_err(model_error)?;
            self = match manifest.kind {
                Kind::Image => self.image_model(ImageClassifier::load(&path).map_err(model_error)?),
                Kind::Text => self.text_model(TextClassifier::load(&path).map_err(model_error)?),
            };
        }
        Ok(self)
    }

    /// Sets a user setting the policy declares (e.g. `sensitive_content_warnings`).
    pub fn setting(mut self, name: &str, on: bool) -> Self {
        self.settings.insert(name.to_owned(), on);
        self
    }

    /// Decoding limits for attachments (default: `frankly_hash`'s).
    pub fn decode_options(mut self, options: DecodeOptions) -> Self {
        self.decode = options;
        self
    }

    /// Checks that the policy can do its job with what is loaded, and
    /// builds the scanner.
    pub fn build(self) -> Result<Scanner, ClientError> {
        if !self.policy.supports(self.audience) {
            return Err(ClientError::Audience { policy: self.policy.name.clone(), audience: self.audience });
        }
        if let Some(name) = self.settings.keys().find(|k| !self.policy.settings.contains_key(*k)) {
            return Err(ClientError::UnknownSetting { policy: self.policy.name.clone(), setting: name.clone() });
        }
        let labels: BTreeSet<(String, String)> = self
            .image_models
            .iter()
            .map(|m| m.manifest())
            .chain(self.text_models.iter().map(|m| m.manifest()))
            .flat_map(|m| m.output.labels.iter().map(move |l| (m.name.clone(), l.clone())))
            .collect();
        if let Some((model, label)) = self.policy.classifier_labels().into_iter().find(|ml| !labels.contains(ml)) {
            return Err(ClientError::MissingModel { policy: self.policy.name.clone(), model, label });
        }
        let signal_types: BTreeSet<SignalType> = self.banks.iter().map(|b| b.signal).collect();
        Ok(Scanner {
            matcher: Matcher::new(self.banks),
            video_matcher: VideoMatcher::new(self.video_banks),
            video_limits: self.video_limits,
            signal_types,
            image_models: self.image_models,
            text_models: self.text_models,
            policy: self.policy,
            audience: self.audience,
            settings: self.settings,
            decode: self.decode,
        })
    }
}

/// Scans messages on the device: digests, perceptual hashes matched against
/// banks, classifiers, then the policy. Immutable once built, so one scanner
/// serves any number of threads.
#[derive(Debug)]
pub struct Scanner {
    matcher: Matcher,
    video_matcher: VideoMatcher,
    video_limits: VideoLimits,
    signal_types: BTreeSet<SignalType>,
    image_models: Vec<ImageClassifier>,
    text_models: Vec<TextClassifier>,
    policy: Policy,
    audience: Audience,
    settings: BTreeMap<String, bool>,
    decode: DecodeOptions,
}

/// The reason for a decode error; `truncated` when the file visibly ends early.
fn decode_reason(error: &DecodeError, truncated: bool) -> UnscannableReason {
    match error {
        DecodeError::UnknownFormat => UnscannableReason::UnknownFormat,
        DecodeError::UnsupportedFormat(_) => UnscannableReason::UnsupportedFormat,
        DecodeError::FileTooLarge { .. } | DecodeError::TooLarge { .. } => UnscannableReason::TooLarge,
        e if truncated || e.is_unexpected_eof() => UnscannableReason::Truncated,
        _ => UnscannableReason::Malformed,
    }
}

/// Whether a declared media type names the sniffed one: compared without
/// parameters or case, with the common aliases (`image/jpg`, `image/x-png`, ...).
fn same_media_type(declared: &str, sniffed: &str) -> bool {
    let essence = declared.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let canonical = match essence.as_str() {
        "image/jpg" | "image/pjpeg" => "image/jpeg",
        "image/x-png" | "image/apng" => "image/png",
        "image/x-ms-bmp" | "image/x-bmp" => "image/bmp",
        "image/tif" => "image/tiff",
        "image/heif" => "image/heic",
        "application/x-zip-compressed" => "application/zip",
        "application/x-gzip" => "application/gzip",
        other => other,
    };
    let sniffed = if sniffed == "image/heif" { "image/heic" } else { sniffed };
    canonical == sniffed
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Scanner {
    /// Starts configuring a scanner for a verified policy and the device
    /// owner's audience. On a device the policy comes from
    /// [`crate::DeviceState::verify_policy`] (which refuses rollbacks); in
    /// tools and tests from [`crate::trust_local_policy`].
    pub fn builder(policy: VerifiedPolicy, audience: Audience) -> ScannerBuilder {
        ScannerBuilder {
            policy: policy.into_policy(),
            audience,
            settings: BTreeMap::new(),
            banks: Vec::new(),
            video_banks: Vec::new(),
            image_models: Vec::new(),
            text_models: Vec::new(),
            decode: DecodeOptions::default(),
            video_limits: VideoLimits::default(),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Scans a message before it is encrypted and sent.
    pub fn scan_outgoing(&self, message: &Message, facts: Facts) -> Verdict {
        self.scan(Direction::Outgoing, message, facts)
    }

    /// Scans a message after it was decrypted.
    pub fn scan_incoming(&self, message: &Message, facts: Facts) -> Verdict {
        self.scan(Direction::Incoming, message, facts)
    }

    /// Hashes one decoded frame with every loaded bank's signal type and
    /// looks it up; runs the image models on the first frame (later frames
    /// of an animation go to the sample, scored after the walk).
    #[allow(clippy::too_many_arguments)]
    fn scan_frame(
        &self,
        source: Source,
        frame: usize,
        image: &RgbImage,
        pdq: &mut PdqHasher,
        signals: &mut Signals,
        skipped: &mut Vec<Skipped>,
        t: &mut Timings,
    ) {
        // The image models (first frame here) and the hashes read the same
        // pixels and nothing of each other: on a second core they overlap
        // (a scoped thread; inline if the OS gives none).
        let classify = || self.classify_frame(source, image);
        let (classified, classify_us) = if frame == 0 && !self.image_models.is_empty() {
            std::thread::scope(|scope| {
                let worker = std::thread::Builder::new().name("frankly-classify".into()).spawn_scoped(scope, classify);
                self.hash_frame(source, frame, image, pdq, signals, t);
                let at = Instant::now();
                let out = match worker {
                    Ok(handle) => handle.join().unwrap_or_else(|_| {
                        (Vec::new(), vec![Skipped { source, reason: "an image model panicked".into() }], 0)
                    }),
                    Err(_) => classify(),
                };
                // Wall time the scan waited for the models after hashing.
                (out, micros(at.elapsed()))
            })
        } else {
            self.hash_frame(source, frame, image, pdq, signals, t);
            ((Vec::new(), Vec::new(), 0), 0)
        };
        let (scores, skips, model_us) = classified;
        signals.scores.extend(scores);
        skipped.extend(skips);
        t.classify_image_us += model_us;
        t.classify_wait_us += classify_us;
    }

    /// Every loaded bank's signal type for one frame, looked up in the banks.
    fn hash_frame(
        &self,
        source: Source,
        frame: usize,
        image: &RgbImage,
        pdq: &mut PdqHasher,
        signals: &mut Signals,
        t: &mut Timings,
    ) {
        for &signal in &self.signal_types {
            let at = Instant::now();
            let Some((words, quality)) = signal.hash_image(image, pdq) else { continue };
            t.hash_us += micros(at.elapsed());
            let at = Instant::now();
            for m in self.matcher.query(signal, &words, quality, None) {
                let algorithm = signal.name();
                let same = signals.bank_matches.iter_mut().find(|x| {
                    x.source == source && x.bank == m.bank && x.labels == m.labels && x.algorithm == algorithm
                });
                match same {
                    Some(x) if m.distance < x.distance => {
                        x.distance = m.distance;
                        x.frame = frame;
                    }
                    Some(_) => {}
                    None => signals.bank_matches.push(BankSignal {
                        source,
                        bank: m.bank,
                        labels: m.labels,
                        distance: m.distance,
                        algorithm: algorithm.to_owned(),
                        frame,
                    }),
                }
            }
            t.match_us += micros(at.elapsed());
        }
    }

    /// The image models on one frame: their scores, the models that failed,
    /// and the time they took.
    fn classify_frame(&self, source: Source, image: &RgbImage) -> (Vec<ScoreSignal>, Vec<Skipped>, u64) {
        let at = Instant::now();
        let (mut scores, mut skipped) = (Vec::new(), Vec::new());
        for model in &self.image_models {
            match model.classify(image) {
                Ok(verdict) => scores.extend(verdict.scores.0.into_iter().map(|(label, score)| ScoreSignal {
                    source,
                    model: model.manifest().name.clone(),
                    label,
                    score,
                    frame: 0,
                })),
                Err(e) => skipped.push(Skipped { source, reason: e.to_string() }),
            }
        }
        (scores, skipped, micros(at.elapsed()))
    }

    /// Scans a message going `direction`.
    pub fn scan(&self, direction: Direction, message: &Message, facts: Facts) -> Verdict {
        let start = Instant::now();
        let mut t = Timings::default();
        let mut signals = Signals { facts, ..Signals::default() };
        let mut skipped = Vec::new();
        let mut pdq = PdqHasher::new();
        for (n, attachment) in message.attachments.iter().enumerate() {
            let source = Source::Attachment(n);
            let unscannable = |reason, detail: String| UnscannableSignal { source, reason, detail };
            if n >= MAX_ATTACHMENTS {
                let detail = format!("over {MAX_ATTACHMENTS} attachments per message: not scanned");
                signals.unscannable.push(unscannable(UnscannableReason::TooManyAttachments, detail));
                continue;
            }
            let at = Instant::now();
            signals.digests.push(DigestSignal { source, sha256: sha256_hex(&attachment.bytes) });
            t.digest_us += micros(at.elapsed());
            // What to run is decided by the bytes; the declared type only
            // feeds the mismatch signal.
            let sniffed = sniff(&attachment.bytes);
            if let Some(sniffed_type) = sniffed.media_type()
                && !same_media_type(&attachment.media_type, sniffed_type)
            {
                signals.type_mismatches.push(TypeMismatchSignal {
                    source,
                    declared: attachment.media_type.clone(),
                    sniffed: sniffed_type.to_owned(),
                });
            }
            let format = match sniffed {
                Sniffed::Image(format) if SUPPORTED_FORMATS.contains(&format) => format,
                video if video.is_video() => {
                    let scan = VideoScan {
                        matcher: &self.matcher,
                        video_matcher: &self.video_matcher,
                        md5_banks: self.signal_types.contains(&SignalType::VideoMd5),
                        image_models: &self.image_models,
                        limits: &self.video_limits,
                    };
                    if let Some((reason, detail)) =
                        scan.scan(source, &attachment.bytes, &mut signals, &mut skipped, &mut t)
                    {
                        signals.unscannable.push(unscannable(reason, detail));
                    }
                    continue;
                }
                Sniffed::Unknown => {
                    let detail = format!("no image signature in its bytes (declared {:?})", attachment.media_type);
                    signals.unscannable.push(unscannable(UnscannableReason::UnknownFormat, detail));
                    continue;
                }
                other => {
                    let detail = format!(
                        "{} is not scanned (JPEG, PNG, WebP, GIF, BMP, TIFF and video are)",
                        other.media_type().unwrap_or("this format")
                    );
                    signals.unscannable.push(unscannable(UnscannableReason::UnsupportedFormat, detail));
                    continue;
                }
            };
            let truncated = is_truncated(&attachment.bytes, format);
            let frames_start = Instant::now();
            let mut in_callback = Duration::ZERO;
            // The first frame is scored beside its hashing; the image models
            // score an even sample of the animation's later frames after the
            // walk, at most MAX_CLASSIFIED_FRAMES in all, as for a video.
            let mut sample = Sample::new(MAX_CLASSIFIED_FRAMES - 1);
            let walked = decode_frames(&attachment.bytes, &self.decode, |frame, image| {
                let callback_start = Instant::now();
                self.scan_frame(source, frame, image, &mut pdq, &mut signals, &mut skipped, &mut t);
                if let Some(later) = frame.checked_sub(1) {
                    let at = Instant::now();
                    sample.offer(later as u64, frame as u64, &self.image_models, image);
                    t.classify_image_us += micros(at.elapsed());
                }
                in_callback += callback_start.elapsed();
            });
            t.decode_us += micros(frames_start.elapsed().saturating_sub(in_callback));
            let scored_us = sample.score(source, &self.image_models, &mut signals, &mut skipped);
            t.classify_image_us += scored_us;
            t.classify_wait_us += scored_us;
            let failure = match walked {
                Ok(Frames { end: FramesEnd::Complete, .. }) => None,
                Ok(Frames { end: FramesEnd::Limit, decoded, .. }) => Some((
                    UnscannableReason::TooManyFrames,
                    format!("more than {decoded} frames: frames {decoded} and later are not scanned"),
                )),
                Ok(Frames { end: FramesEnd::Failed { frame, error }, .. }) => {
                    let reason = decode_reason(&error, truncated);
                    Some((reason, format!("frame {frame} and later are not scanned: {error}")))
                }
                Ok(_) => Some((UnscannableReason::Malformed, "the animation ended unexpectedly".into())),
                Err(error) => Some((decode_reason(&error, truncated), error.to_string())),
            };
            match failure {
                Some((reason, detail)) => signals.unscannable.push(unscannable(reason, detail)),
                None if truncated => signals.unscannable.push(unscannable(
                    UnscannableReason::Truncated,
                    format!("the {format:?} file ends before its end marker: only what decoded was scanned"),
                )),
                None => {}
            }
        }
        if !message.text.is_empty() {
            let at = Instant::now();
            for model in &self.text_models {
                match model.classify(&message.text) {
                    Ok(scores) => signals.scores.extend(scores.0.into_iter().map(|(label, score)| ScoreSignal {
                        source: Source::Text,
                        model: model.manifest().name.clone(),
                        label,
                        score,
                        frame: 0,
                    })),
                    Err(e) => skipped.push(Skipped { source: Source::Text, reason: e.to_string() }),
                }
            }
            t.classify_text_us += micros(at.elapsed());
        }
        let at = Instant::now();
        let context = Context { direction, audience: self.audience, settings: self.settings.clone() };
        let decision = self.policy.evaluate(&context, &signals);
        t.policy_us = micros(at.elapsed());
        t.total_us = micros(start.elapsed());
        Verdict { direction, decision, signals, skipped, timings: t }
    }
}
