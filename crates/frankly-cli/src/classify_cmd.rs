//! `frankly classify`: run a shipped (or supplied) classifier on images.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use frankly_classify::ImageClassifier;
use frankly_hash::{DecodeOptions, decode};
use rayon::prelude::*;

#[derive(Args, Debug)]
pub(crate) struct ClassifyArgs {
    /// Model name: `<models-dir>/<NAME>.toml` (default: the shipped image model).
    #[arg(long, default_value = "open_nsfw")]
    model: String,
    /// Directory of model manifests.
    #[arg(long, env = "FRANKLY_MODELS", default_value = "models")]
    models_dir: PathBuf,
    /// One JSON object per input and line.
    #[arg(long)]
    json: bool,
    /// Images to classify.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

#[derive(serde::Serialize)]
struct Line {
    input: String,
    model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scores: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub(crate) fn run(args: &ClassifyArgs) -> anyhow::Result<ExitCode> {
    let manifest = args.models_dir.join(format!("{}.toml", args.model));
    let model = ImageClassifier::load(&manifest).with_context(|| format!("cannot load model {}", args.model))?;
    let lines: Vec<Line> = args
        .images
        .par_iter()
        .map(|path| {
            let input = path.display().to_string();
            let model_name = args.model.clone();
            let result = crate::hash_cmd::read_limited(path, frankly_hash::MAX_FILE_BYTES)
                .and_then(|bytes| decode(&bytes, &DecodeOptions::default()).map_err(|e| e.to_string()))
                .and_then(|d| model.classify(&d.rgb).map_err(|e| e.to_string()));
            match result {
                Ok(scores) => Line {
                    input,
                    model: model_name,
                    scores: Some(scores.0.into_iter().map(|(l, s)| (l, serde_json::json!(s))).collect()),
                    error: None,
                },
                Err(e) => Line { input, model: model_name, scores: None, error: Some(e) },
            }
        })
        .collect();
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
        }
    }
    w.flush()?;
    Ok(if lines.iter().any(|l| l.error.is_some()) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
