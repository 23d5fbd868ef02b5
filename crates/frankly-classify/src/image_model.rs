//! Image models: classifiers (`[N, labels]` scores) and YOLOv8-style
//! detectors, with the preprocessing their manifests describe.

use std::path::Path;

use image::imageops::FilterType;
use image::{Rgb, RgbImage};

use crate::ClassifyError;
use crate::manifest::{Kind, Manifest, OutputFormat, Pad};
use crate::model::{Model, Scores};

/// Images run through the model at once by [`ImageClassifier::classify_batch`].
/// One: on x86 with tract, a batch of 2 or 4 costs more per image than
/// single images (`bench/classify_vs_onnxruntime.py`, `docs/benchmarks.md`);
/// parallel callers get more from one image per core.
pub const IMAGE_BATCH: usize = 1;

/// A box a detector found, in the original image's pixels.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Detection {
    /// The label.
    pub label: String,
    /// Its score.
    pub score: f32,
    /// Left, top, width, height, clipped to the image.
    pub bbox: [f32; 4],
}

/// What an image model says about one image: a score per label and, for
/// detectors, the boxes (the label's score is then its best box's, 0 if
/// none).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ImageVerdict {
    /// Scores per label, in the manifest's order.
    pub scores: Scores,
    /// Boxes after non-maximum suppression (detectors only).
    pub detections: Vec<Detection>,
}

/// An image model: the manifest and its optimized tract plan, built once and
/// reused for every image.
pub struct ImageClassifier {
    model: Model,
}

impl std::fmt::Debug for ImageClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageClassifier").field("model", &self.model.manifest.name).finish_non_exhaustive()
    }
}

/// Where the original image sits in the model's input, to map boxes back.
#[derive(Clone, Copy, Debug)]
struct Frame {
    width: u32,
    height: u32,
    padded_width: u32,
    padded_height: u32,
    offset_x: u32,
    offset_y: u32,
}

impl ImageClassifier {
    /// Loads the model a manifest describes, refusing a file whose SHA-256
    /// differs from the manifest's.
    pub fn load(manifest_path: &Path) -> Result<Self, ClassifyError> {
        let (manifest, dir) = Manifest::load(manifest_path)?;
        if manifest.kind != Kind::Image {
            return Err(ClassifyError::WrongKind { name: manifest.name.clone(), expected: "images" });
        }
        Ok(ImageClassifier { model: Model::load(manifest, &dir)? })
    }

    /// Runs the model's matrix products on `threads` threads of a pool of
    /// its own (default 1: the calling thread, what the single-thread
    /// figures in `docs/benchmarks.md` measure). Outputs do not depend on
    /// it. Falls back to the calling thread when the OS gives no threads.
    #[must_use]
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.model.set_threads(threads);
        self
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.model.manifest
    }

    fn per_image_len(&self) -> usize {
        self.model.manifest.input.shape[1..].iter().product()
    }

    /// Runs the model on one input tensor already preprocessed (in the
    /// manifest's shape, row-major).
    pub fn run_tensor(&self, input: Vec<f32>) -> Result<Scores, ClassifyError> {
        let mut rows = self.run_tensors(1, input)?;
        rows.pop().map(|v| v.scores).ok_or_else(|| self.model.error("no output"))
    }

    /// Runs `batch` preprocessed tensors laid out one after another (boxes,
    /// for detectors, stay in model input pixels).
    pub fn run_tensors(&self, batch: usize, input: Vec<f32>) -> Result<Vec<ImageVerdict>, ClassifyError> {
        if input.len() != batch * self.per_image_len() {
            return Err(self.model.error(format!(
                "input has {} values, {batch} images need {}",
                input.len(),
                batch * self.per_image_len()
            )));
        }
        let (shape, values) = self.model.run(batch, input)?;
        match self.model.manifest.output.format {
            OutputFormat::Scores => Ok(self
                .model
                .score_rows(&shape, &values)?
                .into_iter()
                .map(|scores| ImageVerdict { scores, detections: Vec::new() })
                .collect()),
            OutputFormat::Yolov8 => {
                let labels = self.model.manifest.output.labels.len();
                if shape.len() != 3 || shape[0] != batch || shape[1] != 4 + labels {
                    return Err(self.model.error(format!("output shape {shape:?} is not [N, 4 + {labels}, anchors]")));
                }
                Ok(values.chunks_exact(shape[1] * shape[2]).map(|one| self.detect(one, shape[2])).collect())
            }
        }
    }

    /// Preprocesses an image as the manifest says, then classifies it.
    pub fn classify(&self, image: &RgbImage) -> Result<ImageVerdict, ClassifyError> {
        let mut all = self.classify_batch(std::slice::from_ref(image))?;
        all.pop().ok_or_else(|| self.model.error("no output"))
    }

    /// Classifies images in batches of up to [`IMAGE_BATCH`] through the
    /// one plan.
    pub fn classify_batch(&self, images: &[RgbImage]) -> Result<Vec<ImageVerdict>, ClassifyError> {
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(IMAGE_BATCH) {
            let mut input = Vec::with_capacity(chunk.len() * self.per_image_len());
            let mut frames = Vec::with_capacity(chunk.len());
            for image in chunk {
                let (tensor, frame) = self.preprocess_framed(image)?;
                input.extend_from_slice(&tensor);
                frames.push(frame);
            }
            let verdicts = self.run_tensors(chunk.len(), input)?;
            out.extend(verdicts.into_iter().zip(frames).map(|(mut v, frame)| {
                for d in &mut v.detections {
                    d.bbox = frame.map_box(d.bbox, &self.model.manifest.input.shape, self.layout_nhwc());
                }
                v
            }));
        }
        Ok(out)
    }

    fn layout_nhwc(&self) -> bool {
        self.model.manifest.input.layout.as_deref() == Some("NHWC")
    }

    /// The input tensor for an image: pad, resize, centre crop, optional JPEG
    /// round trip, channel order, mean and scale, in the manifest's layout.
    pub fn preprocess(&self, image: &RgbImage) -> Result<Vec<f32>, ClassifyError> {
        self.preprocess_framed(image).map(|(t, _)| t)
    }

    fn preprocess_framed(&self, image: &RgbImage) -> Result<(Vec<f32>, Frame), ClassifyError> {
        let i = &self.model.manifest.input;
        let missing = || ClassifyError::Preprocess("the manifest has no image preprocessing".into());
        let (resize, mean, scale) =
            (i.resize.as_ref().ok_or_else(missing)?, i.mean.ok_or_else(missing)?, i.scale.ok_or_else(missing)?);
        if image.width() == 0 || image.height() == 0 {
            return Err(ClassifyError::Preprocess("the image is empty".into()));
        }
        let (padded, frame) = pad(image, i.pad.as_ref())?;
        let padded: &RgbImage = &padded;
        let resized = match resize.filter.as_str() {
            "nearest" => image::imageops::resize(padded, resize.width, resize.height, FilterType::Nearest),
            "linear" => resize_linear(padded, resize.width, resize.height),
            _ => crate::pillow::resize_bilinear(padded, resize.width, resize.height),
        };
        let (cw, ch) = i.crop.as_ref().map_or((resize.width, resize.height), |c| (c.width, c.height));
        let (x, y) = ((resize.width - cw) / 2, (resize.height - ch) / 2);
        let mut cropped = image::imageops::crop_imm(&resized, x, y, cw, ch).to_image();
        if let Some(j) = &i.jpeg_round_trip {
            cropped = frankly_hash::jpeg_round_trip(&cropped, j.quality)
                .map_err(|e| ClassifyError::Preprocess(format!("JPEG round trip: {e}")))?;
        }
        let order: [usize; 3] = if i.channel_order.as_deref() == Some("BGR") { [2, 1, 0] } else { [0, 1, 2] };
        let nhwc = self.layout_nhwc();
        let (w, h) = (cw as usize, ch as usize);
        let mut out = vec![0f32; w * h * 3];
        for (px_index, px) in cropped.pixels().enumerate() {
            for (c, &src) in order.iter().enumerate() {
                let v = (f32::from(px.0[src]) - mean[c]) * scale;
                let at = if nhwc { px_index * 3 + c } else { c * w * h + px_index };
                out[at] = v;
            }
        }
        Ok((out, frame))
    }

    /// Decodes one image's YOLOv8 output (`[4 + labels, anchors]`): boxes
    /// whose best label reaches `min_score`, then class-agnostic greedy
    /// non-maximum suppression (as OpenCV's `NMSBoxes`, which NudeNet uses).
    fn detect(&self, out: &[f32], anchors: usize) -> ImageVerdict {
        let manifest = &self.model.manifest;
        let labels = &manifest.output.labels;
        let Some(d) = &manifest.output.detection else {
            return ImageVerdict { scores: Scores(Vec::new()), detections: Vec::new() };
        };
        let mut candidates: Vec<(usize, f32, [f32; 4])> = Vec::new();
        for a in 0..anchors {
            let at = |row: usize| out[row * anchors + a];
            let (mut best, mut best_score) = (0, f32::NEG_INFINITY);
            for l in 0..labels.len() {
                if at(4 + l) > best_score {
                    (best, best_score) = (l, at(4 + l));
                }
            }
            if best_score >= d.min_score && best_score > d.nms_score {
                let (cx, cy, w, h) = (at(0), at(1), at(2), at(3));
                candidates.push((best, best_score, [cx - w / 2.0, cy - h / 2.0, w, h]));
            }
        }
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut kept: Vec<(usize, f32, [f32; 4])> = Vec::new();
        for c in candidates {
            if kept.iter().all(|k| iou(&k.2, &c.2) <= d.nms_iou) {
                kept.push(c);
            }
        }
        let mut scores: Vec<(String, f32)> = labels.iter().map(|l| (l.clone(), 0.0)).collect();
        for (l, s, _) in &kept {
            scores[*l].1 = scores[*l].1.max(*s);
        }
        let detections =
            kept.into_iter().map(|(l, score, bbox)| Detection { label: labels[l].clone(), score, bbox }).collect();
        ImageVerdict { scores: Scores(scores), detections }
    }
}

impl Frame {
    /// Maps a box from model input pixels back to the original image's, and
    /// clips it to the image.
    fn map_box(&self, b: [f32; 4], shape: &[usize], nhwc: bool) -> [f32; 4] {
        let (h, w) = if nhwc { (shape[1], shape[2]) } else { (shape[2], shape[3]) };
        let sx = self.padded_width as f32 / w as f32;
        let sy = self.padded_height as f32 / h as f32;
        let (iw, ih) = (self.width as f32, self.height as f32);
        let x = (b[0] * sx - self.offset_x as f32).clamp(0.0, iw);
        let y = (b[1] * sy - self.offset_y as f32).clamp(0.0, ih);
        [x, y, (b[2] * sx).min(iw - x), (b[3] * sy).min(ih - y)]
    }
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let h = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    if w <= 0.0 || h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}

/// Most pixels of an image padded to a square (a very wide or tall image
/// would otherwise allocate its longer side squared).
pub const MAX_PADDED_PIXELS: u64 = 120_000_000;

/// Pads the image to a square if the manifest says so.
fn pad<'a>(image: &'a RgbImage, pad: Option<&Pad>) -> Result<(std::borrow::Cow<'a, RgbImage>, Frame), ClassifyError> {
    let (w, h) = image.dimensions();
    let unpadded = Frame { width: w, height: h, padded_width: w, padded_height: h, offset_x: 0, offset_y: 0 };
    let Some(p) = pad else { return Ok((std::borrow::Cow::Borrowed(image), unpadded)) };
    let side = w.max(h);
    if u64::from(side) * u64::from(side) > MAX_PADDED_PIXELS {
        return Err(ClassifyError::Preprocess(format!(
            "padding the {w}x{h} image to a {side}x{side} square would take over {MAX_PADDED_PIXELS} pixels"
        )));
    }
    let (ox, oy) = if p.align == "center" { ((side - w) / 2, (side - h) / 2) } else { (0, 0) };
    let mut square = RgbImage::from_pixel(side, side, Rgb([p.value; 3]));
    image::imageops::replace(&mut square, image, i64::from(ox), i64::from(oy));
    Ok((
        std::borrow::Cow::Owned(square),
        Frame { width: w, height: h, padded_width: side, padded_height: side, offset_x: ox, offset_y: oy },
    ))
}

/// Bilinear resampling at half-pixel centres without antialiasing, as
/// OpenCV's `INTER_LINEAR` (in floating point; OpenCV uses 11-bit fixed-point
/// weights, so a pixel may differ by one level). The `image` crate's
/// triangle filter widens its kernel when downscaling, which this must not.
fn resize_linear(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (sw, sh) = src.dimensions();
    let taps = |d: u32, s: u32| -> Vec<(u32, u32, f32)> {
        let scale = s as f32 / d as f32;
        (0..d)
            .map(|i| {
                let f = (i as f32 + 0.5) * scale - 0.5;
                let i0 = f.floor();
                let frac = f - i0;
                if i0 < 0.0 {
                    (0, 0, 0.0)
                } else if i0 as u32 >= s - 1 {
                    (s - 1, s - 1, 0.0)
                } else {
                    (i0 as u32, i0 as u32 + 1, frac)
                }
            })
            .collect()
    };
    let (xs, ys) = (taps(width, sw), taps(height, sh));
    RgbImage::from_fn(width, height, |x, y| {
        let (x0, x1, fx) = xs[x as usize];
        let (y0, y1, fy) = ys[y as usize];
        let p = |xx, yy| src.get_pixel(xx, yy).0;
        let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
        let mut px = [0u8; 3];
        for ch in 0..3 {
            let top = f32::from(a[ch]) * (1.0 - fx) + f32::from(b[ch]) * fx;
            let bottom = f32::from(c[ch]) * (1.0 - fx) + f32::from(d[ch]) * fx;
            px[ch] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
        }
        Rgb(px)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_is_bounded_and_keeps_the_image_in_place() {
        let top_left = Pad { to: "square".into(), align: "top-left".into(), value: 0 };
        let wide = RgbImage::from_pixel(20_000, 1, Rgb([9, 9, 9]));
        let err = pad(&wide, Some(&top_left)).unwrap_err();
        assert!(err.to_string().contains("would take over 120000000 pixels"), "{err}");
        let small = RgbImage::from_pixel(4, 2, Rgb([9, 9, 9]));
        let (square, frame) = pad(&small, Some(&top_left)).unwrap();
        assert_eq!(square.dimensions(), (4, 4));
        assert_eq!((square.get_pixel(3, 1).0, square.get_pixel(3, 2).0), ([9, 9, 9], [0, 0, 0]));
        assert_eq!((frame.offset_x, frame.offset_y, frame.padded_width), (0, 0, 4));
        let centered = Pad { align: "center".into(), ..top_left };
        let (_, frame) = pad(&small, Some(&centered)).unwrap();
        assert_eq!((frame.offset_x, frame.offset_y), (0, 1));
    }
}
