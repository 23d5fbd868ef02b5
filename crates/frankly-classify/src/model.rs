//! Loading a model file that matches its manifest, and its tract plan.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};
use tract_linalg::multithread::{Executor, multithread_tract_scope};
use tract_onnx::prelude::*;

use crate::ClassifyError;
use crate::manifest::Manifest;

/// Largest model file read, in bytes.
pub const MAX_MODEL_BYTES: u64 = 512 << 20;

/// Scores per label, in the manifest's label order.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Scores(pub Vec<(String, f32)>);

impl Scores {
    /// The score of `label`, if the model has it.
    pub fn get(&self, label: &str) -> Option<f32> {
        self.0.iter().find(|(l, _)| l == label).map(|(_, s)| *s)
    }
}

/// Reads `dir/rel` (at most `limit` bytes) and refuses it unless its SHA-256
/// is `expected`.
pub(crate) fn read_pinned(dir: &Path, rel: &Path, expected: &str, limit: u64) -> Result<Vec<u8>, ClassifyError> {
    let path = dir.join(rel);
    let io = |e: std::io::Error| ClassifyError::Io { path: path.clone(), message: e.to_string() };
    let len = std::fs::metadata(&path).map_err(io)?.len();
    if len > limit {
        return Err(ClassifyError::Io { path: path.clone(), message: format!("{len} bytes, over {limit}") });
    }
    let bytes = std::fs::read(&path).map_err(io)?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(ClassifyError::ModelMismatch { path, expected: expected.to_owned(), actual });
    }
    Ok(bytes)
}

/// Largest batch of one plan; bigger batches run in pieces.
const MAX_PLAN_BATCH: usize = 64;

/// A model file loaded once. The graph is typed with a symbolic batch
/// dimension; optimized plans are built for power-of-two batch sizes when
/// first needed (tract cannot optimize every graph with a symbolic batch,
/// open_nsfw among them) and reused, and a batch of n runs as the binary
/// pieces of n, so no plan computes padding.
pub(crate) struct Model {
    pub(crate) manifest: Manifest,
    typed: TypedModel,
    batch: Symbol,
    plans: [OnceLock<Result<Arc<TypedSimplePlan>, String>>; MAX_PLAN_BATCH.ilog2() as usize + 1],
    /// Where tract runs its matrix products: the calling thread, or a pool
    /// of this model's own ([`Model::set_threads`]).
    executor: Executor,
}

impl Model {
    pub(crate) fn load(manifest: Manifest, dir: &Path) -> Result<Model, ClassifyError> {
        let bytes = read_pinned(dir, &manifest.file, &manifest.sha256, MAX_MODEL_BYTES)?;
        let fail = |e: TractError| ClassifyError::Model { name: manifest.name.clone(), message: format!("{e:#}") };
        // The shapes a file declares for its input, intermediate values and
        // outputs are written in its own symbols (NudeNet's `batch`,
        // `height`, `width`) that tract cannot unify with the manifest's
        // shape; tract infers them itself from the input fact set below.
        let model = tract_onnx::onnx()
            .with_ignore_value_info(true)
            .with_ignore_output_shapes(true)
            .model_for_read(&mut Cursor::new(&bytes))
            .map_err(fail)?;
        let batch = model.sym("N");
        let mut dims: TVec<TDim> = manifest.input.shape.iter().map(|&d| d.to_dim()).collect();
        dims[0] = batch.to_dim();
        let typed = model
            .with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), dims))
            .and_then(|m| m.into_typed())
            .map_err(fail)?;
        let model = Model { manifest, typed, batch, plans: Default::default(), executor: Executor::SingleThread };
        // Build the batch-1 plan now, so a model that tract cannot run is
        // refused at load time rather than at the first message.
        model.plan(1)?;
        Ok(model)
    }

    /// Runs each model call's matrix products on `threads` threads (a rayon
    /// pool of this model's own; 1 or 0: the calling thread). Returns the
    /// number of threads in use: 1 when the OS refuses the pool's threads.
    pub(crate) fn set_threads(&mut self, threads: usize) -> usize {
        self.executor = Executor::SingleThread;
        if threads < 2 {
            return 1;
        }
        let pool =
            rayon::ThreadPoolBuilder::new().num_threads(threads).thread_name(|i| format!("frankly-model-{i}")).build();
        match pool {
            Ok(pool) => {
                self.executor = Executor::MultiThread(Arc::new(pool));
                threads
            }
            Err(_) => 1,
        }
    }

    /// The plan for a power-of-two `batch`.
    fn plan(&self, batch: usize) -> Result<Arc<TypedSimplePlan>, ClassifyError> {
        let slot = &self.plans[batch.ilog2() as usize];
        slot.get_or_init(|| {
            let subs = HashMap::from([(self.batch.clone(), (batch as i64).to_dim())]);
            self.typed
                .set_symbols(&subs)
                .and_then(|m| m.into_optimized())
                .and_then(|m| m.into_runnable())
                .map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(|e| self.error(e))
    }

    /// Runs a batch of `batch` inputs laid out one after the other (each in
    /// the manifest's input shape without the batch dimension) and returns
    /// the first output, row-major, with its shape (batch first).
    pub(crate) fn run(&self, batch: usize, input: Vec<f32>) -> Result<(Vec<usize>, Vec<f32>), ClassifyError> {
        let per_item: usize = self.manifest.input.shape[1..].iter().product();
        if input.len() != batch * per_item {
            return Err(self.error(format!("{} input values for a batch of {batch}", input.len())));
        }
        let (mut shape, mut values) = (Vec::new(), Vec::new());
        let mut at = 0;
        while at < batch {
            let piece = 1usize << (batch - at).min(MAX_PLAN_BATCH).ilog2();
            let (s, v) = self.run_plan(piece, input[at * per_item..(at + piece) * per_item].to_vec())?;
            if shape.is_empty() {
                shape = s;
            } else {
                shape[0] += piece;
            }
            values.extend(v);
            at += piece;
        }
        Ok((shape, values))
    }

    fn run_plan(&self, batch: usize, input: Vec<f32>) -> Result<(Vec<usize>, Vec<f32>), ClassifyError> {
        let mut shape = self.manifest.input.shape.clone();
        shape[0] = batch;
        let tensor = tract_ndarray::ArrayD::from_shape_vec(shape, input).map_err(|e| self.error(e))?;
        let plan = self.plan(batch)?;
        let outputs =
            multithread_tract_scope(self.executor.clone(), || plan.run(tvec!(Tensor::from(tensor).into_tvalue())))
                .map_err(|e| self.error(format!("{e:#}")))?;
        let view = outputs[0].to_plain_array_view::<f32>().map_err(|e| self.error(format!("{e:#}")))?;
        if view.shape().first() != Some(&batch) {
            return Err(self.error(format!("output shape {:?} for a batch of {batch}", view.shape())));
        }
        Ok((view.shape().to_vec(), view.iter().copied().collect()))
    }

    pub(crate) fn error(&self, e: impl std::fmt::Display) -> ClassifyError {
        ClassifyError::Model { name: self.manifest.name.clone(), message: e.to_string() }
    }

    /// Per-row label scores of a `[batch, labels]` output.
    pub(crate) fn score_rows(&self, shape: &[usize], values: &[f32]) -> Result<Vec<Scores>, ClassifyError> {
        let labels = &self.manifest.output.labels;
        if shape.len() != 2 || shape[1] != labels.len() {
            return Err(self.error(format!("output shape {shape:?} does not fit {} labels", labels.len())));
        }
        Ok(values
            .chunks_exact(labels.len())
            .map(|row| Scores(labels.iter().cloned().zip(row.iter().copied()).collect()))
            .collect())
    }
}
