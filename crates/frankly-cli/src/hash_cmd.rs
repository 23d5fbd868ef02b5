//! `frankly hash`: hash files and directories.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use frankly_hash::{Algorithm, DecodeLimits, DecodeOptions, HashReport, PdqHasher, hash_bytes};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::UsageError;
use crate::hash_video::{self, VideoAlgo};

/// File extensions picked up when walking a directory (case-insensitive).
/// Files named explicitly are hashed whatever their name.
const IMAGE_EXTENSIONS: [&str; 9] = ["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "jfif"];

#[derive(Args, Debug)]
pub(crate) struct HashArgs {
    /// Algorithms, comma-separated. Images: pdq, pdq-dihedral, phash, dhash,
    /// dhash-vertical, dhash-double, ahash, mhash, blockhash, sha256, md5.
    /// Videos: vpdq (Meta's format), video_md5 (HMA's). Not both kinds at once.
    #[arg(long, value_delimiter = ',', default_value = "pdq", value_parser = parse_algorithm)]
    algo: Vec<AlgoArg>,

    /// vPDQ: hash one frame every this many seconds, counted in frames at the
    /// average frame rate as Meta does; 0 hashes every frame.
    #[arg(long, default_value_t = 1.0)]
    seconds_per_hash: f64,

    /// vPDQ: scale frames to WIDTHxHEIGHT first (Meta's `-d`; libswscale's area average).
    #[arg(long, value_parser = parse_size)]
    downsample: Option<(u32, u32)>,

    /// vPDQ: write Meta's timestamp column (frame number / average frame rate)
    /// instead of presentation times.
    #[arg(long)]
    meta_timestamps: bool,

    /// vPDQ: write one Meta file `<name>.txt` per video into this directory
    /// instead of printing the hashes.
    #[arg(long)]
    output_dir: Option<PathBuf>,

    /// Print one JSON object per input, one per line.
    #[arg(long)]
    json: bool,

    /// Worker threads (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,

    /// Apply the EXIF orientation before hashing (Meta's reference does not).
    #[arg(long)]
    exif_orient: bool,

    /// Refuse images with more pixels than this.
    #[arg(long, default_value_t = frankly_hash::MAX_PIXELS)]
    max_pixels: u64,

    /// Refuse images wider or taller than this.
    #[arg(long, default_value_t = frankly_hash::MAX_DIMENSION)]
    max_dimension: u32,

    /// Refuse files larger than this many bytes (default: 268435456 for
    /// images, 536870912 for videos).
    #[arg(long)]
    max_file_bytes: Option<u64>,

    /// Files, or directories to walk recursively for images.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// An image algorithm or a video one.
#[derive(Clone, Copy, Debug)]
enum AlgoArg {
    Image(Algorithm),
    Video(VideoAlgo),
}

fn parse_algorithm(s: &str) -> Result<AlgoArg, String> {
    if let Some(video) = VideoAlgo::parse(s) {
        return Ok(AlgoArg::Video(video));
    }
    s.parse().map(AlgoArg::Image).map_err(|e: frankly_hash::UnknownAlgorithm| format!("{e}, vpdq, video_md5"))
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| format!("{s:?} is not WIDTHxHEIGHT"))?;
    let n =
        |v: &str| v.trim().parse::<u32>().ok().filter(|&v| v > 0).ok_or_else(|| format!("{s:?} is not WIDTHxHEIGHT"));
    Ok((n(w)?, n(h)?))
}

/// One output line.
#[derive(serde::Serialize)]
struct Line<'a> {
    path: String,
    #[serde(flatten)]
    report: &'a HashReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub(crate) fn run(args: &HashArgs) -> anyhow::Result<ExitCode> {
    let mut algorithms: Vec<Algorithm> =
        args.algo.iter().filter_map(|a| if let AlgoArg::Image(a) = a { Some(*a) } else { None }).collect();
    let mut videos: Vec<VideoAlgo> =
        args.algo.iter().filter_map(|a| if let AlgoArg::Video(a) = a { Some(*a) } else { None }).collect();
    algorithms.sort();
    algorithms.dedup();
    videos.sort();
    videos.dedup();
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(n) = args.threads {
        pool = pool.num_threads(n.into());
    }
    let pool = pool.build().context("cannot start worker threads")?;
    if !videos.is_empty() {
        if !algorithms.is_empty() {
            return Err(UsageError(
                "vpdq and video_md5 hash videos and the other algorithms images: give one kind".into(),
            )
            .into());
        }
        if !(args.seconds_per_hash.is_finite() && args.seconds_per_hash >= 0.0) {
            return Err(UsageError(format!(
                "--seconds-per-hash {} is not a non-negative number",
                args.seconds_per_hash
            ))
            .into());
        }
        let inputs = collect_inputs(&args.paths, &hash_video::VIDEO_EXTENSIONS);
        let run = hash_video::VideoRun {
            algorithms: &videos,
            seconds_per_hash: args.seconds_per_hash,
            downsample: args.downsample,
            meta_timestamps: args.meta_timestamps,
            max_file_bytes: args.max_file_bytes.unwrap_or(frankly_video::MAX_VIDEO_BYTES),
            json: args.json,
            output_dir: args.output_dir.as_deref(),
        };
        return pool.install(|| hash_video::run(&inputs, &run));
    }
    let options = DecodeOptions {
        limits: DecodeLimits {
            max_dimension: args.max_dimension,
            max_pixels: args.max_pixels,
            max_file_bytes: args.max_file_bytes.unwrap_or(frankly_hash::MAX_FILE_BYTES),
            ..DecodeLimits::default()
        },
        exif_orient: args.exif_orient,
    };

    let inputs = collect_inputs(&args.paths, &IMAGE_EXTENSIONS);
    let progress = progress_bar(inputs.len() as u64);
    let results: Vec<(String, HashReport, Option<String>)> = pool.install(|| {
        inputs
            .par_iter()
            .map_init(PdqHasher::new, |pdq, input| {
                let result = match input {
                    Input::File(path) => hash_file(path, &algorithms, &options, pdq),
                    Input::Unreadable(_, err) => (HashReport::default(), Some(err.clone())),
                };
                progress.inc(1);
                (input.path().display().to_string(), result.0, result.1)
            })
            .collect()
    });
    progress.finish_and_clear();

    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if args.json {
        for (path, report, error) in &results {
            let line = Line { path: path.clone(), report, error: error.clone() };
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
    } else {
        write_table(&mut out, &algorithms, &results)?;
    }
    out.flush()?;
    let failed = results.iter().filter(|r| r.2.is_some()).count();
    if failed > 0 {
        tracing::warn!(failed, total = results.len(), "some inputs could not be hashed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) enum Input {
    File(PathBuf),
    /// A path that could not be listed or found, with the reason.
    Unreadable(PathBuf, String),
}

impl Input {
    pub(crate) fn path(&self) -> &Path {
        match self {
            Input::File(p) | Input::Unreadable(p, _) => p,
        }
    }
}

/// Expands the command-line paths: files as given, directories walked in
/// sorted order for files with one of `extensions`. Errors become inputs
/// that report them.
fn collect_inputs(paths: &[PathBuf], extensions: &[&str]) -> Vec<Input> {
    let mut inputs = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
                    match entry {
                        Ok(e) if e.file_type().is_file() && has_extension(e.path(), extensions) => {
                            inputs.push(Input::File(e.into_path()));
                        }
                        Ok(_) => {}
                        Err(err) => {
                            let p = err.path().unwrap_or(path).to_path_buf();
                            inputs.push(Input::Unreadable(p, err.to_string()));
                        }
                    }
                }
            }
            Ok(_) => inputs.push(Input::File(path.clone())),
            Err(err) => inputs.push(Input::Unreadable(path.clone(), err.to_string())),
        }
    }
    inputs
}

fn has_extension(path: &Path, extensions: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| extensions.iter().any(|known| known.eq_ignore_ascii_case(e)))
}

fn hash_file(
    path: &Path,
    algorithms: &[Algorithm],
    options: &DecodeOptions,
    pdq: &mut PdqHasher,
) -> (HashReport, Option<String>) {
    let bytes = match read_limited(path, options.limits.max_file_bytes) {
        Ok(bytes) => bytes,
        Err(err) => return (HashReport::default(), Some(err)),
    };
    let outcome = hash_bytes(&bytes, algorithms, options, pdq);
    (outcome.report, outcome.error.map(|e| e.to_string()))
}

/// Reads a file, refusing it once it exceeds `limit` bytes (checked while
/// reading, so a growing file or a device cannot exhaust memory).
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("file is over the limit of {limit} bytes"));
    }
    Ok(bytes)
}

fn progress_bar(len: u64) -> ProgressBar {
    if len < 2 {
        return ProgressBar::hidden();
    }
    // Draws only when stderr is a terminal.
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} files, {per_sec}, eta {eta}") {
        bar.set_style(style);
    }
    bar
}

fn write_table(
    out: &mut impl Write,
    algorithms: &[Algorithm],
    results: &[(String, HashReport, Option<String>)],
) -> io::Result<()> {
    let width = results.iter().map(|r| r.0.len()).max().unwrap_or(4).max(4);
    let columns: Vec<Algorithm> = algorithms.iter().copied().filter(|a| *a != Algorithm::PdqDihedral).collect();
    let with_quality = algorithms.iter().any(|a| matches!(a, Algorithm::Pdq | Algorithm::PdqDihedral));
    let col_width = |a: Algorithm| match a {
        Algorithm::Pdq | Algorithm::Sha256 => 64,
        Algorithm::Md5 => 32,
        Algorithm::Perceptual(p) => (p.bits() / 4) as usize,
        Algorithm::PdqDihedral => 0,
    };
    write!(out, "{:width$}", "PATH")?;
    for &a in &columns {
        write!(out, "  {:w$}", a.name().to_uppercase(), w = col_width(a))?;
    }
    if with_quality {
        write!(out, "  QUALITY")?;
    }
    writeln!(out)?;
    for (path, report, error) in results {
        write!(out, "{path:width$}")?;
        if let Some(error) = error {
            writeln!(out, "  error: {error}")?;
            continue;
        }
        for &a in &columns {
            write!(out, "  {:w$}", report.get(a).unwrap_or_default(), w = col_width(a))?;
        }
        if let Some(q) = report.quality {
            write!(out, "  {q:>7}")?;
        }
        writeln!(out)?;
        if let Some(dihedral) = &report.pdq_dihedral {
            for (which, hash) in frankly_hash::Dihedral::ALL.iter().zip(dihedral) {
                writeln!(out, "{:width$}  {:<10} {hash}", "", which.name())?;
            }
        }
    }
    Ok(())
}
