//! Times a model on preprocessed tensors, for `bench/classify_vs_onnxruntime.py`.
//!
//! `cargo run --release -p frankly-classify --example classify_bench -- MANIFEST --batch B --reps N INPUT.f32`
//! INPUT.f32 holds B input tensors (little-endian f32, the manifest's shape
//! without the batch dimension, one after another). `FRANKLY_MODEL_THREADS=T`
//! runs an image model's matrix products on T threads
//! (`ImageClassifier::with_threads`). Prints one JSON object:
//! the nanoseconds of each of N runs of the whole batch (after
//! two warm-up runs, which also build the plan) and the outputs of the first
//! run, row by row.

#![allow(clippy::print_stdout, missing_docs)]

use std::path::Path;
use std::time::Instant;

use frankly_classify::{ImageClassifier, Kind, Manifest, Scores, TextClassifier};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [manifest, flag_b, batch, flag_r, reps, input] = args.as_slice() else {
        return Err("usage: classify_bench MANIFEST --batch B --reps N INPUT.f32".into());
    };
    if flag_b != "--batch" || flag_r != "--reps" {
        return Err("usage: classify_bench MANIFEST --batch B --reps N INPUT.f32".into());
    }
    let (batch, reps): (usize, usize) = (batch.parse()?, reps.parse()?);
    let bytes = std::fs::read(input)?;
    let tensor: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let (m, _) = Manifest::load(Path::new(manifest))?;
    let run: Box<dyn Fn() -> Result<Vec<Scores>, frankly_classify::ClassifyError>> = match m.kind {
        Kind::Image => {
            let threads = std::env::var("FRANKLY_MODEL_THREADS").map_or(Ok(1), |t| t.parse())?;
            let model = ImageClassifier::load(Path::new(manifest))?.with_threads(threads);
            Box::new(move || Ok(model.run_tensors(batch, tensor.clone())?.into_iter().map(|v| v.scores).collect()))
        }
        Kind::Text => {
            let model = TextClassifier::load(Path::new(manifest))?;
            Box::new(move || model.run_dense(batch, tensor.clone()))
        }
    };
    let first = run()?;
    run()?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        let out = run()?;
        times.push(start.elapsed().as_nanos());
        assert_eq!(out, first, "the model must be deterministic");
    }
    let samples = times.iter().map(u128::to_string).collect::<Vec<_>>().join(", ");
    let outputs: Vec<String> = first
        .iter()
        .map(|s| format!("[{}]", s.0.iter().map(|(_, v)| format!("{v:e}")).collect::<Vec<_>>().join(", ")))
        .collect();
    println!("{{\"batch\": {batch}, \"samples_ns\": [{samples}], \"outputs\": [{}]}}", outputs.join(", "));
    Ok(())
}
