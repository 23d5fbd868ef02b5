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

/// How the input tensor is made. Image models use the image fields; text
/// models use `tokenizer`; a field that does not apply to the model's kind
/// is an error.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Graph input name, informative.
    pub name: Option<String>,
    /// Tensor shape, batch first: `[N, H, W, C]` / `[N, C, H, W]` for images,
    /// `[N, vocabulary]` for text. The batch size is a symbol in the plan, so
    /// any batch runs.
    pub shape: Vec<usize>,
    /// Element type; only `f32`.
    pub dtype: String,
    /// `NHWC` or `NCHW` (images).
    pub layout: Option<String>,
    /// Decoding notes (informative; frankly decodes without EXIF orientation, like the references).
    pub decode: Option<toml::Value>,
    /// `RGB` or `BGR` (images).
    pub channel_order: Option<String>,
    /// Per-channel mean subtracted, in `channel_order` (images).
    pub mean: Option<[f32; 3]>,
    /// Multiplier applied after subtracting the mean (images).
    pub scale: Option<f32>,
    /// Padding to a square before resizing, as letterboxing detectors do (images).
    pub pad: Option<Pad>,
    /// Resize before cropping (images).
    pub resize: Option<Resize>,
    /// Crop after resizing (images).
    pub crop: Option<Crop>,
    /// JPEG re-encoding of the cropped image, as some references do (images).
    pub jpeg_round_trip: Option<JpegRoundTrip>,
    /// Tokenizer and vocabulary that turn a text into the input (text).
    pub tokenizer: Option<TokenizerSpec>,
}

/// Padding step: the image is padded to a square before resizing.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pad {
    /// Only `square`.
    pub to: String,
    /// Where the image sits in the square: `top-left` (padding right and
    /// bottom, as NudeNet) or `center`.
    pub align: String,
    /// Value of the padding pixels, per channel (0..=255).
    #[serde(default)]
    pub value: u8,
}

/// Resize step.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resize {
    /// Target width.
    pub width: u32,
    /// Target height.
    pub height: u32,
    /// `bilinear`: a triangle filter widened when downscaling (Pillow's
    /// `BILINEAR`, antialiased); `linear`: 2x2 interpolation at half-pixel
    /// centres without antialiasing (OpenCV's `INTER_LINEAR`); `nearest`.
    pub filter: String,
    /// Whether the aspect ratio is kept (only `false` is supported; use
    /// `pad` to keep it).
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
    /// Chroma subsampling: only `4:2:0` (Pillow's default) is supported.
    pub subsampling: Option<String>,
    /// After which step (only `crop`).
    pub after: Option<String>,
}

/// The tokenizer file of a text model, pinned like the model file.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerSpec {
    /// Tokenizer file (`frankly-text-tokenizer-v1` JSON), relative to the manifest.
    pub file: PathBuf,
    /// Its SHA-256, hex.
    pub sha256: String,
}

/// How the output tensor is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// `[N, labels]`: one score per label.
    #[default]
    Scores,
    /// `[N, 4 + labels, anchors]`: YOLOv8 boxes (centre x, centre y, width,
    /// height, then one score per label), as NudeNet 3 outputs.
    Yolov8,
}

/// What the outputs mean.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Graph output name, informative.
    pub name: Option<String>,
    /// Layout of the output tensor.
    #[serde(default)]
    pub format: OutputFormat,
    /// One label per output value (per class for detectors).
    pub labels: Vec<String>,
    /// e.g. `softmax probabilities`.
    pub meaning: String,
    /// Detector settings (`format = "yolov8"` only).
    pub detection: Option<DetectionSpec>,
}

/// How detector boxes become detections.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionSpec {
    /// A box whose best label scores below this is dropped.
    pub min_score: f32,
    /// Non-maximum suppression: boxes scoring below this are dropped.
    pub nms_score: f32,
    /// Non-maximum suppression: a box overlapping a kept one by more than
    /// this intersection over union is suppressed.
    pub nms_iou: f32,
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
        check_sha256("sha256", &self.sha256)?;
        check_relative("file", &self.file)?;
        let i = &self.input;
        if i.dtype != "f32" {
            return Err(format!("input dtype {:?} is not supported (f32 is)", i.dtype));
        }
        if i.shape.contains(&0) || i.shape.iter().any(|&d| d > 1 << 20) {
            return Err(format!("input shape {:?} must have positive dimensions up to 2^20", i.shape));
        }
        if self.output.labels.is_empty() || self.output.labels.len() > 4096 {
            return Err("output labels must be 1 to 4096 names".into());
        }
        match self.output.format {
            OutputFormat::Scores if self.output.detection.is_some() => {
                return Err("output.detection applies only to format = \"yolov8\"".into());
            }
            OutputFormat::Yolov8 if self.output.detection.is_none() => {
                return Err("format = \"yolov8\" needs output.detection (min_score, nms_score, nms_iou)".into());
            }
            _ => {}
        }
        match self.kind {
            Kind::Image => self.check_image(),
            Kind::Text => self.check_text(),
        }
    }

    fn check_text(&self) -> Result<(), String> {
        let i = &self.input;
        let image_fields = [
            ("layout", i.layout.is_some()),
            ("channel_order", i.channel_order.is_some()),
            ("mean", i.mean.is_some()),
            ("scale", i.scale.is_some()),
            ("pad", i.pad.is_some()),
            ("resize", i.resize.is_some()),
            ("crop", i.crop.is_some()),
            ("jpeg_round_trip", i.jpeg_round_trip.is_some()),
        ];
        if let Some((field, _)) = image_fields.iter().find(|(_, set)| *set) {
            return Err(format!("input.{field} applies to image models, not to a text model"));
        }
        let Some(t) = &i.tokenizer else { return Err("a text model needs input.tokenizer (file, sha256)".into()) };
        check_sha256("input.tokenizer.sha256", &t.sha256)?;
        check_relative("input.tokenizer.file", &t.file)?;
        if i.shape.len() != 2 {
            return Err(format!("text input shape {:?} must be [batch, vocabulary]", i.shape));
        }
        if self.output.format != OutputFormat::Scores {
            return Err("a text model's output format must be \"scores\"".into());
        }
        Ok(())
    }

    fn check_image(&self) -> Result<(), String> {
        let i = &self.input;
        if i.tokenizer.is_some() {
            return Err("input.tokenizer applies to text models, not to an image model".into());
        }
        let required = |field: &str| format!("an image model needs input.{field}");
        let layout = i.layout.as_deref().ok_or_else(|| required("layout"))?;
        let order = i.channel_order.as_deref().ok_or_else(|| required("channel_order"))?;
        let resize = i.resize.as_ref().ok_or_else(|| required("resize"))?;
        if i.mean.is_none() {
            return Err(required("mean"));
        }
        if i.scale.is_none() {
            return Err(required("scale"));
        }
        if layout != "NHWC" && layout != "NCHW" {
            return Err(format!("input layout {layout:?} is not supported (NHWC or NCHW)"));
        }
        if i.shape.len() != 4 || i.shape.iter().any(|&d| d == 0 || d > 4096) {
            return Err(format!("image input shape {:?} must be 4 dimensions of 1 to 4096", i.shape));
        }
        if resize.width == 0 || resize.height == 0 {
            return Err(format!("resize {}x{} must be at least 1x1", resize.width, resize.height));
        }
        let channels = if layout == "NHWC" { i.shape[3] } else { i.shape[1] };
        if channels != 3 {
            return Err(format!("image input has {channels} channels; 3 are supported"));
        }
        if order != "RGB" && order != "BGR" {
            return Err(format!("channel order {order:?} is not RGB or BGR"));
        }
        if resize.keep_aspect || !matches!(resize.filter.as_str(), "bilinear" | "linear" | "nearest") {
            return Err("resize.filter must be `bilinear`, `linear` or `nearest`, without keep_aspect".into());
        }
        if let Some(p) = &i.pad
            && (p.to != "square" || !matches!(p.align.as_str(), "top-left" | "center"))
        {
            return Err("pad must be to = \"square\" with align \"top-left\" or \"center\"".into());
        }
        let (h, w) = if layout == "NHWC" { (i.shape[1], i.shape[2]) } else { (i.shape[2], i.shape[3]) };
        let (cw, ch) = match &i.crop {
            Some(c) if c.mode == "center" => (c.width, c.height),
            Some(c) => return Err(format!("crop mode {:?} is not supported (center is)", c.mode)),
            None => (resize.width, resize.height),
        };
        if (cw as usize, ch as usize) != (w, h) || cw > resize.width || ch > resize.height {
            return Err(format!("crop {cw}x{ch} must fit the resize and equal the input {w}x{h}"));
        }
        if let Some(j) = &i.jpeg_round_trip
            && !(1..=100).contains(&j.quality)
        {
            return Err(format!("jpeg_round_trip.quality {} is not 1..=100", j.quality));
        }
        if let Some(j) = &i.jpeg_round_trip
            && j.subsampling.as_deref().is_some_and(|s| s != "4:2:0")
        {
            return Err(format!("jpeg_round_trip.subsampling {:?} is not supported (4:2:0 is)", j.subsampling));
        }
        if let Some(d) = &self.output.detection {
            let unit = |x: f32| (0.0..=1.0).contains(&x);
            if !unit(d.min_score) || !unit(d.nms_score) || !unit(d.nms_iou) {
                return Err("output.detection thresholds must be within 0..=1".into());
            }
        }
        Ok(())
    }
}

fn check_sha256(field: &str, value: &str) -> Result<(), String> {
    if value.len() != 64 || !value.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("{field} must be 64 hex digits"));
    }
    Ok(())
}

fn check_relative(field: &str, path: &Path) -> Result<(), String> {
    if path.is_absolute() || path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(format!("{field} must be a relative path inside the models directory"));
    }
    Ok(())
}
