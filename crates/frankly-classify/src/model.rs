//! Loading a model whose file matches its manifest, and running it.

use std::io::Cursor;
use std::path::Path;

use image::imageops::FilterType;
use image::{ImageEncoder, RgbImage};
use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;

use crate::ClassifyError;
use crate::manifest::{Kind, Manifest};

/// Largest model file read, in bytes.
pub const MAX_MODEL_BYTES: u64 = 512 << 20;

type Plan = std::sync::Arc<TypedSimplePlan>;

/// An image classifier: the manifest and its optimized tract plan, built
/// once and reused for every image.
pub struct ImageClassifier {
    manifest: Manifest,
    plan: Plan,
}

impl std::fmt::Debug for ImageClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageClassifier").field("model", &self.manifest.name).finish_non_exhaustive()
    }
}

/// Scores per label, in the manifest's label order.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Scores(pub Vec<(String, f32)>);

impl Scores {
    /// The score of `label`, if the model has it.
    pub fn get(&self, label: &str) -> Option<f32> {
        self.0.iter().find(|(l, _)| l == label).map(|(_, s)| *s)
    }
}

impl ImageClassifier {
    /// Loads the model a manifest describes, refusing a file whose SHA-256
    /// differs from the manifest's.
    pub fn load(manifest_path: &Path) -> Result<Self, ClassifyError> {
        let (manifest, dir) = Manifest::load(manifest_path)?;
        if manifest.kind != Kind::Image {
            return Err(ClassifyError::WrongKind(manifest.name.clone()));
        }
        let path = dir.join(&manifest.file);
        let io = |e: std::io::Error| ClassifyError::Io { path: path.clone(), message: e.to_string() };
        let len = std::fs::metadata(&path).map_err(io)?.len();
        if len > MAX_MODEL_BYTES {
            return Err(ClassifyError::Io {
                path: path.clone(),
                message: format!("{len} bytes, over {MAX_MODEL_BYTES}"),
            });
        }
        let bytes = std::fs::read(&path).map_err(io)?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(&manifest.sha256) {
            return Err(ClassifyError::ModelMismatch { path, expected: manifest.sha256.clone(), actual });
        }
        let shape: TVec<usize> = manifest.input.shape.iter().copied().collect();
        let plan = tract_onnx::onnx()
            .model_for_read(&mut Cursor::new(&bytes))
            .and_then(|m| m.with_input_fact(0, f32::fact(shape).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| ClassifyError::Model { name: manifest.name.clone(), message: format!("{e:#}") })?;
        Ok(ImageClassifier { manifest, plan })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Runs the model on an input tensor already preprocessed (in the
    /// manifest's shape, row-major).
    pub fn run_tensor(&self, input: Vec<f32>) -> Result<Scores, ClassifyError> {
        let shape = &self.manifest.input.shape;
        let tensor = Tensor::from_shape(shape, &input)
            .map_err(|e| ClassifyError::Model { name: self.manifest.name.clone(), message: format!("{e:#}") })?;
        let outputs = self
            .plan
            .run(tvec!(tensor.into_tvalue()))
            .map_err(|e| ClassifyError::Model { name: self.manifest.name.clone(), message: format!("{e:#}") })?;
        let view = outputs[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| ClassifyError::Model { name: self.manifest.name.clone(), message: format!("{e:#}") })?;
        let values: Vec<f32> = view.iter().copied().collect();
        let labels = &self.manifest.output.labels;
        if values.len() != labels.len() {
            return Err(ClassifyError::Model {
                name: self.manifest.name.clone(),
                message: format!("{} outputs for {} labels", values.len(), labels.len()),
            });
        }
        Ok(Scores(labels.iter().cloned().zip(values.iter().copied()).collect()))
    }

    /// Preprocesses an image as the manifest says, then classifies it.
    pub fn classify(&self, image: &RgbImage) -> Result<Scores, ClassifyError> {
        self.run_tensor(self.preprocess(image)?)
    }

    /// The input tensor for an image: resize, centre crop, optional JPEG
    /// round trip, channel order, mean and scale, in the manifest's layout.
    pub fn preprocess(&self, image: &RgbImage) -> Result<Vec<f32>, ClassifyError> {
        let i = &self.manifest.input;
        let filter = if i.resize.filter == "nearest" { FilterType::Nearest } else { FilterType::Triangle };
        let resized = image::imageops::resize(image, i.resize.width, i.resize.height, filter);
        let (cw, ch) = i.crop.as_ref().map_or((i.resize.width, i.resize.height), |c| (c.width, c.height));
        let (x, y) = ((i.resize.width - cw) / 2, (i.resize.height - ch) / 2);
        let mut cropped = image::imageops::crop_imm(&resized, x, y, cw, ch).to_image();
        if let Some(j) = &i.jpeg_round_trip {
            let mut buf = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, j.quality)
                .write_image(cropped.as_raw(), cw, ch, image::ExtendedColorType::Rgb8)
                .map_err(|e| ClassifyError::Preprocess(e.to_string()))?;
            cropped = image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg)
                .map_err(|e| ClassifyError::Preprocess(e.to_string()))?
                .to_rgb8();
        }
        let order: [usize; 3] = if i.channel_order == "BGR" { [2, 1, 0] } else { [0, 1, 2] };
        let (w, h) = (cw as usize, ch as usize);
        let mut out = vec![0f32; w * h * 3];
        for (px_index, px) in cropped.pixels().enumerate() {
            for (c, &src) in order.iter().enumerate() {
                let v = (f32::from(px.0[src]) - i.mean[c]) * i.scale;
                let at = if i.layout == "NHWC" { px_index * 3 + c } else { c * w * h + px_index };
                out[at] = v;
            }
        }
        Ok(out)
    }
}
