//! `frankly hash --algo vpdq,video_md5`: hash videos, as Meta's vPDQ tool
//! and HMA do.

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use frankly_video::{Timestamps, VideoEnd, VideoLimits, VideoOptions, VpdqFeature, VpdqOptions};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::hash_cmd::Input;

/// File extensions picked up when walking a directory for videos.
pub(crate) const VIDEO_EXTENSIONS: [&str; 13] =
    ["mp4", "m4v", "mov", "3gp", "3g2", "mkv", "webm", "avi", "ts", "mpg", "mpeg", "flv", "ogv"];

/// The video signals `frankly hash` computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum VideoAlgo {
    /// Meta's vPDQ.
    Vpdq,
    /// HMA's `video_md5`.
    VideoMd5,
}

impl VideoAlgo {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "vpdq" => Some(VideoAlgo::Vpdq),
            "video_md5" | "video-md5" => Some(VideoAlgo::VideoMd5),
            _ => None,
        }
    }
}

/// How to hash videos.
pub(crate) struct VideoRun<'a> {
    pub(crate) algorithms: &'a [VideoAlgo],
    pub(crate) seconds_per_hash: f64,
    pub(crate) downsample: Option<(u32, u32)>,
    pub(crate) meta_timestamps: bool,
    pub(crate) max_file_bytes: u64,
    pub(crate) json: bool,
    pub(crate) output_dir: Option<&'a Path>,
}

/// One output line of `--json`.
#[derive(serde::Serialize)]
struct Line<'a> {
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    video_md5: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vpdq: Option<&'a [VpdqFeature]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decoded_frames: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

struct Outcome {
    path: std::path::PathBuf,
    md5: Option<String>,
    features: Option<Vec<VpdqFeature>>,
    decoded_frames: Option<u64>,
    /// Why the file was not (fully) hashed; what was hashed is still printed.
    error: Option<String>,
}

fn end_error(end: &VideoEnd) -> Option<String> {
    end.cut_short().map(|why| format!("{why}: hashed up to there"))
}

fn hash_one(path: &Path, run: &VideoRun<'_>, bars: &MultiProgress) -> Outcome {
    let mut outcome = Outcome { path: path.to_owned(), md5: None, features: None, decoded_frames: None, error: None };
    let bytes = match crate::hash_cmd::read_limited(path, run.max_file_bytes) {
        Ok(b) => b,
        Err(e) => {
            outcome.error = Some(e);
            return outcome;
        }
    };
    if run.algorithms.contains(&VideoAlgo::VideoMd5) {
        outcome.md5 = Some(frankly_video::video_md5(&bytes));
    }
    if !run.algorithms.contains(&VideoAlgo::Vpdq) {
        return outcome;
    }
    let options = VpdqOptions {
        video: VideoOptions {
            limits: VideoLimits { max_file_bytes: run.max_file_bytes, ..VideoLimits::default() },
            seconds_per_hash: run.seconds_per_hash,
            downsample: run.downsample,
            threads: 1,
        },
        timestamps: if run.meta_timestamps { Timestamps::FrameRate } else { Timestamps::Presentation },
    };
    // A bar per file, by decoded frames (drawn only when stderr is a terminal).
    let bar = bars.add(ProgressBar::no_length());
    if let Ok(style) = ProgressStyle::with_template("{prefix} {bar:30} {pos} frames, {per_sec}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    let result = frankly_video::vpdq(&bytes, &options, |frame, _| bar.set_position(frame.number + 1));
    bar.finish_and_clear();
    match result {
        Ok(hash) => {
            outcome.error = end_error(&hash.summary.end);
            outcome.decoded_frames = Some(hash.summary.decoded_frames);
            outcome.features = Some(hash.features);
        }
        Err(e) => outcome.error = Some(e.to_string()),
    }
    outcome
}

/// Hashes every video and prints the results in input order; exit code 1
/// when any file could not be (fully) hashed.
pub(crate) fn run(inputs: &[Input], run: &VideoRun<'_>) -> anyhow::Result<ExitCode> {
    let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let outcomes: Vec<Outcome> = inputs
        .par_iter()
        .map(|input| match input {
            Input::File(path) => hash_one(path, run, &bars),
            Input::Unreadable(path, e) => {
                Outcome { path: path.clone(), md5: None, features: None, decoded_frames: None, error: Some(e.clone()) }
            }
        })
        .collect();
    if let Some(dir) = run.output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for o in &outcomes {
        let path = o.path.display().to_string();
        if let (Some(dir), Some(features)) = (run.output_dir, &o.features) {
            // Meta's tool: one `<name>.txt` per video.
            let name = o.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "video".into());
            let file = dir.join(format!("{name}.txt"));
            std::fs::write(&file, frankly_video::format_meta(features))
                .with_context(|| format!("cannot write {}", file.display()))?;
        }
        if run.json {
            let line = Line {
                path,
                video_md5: o.md5.clone(),
                vpdq: o.features.as_deref(),
                decoded_frames: o.decoded_frames,
                error: o.error.clone(),
            };
            serde_json::to_writer(&mut out, &line)?;
            writeln!(out)?;
            continue;
        }
        if let Some(md5) = &o.md5 {
            writeln!(out, "{md5}  {path}")?;
        }
        if let (Some(features), None) = (&o.features, run.output_dir) {
            writeln!(out, "# {path}")?;
            out.write_all(frankly_video::format_meta(features).as_bytes())?;
        }
        if let Some(e) = &o.error {
            writeln!(out, "# {path}  error: {e}")?;
        }
    }
    out.flush()?;
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    if failed > 0 {
        tracing::warn!(failed, total = outcomes.len(), "some videos could not be (fully) hashed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
