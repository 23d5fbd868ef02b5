//! `frankly eval robustness`: hash every image of a corpus and its
//! transformed copies, then measure how often each hash still matches.

use std::path::{Path, PathBuf};

use frankly_hash::{DecodeOptions, PdqHasher};
use rayon::prelude::*;

use crate::EvalError;
use crate::algo::{HashAlgo, distance};
use crate::corpus::{CorpusImage, load_image};
use crate::metrics::{FprPoint, Histogram, PrecisionPoint, RocPoint, auc, recall_at_fpr, recall_at_precision, roc};
use crate::transform::Transform;

/// Perception's default precision target, 99.9%.
pub const DEFAULT_PRECISION_TARGET: f64 = 0.999;
/// Default false-positive-rate target: one wrong match per 1,000 comparisons.
pub const DEFAULT_FPR_TARGET: f64 = 1e-3;
/// The transforms a study runs when none are given.
pub const DEFAULT_TRANSFORMS: &str =
    "jpeg:95,jpeg:50,resize:0.5,crop:0.05,pad:0.2,rotate:4,flip,blur:2,noise:0.2,gamma,watermark,gray";

/// What a robustness study runs.
#[derive(Clone, Debug)]
pub struct RobustnessConfig {
    /// The transforms, in report order.
    pub transforms: Vec<Transform>,
    /// The hash algorithms, in report order.
    pub algos: Vec<HashAlgo>,
    /// Seed of every random choice of the transforms.
    pub seed: u64,
    /// Precision target of the perception-style recall, 0..=1.
    pub precision_target: f64,
    /// False-positive-rate target, 0..=1.
    pub fpr_target: f64,
    /// Decoding limits.
    pub decode: DecodeOptions,
    /// If set, every original and transformed image is written there as PNG
    /// (`noop/NAME.png`, `TRANSFORM/NAME.png`), for other tools to hash.
    pub save_images: Option<PathBuf>,
}

impl Default for RobustnessConfig {
    fn default() -> Self {
        RobustnessConfig {
            transforms: Transform::parse_list(DEFAULT_TRANSFORMS).unwrap_or_default(),
            algos: HashAlgo::ALL.to_vec(),
            seed: 0,
            precision_target: DEFAULT_PRECISION_TARGET,
            fpr_target: DEFAULT_FPR_TARGET,
            decode: DecodeOptions::default(),
            save_images: None,
        }
    }
}

/// The hashes of one image: `original[a]` per algorithm, `transformed[t][a]`
/// per transform and algorithm (`None` where the transform failed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageHashes {
    /// The image's name in the corpus.
    pub name: String,
    /// Hash of the original, per algorithm of the config.
    pub original: Vec<Vec<u8>>,
    /// Hashes of each transformed copy, per transform then algorithm.
    pub transformed: Vec<Option<Vec<Vec<u8>>>>,
}

/// One transformed image's distances for one algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Query {
    /// Index of the image in [`RobustnessReport::images`].
    pub image: usize,
    /// Distance to its own original.
    pub positive: u32,
    /// Distance to the nearest other original.
    pub nearest_negative: u32,
}

/// The results for one algorithm and one transform.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Cell {
    /// The algorithm.
    pub algo: HashAlgo,
    /// The transform, as written on the command line.
    pub transform: String,
    /// One entry per image the transform succeeded on.
    pub queries: Vec<Query>,
    /// Distances of matching pairs (query, own original).
    pub positives: Histogram,
    /// Distances of all non-matching pairs (query, other original).
    pub negatives: Histogram,
    /// Recall at the precision target (perception's definition).
    pub at_precision: Option<PrecisionPoint>,
    /// Recall at the false-positive-rate target.
    pub at_fpr: FprPoint,
    /// The ROC curve, one point per threshold.
    pub roc: Vec<RocPoint>,
    /// Area under the ROC curve.
    pub auc: f64,
}

/// Everything a robustness study measured.
#[derive(Clone, Debug)]
pub struct RobustnessReport {
    /// The config it ran with.
    pub config: RobustnessConfig,
    /// Names of the images that decoded, in order.
    pub images: Vec<String>,
    /// Images (or image/transform pairs) that failed, with the reason.
    pub failures: Vec<(String, String)>,
    /// The hashes, per image.
    pub hashes: Vec<ImageHashes>,
    /// Per algorithm (outer) and transform (inner), in config order.
    pub cells: Vec<Cell>,
}

impl RobustnessReport {
    /// The cell of `algo` and the transform at `transform_index`.
    pub fn cell(&self, algo: HashAlgo, transform_index: usize) -> Option<&Cell> {
        let a = self.config.algos.iter().position(|&x| x == algo)?;
        self.cells.get(a * self.config.transforms.len() + transform_index)
    }
}

/// Hashes one image and its transformed copies. `Err` if the image itself
/// does not decode; a failing transform is recorded in the second value.
pub fn hash_image(
    image: &CorpusImage,
    config: &RobustnessConfig,
    pdq: &mut PdqHasher,
) -> Result<(ImageHashes, Vec<(String, String)>), EvalError> {
    let original = load_image(&image.path, &config.decode)?;
    let hash_all = |img: &frankly_hash::RgbImage, pdq: &mut PdqHasher| -> Vec<Vec<u8>> {
        config.algos.iter().map(|a| a.hash(img, pdq)).collect()
    };
    if let Some(dir) = &config.save_images {
        save_png(dir, "noop", &image.name, &original)?;
    }
    let mut failures = Vec::new();
    let mut transformed = Vec::with_capacity(config.transforms.len());
    for t in &config.transforms {
        match t.apply(&original, t.seed_for(config.seed, &image.name)) {
            Ok(img) => {
                if let Some(dir) = &config.save_images {
                    save_png(dir, &t.to_string(), &image.name, &img)?;
                }
                transformed.push(Some(hash_all(&img, pdq)));
            }
            Err(e) => {
                failures.push((format!("{} ({t})", image.name), e.to_string()));
                transformed.push(None);
            }
        }
    }
    Ok((ImageHashes { name: image.name.clone(), original: hash_all(&original, pdq), transformed }, failures))
}

/// The file a saved image goes to: `DIR/TRANSFORM/NAME.png`, with the
/// corpus name's `/` and `:` replaced by `_`.
pub fn saved_image_path(dir: &Path, transform: &str, name: &str) -> PathBuf {
    let flat: String = name.chars().map(|c| if c == '/' || c == ':' || c == '\\' { '_' } else { c }).collect();
    dir.join(transform.replace(':', "_")).join(format!("{flat}.png"))
}

fn save_png(dir: &Path, transform: &str, name: &str, image: &frankly_hash::RgbImage) -> Result<(), EvalError> {
    let path = saved_image_path(dir, transform, name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| EvalError::io(parent, e))?;
    }
    image.save_with_format(&path, image::ImageFormat::Png).map_err(|e| EvalError::io(&path, std::io::Error::other(e)))
}

/// An image's hashes and the transforms that failed on it.
type HashedImage = (ImageHashes, Vec<(String, String)>);

/// Runs a study over `images` in parallel (on the current rayon pool),
/// calling `progress` once per image done.
pub fn run_robustness(
    images: &[CorpusImage],
    config: &RobustnessConfig,
    progress: &(dyn Fn() + Sync),
) -> Result<RobustnessReport, EvalError> {
    let results: Vec<Result<HashedImage, (String, EvalError)>> = images
        .par_iter()
        .map_init(PdqHasher::new, |pdq, image| {
            let r = hash_image(image, config, pdq).map_err(|e| (image.name.clone(), e));
            progress();
            r
        })
        .collect();
    let mut hashes = Vec::with_capacity(results.len());
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok((h, f)) => {
                hashes.push(h);
                failures.extend(f);
            }
            // Saving is the caller's request: failing to write is fatal, a bad image is not.
            Err((_, e @ EvalError::Io { .. })) => return Err(e),
            Err((name, e)) => failures.push((name, e.to_string())),
        }
    }
    analyse(config.clone(), hashes, failures)
}

/// Computes every cell's metrics from the hashes.
pub fn analyse(
    config: RobustnessConfig,
    hashes: Vec<ImageHashes>,
    failures: Vec<(String, String)>,
) -> Result<RobustnessReport, EvalError> {
    if hashes.len() < 2 {
        return Err(EvalError::TooFewImages { what: "a robustness study", needed: 2, found: hashes.len() });
    }
    let pairs: Vec<(usize, usize)> =
        (0..config.algos.len()).flat_map(|a| (0..config.transforms.len()).map(move |t| (a, t))).collect();
    let cells = pairs
        .par_iter()
        .map(|&(a, t)| {
            let algo = config.algos[a];
            let mut positives = Histogram::new(algo.bits());
            let mut negatives = Histogram::new(algo.bits());
            let mut queries = Vec::with_capacity(hashes.len());
            for (i, h) in hashes.iter().enumerate() {
                let Some(query) = h.transformed[t].as_ref().map(|v| &v[a]) else { continue };
                let positive = distance(query, &h.original[a]);
                let mut nearest = u32::MAX;
                for (j, other) in hashes.iter().enumerate() {
                    if j != i {
                        let d = distance(query, &other.original[a]);
                        negatives.add(d);
                        nearest = nearest.min(d);
                    }
                }
                positives.add(positive);
                queries.push(Query { image: i, positive, nearest_negative: nearest });
            }
            let pairs: Vec<(u32, u32)> = queries.iter().map(|q| (q.positive, q.nearest_negative)).collect();
            let curve = roc(&positives, &negatives);
            Cell {
                algo,
                transform: config.transforms[t].to_string(),
                at_precision: recall_at_precision(&pairs, config.precision_target),
                at_fpr: recall_at_fpr(&positives, &negatives, config.fpr_target),
                auc: auc(&curve),
                roc: curve,
                queries,
                positives,
                negatives,
            }
        })
        .collect();
    let images = hashes.iter().map(|h| h.name.clone()).collect();
    Ok(RobustnessReport { config, images, failures, hashes, cells })
}
