//! The device's persisted franking state: conversation states (the
//! platform's order seen so far, recent commitments and message ids), the
//! reporter's kept material of both sides, and the versions of the signed
//! bundles loaded (rollback state). It must survive an app restart, or a
//! restart would silently forget what a user can report and accept replays
//! and rolled-back banks.
//!
//! Stored as an encrypted pickle in the style of vodozemac's:
//! `"FDS1" || u16be(version) || nonce (12) || ChaCha20-Poly1305(key, nonce,
//! JSON of the state, ad = the 6 header bytes)`, under a 32-byte key the app
//! keeps in the platform's key store. A wrong key or an altered file is a
//! clear error; nothing is reset silently.

use std::collections::BTreeMap;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use zeroize::Zeroizing;

use frankly_bank::{VerifiedBank, VerifiedVideoBank};
use frankly_bundle::{BundleError, BundleInfo, VerifyingKey};
use frankly_policy::{PolicyError, VerifiedPolicy};

use crate::ClientError;
use crate::hooks::ConversationState;
use crate::reporter::Reporter;

const MAGIC: &[u8; 4] = b"FDS1";
/// The pickle version this build writes and reads.
pub const STATE_VERSION: u16 = 1;
/// Largest pickle accepted: the reporter's default total budget (256 MiB)
/// as hex in JSON, with room for the rest.
pub const MAX_STATE_BYTES: usize = 640 << 20;

/// What a device remembers of a signed bundle it loaded (a bank or a
/// policy), so an older bundle is refused after a restart too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LoadedBundle {
    /// Its version.
    pub version: u64,
    /// Its digest.
    #[serde(with = "hex_digest")]
    pub digest: [u8; 32],
}

impl From<frankly_bundle::Loaded> for LoadedBundle {
    fn from(l: frankly_bundle::Loaded) -> Self {
        LoadedBundle { version: l.version, digest: l.digest }
    }
}

impl From<LoadedBundle> for frankly_bundle::Loaded {
    fn from(l: LoadedBundle) -> Self {
        frankly_bundle::Loaded { version: l.version, digest: l.digest }
    }
}

/// Everything franking-related a device persists.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct DeviceState {
    /// Per conversation, the device's view of it.
    pub conversations: BTreeMap<String, ConversationState>,
    /// The kept report material.
    pub reporter: Reporter,
    /// Per bundle (`bank:<name>`, `policy:<name>`), the last one loaded;
    /// [`DeviceState::verify_bank`] and [`DeviceState::verify_policy`]
    /// check against it and update it.
    pub bundles: BTreeMap<String, LoadedBundle>,
    /// What the app keeps with this state, under the same key and in the
    /// same file (its E2EE sessions and credentials, say): opaque bytes,
    /// counted in [`MAX_STATE_BYTES`].
    #[serde(default, with = "hex_bytes")]
    pub app: Vec<u8>,
}

impl std::fmt::Debug for DeviceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceState")
            .field("conversations", &self.conversations.len())
            .field("reporter", &self.reporter)
            .field("bundles", &self.bundles)
            .field("app", &self.app.len())
            .finish()
    }
}

/// Why a pickle could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Not a device-state pickle.
    #[error("not a frankly device state (no FDS1 header)")]
    NotAState,
    /// A version this build does not read.
    #[error("device state version {0} is not supported (this build reads {STATE_VERSION})")]
    UnsupportedVersion(u16),
    /// Larger than [`MAX_STATE_BYTES`].
    #[error("device state is {0} bytes (limit {MAX_STATE_BYTES})")]
    TooLarge(usize),
    /// The key is wrong or the file was altered or truncated.
    #[error("cannot decrypt the device state: wrong key, or the file was altered or truncated")]
    Decrypt,
    /// Decrypted, but not a valid state (a bug or a version mismatch).
    #[error("the device state does not parse: {0}")]
    Malformed(String),
    /// The operating system's random generator failed.
    #[error("cannot get randomness: {0}")]
    Random(String),
}

impl DeviceState {
    /// Verifies a signed bank bundle the way a device loads one: signature
    /// with the platform's `key`, validity at `now` (Unix seconds), and no
    /// rollback against the bank of the same name loaded before (remembered
    /// in [`DeviceState::bundles`] under `bank:<name>`, so an older bundle is
    /// refused after a restart too). On success the state remembers this
    /// bundle; persist it ([`DeviceState::pickle`]) before using the bank.
    ///
    /// The name is read from the signed bank, so the check is against the
    /// bank being replaced whatever file or URL the bundle came from.
    pub fn verify_bank(&mut self, bytes: &[u8], key: &VerifyingKey, now: u64) -> Result<VerifiedBank, ClientError> {
        let refused = |what: String| move |error| ClientError::Bundle { what, error };
        let verified = frankly_bank::verify_bundle(bytes, key, now, None).map_err(refused("bank bundle".into()))?;
        let slot = format!("bank:{}", verified.bank().name);
        self.check_and_remember(&slot, verified.info()).map_err(refused(format!("bank bundle `{slot}`")))?;
        Ok(verified)
    }

    /// Verifies a signed video (vPDQ) bank bundle as [`DeviceState::verify_bank`]
    /// does, remembered under `video-bank:<name>`.
    pub fn verify_video_bank(
        &mut self,
        bytes: &[u8],
        key: &VerifyingKey,
        now: u64,
    ) -> Result<VerifiedVideoBank, ClientError> {
        let refused = |what: String| move |error| ClientError::Bundle { what, error };
        let verified =
            frankly_bank::verify_video_bundle(bytes, key, now, None).map_err(refused("video bank bundle".into()))?;
        let slot = format!("video-bank:{}", verified.bank().name);
        self.check_and_remember(&slot, verified.info()).map_err(refused(format!("video bank bundle `{slot}`")))?;
        Ok(verified)
    }

    /// Verifies a signed policy bundle the way a device loads one: as
    /// [`DeviceState::verify_bank`], remembered under `policy:<name>`.
    pub fn verify_policy(&mut self, bytes: &[u8], key: &VerifyingKey, now: u64) -> Result<VerifiedPolicy, ClientError> {
        let refused = |what: String| move |error| ClientError::Bundle { what, error };
        let verified = frankly_policy::verify_policy(bytes, key, now, None)
            .map_err(|e| match e {
                PolicyError::Bundle(b) => b,
                other => BundleError::Payload { kind: "policy", message: other.to_string() },
            })
            .map_err(refused("policy bundle".into()))?;
        let slot = format!("policy:{}", verified.policy().name);
        self.check_and_remember(&slot, verified.info()).map_err(refused(format!("policy bundle `{slot}`")))?;
        Ok(verified)
    }

    fn check_and_remember(&mut self, slot: &str, info: &BundleInfo) -> Result<(), BundleError> {
        let loaded = self.bundles.get(slot).map(|&l| frankly_bundle::Loaded::from(l));
        frankly_bundle::check_rollback(info, loaded.as_ref())?;
        self.bundles.insert(slot.to_owned(), LoadedBundle { version: info.version, digest: info.digest });
        Ok(())
    }

    /// A fresh state around `reporter`.
    pub fn new(reporter: Reporter) -> DeviceState {
        DeviceState { conversations: BTreeMap::new(), reporter, bundles: BTreeMap::new(), app: Vec::new() }
    }

    /// Encrypts the state under `key` with a fresh nonce.
    pub fn pickle(&self, key: &[u8; 32]) -> Result<Vec<u8>, StateError> {
        let json = Zeroizing::new(serde_json::to_vec(self).map_err(|e| StateError::Malformed(e.to_string()))?);
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| StateError::Random(e.to_string()))?;
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&STATE_VERSION.to_be_bytes());
        let ciphertext = ChaCha20Poly1305::new(key.into())
            .encrypt(&nonce.into(), Payload { msg: &json, aad: &out })
            .map_err(|_| StateError::Decrypt)?;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        if out.len() > MAX_STATE_BYTES {
            return Err(StateError::TooLarge(out.len()));
        }
        Ok(out)
    }

    /// Decrypts and parses a pickle made by [`DeviceState::pickle`].
    pub fn unpickle(bytes: &[u8], key: &[u8; 32]) -> Result<DeviceState, StateError> {
        if bytes.len() > MAX_STATE_BYTES {
            return Err(StateError::TooLarge(bytes.len()));
        }
        let header = bytes.get(..6).ok_or(StateError::NotAState)?;
        if &header[..4] != MAGIC {
            return Err(StateError::NotAState);
        }
        let version = u16::from_be_bytes([header[4], header[5]]);
        if version != STATE_VERSION {
            return Err(StateError::UnsupportedVersion(version));
        }
        let nonce: [u8; 12] = bytes.get(6..18).and_then(|n| n.try_into().ok()).ok_or(StateError::Decrypt)?;
        let json = Zeroizing::new(
            ChaCha20Poly1305::new(key.into())
                .decrypt(&nonce.into(), Payload { msg: &bytes[18..], aad: header })
                .map_err(|_| StateError::Decrypt)?,
        );
        serde_json::from_slice(&json).map_err(|e| StateError::Malformed(e.to_string()))
    }
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

mod hex_digest {
    pub(super) fn serialize<S: serde::Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(text.as_ref(), &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}
