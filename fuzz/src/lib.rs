//! Fixed keys and clocks shared by the fuzz targets and the seed generator
//! (`examples/seeds.rs`), so that seeds signed or sealed here reach the code
//! behind a signature check or an HPKE open. No parsing logic lives here.

use frankly_bundle::{SigningKey, VerifyingKey};
use frankly_report::{ReportKeyring, ServerKeyPair};

/// The clock of every verification in the targets (seconds; 2027-01-15).
pub const NOW_SECS: u64 = 1_800_000_000;

/// The same instant in milliseconds, for report keys.
pub const NOW_MS: u64 = NOW_SECS * 1000;

/// The report key id the fuzz keyring holds.
pub const REPORT_KEY_ID: u32 = 1;

/// The signing key of seed bundles (a fixed seed: not a secret).
pub fn bundle_signing_key() -> SigningKey {
    SigningKey::from_bytes(&[1u8; 32])
}

/// The public key the targets verify bundles with.
pub fn bundle_key() -> VerifyingKey {
    bundle_signing_key().verifying_key()
}

/// The moderation service's report key in the targets: `ServerKeyPair::derive(&[7u8; 32])`.
pub fn report_key() -> ServerKeyPair {
    ServerKeyPair::derive(&[7u8; 32])
}

/// A keyring holding [`report_key`] as key [`REPORT_KEY_ID`], open forever.
pub fn report_keyring() -> ReportKeyring {
    let mut keyring = ReportKeyring::new();
    keyring.insert(REPORT_KEY_ID, report_key(), u64::MAX);
    keyring
}
