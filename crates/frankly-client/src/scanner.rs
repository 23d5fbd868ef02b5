//! The scanner: one message in, a local verdict out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use frankly_bank::{Bank, Matcher, SignalType, VerifiedBank};
use frankly_classify::{ImageClassifier, Kind, Manifest, TextClassifier};
use frankly_hash::{DecodeOptions, PdqHasher, decode, sha256_hex};
use frankly_policy::{
    Audience, BankSignal, Context, Decision, DigestSignal, Direction, Facts, Policy, ScoreSignal, Signals, Source,
    VerifiedPolicy,
};
use serde::Serialize;

use crate::ClientError;
use crate::message::{MAX_ATTACHMENTS, Message};

/// Time spent per stage of one scan, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Timings {
    /// SHA-256 of the attachments.
    pub digest_us: u64,
    /// Image decoding.
    pub decode_us: u64,
    /// Perceptual hashing (the signal types of the loaded banks).
    pub hash_us: u64,
    /// Bank lookups.
    pub match_us: u64,
    /// Image models, preprocessing included.
    pub classify_image_us: u64,
    /// Text models, tokenizing included.
    pub classify_text_us: u64,
    /// Policy evaluation.
    pub policy_us: u64,
    /// The whole scan.
    pub total_us: u64,
}

/// An attachment that could not be scanned fully, and why (it still has
/// its digest).
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
    /// What could not be scanned.
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
    image_models: Vec<ImageClassifier>,
    text_models: Vec<TextClassifier>,
    decode: DecodeOptions,
}

impl ScannerBuilder {
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
    signal_types: BTreeSet<SignalType>,
    image_models: Vec<ImageClassifier>,
    text_models: Vec<TextClassifier>,
    policy: Policy,
    audience: Audience,
    settings: BTreeMap<String, bool>,
    decode: DecodeOptions,
}

fn micros(d: Duration) -> u64 {
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
            image_models: Vec::new(),
            text_models: Vec::new(),
            decode: DecodeOptions::default(),
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

    /// Scans a message going `direction`.
    pub fn scan(&self, direction: Direction, message: &Message, facts: Facts) -> Verdict {
        let start = Instant::now();
        let mut t = Timings::default();
        let mut signals = Signals { facts, ..Signals::default() };
        let mut skipped = Vec::new();
        let mut pdq = PdqHasher::new();
        for (n, attachment) in message.attachments.iter().enumerate() {
            let source = Source::Attachment(n);
            if n >= MAX_ATTACHMENTS {
                skipped.push(Skipped { source, reason: format!("over {MAX_ATTACHMENTS} attachments per message") });
                continue;
            }
            let at = Instant::now();
            signals.digests.push(DigestSignal { source, sha256: sha256_hex(&attachment.bytes) });
            t.digest_us += micros(at.elapsed());
            if !attachment.is_image() {
                skipped
                    .push(Skipped { source, reason: format!("{} is not scanned as an image", attachment.media_type) });
                continue;
            }
            let at = Instant::now();
            let decoded = decode(&attachment.bytes, &self.decode);
            t.decode_us += micros(at.elapsed());
            let image = match decoded {
                Ok(d) => d.rgb,
                Err(e) => {
                    skipped.push(Skipped { source, reason: e.to_string() });
                    continue;
                }
            };
            for &signal in &self.signal_types {
                let at = Instant::now();
                let (words, quality) = signal.hash_image(&image, &mut pdq);
                t.hash_us += micros(at.elapsed());
                let at = Instant::now();
                for m in self.matcher.query(signal, &words, quality, None) {
                    signals.bank_matches.push(BankSignal {
                        source,
                        bank: m.bank,
                        labels: m.labels,
                        distance: m.distance,
                        algorithm: signal.name().to_owned(),
                    });
                }
                t.match_us += micros(at.elapsed());
            }
            let at = Instant::now();
            for model in &self.image_models {
                match model.classify(&image) {
                    Ok(verdict) => signals.scores.extend(verdict.scores.0.into_iter().map(|(label, score)| {
                        ScoreSignal { source, model: model.manifest().name.clone(), label, score }
                    })),
                    Err(e) => skipped.push(Skipped { source, reason: e.to_string() }),
                }
            }
            t.classify_image_us += micros(at.elapsed());
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
