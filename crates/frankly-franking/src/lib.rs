//! Message franking for frankly: the commitments, platform tags and checks
//! that let a moderation service verify that a reported message is exactly
//! what its sender sent, in that conversation, at that time, although the
//! platform never saw the plaintext.
//!
//! # Design (franking v2, `docs/franking.md`)
//!
//! - The **sender** draws a fresh 32-byte [`FrankingKey`] per message, puts it
//!   inside the E2EE plaintext, and sends `c = HMAC-SHA256(k_f, domain ||
//!   context || body)` ([`commit`]) beside the ciphertext; the E2EE layer
//!   binds `c` to the ciphertext (the committing-AEAD "CtE1" pattern of
//!   Grubbs, Lu and Ristenpart, CRYPTO 2017). The context names the
//!   conversation, the sending device and the sender's message id; nothing
//!   the sender chooses orders messages.
//! - The **platform** knows each conversation's members. It accepts a
//!   message only from a member device, numbers it in the conversation
//!   ([`DeliveryContext::sequence`]) and tags `c` once per recipient device
//!   with an HMAC key it shares only with the moderation service ([`tag`]),
//!   binding sender, recipient, conversation, sequence number, time and
//!   message id. Keys tag for a period and verify for a separate retention
//!   ([`KeyWindow`]). A per-device MAC ([`mac_delivery`]), not a signature,
//!   lets the device detect an altered delivery, so nothing in a report
//!   convinces anyone outside the platform and the moderation service.
//! - The **recipient** checks that the copy is addressed to it and comes
//!   from the authenticated peer, and recomputes `c` after decryption
//!   ([`receive`]), so anything it accepts is reportable.
//! - A **moderator** checks openings ([`verify_commitment`]), tags
//!   ([`verify_tag`], at the time of checking) and the platform's order of
//!   the messages that verified ([`verify_order`]), which shows every
//!   omission between the first and last reported message.
//!
//! MACs are compared with `verify_slice` (constant time); keys are zeroized
//! on drop and never printed.

mod attachment;
mod body;
mod delivery;
mod encoding;
mod frank;
mod keys;
mod transport;

pub use attachment::{ATTACHMENT_REF_BYTES, AttachmentRef, encrypt_attachment, open_attachment};
pub use body::{Body, MAX_BODY_ATTACHMENTS, MAX_MEDIA_TYPE_BYTES, MAX_TEXT_BYTES};
pub use delivery::{DEVICE_KEY_DOMAIN, DeviceKey, mac_delivery, verify_delivery};
pub use encoding::{COMMIT_DOMAIN, DELIVERY_MAC_DOMAIN, MAX_ID_BYTES, TAG_DOMAIN, check_id};
pub use frank::{
    AcceptedMessage, Commitment, DeliveryContext, Gap, MessageContext, Ordering, Party, PlatformTag, commit, receive,
    tag, tag_input, verify_commitment, verify_order, verify_tag,
};
pub use keys::{FrankingKey, KeyWindow, Keyring, PlatformKey};
pub use transport::{
    FrankedPlaintext, OpenedMessage, SealedMessage, frank_plaintext, open_franked_plaintext, open_message, seal_message,
};

/// How far ahead of the verifier's clock a tag's timestamp may be (clocks
/// of the platform and the moderation service differ a little).
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;

/// Reads a delivery context from the front of `bytes` ([`DeliveryContext::encode`]'s
/// layout); returns it and the rest. For report decoders.
pub fn read_delivery(bytes: &[u8]) -> Result<(DeliveryContext, &[u8]), FrankingError> {
    let mut r = encoding::Reader::new(bytes);
    let d = DeliveryContext::read(&mut r)?;
    Ok((d, r.rest()))
}

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
    /// The message's timestamp is outside the tag key's tagging period.
    #[error("platform key {key_id} does not tag at {timestamp_ms}: the timestamp is outside its tagging period")]
    KeyNotValidAt {
        /// The key id.
        key_id: u32,
        /// The tag's timestamp.
        timestamp_ms: u64,
    },
    /// The key's verification retention has ended.
    #[error("platform key {key_id}'s retention ended at {verify_until_ms}: its messages can no longer be verified")]
    RetentionEnded {
        /// The key id.
        key_id: u32,
        /// When its retention ended.
        verify_until_ms: u64,
    },
    /// The message's timestamp is ahead of the verifier's clock.
    #[error("message timestamp {timestamp_ms} is in the future (now {now_ms})")]
    FutureTimestamp {
        /// The timestamp.
        timestamp_ms: u64,
        /// The verifier's clock.
        now_ms: u64,
    },
    /// A key window is not `tag_from < tag_until <= verify_until`.
    #[error("invalid key window {0:?}")]
    InvalidKeyWindow(KeyWindow),
    /// No key can tag a message with this timestamp.
    #[error("no platform key is active at {timestamp_ms}")]
    NoActiveKey {
        /// The message's timestamp.
        timestamp_ms: u64,
    },
    /// The delivery names another sender than the E2EE layer authenticated.
    #[error("delivered as from {delivered} but the E2EE session authenticated {authenticated}")]
    SenderMismatch {
        /// Sender in the delivery context.
        delivered: String,
        /// Sender the E2EE layer authenticated.
        authenticated: String,
    },
    /// The copy is addressed to another device.
    #[error("this copy is addressed to {recipient}, not to this device")]
    NotForThisDevice {
        /// The recipient the delivery names.
        recipient: String,
    },
    /// The delivery belongs to another conversation than expected.
    #[error("message delivered in conversation {delivered:?}, expected {expected:?}")]
    ConversationMismatch {
        /// Conversation of delivery.
        delivered: String,
        /// The conversation expected.
        expected: String,
    },
    /// The platform's sequence number does not increase.
    #[error("message {index} is out of order: sequence {found} after {previous}")]
    OutOfOrder {
        /// Position in the list.
        index: usize,
        /// The sequence number before it.
        previous: u64,
        /// Its sequence number.
        found: u64,
    },
    /// A message of another conversation among the ordered ones.
    #[error("message {index} belongs to another conversation")]
    OrderConversation {
        /// Position in the list.
        index: usize,
    },
    /// A message delivered to another device among the ordered ones.
    #[error("message {index} was delivered to another device")]
    OrderRecipient {
        /// Position in the list.
        index: usize,
    },
    /// Nothing to order.
    #[error("no verified message to order")]
    EmptyOrder,
    /// A repeated message: the same commitment or message id again in a conversation.
    #[error("duplicate message in the conversation: {0}")]
    Duplicate(String),
    /// An identifier is empty, too long or holds control characters.
    #[error("{field} is invalid: {reason}")]
    InvalidId {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Bytes that do not parse.
    #[error("malformed: {0}")]
    Malformed(String),
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
    /// The platform's delivery MAC does not verify: the copy was altered in transit.
    #[error("delivery MAC does not verify: the sender, recipient, conversation, sequence, time or id was altered")]
    DeliveryMac,
    /// The E2EE ciphertext does not decrypt with the commitment as associated data.
    #[error("message does not decrypt (wrong key, altered ciphertext, or a commitment it was not sealed with)")]
    Decrypt,
    /// The decrypted plaintext is not `k_f || lp(message_id) || body`.
    #[error("malformed message plaintext: {0}")]
    MalformedPlaintext(String),
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
