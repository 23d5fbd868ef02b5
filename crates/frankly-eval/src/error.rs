//! The errors of frankly-eval.

use std::path::PathBuf;

use crate::transform::TransformError;

/// Why an evaluation could not run or write its results.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An image could not be decoded.
    #[error("{path}: {source}")]
    Decode {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: frankly_hash::DecodeError,
    },
    /// A transform is invalid or failed.
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// The study needs more images than it was given.
    #[error("{what} needs at least {needed} images that decode, found {found}")]
    TooFewImages {
        /// The study.
        what: &'static str,
        /// How many it needs.
        needed: usize,
        /// How many decoded.
        found: usize,
    },
    /// A plot could not be drawn.
    #[error("plot {name}: {message}")]
    Plot {
        /// The plot.
        name: String,
        /// What went wrong.
        message: String,
    },
    /// An argument is out of range.
    #[error("{0}")]
    Invalid(String),
    /// Building the objects of the privacy table failed.
    #[error("privacy table: {0}")]
    Privacy(String),
}

impl EvalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> EvalError {
        EvalError::Io { path: path.into(), source }
    }
}
