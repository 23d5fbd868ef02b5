//! `frankly eval robustness --media video`: vPDQ-hash every video of a
//! corpus and its transformed copies, then measure how often a copy still
//! matches its original under vPDQ's rule, and how its match percentage
//! separates it from the other videos.
//!
//! The transforms are made by the `ffmpeg` program (Debian's `ffmpeg`;
//! another with `$FRANKLY_FFMPEG`): re-encoding with filters is what
//! ffmpeg does, and it is what Thorn's `perception` video benchmark and
//! Meta's `tmk` benchmarks run, so the copies are the ones those tools make.
//! Writing an H.264 encoder pipeline through the FFmpeg libraries by hand
//! would only repeat the program. The copies are kept under the output
//! directory (`videos/TRANSFORM/NAME.mp4`) so other tools can hash the same
//! files. Hashing is frankly's own (`frankly_video::vpdq`).
//!
//! **Scores.** A query (a transformed copy) against an original gives vPDQ's
//! two percentages. The *distance* used for the ROC and recall curves is
//! `100 - floor(query percent)`, so "distance ≤ t" means "at least
//! `100 - t` % of the copy's frames found in the original", the side HMA's
//! 80 % applies to. Negatives are the copy against every original of
//! another source (with `group_delimiter`, videos whose names agree before
//! it are one source: re-encodes of one clip are not false positives).

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use frankly_bank::vpdq::{VpdqThresholds, percentages, usable_hashes};
use frankly_hash::PdqHash;
use frankly_video::{VideoOptions, VpdqOptions};
use rayon::prelude::*;

use crate::EvalError;
use crate::metrics::{FprPoint, Histogram, PrecisionPoint, RocPoint, auc, recall_at_fpr, recall_at_precision, roc};

/// The transforms a video study runs when none are given.
pub const DEFAULT_VIDEO_TRANSFORMS: &str =
    "bitrate:250,resize:0.5,crop:0.1,flip,trim:0.5,letterbox:0.25,speed:1.5,fps:10";

/// Environment variable naming the ffmpeg program (default `ffmpeg` on the `PATH`).
pub const FFMPEG_ENV: &str = "FRANKLY_FFMPEG";

/// CPU seconds one ffmpeg run may take (ffmpeg's `-timelimit`), so a
/// hostile corpus file cannot hold a worker for ever.
pub const FFMPEG_CPU_SECONDS: u32 = 600;

/// Most videos a study takes.
pub const MAX_STUDY_VIDEOS: usize = 10_000;

/// Bytes read of each corpus file to tell whether it is a video.
const SNIFF_BYTES: u64 = 600;

/// Distances run from 0 (every frame of the copy found) to 100 (none).
const SCORE_BINS: u32 = 100;

/// A change made to a video.
#[derive(Clone, Debug, PartialEq)]
pub enum VideoTransform {
    /// Re-encode with H.264 at this many kbit/s.
    Bitrate(u32),
    /// Scale both sides by this factor (0.05..=4).
    Resize(f64),
    /// Cut this share of width and height off, centred (0..0.9).
    Crop(f64),
    /// Mirror left to right.
    Flip,
    /// Keep this share of the duration, from the middle (0.05..1).
    Trim(f64),
    /// Add black bars above and below, this share of the height in all (0..=2).
    Letterbox(f64),
    /// Play this many times faster (0.25..=4; frames are dropped or repeated at the same frame rate).
    Speed(f64),
    /// Convert to this many frames per second (1..=120).
    Fps(f64),
}

impl fmt::Display for VideoTransform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VideoTransform::Bitrate(k) => write!(f, "bitrate:{k}"),
            VideoTransform::Resize(x) => write!(f, "resize:{x}"),
            VideoTransform::Crop(x) => write!(f, "crop:{x}"),
            VideoTransform::Flip => write!(f, "flip"),
            VideoTransform::Trim(x) => write!(f, "trim:{x}"),
            VideoTransform::Letterbox(x) => write!(f, "letterbox:{x}"),
            VideoTransform::Speed(x) => write!(f, "speed:{x}"),
            VideoTransform::Fps(x) => write!(f, "fps:{x}"),
        }
    }
}

impl FromStr for VideoTransform {
    type Err = EvalError;

    fn from_str(s: &str) -> Result<Self, EvalError> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let bad = |why: &str| EvalError::Invalid(format!("video transform {s:?}: {why}"));
        let number = |lo: f64, hi: f64| -> Result<f64, EvalError> {
            let a = arg.ok_or_else(|| bad("needs a value, as in name:value"))?;
            let x: f64 = a.parse().map_err(|_| bad("the value is not a number"))?;
            if x.is_finite() && (lo..=hi).contains(&x) {
                Ok(x)
            } else {
                Err(bad(&format!("the value must be in {lo}..={hi}")))
            }
        };
        Ok(match name {
            "bitrate" => VideoTransform::Bitrate(number(16.0, 100_000.0)? as u32),
            "resize" => VideoTransform::Resize(number(0.05, 4.0)?),
            "crop" => VideoTransform::Crop(number(0.0, 0.9)?),
            "flip" if arg.is_none() => VideoTransform::Flip,
            "trim" => VideoTransform::Trim(number(0.05, 1.0)?),
            "letterbox" => VideoTransform::Letterbox(number(0.0, 2.0)?),
            "speed" => VideoTransform::Speed(number(0.25, 4.0)?),
            "fps" => VideoTransform::Fps(number(1.0, 120.0)?),
            _ => {
                return Err(bad(
                    "unknown; one of bitrate:KBIT, resize:F, crop:F, flip, trim:F, letterbox:F, speed:F, fps:N",
                ));
            }
        })
    }
}

impl VideoTransform {
    /// Parses a comma-separated list.
    pub fn parse_list(list: &str) -> Result<Vec<VideoTransform>, EvalError> {
        list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::parse).collect()
    }

    /// The ffmpeg arguments between the input and the output (and, for a
    /// trim, before the input), for a video of `seconds`.
    fn ffmpeg_args(&self, seconds: f64) -> (Vec<String>, Vec<String>) {
        let vf = |filter: String| vec!["-vf".to_owned(), filter];
        let crf = || vec!["-crf".to_owned(), "23".to_owned()];
        let mut before = Vec::new();
        let after = match self {
            VideoTransform::Bitrate(k) => vec![
                "-b:v".to_owned(),
                format!("{k}k"),
                "-maxrate".to_owned(),
                format!("{k}k"),
                "-bufsize".to_owned(),
                format!("{}k", 2 * k),
            ],
            VideoTransform::Resize(x) => [vf(format!("scale=trunc(iw*{x}/2)*2:trunc(ih*{x}/2)*2")), crf()].concat(),
            VideoTransform::Crop(x) => {
                let keep = 1.0 - x;
                [vf(format!("crop=trunc(iw*{keep}/2)*2:trunc(ih*{keep}/2)*2")), crf()].concat()
            }
            VideoTransform::Flip => [vf("hflip".to_owned()), crf()].concat(),
            VideoTransform::Trim(x) => {
                before = vec![
                    "-ss".to_owned(),
                    format!("{:.3}", seconds * (1.0 - x) / 2.0),
                    "-t".to_owned(),
                    format!("{:.3}", seconds * x),
                ];
                crf()
            }
            VideoTransform::Letterbox(x) => {
                [vf(format!("pad=iw:trunc(ih*(1+{x})/2)*2:0:(oh-ih)/2:black")), crf()].concat()
            }
            VideoTransform::Speed(x) => [vf(format!("setpts=PTS/{x}")), crf()].concat(),
            VideoTransform::Fps(x) => [vf(format!("fps={x}")), crf()].concat(),
        };
        (before, after)
    }
}

/// The first `limit` bytes of a file (all of it if shorter).
fn read_at_most(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A video file of a corpus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorpusVideo {
    /// Path relative to the corpus root, with `/` separators.
    pub name: String,
    /// Where the file is.
    pub path: PathBuf,
}

/// Lists the files under `root` whose bytes are a video container (sniffed,
/// not by extension), sorted by name, at most [`MAX_STUDY_VIDEOS`].
pub fn list_videos(root: &Path) -> Result<Vec<CorpusVideo>, EvalError> {
    let mut out = Vec::new();
    for image in crate::corpus::list_files(root)? {
        let head = read_at_most(&image.path, SNIFF_BYTES).map_err(|e| EvalError::io(&image.path, e))?;
        if frankly_hash::sniff(&head).is_video() {
            out.push(CorpusVideo { name: image.name, path: image.path });
        }
    }
    if out.len() > MAX_STUDY_VIDEOS {
        return Err(EvalError::Invalid(format!(
            "{}: {} videos, over the limit of {MAX_STUDY_VIDEOS}",
            root.display(),
            out.len()
        )));
    }
    Ok(out)
}

/// What a video study runs.
#[derive(Clone, Debug)]
pub struct VideoRobustnessConfig {
    /// The transforms, in report order.
    pub transforms: Vec<VideoTransform>,
    /// Seconds between hashed frames of the copies (0: every frame).
    pub seconds_per_hash: f64,
    /// Seconds between hashed frames of the originals, as a bank holds
    /// them (0: every frame, as Meta's published hashes are).
    pub bank_seconds_per_hash: f64,
    /// vPDQ's rule for "matched" (quality, distance, both percentages).
    pub thresholds: VpdqThresholds,
    /// Precision target of the perception-style recall, 0..=1.
    pub precision_target: f64,
    /// False-positive-rate target, 0..=1.
    pub fpr_target: f64,
    /// Videos whose names agree before this character are one source.
    pub group_delimiter: Option<char>,
    /// Where the transformed copies are written (`TRANSFORM/NAME.mp4`).
    pub work_dir: PathBuf,
    /// Decoding limits.
    pub limits: frankly_video::VideoLimits,
}

/// One transformed copy against the originals.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct VideoQuery {
    /// Index of the video in [`VideoRobustnessReport::videos`].
    pub video: usize,
    /// Share of the copy's usable frames found in its own original.
    pub query_percent: f64,
    /// Share of the original's usable frames found in the copy.
    pub compared_percent: f64,
    /// Whether vPDQ's rule matches the copy to its original.
    pub matched: bool,
    /// The highest query percentage against an original of another source.
    pub nearest_negative_percent: f64,
    /// How many originals of other sources the rule matches it to.
    pub false_matches: usize,
}

/// The results for one transform.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VideoCell {
    /// The transform, as written on the command line.
    pub transform: String,
    /// One per video the transform succeeded on.
    pub queries: Vec<VideoQuery>,
    /// Share of queries vPDQ's rule matches to their original, 0..=1.
    pub rule_recall: f64,
    /// (query, other-source original) pairs the rule matches.
    pub rule_false_matches: u64,
    /// Distances (`100 - floor(query %)`) of the copies to their originals.
    pub positives: Histogram,
    /// Distances of the copies to every original of another source.
    pub negatives: Histogram,
    /// Recall at the precision target (perception's definition).
    pub at_precision: Option<PrecisionPoint>,
    /// Recall at the false-positive-rate target.
    pub at_fpr: FprPoint,
    /// The ROC curve.
    pub roc: Vec<RocPoint>,
    /// Area under it.
    pub auc: f64,
}

impl VideoCell {
    /// Mean share of a copy's frames found in its original (0 without copies).
    pub fn mean_query_percent(&self) -> f64 {
        mean(self.queries.iter().map(|q| q.query_percent))
    }

    /// Mean share of an original's frames found in its copy.
    pub fn mean_compared_percent(&self) -> f64 {
        mean(self.queries.iter().map(|q| q.compared_percent))
    }

    /// The highest share of a copy's frames found in a video of another source.
    pub fn max_nearest_negative_percent(&self) -> f64 {
        self.queries.iter().map(|q| q.nearest_negative_percent).fold(0.0, f64::max)
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// Everything a video study measured.
#[derive(Clone, Debug)]
pub struct VideoRobustnessReport {
    /// The config it ran with.
    pub config: VideoRobustnessConfig,
    /// Names of the videos whose original hashed, in order.
    pub videos: Vec<String>,
    /// Sources of those videos (the name, or its part before the delimiter).
    pub sources: Vec<String>,
    /// Videos, or video/transform pairs, that failed, with the reason.
    pub failures: Vec<(String, String)>,
    /// Per transform, in config order.
    pub cells: Vec<VideoCell>,
}

/// The ffmpeg program.
fn ffmpeg() -> PathBuf {
    std::env::var_os(FFMPEG_ENV).map_or_else(|| PathBuf::from("ffmpeg"), PathBuf::from)
}

/// Checks that ffmpeg runs and has the libx264 encoder.
pub fn check_ffmpeg() -> Result<(), EvalError> {
    let program = ffmpeg();
    let out = Command::new(&program).args(["-hide_banner", "-encoders"]).output().map_err(|e| {
        EvalError::Invalid(format!(
            "cannot run {} ({e}): the video study makes its copies with ffmpeg (Debian: apt install ffmpeg; or set {FFMPEG_ENV})",
            program.display()
        ))
    })?;
    if !String::from_utf8_lossy(&out.stdout).contains("libx264") {
        return Err(EvalError::Invalid(format!("{} has no libx264 encoder", program.display())));
    }
    Ok(())
}

/// Makes one transformed copy with ffmpeg.
fn transform_video(input: &Path, output: &Path, t: &VideoTransform, seconds: f64) -> Result<(), String> {
    if let Some(dir) = output.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let (before, after) = t.ffmpeg_args(seconds);
    let out = Command::new(ffmpeg())
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-threads", "1"])
        .args(["-timelimit", &FFMPEG_CPU_SECONDS.to_string()])
        .args(before)
        .arg("-i")
        .arg(input)
        .args(["-map", "0:v:0", "-an", "-sn", "-dn"])
        .args(after)
        .args(["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-threads", "1"])
        .arg(output)
        .output()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(format!("ffmpeg failed ({}): {}", out.status, stderr.trim().chars().take(400).collect::<String>()))
    }
}

/// The usable frames of a video file and its duration in seconds.
fn hash_file(
    path: &Path,
    config: &VideoRobustnessConfig,
    seconds_per_hash: f64,
) -> Result<(Vec<PdqHash>, f64), String> {
    let limit = config.limits.max_file_bytes;
    let size = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len();
    if size > limit {
        return Err(format!("{}: {size} bytes, over the limit of {limit} (max_file_bytes)", path.display()));
    }
    // Bounded even if the file grows meanwhile: the decoder refuses a longer read by name.
    let bytes = read_at_most(path, limit.saturating_add(1)).map_err(|e| format!("{}: {e}", path.display()))?;
    let options = VpdqOptions {
        video: VideoOptions { limits: config.limits.clone(), seconds_per_hash, downsample: None, threads: 1 },
        ..VpdqOptions::default()
    };
    let hashed = frankly_video::vpdq(&bytes, &options, |_, _| {}).map_err(|e| e.to_string())?;
    let last = hashed.features.iter().map(|f| f.timestamp).fold(0.0f64, f64::max);
    let seconds = hashed.summary.info.declared_seconds.filter(|s| s.is_finite() && *s > 0.0).unwrap_or(last + 1.0);
    Ok((usable_hashes(&hashed.features, config.thresholds.quality), seconds))
}

/// The file name of a copy: the corpus name with its `/` made `_` and its
/// extension `.mp4`.
fn copy_name(name: &str) -> PathBuf {
    Path::new(&name.replace('/', "_")).with_extension("mp4")
}

/// Score of a query percentage: `100 - floor(q)`.
fn score(query_percent: f64) -> u32 {
    SCORE_BINS - (query_percent.floor().clamp(0.0, 100.0) as u32)
}

/// Runs a video study: hashes each original, makes and hashes each
/// transformed copy (in parallel on the current rayon pool, one ffmpeg and
/// one decoder thread per task), and computes each transform's numbers.
/// `progress` is called once per video.
pub fn run_video_robustness(
    videos: &[CorpusVideo],
    config: &VideoRobustnessConfig,
    progress: &(dyn Fn() + Sync),
) -> Result<VideoRobustnessReport, EvalError> {
    check_ffmpeg()?;
    type Hashed = (String, Vec<PdqHash>, Vec<Result<Vec<PdqHash>, String>>);
    let hashed: Vec<Result<Hashed, (String, String)>> = videos
        .par_iter()
        .map(|v| {
            let result = hash_file(&v.path, config, config.bank_seconds_per_hash).map_err(|e| (v.name.clone(), e)).map(
                |(original, seconds)| {
                    let copies = config
                        .transforms
                        .iter()
                        .map(|t| {
                            let out = config.work_dir.join(t.to_string().replace(':', "_")).join(copy_name(&v.name));
                            transform_video(&v.path, &out, t, seconds)?;
                            hash_file(&out, config, config.seconds_per_hash).map(|(h, _)| h)
                        })
                        .collect();
                    (v.name.clone(), original, copies)
                },
            );
            progress();
            result
        })
        .collect();
    let mut failures = Vec::new();
    let mut ok = Vec::new();
    for h in hashed {
        match h {
            Ok(h) => ok.push(h),
            Err(f) => failures.push(f),
        }
    }
    if ok.len() < 2 {
        return Err(EvalError::Invalid(format!(
            "a video robustness study needs at least 2 videos that hash, found {}",
            ok.len()
        )));
    }
    let sources: Vec<String> = ok
        .iter()
        .map(|(name, _, _)| {
            let base = name.rsplit('/').next().unwrap_or(name);
            match config.group_delimiter {
                Some(d) => base.split(d).next().unwrap_or(base).to_owned(),
                None => base.to_owned(),
            }
        })
        .collect();
    if sources.iter().collect::<BTreeSet<_>>().len() < 2 {
        return Err(EvalError::Invalid("a video study needs videos of at least two sources".into()));
    }
    let rule = &config.thresholds;
    let mut cells = Vec::new();
    for (t, transform) in config.transforms.iter().enumerate() {
        let mut queries = Vec::new();
        let mut positives = Histogram::new(SCORE_BINS);
        let mut negatives = Histogram::new(SCORE_BINS);
        let mut rule_false_matches = 0u64;
        for (i, (name, original, copies)) in ok.iter().enumerate() {
            let copy = match &copies[t] {
                Ok(copy) => copy,
                Err(e) => {
                    failures.push((format!("{name} ({transform})"), e.clone()));
                    continue;
                }
            };
            let own = percentages(copy, original, rule.distance);
            positives.add(score(own.query_percent));
            let mut nearest = 0.0f64;
            let mut false_matches = 0;
            for (j, (_, other, _)) in ok.iter().enumerate() {
                if sources[j] == sources[i] {
                    continue;
                }
                let m = percentages(copy, other, rule.distance);
                negatives.add(score(m.query_percent));
                nearest = nearest.max(m.query_percent);
                false_matches += usize::from(m.is_match(rule));
            }
            rule_false_matches += false_matches as u64;
            queries.push(VideoQuery {
                video: i,
                query_percent: own.query_percent,
                compared_percent: own.compared_percent,
                matched: own.is_match(rule),
                nearest_negative_percent: nearest,
                false_matches,
            });
        }
        let pairs: Vec<(u32, u32)> =
            queries.iter().map(|q| (score(q.query_percent), score(q.nearest_negative_percent))).collect();
        let curve = roc(&positives, &negatives);
        cells.push(VideoCell {
            transform: transform.to_string(),
            rule_recall: if queries.is_empty() {
                0.0
            } else {
                queries.iter().filter(|q| q.matched).count() as f64 / queries.len() as f64
            },
            rule_false_matches,
            at_precision: recall_at_precision(&pairs, config.precision_target),
            at_fpr: recall_at_fpr(&positives, &negatives, config.fpr_target),
            auc: auc(&curve),
            roc: curve,
            positives,
            negatives,
            queries,
        });
    }
    Ok(VideoRobustnessReport {
        config: config.clone(),
        videos: ok.into_iter().map(|(n, _, _)| n).collect(),
        sources,
        failures,
        cells,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_parse_and_print_back() {
        let list = VideoTransform::parse_list(DEFAULT_VIDEO_TRANSFORMS).unwrap();
        assert_eq!(list.len(), 8);
        let printed: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(printed.join(","), DEFAULT_VIDEO_TRANSFORMS);
        for bad in ["resize", "resize:x", "resize:9", "flip:1", "blur:2", "speed:0", "fps:NaN"] {
            let e = bad.parse::<VideoTransform>().unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn a_score_is_the_share_of_frames_missed() {
        assert_eq!(score(100.0), 0);
        assert_eq!(score(80.0), 20);
        assert_eq!(score(79.99), 21);
        assert_eq!(score(0.0), 100);
    }

    #[test]
    fn copies_are_named_after_their_originals() {
        assert_eq!(copy_name("a/clip.webm"), Path::new("a_clip.mp4"));
        assert_eq!(copy_name("clip"), Path::new("clip.mp4"));
    }

    #[test]
    fn a_trim_keeps_the_middle() {
        let (before, _) = VideoTransform::Trim(0.5).ffmpeg_args(10.0);
        assert_eq!(before, ["-ss", "2.500", "-t", "5.000"]);
    }
}
