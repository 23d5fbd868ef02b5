//! Signed bundles: what a device loads from the platform (a hash bank, a
//! policy) wrapped with a version, a validity period and an Ed25519
//! signature, so that a device loads only what the platform signed, never an
//! older version than it already has, and never after it expired.
//!
//! Layout (integers little-endian):
//!
//! ```text
//! magic "FRANKLYS" | u16 format version (1) | u64 payload version | u64 created
//! | u64 expires (Unix seconds) | u64 payload length | payload | 64-byte signature
//! ```
//!
//! The signature is Ed25519 over the digest
//! `SHA-256(kind domain || every byte before the signature)`, checked with
//! `verify_strict` (no malleable or small-order encodings). The domain names
//! the payload's kind (`"frankly bank bundle v1\0"`, `"frankly policy bundle
//! v1\0"`), so a bundle signed as one kind never verifies as another. The
//! digest identifies the bundle: every device that loaded the same bundle
//! shows the same digest, which is what auditors compare.
//!
//! The payload is opaque here; [`verify`] hands it back only inside a
//! [`Verified`], after every check passed, for the caller to parse.

use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::Signature;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub use ed25519_dalek::{self, SigningKey, VerifyingKey};

const BUNDLE_MAGIC: &[u8; 8] = b"FRANKLYS";
const BUNDLE_VERSION: u16 = 1;
const HEADER_BYTES: usize = 8 + 2 + 8 * 4;

/// Creation times up to this far in the future are accepted (clock skew).
pub const MAX_CLOCK_SKEW_SECS: u64 = 600;

/// What a bundle carries: its name in messages, its signature domain, and
/// how to recognise the unsigned form of the payload (to tell the user to
/// sign it rather than that it is garbage).
#[derive(Clone, Copy, Debug)]
pub struct Kind {
    /// `bank`, `policy`.
    pub name: &'static str,
    /// Signature domain, unique per kind.
    pub domain: &'static [u8],
    /// Whether bytes look like the unsigned payload.
    pub is_plain: fn(&[u8]) -> bool,
    /// The command that signs one, for error messages.
    pub sign_command: &'static str,
}

/// A bundle's metadata, as signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BundleInfo {
    /// Monotonically increasing version of the payload.
    pub version: u64,
    /// Creation time, Unix seconds.
    pub created: u64,
    /// Expiry time, Unix seconds: the bundle is refused from then on.
    pub expires: u64,
    /// SHA-256 digest that was signed.
    pub digest: [u8; 32],
}

/// A bundle that verified: only [`verify`] constructs it.
#[derive(Clone, Copy, Debug)]
pub struct Verified<'a> {
    info: BundleInfo,
    payload: &'a [u8],
}

impl<'a> Verified<'a> {
    /// What was signed.
    pub fn info(&self) -> &BundleInfo {
        &self.info
    }

    /// The signed payload.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// Why a bundle was refused. Each refusal has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The file is a plain payload, not a signed bundle.
    #[error("unsigned {kind}: a signed bundle is required (make one with `{command}`)")]
    Unsigned {
        /// The kind.
        kind: &'static str,
        /// The command that signs one.
        command: &'static str,
    },
    /// The file is not a bundle.
    #[error("not a frankly {kind} bundle (bad magic bytes)")]
    NotABundle {
        /// The kind expected.
        kind: &'static str,
    },
    /// A bundle format this build does not read.
    #[error("bundle format version {0} is not supported (this build reads version 1)")]
    UnsupportedVersion(u16),
    /// The file is cut short or its lengths disagree.
    #[error("malformed bundle: {0}")]
    Malformed(String),
    /// The signature does not verify with the configured key.
    #[error(
        "signature does not verify as a {kind} bundle with the configured public key: the bundle was altered, \
         signed by another key, or is not a {kind} bundle"
    )]
    BadSignature {
        /// The kind expected.
        kind: &'static str,
    },
    /// The signature does not verify, and the payload looks like another
    /// kind of bundle (checked only to name it: nothing unverified is used).
    #[error("this is a {found} bundle, not a {expected} bundle: load it as a {found}")]
    WrongKind {
        /// The kind expected.
        expected: &'static str,
        /// The kind the payload looks like.
        found: &'static str,
    },
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
    /// Older than the bundle already loaded: a rollback.
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
    /// The times are inconsistent.
    #[error("bundle expires ({expires}) before it is created ({created})")]
    BadValidity {
        /// Creation, Unix seconds.
        created: u64,
        /// Expiry, Unix seconds.
        expires: u64,
    },
    /// The signed payload is invalid.
    #[error("signed {kind} is invalid: {message}")]
    Payload {
        /// The kind.
        kind: &'static str,
        /// What is wrong with it.
        message: String,
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

fn digest(kind: &Kind, signed: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(kind.domain);
    h.update(signed);
    h.finalize().into()
}

/// Signs a payload into a bundle.
pub fn sign(
    kind: &Kind,
    payload: &[u8],
    key: &SigningKey,
    version: u64,
    created: u64,
    expires: u64,
) -> Result<(Vec<u8>, BundleInfo), BundleError> {
    if expires <= created {
        return Err(BundleError::BadValidity { created, expires });
    }
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len() + 64);
    out.extend_from_slice(BUNDLE_MAGIC);
    out.extend_from_slice(&BUNDLE_VERSION.to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&created.to_le_bytes());
    out.extend_from_slice(&expires.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    let d = digest(kind, &out);
    let signature = ed25519_dalek::Signer::sign(key, &d);
    out.extend_from_slice(&signature.to_bytes());
    Ok((out, BundleInfo { version, created, expires, digest: d }))
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// Reads a bundle's header without verifying anything (for `info` commands).
pub fn peek<'a>(kind: &Kind, bytes: &'a [u8]) -> Result<(BundleInfo, &'a [u8]), BundleError> {
    if bytes.len() < 8 || &bytes[..8] != BUNDLE_MAGIC {
        if (kind.is_plain)(bytes) {
            return Err(BundleError::Unsigned { kind: kind.name, command: kind.sign_command });
        }
        return Err(BundleError::NotABundle { kind: kind.name });
    }
    let short =
        || BundleError::Malformed(format!("{} bytes, shorter than the {HEADER_BYTES}-byte header", bytes.len()));
    let format = u16_at(bytes, 8).ok_or_else(short)?;
    if format != BUNDLE_VERSION {
        return Err(BundleError::UnsupportedVersion(format));
    }
    let field = |i: usize| u64_at(bytes, 10 + 8 * i).ok_or_else(short);
    let (version, created, expires, len) = (field(0)?, field(1)?, field(2)?, field(3)?);
    let expected = (HEADER_BYTES as u64).checked_add(len).and_then(|n| n.checked_add(64));
    if expected != Some(bytes.len() as u64) {
        return Err(BundleError::Malformed(format!(
            "header declares a {len}-byte {}, the file has {} bytes",
            kind.name,
            bytes.len()
        )));
    }
    let payload = &bytes[HEADER_BYTES..bytes.len() - 64];
    let info = BundleInfo { version, created, expires, digest: digest(kind, &bytes[..bytes.len() - 64]) };
    Ok((info, payload))
}

/// Verifies a bundle: signature (strict Ed25519) with `key` in `kind`'s
/// domain, validity at `now`, no rollback against what was `loaded` before.
pub fn verify<'a>(
    kind: &Kind,
    bytes: &'a [u8],
    key: &VerifyingKey,
    now: u64,
    loaded: Option<&Loaded>,
) -> Result<Verified<'a>, BundleError> {
    let (info, payload) = peek(kind, bytes)?;
    let mut sig = [0u8; 64];
    sig.copy_from_slice(&bytes[bytes.len() - 64..]);
    key.verify_strict(&info.digest, &Signature::from_bytes(&sig))
        .map_err(|_| BundleError::BadSignature { kind: kind.name })?;
    if info.expires <= info.created {
        return Err(BundleError::BadValidity { created: info.created, expires: info.expires });
    }
    if now >= info.expires {
        return Err(BundleError::Expired { expires: info.expires, now });
    }
    if info.created > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(BundleError::NotYetValid { created: info.created, now });
    }
    check_rollback(&info, loaded)?;
    Ok(Verified { info, payload })
}

/// [`verify`] as `kind`, naming the kind when the bundle is one of `others`
/// instead (its signature then fails in `kind`'s domain, and its payload
/// starts the way an `others` payload does): [`BundleError::WrongKind`]
/// rather than a bare [`BundleError::BadSignature`].
pub fn verify_kind<'a>(
    kind: &Kind,
    others: &[&Kind],
    bytes: &'a [u8],
    key: &VerifyingKey,
    now: u64,
    loaded: Option<&Loaded>,
) -> Result<Verified<'a>, BundleError> {
    verify(kind, bytes, key, now, loaded).map_err(|e| match e {
        BundleError::BadSignature { .. } => {
            let payload = peek(kind, bytes).map(|(_, p)| p).unwrap_or_default();
            match others.iter().find(|o| !(kind.is_plain)(payload) && (o.is_plain)(payload)) {
                Some(other) => BundleError::WrongKind { expected: kind.name, found: other.name },
                None => e,
            }
        }
        e => e,
    })
}

/// Refuses a bundle older than the one `loaded` before (a rollback), or of
/// the same version with other content (equivocation). [`verify`] runs it;
/// a device that knows which bundle it is replacing only after parsing the
/// payload (a bank's or a policy's name) runs it again then, against what it
/// remembers under that name.
pub fn check_rollback(info: &BundleInfo, loaded: Option<&Loaded>) -> Result<(), BundleError> {
    if let Some(loaded) = loaded {
        if info.version < loaded.version {
            return Err(BundleError::Rollback { loaded: loaded.version, offered: info.version });
        }
        if info.version == loaded.version && info.digest != loaded.digest {
            return Err(BundleError::Equivocation { version: info.version });
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    const A: Kind =
        Kind { name: "a", domain: b"frankly a bundle v1\0", is_plain: |b| b.starts_with(b"A"), sign_command: "sign a" };
    const B: Kind = Kind { name: "b", domain: b"frankly b bundle v1\0", is_plain: |_| false, sign_command: "sign b" };

    #[test]
    fn a_bundle_of_one_kind_never_verifies_as_another() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let (bytes, _) = sign(&A, b"payload", &key, 1, 100, 200).unwrap();
        assert_eq!(verify(&A, &bytes, &key.verifying_key(), 150, None).unwrap().payload(), b"payload");
        assert_eq!(
            verify(&B, &bytes, &key.verifying_key(), 150, None).unwrap_err(),
            BundleError::BadSignature { kind: "b" }
        );
    }

    #[test]
    fn short_and_inconsistent_files_are_malformed_not_panics() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let (bytes, _) = sign(&A, b"payload", &key, 1, 100, 200).unwrap();
        for cut in 0..bytes.len() {
            let err = verify(&A, &bytes[..cut], &key.verifying_key(), 150, None).unwrap_err();
            assert!(matches!(err, BundleError::Malformed(_) | BundleError::NotABundle { .. }), "{cut}: {err}");
        }
        assert!(matches!(peek(&A, b"A plain payload"), Err(BundleError::Unsigned { kind: "a", command: "sign a" })));
        assert!(matches!(peek(&B, b"B plain payload"), Err(BundleError::NotABundle { kind: "b" })));
    }
}
