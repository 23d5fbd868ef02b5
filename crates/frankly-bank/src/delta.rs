//! Bank deltas: what changed in a bank between two versions, so that a
//! device holding version N of a large bank fetches only the entries that
//! changed, not the whole bank again.
//!
//! A delta names the hashes removed and the entries added or changed, and
//! the SHA-256 of the full bank file it produces. Applying it to the bank
//! at `from_version` gives exactly the bank a full bundle at `to_version`
//! holds, or an error: the device never holds a bank that the server did
//! not have.
//!
//! Layout (integers little-endian):
//!
//! ```text
//! magic "FRANKLYD" | u16 format version (1) | u64 from version | u64 to version
//! | u8 signal type code | 32-byte SHA-256 of the resulting bank file | u64 removed count
//! | removed hashes (bits / 8 bytes each) | the upserted entries as a bank file
//! (name, signal, threshold and quality floor of the result) | 32-byte SHA-256
//! of all bytes before it
//! ```
//!
//! Signed, a delta is a [`frankly_bundle`] bundle of kind `bank delta`
//! (domain `"frankly bank delta bundle v1\0"`) whose version is the delta's
//! `to_version`.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::{SigningKey, VerifyingKey};
use frankly_bundle::{BundleError, BundleInfo, Kind};
use sha2::{Digest, Sha256};

use crate::bank::{Bank, BankError, Cursor, MAX_ENTRIES};
use crate::bundle::VerifiedBank;
use crate::index::Words;
use crate::signal::SignalType;

const DELTA_MAGIC: &[u8; 8] = b"FRANKLYD";
const DELTA_VERSION: u16 = 1;

/// The bundle kind of bank deltas.
pub const BANK_DELTA_BUNDLE: Kind = Kind {
    name: "bank delta",
    domain: b"frankly bank delta bundle v1\0",
    is_plain: |bytes| bytes.starts_with(DELTA_MAGIC),
    sign_command: "frankly serve (deltas are made by the server)",
};

/// The changes that turn a bank at `from_version` into the bank at
/// `to_version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankDelta {
    /// The version it applies to.
    pub from_version: u64,
    /// The version it produces.
    pub to_version: u64,
    /// SHA-256 of the resulting bank's file ([`Bank::to_bytes`] of its
    /// canonical form).
    pub result_sha256: [u8; 32],
    /// Hashes no longer in the bank.
    pub removed: Vec<Words>,
    /// Entries new or changed (each replaces any entry with its hash), in a
    /// bank carrying the result's name, signal, threshold and quality floor.
    pub upserted: Bank,
}

/// Why a delta could not be read or applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// The bytes are not a delta.
    #[error("not a frankly bank delta (bad magic bytes)")]
    NotADelta,
    /// A format version this build does not read.
    #[error("bank delta format version {0} is not supported (this build reads version 1)")]
    UnsupportedVersion(u16),
    /// The bytes are cut short, a count is out of range, or the checksum fails.
    #[error("malformed bank delta: {0}")]
    Malformed(String),
    /// The delta is for another bank, signal type or version than the one held.
    #[error("the delta does not apply to this bank: {0}; fetch the full bundle")]
    Mismatch(String),
    /// Applying it did not give the bank the server signed.
    #[error(
        "applying the delta from version {from} to {to} did not give the bank the server signed (the bank held is not \
         the one published as version {from}); fetch the full bundle"
    )]
    ResultMismatch {
        /// From.
        from: u64,
        /// To.
        to: u64,
    },
    /// The delta's bundle did not verify.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A bank inside could not be read or written.
    #[error(transparent)]
    Bank(#[from] BankError),
}

impl Bank {
    /// Sorts the entries by hash: the order in which bundles and deltas
    /// hold a bank, so that the same entries always give the same file.
    pub fn canonicalize(&mut self) {
        self.entries.sort_by_key(|e| e.hash);
    }
}

impl BankDelta {
    /// The delta from a bank whose entries with hashes in `affected` may
    /// have changed to `result` (the bank at `to_version`): each affected
    /// hash is upserted with `result`'s entry, or removed when `result` has
    /// none. Hashes not in `affected` must be the same in both versions.
    pub fn for_hashes(
        result: &Bank,
        affected: impl IntoIterator<Item = Words>,
        from_version: u64,
        to_version: u64,
    ) -> Result<BankDelta, BankError> {
        let mut canonical = result.clone();
        canonical.canonicalize();
        let by_hash: BTreeMap<Words, &crate::bank::Entry> = canonical.entries.iter().map(|e| (e.hash, e)).collect();
        let affected: BTreeSet<Words> = affected.into_iter().collect();
        let mut upserted = Bank { entries: Vec::new(), ..canonical.clone() };
        let mut removed = Vec::new();
        for hash in affected {
            match by_hash.get(&hash) {
                Some(entry) => upserted.entries.push((*entry).clone()),
                None => removed.push(hash),
            }
        }
        let result_sha256 = Sha256::digest(canonical.to_bytes()?).into();
        Ok(BankDelta { from_version, to_version, result_sha256, removed, upserted })
    }

    /// Encodes the delta.
    pub fn to_bytes(&self) -> Result<Vec<u8>, BankError> {
        let signal = self.upserted.signal;
        let mut out = Vec::new();
        out.extend_from_slice(DELTA_MAGIC);
        out.extend_from_slice(&DELTA_VERSION.to_le_bytes());
        out.extend_from_slice(&self.from_version.to_le_bytes());
        out.extend_from_slice(&self.to_version.to_le_bytes());
        out.push(signal.code());
        out.extend_from_slice(&self.result_sha256);
        out.extend_from_slice(&(self.removed.len() as u64).to_le_bytes());
        for hash in &self.removed {
            out.extend_from_slice(&signal.bytes_of(hash));
        }
        out.extend_from_slice(&self.upserted.to_bytes()?);
        let checksum = Sha256::digest(&out);
        out.extend_from_slice(&checksum);
        Ok(out)
    }

    /// Decodes a delta, checking its checksum and every count against the
    /// bytes present.
    pub fn from_bytes(bytes: &[u8]) -> Result<BankDelta, DeltaError> {
        let malformed = |e: BankError| DeltaError::Malformed(e.to_string());
        if bytes.len() < 8 || &bytes[..8] != DELTA_MAGIC {
            return Err(DeltaError::NotADelta);
        }
        const FIXED: usize = 8 + 2 + 8 + 8 + 1 + 32 + 8;
        if bytes.len() < FIXED + 32 {
            return Err(DeltaError::Malformed(format!("{} bytes, shorter than the header", bytes.len())));
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != DELTA_VERSION {
            return Err(DeltaError::UnsupportedVersion(version));
        }
        let (body, checksum) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != checksum {
            return Err(DeltaError::Malformed("checksum mismatch: the delta is corrupt or was altered".into()));
        }
        let mut c = Cursor { bytes: body, pos: 10 };
        let from_version = c.u64().map_err(malformed)?;
        let to_version = c.u64().map_err(malformed)?;
        let code = c.u8().map_err(malformed)?;
        let signal = SignalType::from_code(code)
            .ok_or_else(|| DeltaError::Malformed(format!("unknown signal type code {code}")))?;
        let mut result_sha256 = [0u8; 32];
        result_sha256.copy_from_slice(c.take(32).map_err(malformed)?);
        let removed_count = c.u64().map_err(malformed)?;
        if removed_count > MAX_ENTRIES {
            return Err(DeltaError::Malformed(format!("{removed_count} removed hashes (limit {MAX_ENTRIES})")));
        }
        let width = (signal.bits() / 8) as usize;
        let removed_bytes = c.take((removed_count as usize).saturating_mul(width)).map_err(malformed)?;
        let removed = removed_bytes.chunks_exact(width).map(|b| signal.words_from_bytes(b)).collect();
        let upserted = Bank::from_bytes(&body[c.pos..]).map_err(malformed)?;
        if upserted.signal != signal {
            return Err(DeltaError::Malformed(format!(
                "the header says {signal}, the upserted entries are {}",
                upserted.signal
            )));
        }
        Ok(BankDelta { from_version, to_version, result_sha256, removed, upserted })
    }

    /// Applies the delta to `bank` (the bank at `from_version`): the bank at
    /// `to_version`, in canonical order, checked against `result_sha256`.
    pub fn apply(&self, bank: &Bank) -> Result<Bank, DeltaError> {
        if bank.name != self.upserted.name || bank.signal != self.upserted.signal {
            return Err(DeltaError::Mismatch(format!(
                "it is for bank {:?} ({}), the bank held is {:?} ({})",
                self.upserted.name, self.upserted.signal, bank.name, bank.signal
            )));
        }
        let gone: BTreeSet<Words> =
            self.removed.iter().copied().chain(self.upserted.entries.iter().map(|e| e.hash)).collect();
        let mut out = Bank {
            entries: bank.entries.iter().filter(|e| !gone.contains(&e.hash)).cloned().collect(),
            ..self.upserted.clone()
        };
        out.entries.extend(self.upserted.entries.iter().cloned());
        out.canonicalize();
        if Sha256::digest(out.to_bytes()?).as_slice() != self.result_sha256 {
            return Err(DeltaError::ResultMismatch { from: self.from_version, to: self.to_version });
        }
        Ok(out)
    }
}

/// Signs a delta into a bundle of version `to_version`.
pub fn sign_delta_bundle(
    delta: &BankDelta,
    key: &SigningKey,
    created: u64,
    expires: u64,
) -> Result<(Vec<u8>, BundleInfo), BundleError> {
    let bytes = delta.to_bytes().map_err(|e| BundleError::Payload { kind: "bank delta", message: e.to_string() })?;
    frankly_bundle::sign(&BANK_DELTA_BUNDLE, &bytes, key, delta.to_version, created, expires)
}

/// Verifies a delta bundle against the bank a device holds (signature,
/// validity at `now`, a version newer than `held`'s, a delta from exactly
/// `held`'s version), applies it, and returns the new bank in verified
/// form, with the delta bundle's metadata: what the device then records as
/// loaded.
pub fn apply_delta_bundle(
    held: &VerifiedBank,
    bytes: &[u8],
    key: &VerifyingKey,
    now: u64,
) -> Result<VerifiedBank, DeltaError> {
    let loaded = frankly_bundle::Loaded { version: held.info().version, digest: held.info().digest };
    let verified = frankly_bundle::verify(&BANK_DELTA_BUNDLE, bytes, key, now, Some(&loaded))?;
    let delta = BankDelta::from_bytes(verified.payload())?;
    if delta.from_version != held.info().version || delta.to_version != verified.info().version {
        return Err(DeltaError::Mismatch(format!(
            "it goes from version {} to {}, the bank held is version {}",
            delta.from_version,
            delta.to_version,
            held.info().version
        )));
    }
    if delta.to_version <= delta.from_version {
        return Err(DeltaError::Mismatch(format!(
            "version {} is not newer than {}",
            delta.to_version, delta.from_version
        )));
    }
    let bank = delta.apply(held.bank())?;
    Ok(VerifiedBank::new(bank, *verified.info()))
}
