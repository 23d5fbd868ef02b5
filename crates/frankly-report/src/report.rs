//! The report schema and its verification.

use std::collections::HashSet;

use frankly_franking::{
    AttachmentRef, Commitment, DeliveryContext, FrankingError, FrankingKey, Keyring, MessageContext, PlatformTag,
    verify_chain, verify_commitment, verify_tag,
};

use sha2::{Digest, Sha256};

use crate::envelope::ServerKeyPair;

/// Most context messages before the reported one (WhatsApp sends 5,
/// Messenger up to 30).
pub const MAX_CONTEXT_MESSAGES: usize = 50;
/// Longest free-text note, in bytes.
pub const MAX_NOTE_BYTES: usize = 4096;
/// Longest message body, in bytes.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Most attachments per reported message.
pub const MAX_ATTACHMENTS: usize = 16;

/// Why the user reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Sexual content involving a minor.
    ChildSafety,
    /// Nudity or sexual content shared without consent.
    NonConsensualImagery,
    /// Harassment or bullying.
    Harassment,
    /// Threats of violence.
    Violence,
    /// Self-harm.
    SelfHarm,
    /// Spam or scams.
    Spam,
    /// Anything else (see the note).
    Other,
}

/// Scanning evidence the reporting device attaches (what its local scan saw).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Evidence {
    /// What produced it, e.g. `pdq-match` or `classifier:nsfw`.
    pub kind: String,
    /// Its value, e.g. a matched bank and distance, or a score.
    pub detail: String,
}

/// One franked message as the reporter received it, with its opening.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReportedMessage {
    /// The decrypted body, hex.
    #[serde(with = "hex_bytes")]
    pub body: Vec<u8>,
    /// The franking key from the decrypted plaintext, hex in JSON.
    pub franking_key: KeyBytes,
    /// The commitment delivered beside the ciphertext.
    pub commitment: Commitment,
    /// The committed context.
    pub context: MessageContext,
    /// What the platform bound into its tag.
    pub delivery: DeliveryContext,
    /// The platform tag.
    pub tag: PlatformTag,
    /// Plaintexts of the message's attachments, each with the reference
    /// (key, nonce, plaintext hash) that the committed body contains.
    #[serde(default)]
    pub attachments: Vec<ReportedAttachment>,
}

/// A franking key inside a report: zeroized on drop, not printed by `Debug`.
#[derive(Clone, PartialEq, Eq, zeroize::Zeroize, zeroize::ZeroizeOnDrop, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct KeyBytes(#[serde(with = "hex_bytes")] pub Vec<u8>);

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyBytes({} bytes)", self.0.len())
    }
}

impl From<&FrankingKey> for KeyBytes {
    fn from(key: &FrankingKey) -> Self {
        KeyBytes(key.as_bytes().to_vec())
    }
}

/// An attachment's plaintext in a report.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReportedAttachment {
    /// The 76-byte `AttachmentRef` encoding, which must occur in the committed body.
    #[serde(with = "hex_bytes")]
    pub reference: Vec<u8>,
    /// The attachment's plaintext.
    #[serde(with = "hex_bytes")]
    pub plaintext: Vec<u8>,
}

/// A user report, as sealed in the envelope.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// Schema version, 1.
    pub version: u16,
    /// 16 random bytes, hex: the moderation service refuses a second report
    /// with the same id.
    pub report_id: String,
    /// Who reports (a participant of the conversation).
    pub reporter_id: String,
    /// Why.
    pub reason: Reason,
    /// The reporter's words.
    pub note: String,
    /// Context messages oldest first, then the reported message last.
    pub messages: Vec<ReportedMessage>,
    /// Optional local scanning evidence.
    pub evidence: Vec<Evidence>,
}

impl Report {
    /// A report of `reported` with `context` before it, with a fresh id.
    pub fn new(
        reporter_id: &str,
        reason: Reason,
        note: &str,
        context: Vec<ReportedMessage>,
        reported: ReportedMessage,
    ) -> Result<Self, ReportError> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| ReportError::Random(e.to_string()))?;
        let mut messages = context;
        messages.push(reported);
        let report = Report {
            version: 1,
            report_id: hex::encode(id),
            reporter_id: reporter_id.to_string(),
            reason,
            note: note.to_string(),
            messages,
            evidence: Vec::new(),
        };
        report.check_limits()?;
        Ok(report)
    }

    pub(crate) fn check_limits(&self) -> Result<(), ReportError> {
        let bad = |m: String| Err(ReportError::Malformed(m));
        if self.version != 1 {
            return bad(format!("report version {} is not supported (this build reads 1)", self.version));
        }
        if self.messages.is_empty() {
            return bad("report has no message".into());
        }
        if self.messages.len() > MAX_CONTEXT_MESSAGES + 1 {
            return bad(format!("{} context messages (limit {MAX_CONTEXT_MESSAGES})", self.messages.len() - 1));
        }
        if self.note.len() > MAX_NOTE_BYTES {
            return bad(format!("note is {} bytes (limit {MAX_NOTE_BYTES})", self.note.len()));
        }
        if self.report_id.len() != 32 || !self.report_id.chars().all(|c| c.is_ascii_hexdigit()) {
            return bad("report id must be 32 hex digits".into());
        }
        for (i, m) in self.messages.iter().enumerate() {
            if m.body.len() > MAX_BODY_BYTES {
                return bad(format!("message {i} body is {} bytes (limit {MAX_BODY_BYTES})", m.body.len()));
            }
            if m.franking_key.0.len() != 32 {
                return bad(format!("message {i} franking key has {} bytes, not 32", m.franking_key.0.len()));
            }
            if m.attachments.len() > MAX_ATTACHMENTS {
                return bad(format!("message {i} has {} attachments (limit {MAX_ATTACHMENTS})", m.attachments.len()));
            }
        }
        Ok(())
    }
}

/// The outcome for one message of a verified report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Commitment and platform tag verify: this is what the sender sent.
    Verified,
    /// This message failed; the reason says which check.
    Rejected(FrankingError),
}

/// A report whose reported message verified. Only [`open_and_verify`]
/// constructs it.
#[derive(Debug)]
pub struct VerifiedReport {
    report: Report,
    verdicts: Vec<Verdict>,
    chain: Result<(), FrankingError>,
}

impl VerifiedReport {
    /// The report as sealed.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The reported message (verified).
    pub fn reported(&self) -> &ReportedMessage {
        self.report.messages.last().unwrap_or_else(|| unreachable!("check_limits refuses empty reports"))
    }

    /// One verdict per message, in report order (the last is `Verified`).
    pub fn verdicts(&self) -> &[Verdict] {
        &self.verdicts
    }

    /// Whether the context messages form an unbroken chain up to the
    /// reported message.
    pub fn chain(&self) -> &Result<(), FrankingError> {
        &self.chain
    }
}

/// Remembers report ids to refuse replays.
pub trait ReplayGuard {
    /// Records `id`; returns `false` if it was seen before.
    fn first_time(&mut self, id: &str) -> bool;
}

impl ReplayGuard for HashSet<String> {
    fn first_time(&mut self, id: &str) -> bool {
        self.insert(id.to_string())
    }
}

/// Why a report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The bytes are not a report envelope.
    #[error("not a frankly report envelope")]
    NotAnEnvelope,
    /// An envelope version this build does not read.
    #[error("report envelope version {0} is not supported (this build reads version 1)")]
    UnsupportedVersion(u16),
    /// Over the size limit.
    #[error("report envelope is {size} bytes (limit {limit})")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// HPKE decryption failed: not sealed to this key, or altered.
    #[error("cannot decrypt the report: it was sealed to another key or altered")]
    Decrypt,
    /// HPKE sealing failed.
    #[error("cannot seal the report")]
    Seal,
    /// The decrypted report is malformed or over a limit.
    #[error("malformed report: {0}")]
    Malformed(String),
    /// A report with this id was already accepted.
    #[error("replayed report: id {0} was already received")]
    Replay(String),
    /// The reported message does not verify.
    #[error("message {index} (the reported message) does not verify: {error}")]
    ReportedMessage {
        /// Its index in the report, oldest first (the last message).
        index: usize,
        /// The check that failed.
        error: FrankingError,
    },
    /// The bytes are not an X25519 public key.
    #[error("invalid X25519 public key")]
    InvalidKey,
    /// The operating system's random generator failed.
    #[error("cannot get randomness from the operating system: {0}")]
    Random(String),
}

fn verify_message(keyring: &Keyring, m: &ReportedMessage) -> Result<(), FrankingError> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    bytes.copy_from_slice(&m.franking_key.0);
    let key = FrankingKey::from_bytes(*bytes);
    verify_commitment(&m.commitment, &key, &m.context, &m.body)?;
    if m.context.sender_id != m.delivery.sender_id {
        return Err(FrankingError::SenderMismatch {
            committed: m.context.sender_id.clone(),
            authenticated: m.delivery.sender_id.clone(),
        });
    }
    if m.context.conversation_id != m.delivery.conversation_id {
        return Err(FrankingError::ConversationMismatch {
            committed: m.context.conversation_id.clone(),
            delivered: m.delivery.conversation_id.clone(),
        });
    }
    verify_tag(keyring, &m.tag, &m.commitment, &m.delivery)?;
    // Each attachment: its reference is part of the committed body, and the
    // plaintext has the committed hash (not merely a valid decryption).
    for a in &m.attachments {
        let reference = AttachmentRef::from_bytes(&a.reference)?;
        if !m.body.windows(a.reference.len()).any(|w| w == a.reference.as_slice()) {
            return Err(FrankingError::AttachmentNotCommitted);
        }
        let hash: [u8; 32] = Sha256::digest(&a.plaintext).into();
        if hash != reference.plaintext_sha256 {
            return Err(FrankingError::AttachmentHashMismatch);
        }
    }
    Ok(())
}

/// Decrypts a report envelope, refuses replays, and verifies every message:
/// commitment, sender and conversation binding, platform tag (key id known
/// and within its window), and the context chain.
pub fn open_and_verify(
    envelope: &[u8],
    server: &ServerKeyPair,
    keyring: &Keyring,
    replay: &mut impl ReplayGuard,
) -> Result<VerifiedReport, ReportError> {
    let plaintext = server.open(envelope)?;
    let report: Report = serde_json::from_slice(&plaintext).map_err(|e| ReportError::Malformed(e.to_string()))?;
    report.check_limits()?;
    let verdicts: Vec<Verdict> = report
        .messages
        .iter()
        .map(|m| match verify_message(keyring, m) {
            Ok(()) => Verdict::Verified,
            Err(e) => Verdict::Rejected(e),
        })
        .collect();
    if let Some(Verdict::Rejected(e)) = verdicts.last() {
        return Err(ReportError::ReportedMessage { index: verdicts.len() - 1, error: e.clone() });
    }
    let links: Vec<(MessageContext, Commitment)> =
        report.messages.iter().map(|m| (m.context.clone(), m.commitment)).collect();
    let chain = verify_chain(&links);
    // Only a report that verified consumes its id, so a corrupted copy cannot
    // block the genuine one.
    if !replay.first_time(&report.report_id) {
        return Err(ReportError::Replay(report.report_id));
    }
    Ok(VerifiedReport { report, verdicts, chain })
}

mod hex_bytes {
    pub(super) fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        hex::decode(text.as_ref()).map_err(serde::de::Error::custom)
    }
}
