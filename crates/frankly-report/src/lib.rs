//! User reports for frankly: what a reporting device sends to the moderation
//! service, sealed so that only the service can read it, and the service's
//! verification of every franked message in it.
//!
//! # Design
//!
//! A [`Report`] carries the reported message and up to
//! [`MAX_CONTEXT_MESSAGES`] messages before it, each with everything needed to
//! check it: body, franking key, commitment, committed context, delivery
//! context and platform tag. [`seal_report`] encrypts it with HPKE (RFC 9180,
//! base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305) to
//! the moderation service's public key, with a domain-separated `info` and the
//! envelope header as associated data. Nothing in the envelope is readable by
//! the platform that relays it.
//!
//! [`open_and_verify`] decrypts, parses within limits, refuses replayed report
//! ids, recomputes every commitment and tag and checks the context chain. It
//! is the only way to obtain a [`VerifiedReport`], which records a verdict per
//! message; the reported message itself must verify, or the whole report is
//! refused.

mod envelope;
mod report;

pub use envelope::{
    ENVELOPE_MAGIC, HPKE_INFO, MAX_ENVELOPE_BYTES, ServerKeyPair, ServerPublicKey, seal_report, seal_report_with_rng,
};
pub use report::{
    Evidence, KeyBytes, MAX_ATTACHMENTS, MAX_BODY_BYTES, MAX_CONTEXT_MESSAGES, MAX_NOTE_BYTES, Reason, ReplayGuard,
    Report, ReportError, ReportedAttachment, ReportedMessage, Verdict, VerifiedReport, open_and_verify,
};
