//! On-device classifiers for frankly: models described by manifests
//! (`models/<name>.toml`), loaded only if the file's SHA-256 matches, run with
//! `tract-onnx` (no onnxruntime in the product) from an optimized plan built
//! once, with a symbolic batch dimension so batches share it.
//!
//! Image models are classifiers (a score per label) or YOLOv8-style
//! detectors (boxes, and per label its best box's score); text models are a
//! tokenizer plus a numeric graph over term counts.
//!
//! The image preprocessing follows the manifest (resize, centre crop, the
//! reference's JPEG round trip, channel order, mean); the decoded pixels of
//! the round trip depend on the JPEG codec, so end-to-end scores differ
//! slightly from the reference's, while the model itself matches onnxruntime
//! on identical tensors (see `docs/models.md`).

mod image_model;
mod manifest;
mod model;
mod pillow;
mod text;

pub use image_model::{Detection, IMAGE_BATCH, ImageClassifier, ImageVerdict, MAX_PADDED_PIXELS};
pub use manifest::{
    Crop, DetectionSpec, InputSpec, JpegRoundTrip, Kind, MAX_MANIFEST_BYTES, Manifest, OutputFormat, OutputSpec, Pad,
    Resize, TokenizerSpec,
};
pub use model::{MAX_MODEL_BYTES, Scores};
pub use text::{MAX_TEXT_BYTES, MAX_TOKENIZER_BYTES, TEXT_BATCH, TextClassifier, Tokenizer};

use std::path::PathBuf;

/// Why a model could not be loaded or run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ClassifyError {
    /// A file could not be read.
    #[error("cannot read {path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The manifest is invalid.
    #[error("invalid model manifest {path}: {message}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The model file is not the one the manifest names.
    #[error("model file {path} is not the one in its manifest: sha256 {actual}, expected {expected}")]
    ModelMismatch {
        /// The model file.
        path: PathBuf,
        /// From the manifest.
        expected: String,
        /// Of the file.
        actual: String,
    },
    /// The manifest describes another kind of model.
    #[error("model {name} does not classify {expected}")]
    WrongKind {
        /// The model.
        name: String,
        /// The kind wanted.
        expected: &'static str,
    },
    /// A text is longer than the classifier accepts.
    #[error("text of {bytes} bytes is over the limit of {limit}")]
    TextTooLong {
        /// Its length.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// tract could not load or run the model.
    #[error("model {name}: {message}")]
    Model {
        /// The model.
        name: String,
        /// tract's message.
        message: String,
    },
    /// Preprocessing failed.
    #[error("cannot preprocess the image: {0}")]
    Preprocess(String),
}
