//! Signed bank bundles: a bank with a version, a validity period and an
//! Ed25519 signature, so that a device loads only lists the platform signed.
//!
//! Layout (integers little-endian):
//!
//! ```text
//! magic "FRANKLYS" | u16 format version (1) | u64 bank version | u64 created
//! | u64 expires (Unix seconds) | u64 bank file length | bank file | 64-byte signature
//! ```
//!
//! The signature is Ed25519 over the digest
//! `SHA-256("frankly bank bundle v1\0" || every byte before the signature)`,
//! checked with `verify_strict` (no malleable or small-order encodings).
//! The digest identifies the bundle: every device that loaded the same list
//! shows the same digest, which is what auditors compare.

use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::bank::{Bank, BankError, Cursor};

const BUNDLE_MAGIC: &[u8; 8] = b"FRANKLYS";
const BUNDLE_VERSION: u16 = 1;
const DIGEST_DOMAIN: &[u8] = b"frankly bank bundle v1\0";
const HEADER_BYTES: usize = 8 + 2 + 8 * 4;
/// Bundles created this far in the future (clock skew) are still accepted.
pub const MAX_CLOCK_SKEW_SECS: u64 = 600;

/// A bundle's metadata, as signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BundleInfo {
    /// Monotonically increasing version of this bank.
    pub version: u64,
    /// Creation time, Unix seconds.
    pub created: u64,
    /// Expiry time, Unix seconds: the bundle is refused from then on.
    pub expires: u64,
    /// SHA-256 digest that was signed.
    pub digest: [u8; 32],
}

/// A bank whose bundle verified: only [`verify_bundle`] constructs it.
#[derive(Clone, Debug)]
pub struct VerifiedBundle {
    bank: Bank,
    info: BundleInfo,
}

impl VerifiedBundle {
    /// The bank.
    pub fn bank(&self) -> &Bank {
        &self.bank
    }

    /// Takes the bank out.
    pub fn into_bank(self) -> Bank {
        self.bank
    }

    /// What was signed.
    pub fn info(&self) -> &BundleInfo {
        &self.info
    }
}

/// Why a bundle was refused. Each refusal has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The file is a plain bank, not a signed bundle.
    #[error("unsigned bank: a signed bundle is required (make one with `frankly bank sign`)")]
    Unsigned,
    /// The file is neither a bundle nor a bank.
    #[error("not a frankly bank bundle (bad magic bytes)")]
    NotABundle,
    /// A bundle format this build does not read.
    #[error("bundle format version {0} is not supported (this build reads version 1)")]
    UnsupportedVersion(u16),
    /// The file is cut short or its lengths disagree.
    #[error("malformed bundle: {0}")]
    Malformed(String),
    /// The signature does not verify with the configured key.
    #[error(
        "signature does not verify with the configured public key: the bundle was altered or signed by another key"
    )]
    BadSignature,
    /// The bundle's expiry time has passed.
    #[error("bundle expired at {expires} (Unix time), it is now {now}")]
    Expired {
        /// Expiry, Unix seconds.
        expires: u64,
        /// Current time, Unix seconds.
        now: u64,
    },
    /// The bundle claims to be created in the future.
    #[error("bundle is created at {created} (Unix time), in the future (now {now})")]
    NotYetValid {
        /// Creation, Unix seconds.
        created: u64,
        /// Current time, Unix seconds.
        now: u64,
    },
    /// Older than the bundle already loaded (a rollback), or the same version
    /// with different content.
    #[error("bundle version {offered} is older than the loaded version {loaded}: refusing a rollback")]
    Rollback {
        /// Version already loaded.
        loaded: u64,
        /// Version offered.
        offered: u64,
    },
    /// The same version as loaded, but different content.
    #[error("bundle version {version} differs from the loaded bundle of the same version: versions must increase")]
    Equivocation {
        /// The version.
        version: u64,
    },
    /// The signed bank inside is malformed.
    #[error("signed bank is invalid: {0}")]
    Bank(#[from] BankError),
    /// The times are inconsistent.
    #[error("bundle expires ({expires}) before it is created ({created})")]
    BadValidity {
        /// Creation, Unix seconds.
        created: u64,
        /// Expiry, Unix seconds.
        expires: u64,
    },
}

/// What a device remembers of the bundle it loaded last, for rollback checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// Its version.
    pub version: u64,
    /// Its digest.
    pub digest: [u8; 32],
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn digest(signed: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DIGEST_DOMAIN);
    h.update(signed);
    h.finalize().into()
}

/// Signs a bank into a bundle.
pub fn sign_bundle(
    bank: &Bank,
    key: &SigningKey,
    version: u64,
    created: u64,
    expires: u64,
) -> Result<(Vec<u8>, BundleInfo), BundleError> {
    if expires <= created {
        return Err(BundleError::BadValidity { created, expires });
    }
    let bank_bytes = bank.to_bytes()?;
    let mut out = Vec::with_capacity(HEADER_BYTES + bank_bytes.len() + 64);
    out.extend_from_slice(BUNDLE_MAGIC);
    out.extend_from_slice(&BUNDLE_VERSION.to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&created.to_le_bytes());
    out.extend_from_slice(&expires.to_le_bytes());
    out.extend_from_slice(&(bank_bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(&bank_bytes);
    let d = digest(&out);
    let signature = ed25519_dalek::Signer::sign(key, &d);
    out.extend_from_slice(&signature.to_bytes());
    Ok((out, BundleInfo { version, created, expires, digest: d }))
}

/// Reads a bundle's header without verifying anything (for `bank info`).
pub fn peek_bundle(bytes: &[u8]) -> Result<(BundleInfo, &[u8]), BundleError> {
    if bytes.len() >= 8 && &bytes[..8] == b"FRANKLYB" {
        return Err(BundleError::Unsigned);
    }
    if bytes.len() < 8 || &bytes[..8] != BUNDLE_MAGIC {
        return Err(BundleError::NotABundle);
    }
    let malformed = |e: BankError| BundleError::Malformed(e.to_string());
    let mut c = Cursor { bytes, pos: 8 };
    let format = c.u16().map_err(malformed)?;
    if format != BUNDLE_VERSION {
        return Err(BundleError::UnsupportedVersion(format));
    }
    let version = c.u64().map_err(malformed)?;
    let created = c.u64().map_err(malformed)?;
    let expires = c.u64().map_err(malformed)?;
    let len = c.u64().map_err(malformed)?;
    let expected = (HEADER_BYTES as u64).checked_add(len).and_then(|n| n.checked_add(64));
    if expected != Some(bytes.len() as u64) {
        return Err(BundleError::Malformed(format!(
            "header declares a {len}-byte bank, the file has {} bytes",
            bytes.len()
        )));
    }
    let bank = &bytes[HEADER_BYTES..bytes.len() - 64];
    let info = BundleInfo { version, created, expires, digest: digest(&bytes[..bytes.len() - 64]) };
    Ok((info, bank))
}

/// Verifies a bundle: signature (strict Ed25519) with `key`, validity at
/// `now`, no rollback against what was `loaded` before, then the bank itself.
pub fn verify_bundle(
    bytes: &[u8],
    key: &VerifyingKey,
    now: u64,
    loaded: Option<&Loaded>,
) -> Result<VerifiedBundle, BundleError> {
    let (info, bank_bytes) = peek_bundle(bytes)?;
    let mut sig = [0u8; 64];
    sig.copy_from_slice(&bytes[bytes.len() - 64..]);
    key.verify_strict(&info.digest, &Signature::from_bytes(&sig)).map_err(|_| BundleError::BadSignature)?;
    if info.expires <= info.created {
        return Err(BundleError::BadValidity { created: info.created, expires: info.expires });
    }
    if now >= info.expires {
        return Err(BundleError::Expired { expires: info.expires, now });
    }
    if info.created > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(BundleError::NotYetValid { created: info.created, now });
    }
    if let Some(loaded) = loaded {
        if info.version < loaded.version {
            return Err(BundleError::Rollback { loaded: loaded.version, offered: info.version });
        }
        if info.version == loaded.version && info.digest != loaded.digest {
            return Err(BundleError::Equivocation { version: info.version });
        }
    }
    let bank = Bank::from_bytes(bank_bytes)?;
    Ok(VerifiedBundle { bank, info })
}

// ---------------------------------------------------------------------------
// Key files: one line each, `frankly-signing-key-v1:<64 hex>` (seed, mode 0600)
// and `frankly-public-key-v1:<64 hex>`.
// ---------------------------------------------------------------------------

const SECRET_PREFIX: &str = "frankly-signing-key-v1:";
const PUBLIC_PREFIX: &str = "frankly-public-key-v1:";

/// Why a key could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The operating system's random generator failed.
    #[error("cannot get randomness from the operating system: {0}")]
    Random(String),
    /// The text is not a key file of the expected kind.
    #[error("not a frankly {0} key file (expected one line starting {1:?})")]
    Format(&'static str, &'static str),
    /// The public key is not a valid Ed25519 point.
    #[error("invalid Ed25519 public key")]
    InvalidPublicKey,
}

/// A fresh signing key from the operating system's random generator.
pub fn generate_key() -> Result<SigningKey, KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The secret key file's text. Zeroized when dropped.
pub fn signing_key_text(key: &SigningKey) -> Zeroizing<String> {
    let seed = Zeroizing::new(key.to_bytes());
    Zeroizing::new(format!("{SECRET_PREFIX}{}\n", hex::encode(seed.as_ref())))
}

/// The public key file's text.
pub fn public_key_text(key: &VerifyingKey) -> String {
    format!("{PUBLIC_PREFIX}{}\n", hex::encode(key.as_bytes()))
}

/// Reads a secret key file's text.
pub fn parse_signing_key(text: &str) -> Result<SigningKey, KeyError> {
    let err = KeyError::Format("signing", SECRET_PREFIX);
    let hex_part = text.trim().strip_prefix(SECRET_PREFIX).ok_or(err.clone())?;
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_part, seed.as_mut()).map_err(|_| err)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Reads a public key file's text.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let err = KeyError::Format("public", PUBLIC_PREFIX);
    let hex_part = text.trim().strip_prefix(PUBLIC_PREFIX).ok_or(err.clone())?;
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut bytes).map_err(|_| err)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::InvalidPublicKey)
}
