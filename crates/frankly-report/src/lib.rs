//! User reports for frankly (franking v2): what a reporting device sends to
//! the moderation service, sealed so that only the service can read it, and
//! the service's verification of every franked message in it.
//!
//! # Design
//!
//! A [`Report`] carries the reported message and up to
//! [`MAX_CONTEXT_MESSAGES`] messages around it, from both sides of the
//! conversation, in the platform's order. Each is the reporter device's own
//! copy: commitment, delivery context and platform tag, and the opening
//! (franking key, message id, body, attachment plaintexts) unless the device
//! refused that message. The report is encoded in a specified binary format
//! (FRP2, bytes as bytes), padded with Padmé so its size says little, and
//! sealed with HPKE (RFC 9180, base mode, DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256, ChaCha20-Poly1305) to the report key its header names.
//!
//! [`open_and_verify`] takes the reporter the server authenticated: every
//! copy must be addressed to that device, so openings leaked from someone
//! else's device verify nothing. It checks each tag at the time of checking
//! (key windows), each opening, the reported message, and the platform's
//! order of the messages that verified. It is the only way to obtain a
//! [`VerifiedReport`].

mod codec;
mod envelope;
mod report;

pub use codec::REPORT_MAGIC;
pub use envelope::{
    ENVELOPE_MAGIC, ENVELOPE_VERSION, HEADER_BYTES, HPKE_INFO, MAX_ENVELOPE_BYTES, ReportKeyring, ServerKeyPair,
    ServerPublicKey, decode_report, encode_report, padme, parse_header, seal_report, seal_report_with_rng,
};
pub use report::{
    Evidence, KeyBytes, MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, MAX_BODY_BYTES, MAX_CONTEXT_MESSAGES, MAX_EVIDENCE,
    MAX_EVIDENCE_DETAIL_BYTES, MAX_EVIDENCE_KIND_BYTES, MAX_NOTE_BYTES, Opening, Reason, ReplayGuard, Report,
    ReportError, ReportedAttachment, ReportedMessage, Verdict, VerifiedReport, open_and_verify, verify_report,
};
