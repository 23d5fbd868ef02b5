//! `frankly classify`: run a shipped (or supplied) classifier on images or text.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use frankly_classify::{Detection, ImageClassifier, Scores, TextClassifier};
use frankly_hash::{DecodeOptions, decode};
use rayon::prelude::*;

/// The shipped image model, used for images without `--model`.
pub(crate) const DEFAULT_IMAGE_MODEL: &str = "open_nsfw";
/// The shipped text model, used for text without `--model`.
pub(crate) const DEFAULT_TEXT_MODEL: &str = "profanity_check";
/// Largest `--text-file` read, in bytes.
const MAX_TEXT_FILE_BYTES: u64 = 64 << 20;

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("inputs").required(true).args(["images", "text", "text_file"])))]
pub(crate) struct ClassifyArgs {
    /// Model name: `<models-dir>/<NAME>.toml` (default: open_nsfw for images,
    /// profanity_check for text).
    #[arg(long)]
    model: Option<String>,
    /// Directory of model manifests.
    #[arg(long, env = "FRANKLY_MODELS", default_value = "models")]
    models_dir: PathBuf,
    /// One JSON object per input and line.
    #[arg(long)]
    json: bool,
    /// A message to classify (repeatable).
    #[arg(long, conflicts_with_all = ["images", "text_file"])]
    text: Vec<String>,
    /// A file of messages, one per line (`-` for standard input).
    #[arg(long, conflicts_with = "images")]
    text_file: Option<PathBuf>,
    /// Images to classify.
    images: Vec<PathBuf>,
}

#[derive(serde::Serialize)]
struct Line {
    input: String,
    model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scores: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    detections: Vec<Detection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Line {
    fn new(input: String, model: &str, result: Result<(Scores, Vec<Detection>), String>) -> Line {
        let model = model.to_owned();
        match result {
            Ok((scores, detections)) => Line {
                input,
                model,
                scores: Some(scores.0.into_iter().map(|(l, s)| (l, serde_json::json!(s))).collect()),
                detections,
                error: None,
            },
            Err(e) => Line { input, model, scores: None, detections: Vec::new(), error: Some(e) },
        }
    }
}

pub(crate) fn run(args: &ClassifyArgs) -> anyhow::Result<ExitCode> {
    let lines = if args.images.is_empty() { classify_text(args)? } else { classify_images(args)? };
    let stdout = std::io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    for line in &lines {
        if args.json {
            serde_json::to_writer(&mut w, line)?;
            writeln!(w)?;
        } else if let Some(e) = &line.error {
            writeln!(w, "{}  error: {e}", line.input)?;
        } else if let Some(scores) = &line.scores {
            let s: Vec<String> =
                scores.iter().map(|(l, v)| format!("{l} {:.4}", v.as_f64().unwrap_or(f64::NAN))).collect();
            writeln!(w, "{}  {}", line.input, s.join("  "))?;
            for d in &line.detections {
                let [x, y, bw, bh] = d.bbox;
                writeln!(w, "    {} {:.4} at {x:.0},{y:.0} {bw:.0}x{bh:.0}", d.label, d.score)?;
            }
        }
    }
    w.flush()?;
    Ok(if lines.iter().any(|l| l.error.is_some()) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn manifest_path(args: &ClassifyArgs, default: &str) -> (String, PathBuf) {
    let name = args.model.clone().unwrap_or_else(|| default.to_owned());
    let path = args.models_dir.join(format!("{name}.toml"));
    (name, path)
}

fn classify_images(args: &ClassifyArgs) -> anyhow::Result<Vec<Line>> {
    let (name, manifest) = manifest_path(args, DEFAULT_IMAGE_MODEL);
    let model = ImageClassifier::load(&manifest).with_context(|| format!("cannot load model {name}"))?;
    Ok(args
        .images
        .par_iter()
        .map(|path| {
            let result = crate::hash_cmd::read_limited(path, frankly_hash::MAX_FILE_BYTES)
                .and_then(|bytes| decode(&bytes, &DecodeOptions::default()).map_err(|e| e.to_string()))
                .and_then(|d| model.classify(&d.rgb).map_err(|e| e.to_string()))
                .map(|v| (v.scores, v.detections));
            Line::new(path.display().to_string(), &name, result)
        })
        .collect())
}

fn classify_text(args: &ClassifyArgs) -> anyhow::Result<Vec<Line>> {
    let (name, manifest) = manifest_path(args, DEFAULT_TEXT_MODEL);
    let model = TextClassifier::load(&manifest).with_context(|| format!("cannot load model {name}"))?;
    let texts: Vec<String> = match &args.text_file {
        Some(path) => read_lines(path)?,
        None => args.text.clone(),
    };
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    // Batches through one plan; a text the model refuses (too long) is
    // reported on its own line without failing the others.
    let lines = refs
        .par_chunks(frankly_classify::TEXT_BATCH)
        .flat_map_iter(|chunk| match model.classify_batch(chunk) {
            Ok(scores) => chunk
                .iter()
                .zip(scores)
                .map(|(t, s)| Line::new((*t).to_owned(), &name, Ok((s, Vec::new()))))
                .collect::<Vec<_>>(),
            Err(_) => chunk
                .iter()
                .map(|t| {
                    let result = model.classify(t).map(|s| (s, Vec::new())).map_err(|e| e.to_string());
                    let input = if result.is_ok() { (*t).to_owned() } else { truncate_for_display(t) };
                    Line::new(input, &name, result)
                })
                .collect(),
        })
        .collect();
    Ok(lines)
}

/// The lines of a text file or of standard input (`-`), read within a limit.
fn read_lines(path: &Path) -> anyhow::Result<Vec<String>> {
    let bytes = if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::io::stdin().lock(), MAX_TEXT_FILE_BYTES + 1),
            &mut buf,
        )?;
        anyhow::ensure!(buf.len() as u64 <= MAX_TEXT_FILE_BYTES, "standard input is over {MAX_TEXT_FILE_BYTES} bytes");
        buf
    } else {
        crate::hash_cmd::read_limited(path, MAX_TEXT_FILE_BYTES).map_err(anyhow::Error::msg)?
    };
    let text = String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8", path.display()))?;
    Ok(text.lines().map(str::to_owned).collect())
}

/// Long inputs are echoed by their first 80 characters in error lines.
fn truncate_for_display(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}
