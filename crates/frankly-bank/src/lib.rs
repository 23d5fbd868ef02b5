//! Hash banks for frankly: lists of known hashes, exact matching, and signed
//! distribution.
//!
//! # Design
//!
//! A [`Bank`] is a named list of hashes of one [`SignalType`] with labels, a
//! match threshold and a quality floor for queries. Banks come from the text
//! lists trust-and-safety teams exchange (one hex hash per line, or
//! ThreatExchange/HMA CSV) and are stored in frankly's binary bank file,
//! which has a checksum and is parsed with bounds on every count.
//!
//! [`HammingIndex`] answers "which entries are within distance `r`?" exactly,
//! by multi-index hashing, with the same results as a linear scan for every
//! radius; [`Matcher`] runs it over several banks with their thresholds.
//!
//! A device must only load lists it can prove came from the platform:
//! [`sign_bundle`] wraps a bank with a version and validity period and signs
//! it with Ed25519; [`verify_bundle`] refuses unsigned, altered, expired or
//! rolled-back bundles, each with its own [`BundleError`], and is the only way
//! to get a [`VerifiedBank`].

mod bank;
mod bundle;
mod delta;
mod huge;
pub mod index;
mod live;
mod matcher;
mod signal;
mod threatexchange;
mod video;
pub mod vpdq;

pub use bank::{
    Bank, BankError, Entry, ImportReport, LineError, MAX_ENTRIES, MAX_LABELS_PER_ENTRY, MAX_LINE_BYTES, MAX_TEXT_BYTES,
    TextFormat,
};
pub use bundle::{
    BANK_BUNDLE, VIDEO_BANK_BUNDLE, VerifiedBank, VerifiedVideoBank, peek_bundle, sign_bundle, sign_video_bundle,
    verify_bundle, verify_video_bundle,
};
pub use delta::{BANK_DELTA_BUNDLE, BankDelta, DeltaError, apply_delta_bundle, sign_delta_bundle};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use frankly_bundle::{
    BundleError, BundleInfo, KeyError, Loaded, MAX_CLOCK_SKEW_SECS, check_rollback, generate_key, parse_public_key,
    parse_signing_key, public_key_text, signing_key_text, unix_now,
};
pub use index::{HammingIndex, Hit, Words, brute_force};
pub use live::{LiveHit, LiveIndex, Rebuilt, Snapshot};
pub use matcher::{BankMatch, Matcher};
pub use signal::{HashParseError, SignalType};
pub use threatexchange::MAX_THREATEXCHANGE_ROW_BYTES;
pub use video::{MAX_VIDEO_BANK_FRAMES, MAX_VIDEOS, VideoBank, VideoEntry, VideoMatch, VideoMatcher};
