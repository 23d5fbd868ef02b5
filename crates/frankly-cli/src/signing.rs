//! Keys and bundle options shared by `frankly bank` and `frankly policy`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use frankly_bank::{BundleInfo, Loaded, SigningKey, VerifyingKey, parse_public_key, parse_signing_key, unix_now};
use zeroize::Zeroizing;

use crate::output::{out, say};

/// How to sign a bundle.
#[derive(Args, Debug)]
pub(crate) struct SigningArgs {
    /// Secret key file from `frankly keygen`.
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    /// Days until the bundle expires.
    #[arg(long, default_value_t = 30)]
    expires_in_days: u64,
}

impl SigningArgs {
    /// The signing key.
    pub(crate) fn key(&self) -> anyhow::Result<SigningKey> {
        read_signing_key(&self.key)
    }

    /// Now and the expiry time, Unix seconds.
    pub(crate) fn validity(&self) -> (u64, u64) {
        let now = unix_now();
        (now, now.saturating_add(self.expires_in_days.saturating_mul(86_400)))
    }
}

/// How to verify a bundle as a device would.
#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    /// Public key file of the signer.
    #[arg(long, value_name = "PUB")]
    pub(crate) pubkey: PathBuf,
    #[command(flatten)]
    pub(crate) loaded: LoadedArgs,
    /// The bundle.
    pub(crate) bundle: PathBuf,
}

/// What the device already has, for rollback checks.
#[derive(Args, Debug)]
pub(crate) struct LoadedArgs {
    /// Version of the bundle already loaded: older ones are refused.
    #[arg(long)]
    loaded_version: Option<u64>,
    /// Digest of the bundle already loaded (hex), to refuse a different bundle
    /// with the same version.
    #[arg(long, requires = "loaded_version")]
    loaded_digest: Option<String>,
}

impl LoadedArgs {
    /// The loaded bundle, if given.
    pub(crate) fn loaded(&self) -> anyhow::Result<Option<Loaded>> {
        let Some(version) = self.loaded_version else { return Ok(None) };
        let mut d = [0u8; 32];
        if let Some(hex_digest) = &self.loaded_digest {
            hex::decode_to_slice(hex_digest, &mut d).context("--loaded-digest must be 64 hex digits")?;
        }
        Ok(Some(Loaded { version, digest: d }))
    }
}

/// Reads a secret key file; its text is zeroized after parsing.
pub(crate) fn read_signing_key(path: &Path) -> anyhow::Result<SigningKey> {
    let key_text =
        Zeroizing::new(std::fs::read_to_string(path).with_context(|| format!("cannot read key {}", path.display()))?);
    parse_signing_key(&key_text).with_context(|| path.display().to_string())
}

/// Reads a public key file.
pub(crate) fn read_public_key(path: &Path) -> anyhow::Result<VerifyingKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read public key {}", path.display()))?;
    parse_public_key(&text).with_context(|| path.display().to_string())
}

/// Prints the outcome of verifying `bundle` (what it holds and what was
/// signed, or why it was refused) and gives the exit code.
pub(crate) fn print_verification(
    bundle: &Path,
    outcome: Result<(String, BundleInfo), String>,
) -> anyhow::Result<ExitCode> {
    match outcome {
        Ok((what, i)) => {
            out(&format!(
                "OK {}: {what}, version {}, created {}, expires {}, digest {}",
                bundle.display(),
                i.version,
                i.created,
                i.expires,
                hex::encode(i.digest)
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            say(&format!("REFUSED {}: {e}", bundle.display()));
            Ok(ExitCode::FAILURE)
        }
    }
}
