//! Local files as verified bundles, for tools and tests.
//!
//! A [`Scanner`](crate::Scanner) loads only a [`VerifiedPolicy`] and
//! [`VerifiedBank`]s, which only verification constructs. A messenger gets
//! them from the platform's signed bundles through
//! [`DeviceState::verify_policy`](crate::DeviceState::verify_policy) and
//! [`DeviceState::verify_bank`](crate::DeviceState::verify_bank). Tools that
//! scan with a policy or bank file the user points at on their own machine
//! (`frankly scan` without `--pubkey`, the demo, tests, benchmarks) use the
//! two functions here instead: they sign the content with a key made for
//! the call, verify it as a device would, and drop the key. There is no
//! constructor that skips verification, and nothing these functions return
//! can be mistaken for a platform bundle: the key is gone, so no one can
//! sign a newer version of it, and the signature checked only that the
//! content is what the caller passed.
//!
//! A messenger must not call these for anything that arrived over a
//! network: that is what the platform's signature is for.

use frankly_bank::{Bank, VerifiedBank, VerifiedVideoBank, VideoBank};
use frankly_bundle::{BundleError, unix_now};
use frankly_policy::{PolicyError, VerifiedPolicy};

use crate::ClientError;

/// Validity of a locally signed bundle: one day from now.
const LOCAL_VALIDITY_SECS: u64 = 86_400;

fn refused(what: &str) -> impl FnOnce(BundleError) -> ClientError {
    let what = what.to_owned();
    move |error| ClientError::Bundle { what, error }
}

fn key() -> Result<frankly_bundle::SigningKey, ClientError> {
    frankly_bundle::generate_key()
        .map_err(|e| BundleError::Payload { kind: "local", message: e.to_string() })
        .map_err(refused("local signing key"))
}

/// A policy file's text, trusted as the caller's own: parsed, validated,
/// signed with a throwaway key and verified.
pub fn trust_local_policy(text: &str) -> Result<VerifiedPolicy, ClientError> {
    let key = key()?;
    let now = unix_now();
    let as_bundle_error = |e: PolicyError| match e {
        PolicyError::Bundle(b) => b,
        other => BundleError::Payload { kind: "policy", message: other.to_string() },
    };
    let (bytes, _) = frankly_policy::sign_policy(text, &key, 1, now, now + LOCAL_VALIDITY_SECS)
        .map_err(as_bundle_error)
        .map_err(refused("local policy"))?;
    frankly_policy::verify_policy(&bytes, &key.verifying_key(), now, None)
        .map_err(as_bundle_error)
        .map_err(refused("local policy"))
}

/// A bank, trusted as the caller's own: signed with a throwaway key and
/// verified.
pub fn trust_local_bank(bank: &Bank) -> Result<VerifiedBank, ClientError> {
    let key = key()?;
    let now = unix_now();
    let (bytes, _) =
        frankly_bank::sign_bundle(bank, &key, 1, now, now + LOCAL_VALIDITY_SECS).map_err(refused("local bank"))?;
    frankly_bank::verify_bundle(&bytes, &key.verifying_key(), now, None).map_err(refused("local bank"))
}

/// [`trust_local_bank`] for a video (vPDQ) bank.
pub fn trust_local_video_bank(bank: &VideoBank) -> Result<VerifiedVideoBank, ClientError> {
    let key = key()?;
    let now = unix_now();
    let (bytes, _) = frankly_bank::sign_video_bundle(bank, &key, 1, now, now + LOCAL_VALIDITY_SECS)
        .map_err(refused("local video bank"))?;
    frankly_bank::verify_video_bundle(&bytes, &key.verifying_key(), now, None).map_err(refused("local video bank"))
}
