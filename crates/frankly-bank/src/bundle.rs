//! Signed bank bundles: a bank in a [`frankly_bundle`] bundle of kind
//! `bank` (signature domain `"frankly bank bundle v1\0"`), so that a device
//! loads only lists the platform signed. The layout and the checks are
//! `frankly-bundle`'s; this module adds parsing the bank only after they
//! all passed.

use ed25519_dalek::{SigningKey, VerifyingKey};
use frankly_bundle::{BundleError, BundleInfo, Kind, Loaded};

use crate::bank::Bank;
use crate::video::VideoBank;

/// The bundle kind of hash banks.
pub const BANK_BUNDLE: Kind = Kind {
    name: "bank",
    domain: b"frankly bank bundle v1\0",
    is_plain: |bytes| bytes.starts_with(b"FRANKLYB"),
    sign_command: "frankly bank sign",
};

/// A bank whose bundle verified: only [`verify_bundle`] constructs it (its
/// fields are private and it has no other constructor), so holding one
/// proves the bank was signed by the key it was checked with, was valid at
/// the time it was checked and was not older than the version passed as
/// loaded. `frankly_client::Scanner` loads banks only in this form.
#[derive(Clone, Debug)]
pub struct VerifiedBank {
    bank: Bank,
    info: BundleInfo,
}

impl VerifiedBank {
    /// Only for banks that verified: a full bundle ([`verify_bundle`]) or a
    /// delta bundle applied to one ([`crate::apply_delta_bundle`]).
    pub(crate) fn new(bank: Bank, info: BundleInfo) -> VerifiedBank {
        VerifiedBank { bank, info }
    }

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

/// Signs a bank into a bundle.
pub fn sign_bundle(
    bank: &Bank,
    key: &SigningKey,
    version: u64,
    created: u64,
    expires: u64,
) -> Result<(Vec<u8>, BundleInfo), BundleError> {
    let bytes = bank.to_bytes().map_err(|e| BundleError::Payload { kind: "bank", message: e.to_string() })?;
    frankly_bundle::sign(&BANK_BUNDLE, &bytes, key, version, created, expires)
}

/// Reads a bundle's header without verifying anything (for `bank info`).
pub fn peek_bundle(bytes: &[u8]) -> Result<(BundleInfo, &[u8]), BundleError> {
    frankly_bundle::peek(&BANK_BUNDLE, bytes)
}

/// Verifies a bundle (signature, validity at `now`, no rollback against
/// what was `loaded` before), then parses the bank inside.
pub fn verify_bundle(
    bytes: &[u8],
    key: &VerifyingKey,
    now: u64,
    loaded: Option<&Loaded>,
) -> Result<VerifiedBank, BundleError> {
    let verified = frankly_bundle::verify_kind(&BANK_BUNDLE, &[&VIDEO_BANK_BUNDLE], bytes, key, now, loaded)?;
    let bank = Bank::from_bytes(verified.payload())
        .map_err(|e| BundleError::Payload { kind: "bank", message: e.to_string() })?;
    Ok(VerifiedBank { bank, info: *verified.info() })
}

/// The bundle kind of video (vPDQ) banks: its own signature domain, so a
/// video bank bundle never verifies as a hash bank bundle or the reverse.
pub const VIDEO_BANK_BUNDLE: Kind = Kind {
    name: "video bank",
    domain: b"frankly video bank bundle v1\0",
    is_plain: |bytes| bytes.starts_with(crate::video::VIDEO_BANK_MAGIC),
    sign_command: "frankly bank sign",
};

/// A video bank whose bundle verified; only [`verify_video_bundle`]
/// constructs it, with the same guarantees as [`VerifiedBank`].
#[derive(Clone, Debug)]
pub struct VerifiedVideoBank {
    bank: VideoBank,
    info: BundleInfo,
}

impl VerifiedVideoBank {
    /// The bank.
    pub fn bank(&self) -> &VideoBank {
        &self.bank
    }

    /// Takes the bank out.
    pub fn into_bank(self) -> VideoBank {
        self.bank
    }

    /// What was signed.
    pub fn info(&self) -> &BundleInfo {
        &self.info
    }
}

/// Signs a video bank into a bundle.
pub fn sign_video_bundle(
    bank: &VideoBank,
    key: &SigningKey,
    version: u64,
    created: u64,
    expires: u64,
) -> Result<(Vec<u8>, BundleInfo), BundleError> {
    let bytes = bank.to_bytes().map_err(|e| BundleError::Payload { kind: "video bank", message: e.to_string() })?;
    frankly_bundle::sign(&VIDEO_BANK_BUNDLE, &bytes, key, version, created, expires)
}

/// Verifies a video bank bundle as [`verify_bundle`] does, then parses the
/// video bank inside.
pub fn verify_video_bundle(
    bytes: &[u8],
    key: &VerifyingKey,
    now: u64,
    loaded: Option<&Loaded>,
) -> Result<VerifiedVideoBank, BundleError> {
    let verified = frankly_bundle::verify_kind(&VIDEO_BANK_BUNDLE, &[&BANK_BUNDLE], bytes, key, now, loaded)?;
    let bank = VideoBank::from_bytes(verified.payload())
        .map_err(|e| BundleError::Payload { kind: "video bank", message: e.to_string() })?;
    Ok(VerifiedVideoBank { bank, info: *verified.info() })
}
