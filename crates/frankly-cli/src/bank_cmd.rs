//! `frankly keygen`, `frankly bank ...`: making, signing and inspecting banks.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use frankly_bank::{
    Bank, BundleError, SignalType, TextFormat, VerifiedBank, generate_key, peek_bundle, public_key_text, sign_bundle,
    signing_key_text, unix_now, verify_bundle,
};

use crate::output::{out, say};
use crate::signing::{SigningArgs, VerifyArgs, print_verification, read_public_key};

/// Largest bank or bundle file the CLI reads (50 million PDQ entries fit).
const MAX_BANK_FILE_BYTES: u64 = 4 << 30;

#[derive(Args, Debug)]
pub(crate) struct KeygenArgs {
    /// Where to write the secret key (mode 0600); the public key goes to FILE.pub.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    /// Overwrite existing key files.
    #[arg(long)]
    force: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum BankCommand {
    /// Build a bank file from a text list.
    Build(BuildArgs),
    /// Sign a bank into a bundle.
    Sign(SignArgs),
    /// Verify a bundle's signature, validity and version.
    Verify(VerifyArgs),
    /// Show a bank's or bundle's counts, thresholds and digest.
    Info(InfoArgs),
    /// Write a bank (or a verified bundle's bank) back out as a text list.
    Export(ExportArgs),
}

#[derive(Args, Debug)]
pub(crate) struct BuildArgs {
    /// The text list: one hash per line (pdq-hex) or `hash,label,...` (csv).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Format of the list.
    #[arg(long, default_value = "pdq-hex", value_parser = |s: &str| s.parse::<TextFormat>())]
    format: TextFormat,
    /// Hash type of the list.
    #[arg(long, default_value = "pdq", value_parser = |s: &str| s.parse::<SignalType>())]
    signal: SignalType,
    /// Bank name, shown in matches.
    #[arg(long)]
    name: String,
    /// Match threshold (default: 31 for 256-bit hashes, 8 for 64-bit ones).
    #[arg(long)]
    threshold: Option<u32>,
    /// Queries under this quality are not matched (default: 50 for PDQ).
    #[arg(long)]
    quality_floor: Option<u8>,
    /// Fail on the first invalid line instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// The bank file to write.
    #[arg(short = 'o', long = "output", value_name = "BANK")]
    output: PathBuf,
}

#[derive(Args, Debug)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    signing: SigningArgs,
    /// Bank version; must increase with every new bundle of this bank
    /// (default: the current Unix time).
    #[arg(long = "bank-version")]
    bank_version: Option<u64>,
    /// The bank file.
    bank: PathBuf,
    /// The bundle file to write.
    #[arg(short = 'o', long = "output", value_name = "BUNDLE")]
    output: PathBuf,
}

#[derive(Args, Debug)]
pub(crate) struct InfoArgs {
    /// A bank file or a bundle.
    file: PathBuf,
}

#[derive(Args, Debug)]
pub(crate) struct ExportArgs {
    /// Output format.
    #[arg(long, default_value = "csv", value_parser = |s: &str| s.parse::<TextFormat>())]
    format: TextFormat,
    /// Public key, required to export a bundle's bank.
    #[arg(long, value_name = "PUB")]
    pubkey: Option<PathBuf>,
    /// A bank file or a bundle.
    file: PathBuf,
    /// Where to write the list.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
}

pub(crate) fn keygen(args: &KeygenArgs) -> anyhow::Result<ExitCode> {
    let key = generate_key()?;
    let public_path = with_suffix(&args.output, ".pub");
    write_new(&args.output, signing_key_text(&key).as_bytes(), 0o600, args.force)?;
    write_new(&public_path, public_key_text(&key.verifying_key()).as_bytes(), 0o644, args.force)?;
    say(&format!("secret key: {} (keep it off devices)", args.output.display()));
    say(&format!("public key: {}", public_path.display()));
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run(command: &BankCommand) -> anyhow::Result<ExitCode> {
    match command {
        BankCommand::Build(a) => build(a),
        BankCommand::Sign(a) => sign(a),
        BankCommand::Verify(a) => verify(a),
        BankCommand::Info(a) => info(a),
        BankCommand::Export(a) => export(a),
    }
}

fn build(a: &BuildArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&a.input).with_context(|| format!("cannot read {}", a.input.display()))?;
    let (mut bank, report) = Bank::import_text(&a.name, a.signal, a.format, &text, a.strict)
        .with_context(|| format!("cannot import {}", a.input.display()))?;
    if let Some(t) = a.threshold {
        bank.threshold = t;
    }
    if let Some(q) = a.quality_floor {
        bank.quality_floor = q;
    }
    let bytes = bank.to_bytes()?;
    std::fs::write(&a.output, &bytes).with_context(|| format!("cannot write {}", a.output.display()))?;
    for skipped in &report.skipped {
        say(&format!("{}: skipped {skipped}", a.input.display()));
    }
    out(&format!(
        "{}: {} entries ({} lines, {} duplicates merged, {} invalid lines skipped), {} threshold {}, digest {}",
        a.output.display(),
        bank.len(),
        report.lines_read,
        report.duplicates_merged,
        report.skipped.len(),
        bank.signal,
        bank.threshold,
        file_digest(&bytes)
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn sign(a: &SignArgs) -> anyhow::Result<ExitCode> {
    let key = a.signing.key()?;
    let bank = read_bank_file(&a.bank)?;
    let (now, expires) = a.signing.validity();
    let version = a.bank_version.unwrap_or(now);
    let (bytes, info) = sign_bundle(&bank, &key, version, now, expires)?;
    std::fs::write(&a.output, &bytes).with_context(|| format!("cannot write {}", a.output.display()))?;
    out(&format!(
        "{}: bank {} ({} entries), version {version}, expires {expires}, digest {}",
        a.output.display(),
        bank.name,
        bank.len(),
        hex::encode(info.digest)
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn verify(a: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let key = read_public_key(&a.pubkey)?;
    let bytes = read_limited(&a.bundle)?;
    let loaded = a.loaded.loaded()?;
    let outcome = verify_bundle(&bytes, &key, unix_now(), loaded.as_ref())
        .map(|v| (format!("bank {} ({} {} entries)", v.bank().name, v.bank().len(), v.bank().signal), *v.info()))
        .map_err(|e| e.to_string());
    print_verification(&a.bundle, outcome)
}

fn info(a: &InfoArgs) -> anyhow::Result<ExitCode> {
    let bytes = read_limited(&a.file)?;
    let (bank, header) = match peek_bundle(&bytes) {
        Ok((info, bank_bytes)) => (Bank::from_bytes(bank_bytes)?, Some(info)),
        Err(BundleError::Unsigned { .. }) => (Bank::from_bytes(&bytes)?, None),
        Err(e) => bail!("{}: {e}", a.file.display()),
    };
    let mut lines = vec![
        format!("file:          {}", a.file.display()),
        format!("bank:          {}", bank.name),
        format!("signal:        {} ({} bits)", bank.signal, bank.signal.bits()),
        format!("entries:       {}", bank.len()),
        format!("threshold:     {}", bank.threshold),
        format!("quality floor: {}", bank.quality_floor),
    ];
    for (label, count) in bank.label_counts() {
        lines.push(format!("label:         {label} ({count})"));
    }
    match header {
        Some(info) => {
            lines.push(format!(
                "bundle:        version {}, created {}, expires {}",
                info.version, info.created, info.expires
            ));
            lines.push(format!(
                "digest:        {} (signature not checked; use `frankly bank verify`)",
                hex::encode(info.digest)
            ));
        }
        None => lines.push(format!("digest:        {} (unsigned bank file, SHA-256)", file_digest(&bytes))),
    }
    out(&lines.join("\n"))?;
    Ok(ExitCode::SUCCESS)
}

fn export(a: &ExportArgs) -> anyhow::Result<ExitCode> {
    let bytes = read_limited(&a.file)?;
    let bank = load_bank_bytes(&bytes, &a.file, a.pubkey.as_deref())?.into_bank();
    std::fs::write(&a.output, bank.export_text(a.format))
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    out(&format!("{}: {} entries", a.output.display(), bank.len()))?;
    Ok(ExitCode::SUCCESS)
}

/// A bank as the CLI loaded it: from a bundle that verified, or from a
/// plain bank file the user pointed at.
pub(crate) enum LoadedBank {
    /// From a verified bundle.
    Verified(VerifiedBank),
    /// A plain local file.
    Local(Bank),
}

impl LoadedBank {
    /// The bank, for commands that only match (`match`, `serve`).
    pub(crate) fn into_bank(self) -> Bank {
        match self {
            LoadedBank::Verified(v) => v.into_bank(),
            LoadedBank::Local(bank) => bank,
        }
    }

    /// The bank for a scanner, which takes only verified banks: a plain
    /// local file is trusted as the user's (`frankly_client::trust_local_bank`).
    pub(crate) fn into_verified(self) -> anyhow::Result<VerifiedBank> {
        match self {
            LoadedBank::Verified(v) => Ok(v),
            LoadedBank::Local(bank) => Ok(frankly_client::trust_local_bank(&bank)?),
        }
    }
}

/// Loads a bank from a bank file or a bundle. With a public key, only a
/// bundle that verifies is accepted; without one, bundles are refused (their
/// signature would go unchecked) and plain bank files are read.
pub(crate) fn load_bank(path: &Path, pubkey: Option<&Path>) -> anyhow::Result<LoadedBank> {
    let bytes = read_limited(path)?;
    load_bank_bytes(&bytes, path, pubkey)
}

fn load_bank_bytes(bytes: &[u8], path: &Path, pubkey: Option<&Path>) -> anyhow::Result<LoadedBank> {
    match (pubkey, peek_bundle(bytes)) {
        (Some(pubkey), _) => {
            let key = read_public_key(pubkey)?;
            let verified =
                verify_bundle(bytes, &key, unix_now(), None).with_context(|| format!("refusing {}", path.display()))?;
            Ok(LoadedBank::Verified(verified))
        }
        (None, Err(BundleError::Unsigned { .. })) => Ok(LoadedBank::Local(
            Bank::from_bytes(bytes).with_context(|| format!("cannot read bank {}", path.display()))?,
        )),
        (None, Ok(_)) => bail!("{} is a signed bundle: pass --pubkey to verify it", path.display()),
        (None, Err(e)) => bail!("{}: {e}", path.display()),
    }
}

fn read_bank_file(path: &Path) -> anyhow::Result<Bank> {
    let bytes = read_limited(path)?;
    Bank::from_bytes(&bytes).with_context(|| format!("cannot read bank {}", path.display()))
}

fn read_limited(path: &Path) -> anyhow::Result<Vec<u8>> {
    let len = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
    if len > MAX_BANK_FILE_BYTES {
        bail!("{} is {len} bytes, over the limit of {MAX_BANK_FILE_BYTES} for bank files", path.display());
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn file_digest(bytes: &[u8]) -> String {
    frankly_hash::sha256_hex(bytes)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes a new file with `mode`, refusing to replace one unless `force`.
fn write_new(path: &Path, bytes: &[u8], mode: u32, force: bool) -> anyhow::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(mode);
        let mut file = options
            .open(path)
            .with_context(|| format!("cannot create {} (use --force to replace it)", path.display()))?;
        // `mode` applies only to new files; make a replaced one private too.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
        file.write_all(bytes)?;
    }
    Ok(())
}
