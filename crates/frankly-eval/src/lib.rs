//! A research harness for the safety/privacy trade-off of client-side
//! scanning: how robust perceptual hashes are, how many innocent images they
//! flag, how easily they are evaded or abused, and what each party of a
//! franked, reported conversation learns.
//!
//! # Design
//!
//! A study is a pure function of a corpus, a list of [`Transform`]s, a list
//! of [`HashAlgo`]s and a seed: transforms draw their randomness from a
//! seeded `StdRng`, so the same command gives byte-identical images, hashes
//! and numbers. The metrics are pure functions of distances ([`metrics`
//! functions](recall_at_precision)), unit-tested on hand-checked tables and
//! property-tested against brute force; recall at a fixed precision follows
//! Thorn's `perception` benchmark exactly, so numbers can be compared with
//! its published ones (`bench/perception_robustness.py` checks this on the
//! same hashes).
//!
//! - [`run_robustness`] hashes every image and transformed copy in parallel
//!   and computes, per algorithm and transform, distance histograms of
//!   matching and non-matching pairs, recall at a fixed precision and at a
//!   fixed false-positive rate, and the ROC curve;
//!   [`write_robustness`] turns that into CSV files, PNG and SVG plots and a
//!   self-contained HTML report.
//! - [`run_video_robustness`] does the same for videos under vPDQ: copies
//!   made by ffmpeg ([`VideoTransform`]), scored by vPDQ's match rule and by
//!   the share of a copy's frames found ([`write_video_robustness`]).
//! - [`run_fpr`] measures the pairwise distances of distinct images and what
//!   they mean for a deployment (bank size, images per account, a
//!   per-account match threshold).
//! - [`evade`] and [`collide`] are black-box attacks that only query the
//!   hash: they perturb an image in a low-frequency cosine basis until it stops
//!   matching its original, or starts matching a target, within a query
//!   budget ([`MAX_ATTACK_QUERIES`]), reporting PSNR and SSIM.
//! - [`privacy_table`] builds a real franked message and a real sealed
//!   report with the client libraries and measures what each party sees.
//!
//! Nothing here is needed by the client: only `frankly-cli` depends on this
//! crate.

mod algo;
mod attack;
mod corpus;
mod error;
mod fpr;
mod metrics;
mod output;
mod plot;
mod privacy;
mod quality;
mod robustness;
mod transform;
mod video;

pub use algo::{HashAlgo, PDQ_MATCH_THRESHOLD, SHORT_HASH_MATCH_THRESHOLD, UnknownHashAlgo, distance};
pub use attack::{
    ATTACK_FREQUENCIES, ATTACK_MAX_SIDE, AttackConfig, AttackGoal, AttackOutcome, DEFAULT_ATTACK_QUERIES,
    DEFAULT_MIN_PSNR, MAX_ATTACK_QUERIES, collide, collide_pdq, evade, prepare_attack_image,
};
pub use corpus::{CorpusImage, IMAGE_EXTENSIONS, MAX_CORPUS_DEPTH, list_images, load_image};
pub use error::EvalError;
pub use fpr::{
    APPLE_ACCOUNT_THRESHOLD, CLOSEST_PAIRS, Deployment, FprConfig, FprReport, FprRow, MAX_FPR_IMAGES, SourceRow,
    account_threshold, binomial_tail, run_fpr, source_of,
};
pub use metrics::{FprPoint, Histogram, PrecisionPoint, RocPoint, auc, recall_at_fpr, recall_at_precision, roc};
pub use output::{
    ROBUSTNESS_COLUMNS, VIDEO_ROBUSTNESS_COLUMNS, csv_field, write_fpr, write_robustness, write_video_robustness,
};
pub use plot::{FONT_ENV, FONT_PATHS, PlotFont};
pub use privacy::{PrivacyRow, privacy_table};
pub use quality::{psnr, ssim};
pub use robustness::{
    Cell, DEFAULT_FPR_TARGET, DEFAULT_PRECISION_TARGET, DEFAULT_TRANSFORMS, ImageHashes, Query, RobustnessConfig,
    RobustnessReport, analyse, hash_image, run_robustness, saved_image_path,
};
pub use transform::{
    DEFAULT_GAMMA, DEFAULT_WATERMARK_SIZE, MAX_BLUR_SIGMA, MAX_CROP_FRACTION, MAX_OUTPUT_SIDE, MAX_PAD_FRACTION,
    MAX_RESIZE_SCALE, Transform, TransformError, WATERMARK_ALPHA,
};
pub use video::{
    CorpusVideo, DEFAULT_VIDEO_TRANSFORMS, FFMPEG_CPU_SECONDS, FFMPEG_ENV, MAX_STUDY_VIDEOS, VideoCell, VideoQuery,
    VideoRobustnessConfig, VideoRobustnessReport, VideoTransform, check_ffmpeg, list_videos, run_video_robustness,
};
