//! The report schema and its verification.

use std::collections::HashSet;

use frankly_franking::{
    ATTACHMENT_REF_BYTES, AttachmentRef, Commitment, DeliveryContext, FrankingError, FrankingKey, Keyring, Ordering,
    Party, PlatformTag, verify_commitment, verify_order, verify_tag,
};
use sha2::{Digest, Sha256};

use crate::envelope::ReportKeyring;

/// Most context messages besides the reported one (WhatsApp sends 5,
/// Messenger up to 30).
pub const MAX_CONTEXT_MESSAGES: usize = 50;
/// Longest free-text note, in bytes.
pub const MAX_NOTE_BYTES: usize = 4096;
/// Longest message body, in bytes.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Most attachments per reported message.
pub const MAX_ATTACHMENTS: usize = 16;
/// Largest attachment plaintext in a report (the relay's message limit).
pub const MAX_ATTACHMENT_BYTES: usize = 16 << 20;
/// Most evidence items.
pub const MAX_EVIDENCE: usize = 64;
/// Longest evidence kind, in bytes.
pub const MAX_EVIDENCE_KIND_BYTES: usize = 256;
/// Longest evidence detail, in bytes.
pub const MAX_EVIDENCE_DETAIL_BYTES: usize = 4096;

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

impl Reason {
    /// Every reason, in code order (codes 1 to 7).
    pub const ALL: [Reason; 7] = [
        Reason::ChildSafety,
        Reason::NonConsensualImagery,
        Reason::Harassment,
        Reason::Violence,
        Reason::SelfHarm,
        Reason::Spam,
        Reason::Other,
    ];

    /// The reason's byte in the encoding (1 to 7).
    pub fn code(self) -> u8 {
        match self {
            Reason::ChildSafety => 1,
            Reason::NonConsensualImagery => 2,
            Reason::Harassment => 3,
            Reason::Violence => 4,
            Reason::SelfHarm => 5,
            Reason::Spam => 6,
            Reason::Other => 7,
        }
    }

    /// Its name, as in JSON and on the command line (`child-safety`,
    /// `harassment`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Reason::ChildSafety => "child-safety",
            Reason::NonConsensualImagery => "non-consensual-imagery",
            Reason::Harassment => "harassment",
            Reason::Violence => "violence",
            Reason::SelfHarm => "self-harm",
            Reason::Spam => "spam",
            Reason::Other => "other",
        }
    }

    pub(crate) fn from_code(code: u8) -> Result<Reason, ReportError> {
        Reason::ALL
            .into_iter()
            .find(|r| r.code() == code)
            .ok_or_else(|| ReportError::Malformed(format!("reason code {code} (1 to 7)")))
    }
}

impl std::str::FromStr for Reason {
    type Err = String;

    /// A reason by its [`Reason::name`].
    fn from_str(s: &str) -> Result<Reason, String> {
        Reason::ALL.into_iter().find(|r| r.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Reason::ALL.iter().map(|r| r.name()).collect();
            format!("unknown reason {s:?} (one of {})", names.join(", "))
        })
    }
}

/// Scanning evidence the reporting device attaches (what its local scan saw).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Evidence {
    /// What produced it, e.g. `pdq-match` or `classifier:nsfw`.
    pub kind: String,
    /// Its value, e.g. a matched bank and distance, or a score.
    pub detail: String,
}

/// A franking key inside a report: zeroized on drop, not printed by `Debug`.
#[derive(Clone, PartialEq, Eq, zeroize::Zeroize, zeroize::ZeroizeOnDrop, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct KeyBytes(#[serde(with = "hex_array")] pub [u8; 32]);

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBytes(..)")
    }
}

impl From<&FrankingKey> for KeyBytes {
    fn from(key: &FrankingKey) -> Self {
        KeyBytes(*key.as_bytes())
    }
}

/// An attachment's plaintext in a report.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReportedAttachment {
    /// The 76-byte `AttachmentRef` encoding, which must occur in the committed body.
    #[serde(with = "hex_array")]
    pub reference: [u8; ATTACHMENT_REF_BYTES],
    /// The attachment's plaintext.
    #[serde(with = "hex_vec")]
    pub plaintext: Vec<u8>,
}

/// What opens a commitment: the franking key, the sender's message id, the
/// body and the attachments' plaintexts.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Opening {
    /// `k_f`, from the decrypted plaintext (or the reporter's own, for a
    /// message it sent).
    pub franking_key: KeyBytes,
    /// The sender's message id.
    pub message_id: String,
    /// The committed body (FMB1).
    #[serde(with = "hex_vec")]
    pub body: Vec<u8>,
    /// Attachments, each with the reference the body contains.
    pub attachments: Vec<ReportedAttachment>,
}

/// One message of a report as the reporter's device holds it: the
/// platform's copy for this device (commitment, delivery, tag) and, unless
/// the device refused the message, its opening.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReportedMessage {
    /// The commitment delivered beside the ciphertext.
    pub commitment: Commitment,
    /// What the platform bound into its tag for this device's copy.
    pub delivery: DeliveryContext,
    /// The platform tag.
    pub tag: PlatformTag,
    /// The opening; `None` for a message the device refused (its tag still
    /// shows the platform delivered something there).
    pub opening: Option<Opening>,
}

/// A user report, as encoded (FRP2) and sealed in the envelope.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// 16 random bytes: the moderation service refuses a second report
    /// with the same id.
    #[serde(with = "hex_array")]
    pub report_id: [u8; 16],
    /// The reporting device; must be the authenticated submitter and the
    /// recipient of every copy in the report.
    pub reporter: Party,
    /// Why.
    pub reason: Reason,
    /// The reporter's words.
    pub note: String,
    /// Index of the reported message in `messages`.
    pub reported: u16,
    /// Messages in the platform's order (sequence numbers increasing):
    /// context before, the reported message, context after.
    pub messages: Vec<ReportedMessage>,
    /// Optional local scanning evidence.
    pub evidence: Vec<Evidence>,
}

impl Report {
    /// A report by `reporter` of `messages[reported]`, with a fresh id.
    pub fn new(
        reporter: &Party,
        reason: Reason,
        note: &str,
        messages: Vec<ReportedMessage>,
        reported: usize,
    ) -> Result<Self, ReportError> {
        let mut report_id = [0u8; 16];
        getrandom::fill(&mut report_id).map_err(|e| ReportError::Random(e.to_string()))?;
        let report = Report {
            report_id,
            reporter: reporter.clone(),
            reason,
            note: note.to_string(),
            reported: u16::try_from(reported).map_err(|_| ReportError::Malformed("reported index".into()))?,
            messages,
            evidence: Vec::new(),
        };
        report.check_limits()?;
        Ok(report)
    }

    /// The report id in hex.
    pub fn id_hex(&self) -> String {
        hex::encode(self.report_id)
    }

    /// The reported message.
    pub fn reported_message(&self) -> Option<&ReportedMessage> {
        self.messages.get(self.reported as usize)
    }

    pub(crate) fn check_limits(&self) -> Result<(), ReportError> {
        let bad = |m: String| Err(ReportError::Malformed(m));
        if self.messages.is_empty() || self.messages.len() > MAX_CONTEXT_MESSAGES + 1 {
            return bad(format!("{} messages (1 to {})", self.messages.len(), MAX_CONTEXT_MESSAGES + 1));
        }
        if self.reported as usize >= self.messages.len() {
            return bad(format!("reported index {} of {} messages", self.reported, self.messages.len()));
        }
        if self.note.len() > MAX_NOTE_BYTES {
            return bad(format!("note is {} bytes (limit {MAX_NOTE_BYTES})", self.note.len()));
        }
        self.reporter.check().map_err(|e| ReportError::Malformed(format!("reporter: {e}")))?;
        for (i, m) in self.messages.iter().enumerate() {
            if let Some(o) = &m.opening {
                if o.body.len() > MAX_BODY_BYTES {
                    return bad(format!("message {i} body is {} bytes (limit {MAX_BODY_BYTES})", o.body.len()));
                }
                if o.attachments.len() > MAX_ATTACHMENTS {
                    return bad(format!(
                        "message {i} has {} attachments (limit {MAX_ATTACHMENTS})",
                        o.attachments.len()
                    ));
                }
                if let Some(a) = o.attachments.iter().find(|a| a.plaintext.len() > MAX_ATTACHMENT_BYTES) {
                    return bad(format!(
                        "message {i} attachment is {} bytes (limit {MAX_ATTACHMENT_BYTES})",
                        a.plaintext.len()
                    ));
                }
            }
        }
        if self.evidence.len() > MAX_EVIDENCE {
            return bad(format!("{} evidence items (limit {MAX_EVIDENCE})", self.evidence.len()));
        }
        for e in &self.evidence {
            if e.kind.len() > MAX_EVIDENCE_KIND_BYTES || e.detail.len() > MAX_EVIDENCE_DETAIL_BYTES {
                return bad("evidence item over its limit".into());
            }
        }
        Ok(())
    }
}

/// The outcome for one message of a verified report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Tag and opening verify: this is what the sender sent, delivered to
    /// the reporter's device.
    Verified,
    /// The tag verifies but the report carries no opening: the platform
    /// delivered a message here (from that sender, at that time) that the
    /// reporter's device refused or did not keep; its content is unknown.
    Unopened,
    /// This message failed; the reason says which check.
    Rejected(FrankingError),
}

/// A report whose reported message verified. Only [`open_and_verify`]
/// constructs it.
#[derive(Debug)]
pub struct VerifiedReport {
    report: Report,
    key_id: u32,
    verdicts: Vec<Verdict>,
    order: Result<Ordering, FrankingError>,
}

impl VerifiedReport {
    /// The report as sealed.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The report key the envelope was sealed to.
    pub fn report_key_id(&self) -> u32 {
        self.key_id
    }

    /// The reported message (verified).
    pub fn reported(&self) -> &ReportedMessage {
        &self.report.messages[self.report.reported as usize]
    }

    /// One verdict per message, in report order.
    pub fn verdicts(&self) -> &[Verdict] {
        &self.verdicts
    }

    /// The platform's order of the messages whose tags verified: first and
    /// last sequence number and every omission between (computed over
    /// verified and unopened messages only), or why they are not in order.
    pub fn order(&self) -> &Result<Ordering, FrankingError> {
        &self.order
    }
}

/// Remembers report ids to refuse replays.
pub trait ReplayGuard {
    /// Records `id`; returns `false` if it was seen before.
    fn first_time(&mut self, id: &[u8; 16]) -> bool;
}

impl ReplayGuard for HashSet<[u8; 16]> {
    fn first_time(&mut self, id: &[u8; 16]) -> bool {
        self.insert(*id)
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
    #[error("report envelope version {0} is not supported (this build reads version 2)")]
    UnsupportedVersion(u16),
    /// Sealed to a report key this server does not hold (unknown or retired).
    #[error("report key {0} is unknown or retired")]
    UnknownReportKey(u32),
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
    /// The report names another reporter than the authenticated submitter.
    #[error("the report names reporter {named}, but was submitted by {authenticated}")]
    ReporterMismatch {
        /// The reporter in the report.
        named: String,
        /// The authenticated submitter.
        authenticated: String,
    },
    /// A report with this id was already accepted.
    #[error("replayed report: id {0} was already received")]
    Replay(String),
    /// The reported message does not verify.
    #[error("message {index} (the reported message) does not verify: {error}")]
    ReportedMessage {
        /// Its index in the report.
        index: usize,
        /// The check that failed.
        error: FrankingError,
    },
    /// The reported message carries no opening.
    #[error("message {0} (the reported message) has no opening")]
    ReportedUnopened(usize),
    /// The bytes are not an X25519 public key.
    #[error("invalid X25519 public key")]
    InvalidKey,
    /// The operating system's random generator failed.
    #[error("cannot get randomness from the operating system: {0}")]
    Random(String),
}

fn verify_message(
    keyring: &Keyring,
    reporter: &Party,
    m: &ReportedMessage,
    now_ms: u64,
) -> Result<Verdict, FrankingError> {
    verify_tag(keyring, &m.tag, &m.commitment, &m.delivery, now_ms)?;
    // The copy must be the reporter's own: a tag binds the device it was
    // delivered to, so openings leaked from other people's devices are refused.
    if m.delivery.recipient != *reporter {
        return Err(FrankingError::NotForThisDevice { recipient: m.delivery.recipient.to_string() });
    }
    let Some(o) = &m.opening else { return Ok(Verdict::Unopened) };
    let key = FrankingKey::from_bytes(o.franking_key.0);
    verify_commitment(&m.commitment, &key, &m.delivery.message_context(&o.message_id), &o.body)?;
    // Each attachment: its reference is part of the committed body, and the
    // plaintext has the committed hash (not merely a valid decryption).
    for a in &o.attachments {
        let reference = AttachmentRef::from_bytes(&a.reference)?;
        if !o.body.windows(ATTACHMENT_REF_BYTES).any(|w| w == a.reference.as_slice()) {
            return Err(FrankingError::AttachmentNotCommitted);
        }
        let hash: [u8; 32] = Sha256::digest(&a.plaintext).into();
        if hash != reference.plaintext_sha256 {
            return Err(FrankingError::AttachmentHashMismatch);
        }
    }
    Ok(Verdict::Verified)
}

/// Verifies a decoded report submitted by the authenticated device
/// `reporter` at time `now_ms`: the report names that reporter; per message
/// the tag (known key, in its windows at `now_ms`), the copy's recipient
/// being the reporter, the opening and the attachments; the reported
/// message must be `Verified`; the order is computed over messages whose
/// tags verified.
pub fn verify_report(
    report: Report,
    key_id: u32,
    keyring: &Keyring,
    reporter: &Party,
    now_ms: u64,
    replay: &mut impl ReplayGuard,
) -> Result<VerifiedReport, ReportError> {
    report.check_limits()?;
    if report.reporter != *reporter {
        return Err(ReportError::ReporterMismatch {
            named: report.reporter.to_string(),
            authenticated: reporter.to_string(),
        });
    }
    let verdicts: Vec<Verdict> = report
        .messages
        .iter()
        .map(|m| verify_message(keyring, reporter, m, now_ms).unwrap_or_else(Verdict::Rejected))
        .collect();
    let index = report.reported as usize;
    match &verdicts[index] {
        Verdict::Verified => {}
        Verdict::Unopened => return Err(ReportError::ReportedUnopened(index)),
        Verdict::Rejected(e) => return Err(ReportError::ReportedMessage { index, error: e.clone() }),
    }
    let ordered: Vec<&DeliveryContext> = report
        .messages
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| !matches!(v, Verdict::Rejected(_)))
        .map(|(m, _)| &m.delivery)
        .collect();
    let order = verify_order(&ordered);
    // Only a report that verified consumes its id, so a corrupted copy cannot
    // block the genuine one.
    if !replay.first_time(&report.report_id) {
        return Err(ReportError::Replay(report.id_hex()));
    }
    Ok(VerifiedReport { report, key_id, verdicts, order })
}

/// Decrypts a report envelope with the report key its header names,
/// decodes it, and verifies it ([`verify_report`]).
pub fn open_and_verify(
    envelope: &[u8],
    report_keys: &ReportKeyring,
    keyring: &Keyring,
    reporter: &Party,
    now_ms: u64,
    replay: &mut impl ReplayGuard,
) -> Result<VerifiedReport, ReportError> {
    let (key_id, report) = report_keys.open(envelope, now_ms)?;
    verify_report(report, key_id, keyring, reporter, now_ms, replay)
}

pub(crate) mod hex_array {
    pub(crate) fn serialize<S: serde::Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(text.as_ref(), &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

mod hex_vec {
    pub(super) fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        hex::decode(text.as_ref()).map_err(serde::de::Error::custom)
    }
}
