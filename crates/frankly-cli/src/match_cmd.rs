//! `frankly match`: hash images (or read hashes) and look them up in banks.

use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use frankly_bank::{BankMatch, Matcher, SignalType};
use frankly_hash::{DecodeOptions, PdqHasher, decode};
use rayon::prelude::*;

use crate::bank_cmd::{LoadedBank, load_bank};

/// Largest `--hashes` file read (about 15 million PDQ hashes).
const MAX_HASH_LIST_BYTES: u64 = 1 << 30;

#[derive(Args, Debug)]
pub(crate) struct MatchArgs {
    /// Bank files or bundles to match against (repeatable).
    #[arg(long = "bank", value_name = "BANK_OR_BUNDLE", required = true)]
    banks: Vec<PathBuf>,
    /// Public key that bundles must verify with; with it, unsigned banks are refused.
    #[arg(long, value_name = "PUB")]
    pubkey: Option<PathBuf>,
    /// Match within this distance instead of each bank's threshold.
    #[arg(long)]
    threshold: Option<u32>,
    /// One JSON object per query and line.
    #[arg(long)]
    json: bool,
    /// Read hex hashes, one per line, from FILE (`-` for stdin) instead of images.
    #[arg(long, value_name = "FILE", conflicts_with = "images")]
    hashes: Option<PathBuf>,
    /// Hash type of the lines of --hashes.
    #[arg(long, default_value = "pdq", value_parser = |s: &str| s.parse::<SignalType>())]
    signal: SignalType,
    /// Images to hash and match.
    #[arg(required_unless_present = "hashes")]
    images: Vec<PathBuf>,
}

/// One query's outcome.
#[derive(serde::Serialize)]
struct QueryResult {
    query: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pdq: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quality: Option<u8>,
    matches: Vec<BankMatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl QueryResult {
    /// A query's result; PDQ hashes go under `pdq`, others under `hash` with their `signal`.
    fn new(
        query: String,
        signal: SignalType,
        words: &frankly_bank::Words,
        quality: Option<u8>,
        matches: Vec<BankMatch>,
    ) -> Self {
        let hex = signal.format_hash(words);
        let pdq = signal == SignalType::Pdq;
        QueryResult {
            query,
            signal: (!pdq).then_some(signal.name()),
            pdq: pdq.then(|| hex.clone()),
            hash: (!pdq).then_some(hex),
            quality,
            matches,
            error: None,
        }
    }

    fn failed(query: String, error: String) -> Self {
        QueryResult {
            query,
            signal: None,
            pdq: None,
            hash: None,
            quality: None,
            matches: Vec::new(),
            error: Some(error),
        }
    }
}

pub(crate) fn run(args: &MatchArgs) -> anyhow::Result<ExitCode> {
    let banks = args
        .banks
        .iter()
        .map(|p| load_bank(p, args.pubkey.as_deref()).map(LoadedBank::into_bank))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let signals: BTreeSet<SignalType> = banks.iter().map(|b| b.signal).collect();
    let matcher = Matcher::new(banks);
    let results: Vec<QueryResult> = match &args.hashes {
        Some(path) => match_hashes(&matcher, path, args.signal, args.threshold)?,
        None => args
            .images
            .par_iter()
            .map_init(PdqHasher::new, |pdq, path| match_image(&matcher, &signals, pdq, path, args.threshold))
            .flatten()
            .collect(),
    };
    let stdout = std::io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    for r in &results {
        if args.json {
            serde_json::to_writer(&mut w, r)?;
            writeln!(w)?;
        } else {
            write_text(&mut w, r)?;
        }
    }
    w.flush()?;
    Ok(if results.iter().any(|r| r.error.is_some()) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn match_hashes(
    matcher: &Matcher,
    path: &std::path::Path,
    signal: SignalType,
    threshold: Option<u32>,
) -> anyhow::Result<Vec<QueryResult>> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read hashes from stdin")?
    } else {
        let bytes = crate::hash_cmd::read_limited(path, MAX_HASH_LIST_BYTES)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))?
    };
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    Ok(lines
        .par_iter()
        .map(|line| {
            let query = line.to_string();
            match signal.parse_hash(line) {
                Ok(words) => {
                    let matches = matcher.query(signal, &words, None, threshold);
                    QueryResult::new(query, signal, &words, None, matches)
                }
                Err(e) => QueryResult::failed(query, e.to_string()),
            }
        })
        .collect())
}

/// One result per signal type in the banks (PDQ first), or one error.
fn match_image(
    matcher: &Matcher,
    signals: &BTreeSet<SignalType>,
    pdq: &mut PdqHasher,
    path: &std::path::Path,
    threshold: Option<u32>,
) -> Vec<QueryResult> {
    let query = path.display().to_string();
    let bytes = match crate::hash_cmd::read_limited(path, frankly_hash::MAX_FILE_BYTES) {
        Ok(b) => b,
        Err(e) => return vec![QueryResult::failed(query, e)],
    };
    let image = match decode(&bytes, &DecodeOptions::default()) {
        Ok(d) => d.rgb,
        Err(e) => return vec![QueryResult::failed(query, e.to_string())],
    };
    signals
        .iter()
        .filter_map(|&signal| {
            let (words, quality) =
                signal.hash_image(&image, pdq).or_else(|| Some((signal.hash_file(&bytes)?, None)))?;
            let matches = matcher.query(signal, &words, quality, threshold);
            Some(QueryResult::new(query.clone(), signal, &words, quality, matches))
        })
        .collect()
}

fn write_text(w: &mut impl Write, r: &QueryResult) -> std::io::Result<()> {
    if let Some(e) = &r.error {
        return writeln!(w, "{}  error: {e}", r.query);
    }
    let hash = r.pdq.as_deref().or(r.hash.as_deref()).unwrap_or("");
    let quality = r.quality.map(|q| format!("  quality {q}")).unwrap_or_default();
    writeln!(w, "{}  {hash}{quality}  {} match(es)", r.query, r.matches.len())?;
    for m in &r.matches {
        writeln!(w, "  {:>3}  {}  {}  {}", m.distance, m.hash, m.bank, m.labels.join(","))?;
    }
    Ok(())
}
