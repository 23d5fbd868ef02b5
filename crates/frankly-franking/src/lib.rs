//! Message franking for frankly: the commitments, platform tags and checks
//! that let a moderation service verify that a reported message is exactly
//! what its sender sent, in that conversation, at that time, although the
//! platform never saw the plaintext.
//!
//! # Design
//!
//! - The **sender** draws a fresh 32-byte [`FrankingKey`] per message, puts it
//!   inside the E2EE plaintext, and sends `c = HMAC-SHA256(k_f, domain ||
//!   context || body)` ([`commit`]) beside the ciphertext; the E2EE layer
//!   authenticates `c` as associated data (the committing-AEAD "CtE1" pattern of
//!   Grubbs, Lu and Ristenpart, CRYPTO 2017). The context names the
//!   conversation, sender, message id, a per-sender sequence number and the
//!   commitment of the previous message, so messages form a chain.
//! - The **platform** tags `c` with an HMAC key it shares only with the
//!   moderation service ([`tag`]), binding the authenticated sender, the
//!   conversation, its timestamp and its message id. Being a MAC, not a
//!   signature, the tag convinces no outsider: a leaked report stays deniable.
//!   Keys have ids, activation times and retention windows ([`Keyring`]).
//! - The **recipient** recomputes `c` after decryption and refuses the message
//!   unless it matches and the committed sender is the authenticated peer
//!   ([`receive`]), so anything it accepts is reportable.
//! - A **moderator** checks openings ([`verify_commitment`]), tags
//!   ([`verify_tag`]) and the chain of context messages ([`verify_chain`]).
//!
//! Byte encodings are specified in `docs/franking.md` with test vectors in
//! `docs/franking-vectors.json`. MACs are compared with `verify_slice`
//! (constant time); keys are zeroized on drop and never printed.

mod attachment;
mod body;
mod delivery;
mod encoding;
mod frank;
mod keys;
mod transport;

pub use attachment::{ATTACHMENT_REF_BYTES, AttachmentRef, encrypt_attachment, open_attachment};
pub use body::{Body, MAX_BODY_ATTACHMENTS, MAX_MEDIA_TYPE_BYTES, MAX_TEXT_BYTES};
pub use delivery::{DELIVERY_SIGNATURE_DOMAIN, sign_delivery, verify_delivery};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use encoding::{COMMIT_DOMAIN, MAX_ID_BYTES, TAG_DOMAIN};
pub use frank::{
    AcceptedMessage, Commitment, DeliveryContext, MessageContext, PlatformTag, commit, receive, tag, verify_chain,
    verify_commitment, verify_tag,
};
pub use keys::{FrankingKey, Keyring, PlatformKey};
pub use transport::{
    FrankedPlaintext, OpenedMessage, SealedMessage, frank_plaintext, open_franked_plaintext, open_message, seal_message,
};

/// Why a franking operation failed. Each attack has its own refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrankingError {
    /// The opening does not match the commitment: the body, key or context
    /// differs from what the sender committed to.
    #[error("commitment does not match the message: body, franking key or context differ from what was sent")]
    CommitmentMismatch,
    /// The platform tag does not match the commitment and delivery context.
    #[error("platform tag does not match: the commitment, sender, conversation, timestamp or message id was altered")]
    TagMismatch,
    /// The tag names a key id the keyring does not have (unknown, or retired).
    #[error("unknown platform key id {0}")]
    UnknownKeyId(u32),
    /// The tag's key was not valid at the tag's timestamp.
    #[error("platform key {key_id} is not valid at {timestamp_ms} (outside its activation and retention window)")]
    KeyNotValidAt {
        /// The key id.
        key_id: u32,
        /// The tag's timestamp.
        timestamp_ms: u64,
    },
    /// No key can tag a message with this timestamp.
    #[error("no platform key is active at {timestamp_ms}")]
    NoActiveKey {
        /// The message's timestamp.
        timestamp_ms: u64,
    },
    /// The committed sender is not the authenticated peer.
    #[error("message committed by {committed:?} but authenticated as from {authenticated:?}")]
    SenderMismatch {
        /// Sender in the commitment.
        committed: String,
        /// Sender the E2EE layer authenticated.
        authenticated: String,
    },
    /// The committed conversation is not the one the message arrived in.
    #[error("message committed to conversation {committed:?} but delivered in {delivered:?}")]
    ConversationMismatch {
        /// Conversation in the commitment.
        committed: String,
        /// Conversation of delivery.
        delivered: String,
    },
    /// A message's `previous` link does not name the message before it.
    #[error("context chain broken at message {index}: a message is missing, reordered or from elsewhere")]
    BrokenChain {
        /// Position in the list.
        index: usize,
    },
    /// A sender's sequence numbers skip or repeat.
    #[error("sequence gap at message {index}: expected {expected}, found {found}")]
    SequenceGap {
        /// Position in the list.
        index: usize,
        /// The next number expected.
        expected: u64,
        /// The number found.
        found: u64,
    },
    /// An identifier is longer than [`MAX_ID_BYTES`].
    #[error("{field} is {len} bytes long (limit {limit})")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The operating system's random generator failed.
    #[error("cannot get randomness from the operating system: {0}")]
    Random(String),
    /// An attachment reference has the wrong length.
    #[error("attachment reference is {0} bytes, not 76")]
    AttachmentRef(usize),
    /// The attachment does not decrypt under the committed key.
    #[error("attachment does not decrypt under the committed key")]
    AttachmentDecrypt,
    /// The attachment decrypts, but not to the committed plaintext.
    #[error("attachment decrypts to a plaintext other than the committed one")]
    AttachmentHashMismatch,
    /// The delivery service's signature does not verify (altered delivery
    /// context, another key, or a malleated signature).
    #[error(
        "delivery signature does not verify: the sender, conversation, timestamp or message id was altered in transit"
    )]
    DeliverySignature,
    /// The E2EE ciphertext does not decrypt with the commitment as associated data.
    #[error("message does not decrypt (wrong key, altered ciphertext, or a commitment it was not sealed with)")]
    Decrypt,
    /// The decrypted plaintext is not `k_f || context || body`.
    #[error("malformed message plaintext: {0}")]
    MalformedPlaintext(&'static str),
    /// A reported attachment's reference is not in the committed body.
    #[error("attachment reference does not occur in the committed body")]
    AttachmentNotCommitted,
    /// A message body is not a well-formed FMB1 body.
    #[error("malformed message body: {0}")]
    MalformedBody(String),
    /// HMAC refused a 32-byte key (cannot happen).
    #[error("internal error in HMAC")]
    Internal,
}
