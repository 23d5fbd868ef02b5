//! The on-device module of frankly: what a messenger embeds.
//!
//! A [`Scanner`] is configured once with verified banks, models and a
//! policy for the device owner's audience. "Verified" is a type, not a
//! promise: [`Scanner::builder`] takes a `frankly_policy::VerifiedPolicy`
//! and [`ScannerBuilder::bank`] a `frankly_bank::VerifiedBank`, which only
//! signature verification constructs, so an unsigned list cannot reach a
//! device by accident. A messenger gets them from the platform's bundles
//! with [`DeviceState::verify_policy`] and [`DeviceState::verify_bank`],
//! which also refuse a bundle older than the one of the same name loaded
//! before (the versions live in the persisted [`DeviceState`]). Tools and
//! tests that scan with local files use [`trust_local_policy`] and
//! [`trust_local_bank`], which sign with a throwaway key and verify. The app calls
//! [`Scanner::scan_outgoing`] before encrypting a message and
//! [`Scanner::scan_incoming`] after decrypting one; each returns a
//! [`Verdict`]: the policy's actions (warn, blur, block send, ...), the
//! rules that fired and why, every signal (digests, bank matches, classifier
//! scores, the conversation facts the app supplied), what could not be
//! scanned, and per-stage timings.
//!
//! Scanning decides locally and sends nothing: there is no network code in
//! this crate or in any crate below it, and a test fails if a networking
//! crate enters its dependency tree. What leaves the device, and when, is
//! written down in `docs/privacy.md`.
//!
//! Around any E2EE protocol, [`Scanner::prepare_outgoing`] scans and then
//! franks an outgoing message (nothing is franked when the policy blocks
//! it), and [`Scanner::accept_incoming`] checks the franking of a decrypted
//! message before scanning it, so an app that uses them gets franking right
//! by construction.
//!
//! A [`Reporter`] keeps the franking material of the last N messages per
//! conversation, sent and received (bounded per conversation, with
//! per-stranger caps so a stranger cannot evict anyone else's), and builds
//! the sealed report a user chooses to send, selected by commitment: the
//! only thing that leaves the device with content in it.
//!
//! A [`DeviceState`] holds what must survive an app restart (conversation
//! states, kept report material, loaded bundle versions), persisted as an
//! encrypted, versioned pickle. Its [`DeviceState::prepare_outgoing`],
//! [`DeviceState::confirm_sent`], [`DeviceState::accept_incoming`] and
//! [`DeviceState::refuse`] are the whole device side of franking in one
//! place: the hooks, the delivery MAC check and the reporter's bookkeeping,
//! in the order that keeps every shown message reportable.
//!
//! Building the scanner checks that the policy can do its job: it must be
//! written for the audience, its settings must exist, and every model and
//! label its rules read must be loaded (a rule about a missing model would
//! otherwise never fire, silently).

mod device;
mod hooks;
mod local;
mod message;
mod reporter;
mod sample;
mod scanner;
mod state;
mod video;

pub use device::{Delivered, PendingSend};
pub use hooks::{ConversationState, FrankedMessage, Incoming, Outgoing, RECENT_MESSAGES};
pub use local::{trust_local_bank, trust_local_policy, trust_local_video_bank};
pub use message::{
    Attachment, Body, MAX_ATTACHMENTS, MAX_BODY_ATTACHMENTS, MAX_MEDIA_TYPE_BYTES, MAX_TEXT_BYTES, Message,
};
pub use reporter::{
    DEFAULT_MAX_CONVERSATION_BYTES, DEFAULT_MAX_KEPT_BYTES, MAX_CONVERSATIONS_PER_STRANGER, MAX_PRIORITY_CONVERSATIONS,
    MAX_STRANGER_CONVERSATIONS, Reporter,
};
pub use sample::MAX_CLASSIFIED_FRAMES;
pub use scanner::{Scanner, ScannerBuilder, Skipped, Timings, Verdict};
pub use state::{DeviceState, LoadedBundle, MAX_STATE_BYTES, STATE_VERSION, StateError};
pub use video::VIDEO_SECONDS_PER_HASH;

use frankly_policy::Audience;

/// Why the client could not be set up or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The policy is written for other audiences.
    #[error("policy {policy} is not written for the {audience:?} audience")]
    Audience {
        /// The policy.
        policy: String,
        /// The audience asked for.
        audience: Audience,
    },
    /// A setting the policy does not declare.
    #[error("policy {policy} has no setting {setting:?}")]
    UnknownSetting {
        /// The policy.
        policy: String,
        /// The setting.
        setting: String,
    },
    /// A message body could not be encoded or is malformed.
    #[error("message body: {0}")]
    Body(String),
    /// The franking check refused an incoming message (or franking failed).
    #[error("franking: {0}")]
    Franking(#[from] frankly_franking::FrankingError),
    /// A report could not be built.
    #[error("report: {0}")]
    Report(String),
    /// A model the policy reads could not be loaded.
    #[error("cannot load model {model} from {path}: {message}")]
    Model {
        /// The model.
        model: String,
        /// Its manifest.
        path: String,
        /// Why.
        message: String,
    },
    /// A signed bank or policy bundle was refused: not signed by the key,
    /// expired, rolled back, or its content is invalid.
    #[error("refusing the {what}: {error}")]
    Bundle {
        /// Which bundle (`bank bundle`, or ``bank bundle `bank:NAME` `` once its name is known).
        what: String,
        /// Why.
        #[source]
        error: frankly_bundle::BundleError,
    },
    /// A rule reads a model or label that is not loaded.
    #[error("policy {policy} reads {model}/{label}, but no loaded model gives it: load the model or change the policy")]
    MissingModel {
        /// The policy.
        policy: String,
        /// The model.
        model: String,
        /// The label.
        label: String,
    },
}
