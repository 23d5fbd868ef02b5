//! `frankly match`: hash images (or read hashes) and look them up in banks.

use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use frankly_bank::{BankMatch, Matcher, SignalType, VideoMatch, VideoMatcher};
use frankly_hash::{DecodeOptions, PdqHasher, decode};
use rayon::prelude::*;

use crate::bank_cmd::load_banks;

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
    /// Images (or videos, against video and video_md5 banks) to hash and match.
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
    /// For a video against video banks (signal `vpdq`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    video_matches: Vec<VideoMatch>,
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
            video_matches: Vec::new(),
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
            video_matches: Vec::new(),
            error: Some(error),
        }
    }
}

pub(crate) fn run(args: &MatchArgs) -> anyhow::Result<ExitCode> {
    let (banks, video_banks) = load_banks(&args.banks, args.pubkey.as_deref())?;
    let signals: BTreeSet<SignalType> = banks.iter().map(|b| b.signal).collect();
    let matcher = Matcher::new(banks);
    let videos = VideoMatcher::new(video_banks);
    let results: Vec<QueryResult> = match &args.hashes {
        Some(path) => match_hashes(&matcher, path, args.signal, args.threshold)?,
        None => args
            .images
            .par_iter()
            .map_init(PdqHasher::new, |pdq, path| match_image(&matcher, &videos, &signals, pdq, path, args.threshold))
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
    videos: &VideoMatcher,
    signals: &BTreeSet<SignalType>,
    pdq: &mut PdqHasher,
    path: &std::path::Path,
    threshold: Option<u32>,
) -> Vec<QueryResult> {
    let query = path.display().to_string();
    let limit = frankly_hash::MAX_FILE_BYTES.max(frankly_video::MAX_VIDEO_BYTES);
    let bytes = match crate::hash_cmd::read_limited(path, limit) {
        Ok(b) => b,
        Err(e) => return vec![QueryResult::failed(query, e)],
    };
    if frankly_hash::sniff(&bytes).is_video() {
        return match_video(matcher, videos, signals, query, &bytes);
    }
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
    if r.signal == Some("vpdq") {
        writeln!(w, "{}  vpdq  {} video match(es)", r.query, r.video_matches.len())?;
        for m in &r.video_matches {
            let source = m.source_id.as_deref().unwrap_or("-");
            writeln!(
                w,
                "  {:5.1} % of its frames, {:5.1} % of the banked video's  {}  {source}  {}",
                m.query_percent,
                m.compared_percent,
                m.bank,
                m.labels.join(",")
            )?;
        }
        return Ok(());
    }
    let hash = r.pdq.as_deref().or(r.hash.as_deref()).unwrap_or("");
    let quality = r.quality.map(|q| format!("  quality {q}")).unwrap_or_default();
    writeln!(w, "{}  {hash}{quality}  {} match(es)", r.query, r.matches.len())?;
    for m in &r.matches {
        writeln!(w, "  {:>3}  {}  {}  {}", m.distance, m.hash, m.bank, m.labels.join(","))?;
    }
    Ok(())
}

/// A video: its MD5 against the `video_md5` banks and its vPDQ (one frame a
/// second, as the scanner hashes) against the video banks.
fn match_video(
    matcher: &Matcher,
    videos: &VideoMatcher,
    signals: &BTreeSet<SignalType>,
    query: String,
    bytes: &[u8],
) -> Vec<QueryResult> {
    let mut out = Vec::new();
    if signals.contains(&SignalType::VideoMd5)
        && let Some(md5) = SignalType::VideoMd5.hash_file(bytes)
    {
        let matches = matcher.query(SignalType::VideoMd5, &md5, None, None);
        out.push(QueryResult::new(query.clone(), SignalType::VideoMd5, &md5, None, matches));
    }
    if videos.banks().next().is_some() {
        let options = frankly_video::VpdqOptions {
            video: frankly_video::VideoOptions {
                seconds_per_hash: frankly_client::VIDEO_SECONDS_PER_HASH,
                ..Default::default()
            },
            ..Default::default()
        };
        match frankly_video::vpdq(bytes, &options, |_, _| {}) {
            Ok(hash) => out.push(QueryResult {
                query: query.clone(),
                signal: Some("vpdq"),
                pdq: None,
                hash: None,
                quality: None,
                matches: Vec::new(),
                video_matches: videos.query(&hash.features),
                error: None,
            }),
            Err(e) => out.push(QueryResult::failed(query.clone(), e.to_string())),
        }
    }
    if out.is_empty() {
        out.push(QueryResult::failed(query, "a video, and no video_md5 or video bank is loaded".into()));
    }
    out
}
