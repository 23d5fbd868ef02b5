//! `frankly policy ...`: checking, signing and verifying policies.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use frankly_policy::{
    BundleError, POLICY_BUNDLE, Policy, PolicyError, VerifiedPolicy, sign_policy, unix_now, verify_policy,
};

use crate::output::{out, say};
use crate::signing::{SigningArgs, VerifyArgs, print_verification, read_public_key};

#[derive(Subcommand, Debug)]
pub(crate) enum PolicyCommand {
    /// Validate a policy file and summarise its rules.
    Check(CheckArgs),
    /// Sign a policy into a bundle that devices accept.
    Sign(SignArgs),
    /// Verify a policy bundle as a device would.
    Verify(VerifyArgs),
}

#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    /// Policy files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    signing: SigningArgs,
    /// Policy version; must increase with every new bundle (default: the current Unix time).
    #[arg(long = "policy-version")]
    policy_version: Option<u64>,
    /// The policy file.
    policy: PathBuf,
    /// The bundle file to write.
    #[arg(short = 'o', long = "output", value_name = "BUNDLE")]
    output: PathBuf,
}

pub(crate) fn run(command: &PolicyCommand) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::Check(a) => check(a),
        PolicyCommand::Sign(a) => sign(a),
        PolicyCommand::Verify(a) => verify(a),
    }
}

fn read_policy_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = crate::hash_cmd::read_limited(path, frankly_policy::MAX_POLICY_BYTES as u64 + 64 * 1024)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(bytes)
}

/// Reads a policy: a bundle verified with `pubkey`, or, without a key, a
/// plain policy file (a bundle is then refused, its signature unchecked).
/// Loads a policy for a scanner. With a public key, only a bundle that
/// verifies is accepted; without one, bundles are refused (their signature
/// would go unchecked) and a plain policy file the user points at is
/// trusted as theirs (`frankly_client::trust_local_policy`).
pub(crate) fn load_policy(path: &Path, pubkey: Option<&Path>) -> anyhow::Result<VerifiedPolicy> {
    let bytes = read_policy_bytes(path)?;
    match (pubkey, frankly_policy::peek_policy(&bytes)) {
        (Some(pubkey), _) => {
            let key = read_public_key(pubkey)?;
            Ok(verify_policy(&bytes, &key, unix_now(), None).with_context(|| format!("refusing {}", path.display()))?)
        }
        (None, Err(BundleError::Unsigned { .. })) => {
            parse_plain(&bytes, path)?;
            let text = std::str::from_utf8(&bytes).map_err(|_| PolicyError::NotText)?;
            Ok(frankly_client::trust_local_policy(text).with_context(|| format!("policy {}", path.display()))?)
        }
        (None, Ok(_)) => bail!("{} is a signed bundle: pass the signer's public key to verify it", path.display()),
        (None, Err(e)) => bail!("{}: {e}", path.display()),
    }
}

fn parse_plain(bytes: &[u8], path: &Path) -> anyhow::Result<Policy> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| PolicyError::NotText).with_context(|| path.display().to_string())?;
    Policy::from_toml(text).with_context(|| format!("invalid policy {}", path.display()))
}

fn check(a: &CheckArgs) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for path in &a.files {
        match read_policy_bytes(path).and_then(|b| parse_plain(&b, path)) {
            Ok(p) => out(&format!(
                "OK {}: policy {} for {:?}, {} rules, settings {:?}",
                path.display(),
                p.name,
                p.audiences,
                p.rules.len(),
                p.settings
            ))?,
            Err(e) => {
                say(&format!("{}: {e:#}", path.display()));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn sign(a: &SignArgs) -> anyhow::Result<ExitCode> {
    let key = a.signing.key()?;
    let bytes = read_policy_bytes(&a.policy)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| PolicyError::NotText)?;
    let (now, expires) = a.signing.validity();
    let version = a.policy_version.unwrap_or(now);
    let (bundle, info) = sign_policy(text, &key, version, now, expires)
        .with_context(|| format!("cannot sign {}", a.policy.display()))?;
    std::fs::write(&a.output, &bundle).with_context(|| format!("cannot write {}", a.output.display()))?;
    out(&format!(
        "{}: {} bundle, version {version}, expires {expires}, digest {}",
        a.output.display(),
        POLICY_BUNDLE.name,
        hex::encode(info.digest)
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn verify(a: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let key = read_public_key(&a.pubkey)?;
    let bytes = read_policy_bytes(&a.bundle)?;
    let loaded = a.loaded.loaded()?;
    let outcome = verify_policy(&bytes, &key, unix_now(), loaded.as_ref())
        .map(|v| (format!("policy {} ({} rules)", v.policy().name, v.policy().rules.len()), *v.info()))
        .map_err(|e| e.to_string());
    print_verification(&a.bundle, outcome)
}
