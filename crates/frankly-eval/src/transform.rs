//! Image transforms a hash should survive (or that an adversary applies),
//! each a pure function of the image and a seed.
//!
//! A transform is written `name[:parameter]` (`jpeg:50`, `crop:0.05`,
//! `flip`); [`Transform::parse_list`] reads a comma-separated list. Random
//! transforms (crop position, noise, watermark pattern) draw from a
//! `StdRng` seeded by [`Transform::seed_for`], so a run is reproducible
//! from its seed, image name and transform alone.

use std::io::Cursor;

use frankly_hash::RgbImage;
use image::imageops::{self, FilterType};
use image::{ImageFormat, Rgb};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Normal};

/// Largest side a transform may produce, in pixels.
pub const MAX_OUTPUT_SIDE: u32 = 16_384;
/// Largest scale factor of `resize`.
pub const MAX_RESIZE_SCALE: f32 = 4.0;
/// Largest fraction `crop` may remove from each dimension.
pub const MAX_CROP_FRACTION: f32 = 0.9;
/// Largest fraction `pad` may add to each dimension.
pub const MAX_PAD_FRACTION: f32 = 4.0;
/// Largest Gaussian blur sigma, in pixels.
pub const MAX_BLUR_SIGMA: f32 = 50.0;

/// Default parameter of `gamma`.
pub const DEFAULT_GAMMA: f32 = 2.0;
/// Default size of `watermark`: the fraction of the image width it covers.
pub const DEFAULT_WATERMARK_SIZE: f32 = 0.3;
/// Opacity of the watermark.
pub const WATERMARK_ALPHA: f32 = 0.5;

/// One transform with its parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Transform {
    /// Re-encode as JPEG at this quality (1..=100).
    Jpeg(u8),
    /// Scale both sides by this factor (Lanczos3).
    Resize(f32),
    /// Remove this fraction of the width and of the height, at a seeded position.
    Crop(f32),
    /// Add a black border; each dimension grows by this fraction, image centred.
    Pad(f32),
    /// Rotate by this many degrees (counter-clockwise) about the centre,
    /// keeping the size, corners black (bilinear).
    Rotate(f32),
    /// Mirror left to right.
    Flip,
    /// Gaussian blur with this sigma in pixels.
    Blur(f32),
    /// Add Gaussian noise with this standard deviation, as a fraction of 255,
    /// independently per pixel and channel.
    Noise(f32),
    /// Gamma correction `v' = 255 (v / 255)^(1/gamma)`.
    Gamma(f32),
    /// Blend a seeded block logo in the bottom-right corner covering this
    /// fraction of the width, at opacity [`WATERMARK_ALPHA`].
    Watermark(f32),
    /// Convert to greyscale (and back to three equal channels).
    Gray,
    /// Add this offset (fraction of 255) to every channel.
    Brightness(f32),
    /// Scale the contrast about mid-grey by this factor.
    Contrast(f32),
}

/// Why a transform could not be parsed or applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TransformError {
    /// The name is not a known transform.
    #[error(
        "unknown transform {0:?} (known: jpeg:Q, resize:F, crop:F, pad:F, rotate:DEG, flip, blur:SIGMA, noise:STD, gamma[:G], watermark[:SIZE], gray, brightness:D, contrast:F)"
    )]
    Unknown(String),
    /// The parameter is missing, not a number, or out of range.
    #[error("transform {name}: {problem}")]
    Parameter {
        /// The transform.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// The output would be empty or larger than [`MAX_OUTPUT_SIDE`].
    #[error("transform {transform} would make a {width}x{height} image")]
    OutputSize {
        /// The transform.
        transform: String,
        /// Output width.
        width: u64,
        /// Output height.
        height: u64,
    },
    /// JPEG encoding or decoding failed.
    #[error("transform {transform}: {message}")]
    Codec {
        /// The transform.
        transform: String,
        /// The codec's message.
        message: String,
    },
}

fn param(name: &str, value: Option<&str>, default: Option<f32>, range: (f32, f32)) -> Result<f32, TransformError> {
    let problem = |problem: String| TransformError::Parameter { name: name.to_owned(), problem };
    let v = match (value, default) {
        (Some(v), _) => v.trim().parse::<f32>().map_err(|_| problem(format!("{v:?} is not a number")))?,
        (None, Some(d)) => d,
        (None, None) => return Err(problem(format!("needs a parameter, as in {name}:{}", range.1.min(1.0)))),
    };
    if !v.is_finite() || v < range.0 || v > range.1 {
        return Err(problem(format!("{v} is outside {}..={}", range.0, range.1)));
    }
    Ok(v)
}

impl std::str::FromStr for Transform {
    type Err = TransformError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let spec = spec.trim();
        let (name, value) = match spec.split_once(':') {
            Some((n, v)) => (n.trim().to_ascii_lowercase(), Some(v)),
            None => (spec.to_ascii_lowercase(), None),
        };
        let no_param = |t: Transform| match value {
            None => Ok(t),
            Some(_) => Err(TransformError::Parameter { name: name.clone(), problem: "takes no parameter".into() }),
        };
        let n = name.as_str();
        Ok(match n {
            "jpeg" => Transform::Jpeg(param(n, value, None, (1.0, 100.0))?.round() as u8),
            "resize" => Transform::Resize(param(n, value, None, (0.01, MAX_RESIZE_SCALE))?),
            "crop" => Transform::Crop(param(n, value, None, (0.0, MAX_CROP_FRACTION))?),
            "pad" => Transform::Pad(param(n, value, None, (0.0, MAX_PAD_FRACTION))?),
            "rotate" => Transform::Rotate(param(n, value, None, (-360.0, 360.0))?),
            "flip" => no_param(Transform::Flip)?,
            "blur" => Transform::Blur(param(n, value, None, (0.01, MAX_BLUR_SIGMA))?),
            "noise" => Transform::Noise(param(n, value, None, (0.0, 1.0))?),
            "gamma" => Transform::Gamma(param(n, value, Some(DEFAULT_GAMMA), (0.05, 20.0))?),
            "watermark" => Transform::Watermark(param(n, value, Some(DEFAULT_WATERMARK_SIZE), (0.01, 1.0))?),
            "gray" | "grey" | "grayscale" => no_param(Transform::Gray)?,
            "brightness" => Transform::Brightness(param(n, value, None, (-1.0, 1.0))?),
            "contrast" => Transform::Contrast(param(n, value, None, (0.0, 10.0))?),
            _ => return Err(TransformError::Unknown(spec.to_owned())),
        })
    }
}

impl std::fmt::Display for Transform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transform::Jpeg(q) => write!(f, "jpeg:{q}"),
            Transform::Resize(v) => write!(f, "resize:{v}"),
            Transform::Crop(v) => write!(f, "crop:{v}"),
            Transform::Pad(v) => write!(f, "pad:{v}"),
            Transform::Rotate(v) => write!(f, "rotate:{v}"),
            Transform::Flip => f.write_str("flip"),
            Transform::Blur(v) => write!(f, "blur:{v}"),
            Transform::Noise(v) => write!(f, "noise:{v}"),
            Transform::Gamma(v) => write!(f, "gamma:{v}"),
            Transform::Watermark(v) => write!(f, "watermark:{v}"),
            Transform::Gray => f.write_str("gray"),
            Transform::Brightness(v) => write!(f, "brightness:{v}"),
            Transform::Contrast(v) => write!(f, "contrast:{v}"),
        }
    }
}

/// 64-bit FNV-1a, to derive seeds from names.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

impl Transform {
    /// Parses a comma-separated list, e.g. `jpeg:95,crop:0.05,flip`.
    pub fn parse_list(list: &str) -> Result<Vec<Transform>, TransformError> {
        list.split(',').filter(|s| !s.trim().is_empty()).map(str::parse).collect()
    }

    /// The seed for applying this transform to the image called `image_name`
    /// in a run seeded with `run_seed`.
    pub fn seed_for(&self, run_seed: u64, image_name: &str) -> u64 {
        let key = format!("{run_seed}\0{self}\0{image_name}");
        fnv1a(key.as_bytes())
    }

    /// Applies the transform. Random choices come from `StdRng::seed_from_u64(seed)`.
    pub fn apply(&self, image: &RgbImage, seed: u64) -> Result<RgbImage, TransformError> {
        let mut rng = StdRng::seed_from_u64(seed);
        let (w, h) = image.dimensions();
        let out = match *self {
            Transform::Jpeg(q) => {
                let codec = |e: image::ImageError| TransformError::Codec {
                    transform: self.to_string(),
                    message: e.to_string(),
                };
                let mut bytes = Vec::new();
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut Cursor::new(&mut bytes), q)
                    .encode_image(image)
                    .map_err(codec)?;
                image::load_from_memory_with_format(&bytes, ImageFormat::Jpeg).map_err(codec)?.to_rgb8()
            }
            Transform::Resize(s) => {
                let (nw, nh) = self.checked_size(f64::from(w) * f64::from(s), f64::from(h) * f64::from(s))?;
                imageops::resize(image, nw, nh, FilterType::Lanczos3)
            }
            Transform::Crop(f) => {
                let (nw, nh) =
                    self.checked_size(f64::from(w) * f64::from(1.0 - f), f64::from(h) * f64::from(1.0 - f))?;
                let x = rng.random_range(0..=w - nw);
                let y = rng.random_range(0..=h - nh);
                imageops::crop_imm(image, x, y, nw, nh).to_image()
            }
            Transform::Pad(f) => {
                let (nw, nh) =
                    self.checked_size(f64::from(w) * f64::from(1.0 + f), f64::from(h) * f64::from(1.0 + f))?;
                let mut out = RgbImage::new(nw, nh);
                imageops::replace(&mut out, image, i64::from((nw - w) / 2), i64::from((nh - h) / 2));
                out
            }
            Transform::Rotate(deg) => rotate(image, deg),
            Transform::Flip => imageops::flip_horizontal(image),
            Transform::Blur(sigma) => imageops::blur(image, sigma),
            Transform::Noise(std) => {
                let mut out = image.clone();
                if std > 0.0 {
                    let normal = Normal::new(0.0f32, std * 255.0)
                        .map_err(|e| TransformError::Parameter { name: "noise".into(), problem: e.to_string() })?;
                    for v in out.iter_mut() {
                        *v = (f32::from(*v) + normal.sample(&mut rng)).round().clamp(0.0, 255.0) as u8;
                    }
                }
                out
            }
            Transform::Gamma(g) => map_channels(image, |v| 255.0 * (v / 255.0).powf(1.0 / g)),
            Transform::Watermark(size) => watermark(image, size, &mut rng),
            Transform::Gray => {
                let gray = imageops::grayscale(image);
                RgbImage::from_fn(w, h, |x, y| {
                    let l = gray.get_pixel(x, y).0[0];
                    Rgb([l, l, l])
                })
            }
            Transform::Brightness(d) => map_channels(image, |v| v + d * 255.0),
            Transform::Contrast(c) => map_channels(image, |v| (v - 127.5) * c + 127.5),
        };
        Ok(out)
    }

    fn checked_size(&self, w: f64, h: f64) -> Result<(u32, u32), TransformError> {
        let (w, h) = (w.round(), h.round());
        if w < 1.0 || h < 1.0 || w > f64::from(MAX_OUTPUT_SIDE) || h > f64::from(MAX_OUTPUT_SIDE) {
            return Err(TransformError::OutputSize { transform: self.to_string(), width: w as u64, height: h as u64 });
        }
        Ok((w as u32, h as u32))
    }
}

fn map_channels(image: &RgbImage, f: impl Fn(f32) -> f32) -> RgbImage {
    let lut: Vec<u8> = (0..=255u8).map(|v| f(f32::from(v)).round().clamp(0.0, 255.0) as u8).collect();
    let mut out = image.clone();
    for v in out.iter_mut() {
        *v = lut[usize::from(*v)];
    }
    out
}

/// Rotation about the centre with bilinear sampling; outside pixels are black.
fn rotate(image: &RgbImage, degrees: f32) -> RgbImage {
    let (w, h) = image.dimensions();
    let (sin, cos) = f64::from(degrees).to_radians().sin_cos();
    let (cx, cy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
    RgbImage::from_fn(w, h, |x, y| {
        // Inverse mapping: where in the source does this output pixel come from?
        let (dx, dy) = (f64::from(x) + 0.5 - cx, f64::from(y) + 0.5 - cy);
        let sx = cos * dx - sin * dy + cx - 0.5;
        let sy = sin * dx + cos * dy + cy - 0.5;
        bilinear(image, sx, sy)
    })
}

fn bilinear(image: &RgbImage, x: f64, y: f64) -> Rgb<u8> {
    let (w, h) = image.dimensions();
    if x < -0.5 || y < -0.5 || x > f64::from(w) - 0.5 || y > f64::from(h) - 0.5 {
        return Rgb([0, 0, 0]);
    }
    let x = x.clamp(0.0, f64::from(w - 1));
    let y = y.clamp(0.0, f64::from(h - 1));
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - f64::from(x0), y - f64::from(y0));
    let p = |xx, yy| image.get_pixel(xx, yy).0;
    let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
    let mut out = [0u8; 3];
    for k in 0..3 {
        let top = f64::from(a[k]) * (1.0 - fx) + f64::from(b[k]) * fx;
        let bottom = f64::from(c[k]) * (1.0 - fx) + f64::from(d[k]) * fx;
        out[k] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
    }
    Rgb(out)
}

/// Cells per side of the watermark logo.
const WATERMARK_CELLS: u32 = 8;

/// A seeded 8x8 block logo (white cells on a dark plate) blended into the
/// bottom-right corner, as perception's `apply_watermark` places its logo.
fn watermark(image: &RgbImage, size: f32, rng: &mut StdRng) -> RgbImage {
    let (w, h) = image.dimensions();
    let side = ((f64::from(w.min(h)) * f64::from(size)).round() as u32).clamp(1, w.min(h));
    let cells: Vec<bool> = (0..WATERMARK_CELLS * WATERMARK_CELLS).map(|_| rng.random_bool(0.5)).collect();
    let mut out = image.clone();
    let (x0, y0) = (w - side, h - side);
    for y in 0..side {
        for x in 0..side {
            let cx = x * WATERMARK_CELLS / side;
            let cy = y * WATERMARK_CELLS / side;
            let ink = if cells[(cy * WATERMARK_CELLS + cx) as usize] { 255.0 } else { 32.0 };
            let px = out.get_pixel_mut(x0 + x, y0 + y);
            for v in px.0.iter_mut() {
                *v = (f32::from(*v) * (1.0 - WATERMARK_ALPHA) + ink * WATERMARK_ALPHA).round() as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RgbImage {
        RgbImage::from_fn(97, 61, |x, y| Rgb([(x * 2) as u8, (y * 3) as u8, ((x * y) % 251) as u8]))
    }

    #[test]
    fn parses_and_prints_specs() {
        let list = Transform::parse_list(
            "jpeg:95, resize:0.5,crop:0.05,pad:0.2,rotate:4,flip,blur:2,noise:0.2,gamma,watermark,gray",
        )
        .unwrap();
        assert_eq!(list.len(), 11);
        assert_eq!(list[0], Transform::Jpeg(95));
        assert_eq!(list[8], Transform::Gamma(DEFAULT_GAMMA));
        let printed: Vec<String> = list.iter().map(|t| t.to_string()).collect();
        assert_eq!(printed[1], "resize:0.5");
        assert_eq!(printed[5], "flip");
        for t in &list {
            assert_eq!(t.to_string().parse::<Transform>().as_ref(), Ok(t));
        }
        for bad in ["jpeg", "jpeg:0", "crop:0.95", "flip:1", "blur:x", "sharpen:2", "resize:nan"] {
            assert!(bad.parse::<Transform>().is_err(), "{bad}");
        }
    }

    #[test]
    fn geometry_of_outputs() {
        let img = sample();
        let size = |t: &str| t.parse::<Transform>().unwrap().apply(&img, 1).unwrap().dimensions();
        assert_eq!(size("resize:0.5"), (49, 31));
        assert_eq!(size("crop:0.1"), (87, 55));
        assert_eq!(size("pad:0.2"), (116, 73));
        assert_eq!(size("rotate:4"), (97, 61));
        assert!(matches!(
            Transform::Resize(0.01).apply(&RgbImage::new(40, 40), 0),
            Err(TransformError::OutputSize { .. })
        ));
    }

    #[test]
    fn flip_gray_and_rotate_zero_are_exact() {
        let img = sample();
        let flipped = Transform::Flip.apply(&img, 0).unwrap();
        assert_eq!(flipped.get_pixel(0, 5), img.get_pixel(96, 5));
        let gray = Transform::Gray.apply(&img, 0).unwrap();
        assert!(gray.pixels().all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]));
        assert_eq!(Transform::Rotate(0.0).apply(&img, 0).unwrap(), img);
        let padded = Transform::Pad(0.2).apply(&img, 0).unwrap();
        assert_eq!(padded.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(padded.get_pixel(9, 6), img.get_pixel(0, 0));
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_noise() {
        let img = sample();
        for t in Transform::parse_list("jpeg:50,crop:0.2,noise:0.2,watermark,blur:2,rotate:4").unwrap() {
            assert_eq!(t.apply(&img, 7).unwrap().into_raw(), t.apply(&img, 7).unwrap().into_raw(), "{t}");
        }
        let noise = Transform::Noise(0.2);
        assert_ne!(noise.apply(&img, 7).unwrap(), noise.apply(&img, 8).unwrap());
        assert_ne!(noise.apply(&img, 7).unwrap(), img);
        assert_ne!(
            Transform::Watermark(0.3).apply(&img, 1).unwrap(),
            Transform::Watermark(0.3).apply(&img, 2).unwrap()
        );
        assert_ne!(noise.seed_for(1, "a.jpg"), noise.seed_for(1, "b.jpg"));
        assert_ne!(noise.seed_for(1, "a.jpg"), noise.seed_for(2, "a.jpg"));
        assert_ne!(noise.seed_for(1, "a.jpg"), Transform::Crop(0.2).seed_for(1, "a.jpg"));
    }
}
