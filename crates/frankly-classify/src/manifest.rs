//! Model manifests: `models/<name>.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::ClassifyError;

/// Longest manifest file read, in bytes.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

/// What a model classifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Images.
    Image,
    /// Text.
    Text,
}

/// A model manifest: which file, its provenance, and how to feed it.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Short name, e.g. `open_nsfw`.
    pub name: String,
    /// Model file, relative to the manifest's directory.
    pub file: PathBuf,
    /// SHA-256 of the model file, hex; a file that differs is refused.
    pub sha256: String,
    /// Size of the model file in bytes.
    pub size: Option<u64>,
    /// Licence of the model.
    pub license: String,
    /// Licence texts shipped beside it.
    #[serde(default)]
    pub license_files: Vec<PathBuf>,
    /// Where it comes from.
    pub source: String,
    /// The command that reproduces the file from its source.
    pub reproduce: String,
    /// Image or text.
    pub kind: Kind,
    /// Input specification.
    pub input: InputSpec,
    /// Output specification.
    pub output: OutputSpec,
    /// Default thresholds per label: action name -> score.
    #[serde(default)]
    pub thresholds: BTreeMap<String, BTreeMap<String, f32>>,
}

/// How the input tensor is made.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Graph input name, informative.
    pub name: Option<String>,
    /// `NHWC` or `NCHW`.
    pub layout: String,
    /// Tensor shape, batch first.
    pub shape: Vec<usize>,
    /// Element type; only `f32`.
    pub dtype: String,
    /// Decoding notes (informative; frankly decodes without EXIF orientation, like the reference).
    pub decode: Option<toml::Value>,
    /// `RGB` or `BGR`.
    pub channel_order: String,
    /// Per-channel mean subtracted, in `channel_order`.
    pub mean: [f32; 3],
    /// Multiplier applied after subtracting the mean.
    pub scale: f32,
    /// Resize before cropping.
    pub resize: Resize,
    /// Crop after resizing.
    pub crop: Option<Crop>,
    /// JPEG re-encoding of the cropped image, as some references do.
    pub jpeg_round_trip: Option<JpegRoundTrip>,
}

/// Resize step.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resize {
    /// Target width.
    pub width: u32,
    /// Target height.
    pub height: u32,
    /// `bilinear` (a triangle filter widened when downscaling, as Pillow) or `nearest`.
    pub filter: String,
    /// Whether the aspect ratio is kept (only `false` is supported).
    #[serde(default)]
    pub keep_aspect: bool,
}

/// Crop step.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crop {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Only `center`.
    pub mode: String,
}

/// JPEG round trip step.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JpegRoundTrip {
    /// Encoder quality.
    pub quality: u8,
    /// Chroma subsampling of the reference (informative).
    pub subsampling: Option<String>,
    /// After which step (only `crop`).
    pub after: Option<String>,
}

/// What the outputs mean.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Graph output name, informative.
    pub name: Option<String>,
    /// One label per output value.
    pub labels: Vec<String>,
    /// e.g. `softmax probabilities`.
    pub meaning: String,
}

impl Manifest {
    /// Reads and checks a manifest file.
    pub fn load(path: &Path) -> Result<(Manifest, PathBuf), ClassifyError> {
        let io = |e: std::io::Error| ClassifyError::Io { path: path.to_path_buf(), message: e.to_string() };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_MANIFEST_BYTES {
            return Err(ClassifyError::Manifest {
                path: path.to_path_buf(),
                message: format!("{len} bytes, over {MAX_MANIFEST_BYTES}"),
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let manifest: Manifest = toml::from_str(&text)
            .map_err(|e| ClassifyError::Manifest { path: path.to_path_buf(), message: e.to_string() })?;
        manifest.check().map_err(|message| ClassifyError::Manifest { path: path.to_path_buf(), message })?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Ok((manifest, dir))
    }

    fn check(&self) -> Result<(), String> {
        if self.sha256.len() != 64 || !self.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err("sha256 must be 64 hex digits".into());
        }
        if self.file.is_absolute() || self.file.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            return Err("file must be a relative path inside the models directory".into());
        }
        let i = &self.input;
        if i.dtype != "f32" {
            return Err(format!("input dtype {:?} is not supported (f32 is)", i.dtype));
        }
        if i.layout != "NHWC" && i.layout != "NCHW" {
            return Err(format!("input layout {:?} is not supported (NHWC or NCHW)", i.layout));
        }
        if i.shape.len() != 4 || i.shape.iter().any(|&d| d == 0 || d > 4096) {
            return Err(format!("input shape {:?} must be 4 positive dimensions", i.shape));
        }
        if i.channel_order != "RGB" && i.channel_order != "BGR" {
            return Err(format!("channel order {:?} is not RGB or BGR", i.channel_order));
        }
        if i.resize.keep_aspect || !matches!(i.resize.filter.as_str(), "bilinear" | "nearest") {
            return Err("resize must be `bilinear` or `nearest` without keep_aspect".into());
        }
        let (h, w) = if i.layout == "NHWC" { (i.shape[1], i.shape[2]) } else { (i.shape[2], i.shape[3]) };
        let (cw, ch) = match &i.crop {
            Some(c) if c.mode == "center" => (c.width, c.height),
            Some(c) => return Err(format!("crop mode {:?} is not supported (center is)", c.mode)),
            None => (i.resize.width, i.resize.height),
        };
        if (cw as usize, ch as usize) != (w, h) || cw > i.resize.width || ch > i.resize.height {
            return Err(format!("crop {cw}x{ch} must fit the resize and equal the input {w}x{h}"));
        }
        if self.output.labels.is_empty() {
            return Err("output labels are empty".into());
        }
        Ok(())
    }
}
