//! `frankly keygen`, `frankly bank ...`: making, signing and inspecting banks.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use frankly_bank::{
    Bank, BundleError, ImportReport, SignalType, TextFormat, VerifiedBank, VideoBank, VideoEntry, generate_key,
    peek_bundle, public_key_text, sign_bundle, sign_video_bundle, signing_key_text, unix_now, verify_bundle,
    verify_video_bundle,
};

use crate::UsageError;
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
    /// The list: one hash per line (pdq-hex), `hash,label,...` (csv), a
    /// ThreatExchange dataset CSV (threatexchange); for vpdq, a
    /// ThreatExchange CSV or Meta vPDQ files (meta: one file, or a directory
    /// of `.txt` files, one video each).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Format of the list: pdq-hex, csv, threatexchange; for vpdq: threatexchange or meta.
    #[arg(long, default_value = "pdq-hex")]
    format: String,
    /// Signal type: pdq, phash, dhash, ahash, mhash, blockhash, video_md5, or vpdq (a video bank).
    #[arg(long, default_value = "pdq")]
    signal: String,
    /// Labels for every video read from Meta files (vpdq, --format meta).
    #[arg(long = "label")]
    labels: Vec<String>,
    /// vPDQ: least share of the query's frames that must match, in percent (default 80, HMA's).
    #[arg(long)]
    min_query_percent: Option<f64>,
    /// vPDQ: least share of the banked video's frames that must match (default 0, HMA's).
    #[arg(long)]
    min_compared_percent: Option<f64>,
    /// Bank name, shown in matches.
    #[arg(long)]
    name: String,
    /// Match threshold (default: 31 for 256-bit hashes, 8 for 64-bit ones,
    /// 0 for video_md5; for vpdq the frame distance, 31).
    #[arg(long)]
    threshold: Option<u32>,
    /// Queries under this quality are not matched (default: 50 for PDQ and
    /// for the frames of vpdq, on both sides).
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
    if a.signal.trim().eq_ignore_ascii_case("vpdq") {
        return build_video(a);
    }
    let signal: SignalType = a.signal.parse().map_err(|e: String| UsageError(format!("{e}, vpdq")))?;
    let format: TextFormat = a.format.parse().map_err(UsageError)?;
    let text = std::fs::read_to_string(&a.input).with_context(|| format!("cannot read {}", a.input.display()))?;
    let (mut bank, report) = Bank::import_text(&a.name, signal, format, &text, a.strict)
        .with_context(|| format!("cannot import {}", a.input.display()))?;
    if let Some(t) = a.threshold {
        bank.threshold = t;
    }
    if let Some(q) = a.quality_floor {
        bank.quality_floor = q;
    }
    let bytes = bank.to_bytes()?;
    std::fs::write(&a.output, &bytes).with_context(|| format!("cannot write {}", a.output.display()))?;
    report_import(&a.input, &report);
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

fn report_import(input: &Path, report: &ImportReport) {
    for skipped in &report.skipped {
        say(&format!("{}: skipped {skipped}", input.display()));
    }
    for (signal, rows) in &report.other_signal_types {
        say(&format!(
            "{}: left out {rows} rows of signal type {signal} (they belong in another bank)",
            input.display()
        ));
    }
}

/// `bank build --signal vpdq`: a video bank.
fn build_video(a: &BuildArgs) -> anyhow::Result<ExitCode> {
    let (mut bank, report) = match a.format.as_str() {
        "threatexchange" | "te-csv" => {
            let text =
                std::fs::read_to_string(&a.input).with_context(|| format!("cannot read {}", a.input.display()))?;
            VideoBank::import_threatexchange(&a.name, &text, a.strict)
                .with_context(|| format!("cannot import {}", a.input.display()))?
        }
        "meta" => meta_files(a)?,
        other => {
            return Err(
                UsageError(format!("vpdq banks are read from threatexchange or meta lists, not {other:?}")).into()
            );
        }
    };
    let t = &mut bank.thresholds;
    t.distance = a.threshold.unwrap_or(t.distance);
    t.quality = a.quality_floor.unwrap_or(t.quality);
    t.min_query_percent = a.min_query_percent.unwrap_or(t.min_query_percent);
    t.min_compared_percent = a.min_compared_percent.unwrap_or(t.min_compared_percent);
    let bytes = bank.to_bytes()?;
    std::fs::write(&a.output, &bytes).with_context(|| format!("cannot write {}", a.output.display()))?;
    report_import(&a.input, &report);
    out(&format!(
        "{}: {} videos, {} frames ({} read, {} duplicates merged, {} invalid skipped), vpdq distance {}, query {} %, compared {} %, digest {}",
        a.output.display(),
        bank.entries.len(),
        bank.frames(),
        report.lines_read,
        report.duplicates_merged,
        report.skipped.len(),
        bank.thresholds.distance,
        bank.thresholds.min_query_percent,
        bank.thresholds.min_compared_percent,
        file_digest(&bytes)
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// Meta vPDQ files: `--input` a file or a directory of `.txt` files, one video each.
fn meta_files(a: &BuildArgs) -> anyhow::Result<(VideoBank, ImportReport)> {
    let mut files = Vec::new();
    if a.input.is_dir() {
        for entry in walkdir::WalkDir::new(&a.input).sort_by_file_name() {
            let entry = entry?;
            if entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "txt") {
                files.push(entry.into_path());
            }
        }
    } else {
        files.push(a.input.clone());
    }
    let mut bank = VideoBank::new(&a.name)?;
    let mut report = ImportReport::default();
    let labels: std::collections::BTreeSet<String> = a.labels.iter().cloned().collect();
    let videos = files.iter().enumerate().map(|(i, file)| {
        let entry = read_meta_file(file)
            .map(|features| VideoEntry {
                features,
                labels: labels.clone(),
                source_id: file.file_stem().map(|s| s.to_string_lossy().into_owned()),
            })
            .map_err(|reason| format!("{}: {reason}", file.display()));
        (i + 1, entry)
    });
    bank.add_many(videos, a.strict, &mut report)?;
    Ok((bank, report))
}

fn read_meta_file(file: &Path) -> Result<Vec<frankly_hash::VpdqFeature>, String> {
    let len = std::fs::metadata(file).map_err(|e| e.to_string())?.len();
    // A Meta line is under 100 bytes.
    let limit = frankly_hash::MAX_VPDQ_FEATURES as u64 * 100;
    if len > limit {
        return Err(format!("{len} bytes, over the limit of {limit} for a vPDQ file"));
    }
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    frankly_hash::parse_meta(&text).map_err(|e| e.to_string())
}

fn sign(a: &SignArgs) -> anyhow::Result<ExitCode> {
    let key = a.signing.key()?;
    let (now, expires) = a.signing.validity();
    let version = a.bank_version.unwrap_or(now);
    let file = read_limited(&a.bank)?;
    if file.starts_with(b"FRANKLYV") {
        let bank =
            VideoBank::from_bytes(&file).with_context(|| format!("cannot read video bank {}", a.bank.display()))?;
        let (bytes, info) = sign_video_bundle(&bank, &key, version, now, expires)?;
        std::fs::write(&a.output, &bytes).with_context(|| format!("cannot write {}", a.output.display()))?;
        out(&format!(
            "{}: video bank {} ({} videos), version {version}, expires {expires}, digest {}",
            a.output.display(),
            bank.name,
            bank.entries.len(),
            hex::encode(info.digest)
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let bank = Bank::from_bytes(&file).with_context(|| format!("cannot read bank {}", a.bank.display()))?;
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
    let outcome = match verify_bundle(&bytes, &key, unix_now(), loaded.as_ref()) {
        Ok(v) => Ok((format!("bank {} ({} {} entries)", v.bank().name, v.bank().len(), v.bank().signal), *v.info())),
        // A video bank bundle is signed in its own domain: verify it there.
        Err(BundleError::WrongKind { .. }) => verify_video_bundle(&bytes, &key, unix_now(), loaded.as_ref())
            .map(|v| {
                let b = v.bank();
                (format!("video bank {} ({} videos, {} frames)", b.name, b.entries.len(), b.frames()), *v.info())
            })
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    print_verification(&a.bundle, outcome)
}

fn info(a: &InfoArgs) -> anyhow::Result<ExitCode> {
    let bytes = read_limited(&a.file)?;
    let (payload, header) = match peek_bundle(&bytes) {
        Ok((info, bank_bytes)) => (bank_bytes, Some(info)),
        Err(BundleError::Unsigned { .. }) => (&bytes[..], None),
        // A plain video bank file.
        Err(_) if bytes.starts_with(b"FRANKLYV") => (&bytes[..], None),
        Err(e) => bail!("{}: {e}", a.file.display()),
    };
    let mut lines = vec![format!("file:          {}", a.file.display())];
    if payload.starts_with(b"FRANKLYV") {
        let bank = VideoBank::from_bytes(payload)?;
        let t = &bank.thresholds;
        lines.extend([
            format!("video bank:    {}", bank.name),
            "signal:        vpdq".to_owned(),
            format!("videos:        {}", bank.entries.len()),
            format!("frames:        {}", bank.frames()),
            format!(
                "rule:          quality >= {}, distance <= {}, query >= {} %, compared >= {} %",
                t.quality, t.distance, t.min_query_percent, t.min_compared_percent
            ),
        ]);
        for (label, count) in bank.label_counts() {
            lines.push(format!("label:         {label} ({count})"));
        }
    } else {
        let bank = Bank::from_bytes(payload)?;
        lines.extend([
            format!("bank:          {}", bank.name),
            format!("signal:        {} ({} bits)", bank.signal, bank.signal.bits()),
            format!("entries:       {}", bank.len()),
            format!("threshold:     {}", bank.threshold),
            format!("quality floor: {}", bank.quality_floor),
        ]);
        for (label, count) in bank.label_counts() {
            lines.push(format!("label:         {label} ({count})"));
        }
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
    if let Some(videos) = load_video_bank_bytes(&bytes, &a.file, a.pubkey.as_deref())? {
        let bank = videos.into_bank();
        if a.format != TextFormat::ThreatExchange {
            return Err(UsageError("a video bank is exported as --format threatexchange".into()).into());
        }
        std::fs::write(&a.output, bank.export_threatexchange())
            .with_context(|| format!("cannot write {}", a.output.display()))?;
        out(&format!("{}: {} videos", a.output.display(), bank.entries.len()))?;
        return Ok(ExitCode::SUCCESS);
    }
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

/// A video bank as the CLI loaded it.
pub(crate) enum LoadedVideoBank {
    /// From a verified bundle.
    Verified(frankly_bank::VerifiedVideoBank),
    /// A plain local file.
    Local(VideoBank),
}

impl LoadedVideoBank {
    pub(crate) fn into_bank(self) -> VideoBank {
        match self {
            LoadedVideoBank::Verified(v) => v.into_bank(),
            LoadedVideoBank::Local(bank) => bank,
        }
    }

    /// For a scanner (see [`LoadedBank::into_verified`]).
    pub(crate) fn into_verified(self) -> anyhow::Result<frankly_bank::VerifiedVideoBank> {
        match self {
            LoadedVideoBank::Verified(v) => Ok(v),
            LoadedVideoBank::Local(bank) => Ok(frankly_client::trust_local_video_bank(&bank)?),
        }
    }
}

/// A video bank, if the file is one (a plain `FRANKLYV` file, or a bundle
/// whose payload is one); loaded under the same rules as [`load_bank`]: with
/// a public key only a bundle that verifies, without one only a plain file.
/// (Which verification runs is chosen by the payload's magic bytes; the
/// verification itself then authenticates everything.)
pub(crate) fn load_video_bank_bytes(
    bytes: &[u8],
    path: &Path,
    pubkey: Option<&Path>,
) -> anyhow::Result<Option<LoadedVideoBank>> {
    let plain = bytes.starts_with(b"FRANKLYV");
    let bundled = peek_bundle(bytes).is_ok_and(|(_, payload)| payload.starts_with(b"FRANKLYV"));
    match (pubkey, plain, bundled) {
        (_, false, false) => Ok(None),
        (Some(pubkey), _, _) => {
            let key = read_public_key(pubkey)?;
            let verified = verify_video_bundle(bytes, &key, unix_now(), None)
                .with_context(|| format!("refusing {}", path.display()))?;
            Ok(Some(LoadedVideoBank::Verified(verified)))
        }
        (None, true, _) => Ok(Some(LoadedVideoBank::Local(
            VideoBank::from_bytes(bytes).with_context(|| format!("cannot read video bank {}", path.display()))?,
        ))),
        (None, false, true) => bail!("{} is a signed bundle: pass --pubkey to verify it", path.display()),
    }
}

/// Loads each bank file (PDQ, other image hashes and `video_md5` banks,
/// or video banks; bundles verified under `pubkey`), apart by kind.
pub(crate) fn load_banks(
    paths: &[std::path::PathBuf],
    pubkey: Option<&Path>,
) -> anyhow::Result<(Vec<Bank>, Vec<VideoBank>)> {
    let (mut banks, mut video_banks) = (Vec::new(), Vec::new());
    for path in paths {
        let bytes = read_limited(path)?;
        match load_video_bank_bytes(&bytes, path, pubkey)? {
            Some(videos) => video_banks.push(videos.into_bank()),
            None => banks.push(load_bank(path, pubkey).map(LoadedBank::into_bank)?),
        }
    }
    Ok((banks, video_banks))
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

pub(crate) fn read_limited(path: &Path) -> anyhow::Result<Vec<u8>> {
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
