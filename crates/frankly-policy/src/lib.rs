//! On-device policies for frankly: what to do, locally, with what the
//! scanner found.
//!
//! A policy (`policies/*.toml`, format `frankly-policy-v1`, specified in
//! `docs/policies.md`) is an ordered list of rules. Each rule applies to a
//! direction (outgoing before encryption, incoming after decryption), to
//! some audiences (child, teen, adult), optionally only when a user setting
//! is on; it has a condition over the [`Signals`] (bank matches, classifier
//! scores, exact digests, attachments that could not be scanned and why,
//! attachments whose declared type disagrees with their bytes, conversation
//! facts the app supplies, combined with `any`, `all`, `not`) and actions (`allow`, `log`, `warn`, `blur`,
//! `show_resources`, `suggest_report`, `block_send`). [`Policy::evaluate`]
//! runs every applicable rule in order and returns a [`Decision`]: the
//! actions, the message and resource keys the app renders, and every rule
//! that fired with the signals that made it fire.
//!
//! This crate decides; it does not hash, run models or talk to anything.
//! Policies are validated on load (unknown keys, unknown actions,
//! `block_send` on incoming messages, missing message keys, limits), with
//! errors that name the line, the rule and the field. Platforms ship them as
//! signed bundles ([`sign_policy`], [`verify_policy`]): the same Ed25519
//! bundle format as hash banks, in its own signature domain, refused when
//! unsigned, altered, expired or rolled back.

mod eval;
mod policy;

pub use eval::{
    BankSignal, Context, Decision, DigestSignal, Facts, FiredRule, ScoreSignal, Signals, Source, TypeMismatchSignal,
    UnscannableReason, UnscannableSignal, VideoMatchSignal,
};
pub use frankly_bundle::{BundleError, BundleInfo, Loaded, unix_now};
pub use policy::{
    Action, Applies, Audience, BankCondition, Condition, Direction, ExactCondition, FactsCondition,
    MAX_CONDITION_DEPTH, MAX_EXACT_HASHES, MAX_KEY_CHARS, MAX_POLICY_BYTES, MAX_RULES, Policy, Rule, ScoreCondition,
    TypeMismatchCondition, UnscannableCondition,
};

use frankly_bundle::{Kind, SigningKey, VerifyingKey};

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file is over [`MAX_POLICY_BYTES`].
    #[error("policy of {bytes} bytes is over the limit of {limit}")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The TOML does not parse, or has an unknown key or a wrong type.
    #[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Parse {
        /// Where, if known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// The policy parses but breaks a rule of the format.
    #[error("line {line}: {}{field}: {message}", rule.as_ref().map(|r| format!("rule `{r}`: ")).unwrap_or_default())]
    Invalid {
        /// The line of the rule (or of the field).
        line: usize,
        /// The rule's id.
        rule: Option<String>,
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The policy is not UTF-8 text.
    #[error("policy is not UTF-8 text")]
    NotText,
    /// A signed bundle was refused.
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

/// The bundle kind of policies.
pub const POLICY_BUNDLE: Kind = Kind {
    name: "policy",
    domain: b"frankly policy bundle v1\0",
    is_plain: |bytes| std::str::from_utf8(bytes).is_ok(),
    sign_command: "frankly policy sign",
};

/// A policy whose bundle verified: only [`verify_policy`] constructs it.
#[derive(Clone, Debug)]
pub struct VerifiedPolicy {
    policy: Policy,
    info: BundleInfo,
}

impl VerifiedPolicy {
    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Takes the policy out.
    pub fn into_policy(self) -> Policy {
        self.policy
    }

    /// What was signed (version, validity, digest).
    pub fn info(&self) -> &BundleInfo {
        &self.info
    }
}

/// Validates a policy's text and signs it into a bundle.
pub fn sign_policy(
    text: &str,
    key: &SigningKey,
    version: u64,
    created: u64,
    expires: u64,
) -> Result<(Vec<u8>, BundleInfo), PolicyError> {
    Policy::from_toml(text)?;
    Ok(frankly_bundle::sign(&POLICY_BUNDLE, text.as_bytes(), key, version, created, expires)?)
}

/// Reads a policy bundle's header without verifying anything: tells a
/// bundle from a plain policy file (`BundleError::Unsigned`).
pub fn peek_policy(bytes: &[u8]) -> Result<BundleInfo, BundleError> {
    frankly_bundle::peek(&POLICY_BUNDLE, bytes).map(|(info, _)| info)
}

/// Verifies a policy bundle (signature, validity at `now`, no rollback
/// against what was `loaded` before), then parses and validates the policy.
pub fn verify_policy(
    bytes: &[u8],
    key: &VerifyingKey,
    now: u64,
    loaded: Option<&Loaded>,
) -> Result<VerifiedPolicy, PolicyError> {
    let verified = frankly_bundle::verify(&POLICY_BUNDLE, bytes, key, now, loaded)?;
    let text = std::str::from_utf8(verified.payload()).map_err(|_| PolicyError::NotText)?;
    Ok(VerifiedPolicy { policy: Policy::from_toml(text)?, info: *verified.info() })
}
