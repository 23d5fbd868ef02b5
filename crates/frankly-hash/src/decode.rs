//! Decoding untrusted image bytes within explicit limits.
//!
//! Every size check happens on the header, before the decoder allocates pixel
//! memory, so a decompression bomb (a small file whose header claims
//! 100000x100000 pixels) costs nothing but the header read. The remaining
//! allocations of the decoder are capped by `image`'s own allocation limit.
//!
//! JPEG goes through libjpeg-turbo ([`crate::jpeg`]), so its pixels are the
//! ones Pillow (and with it HMA and the reference classifiers) decodes; the
//! other formats through the `image` crate.
//!
//! Pixels are normalised the way Meta's PDQ reference sees them: alpha is
//! dropped (not composited over a background), grey and palette images are
//! expanded to RGB, 16-bit and float samples are scaled to 8 bits. EXIF
//! orientation is ignored unless asked for, as the reference ignores it.

use std::io::Cursor;

use image::codecs::gif::GifDecoder;
use image::codecs::png::PngDecoder;
use image::codecs::webp::WebPDecoder;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

/// Default cap on either side of an image, in pixels.
pub const MAX_DIMENSION: u32 = 32_768;
/// Default cap on `width * height` (a 108-megapixel phone photo fits).
pub const MAX_PIXELS: u64 = 120_000_000;
/// Default cap on the memory a decoder may allocate, in bytes.
pub const MAX_DECODE_ALLOC: u64 = 1 << 30;
/// Default cap on the size of an encoded image file, in bytes.
pub const MAX_FILE_BYTES: u64 = 256 << 20;
/// Default cap on the frames of one animation that [`decode_frames`] decodes.
pub const MAX_FRAMES: usize = 64;
/// Default cap on the pixels [`decode_frames`] decodes over all frames of one
/// animation (each frame is a full canvas): with [`MAX_FRAMES`], it bounds
/// the time an animation costs to about that of a 64-megapixel photo.
pub const MAX_ANIMATION_PIXELS: u64 = 64_000_000;

/// The formats frankly decodes. Anything else is refused by its magic bytes.
pub const SUPPORTED_FORMATS: [ImageFormat; 6] =
    [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP, ImageFormat::Gif, ImageFormat::Bmp, ImageFormat::Tiff];

/// Limits applied before and during decoding. Every field has a named default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Maximum width and maximum height, each.
    pub max_dimension: u32,
    /// Maximum `width * height`.
    pub max_pixels: u64,
    /// Maximum bytes the decoder may allocate.
    pub max_alloc: u64,
    /// Maximum size of the encoded input.
    pub max_file_bytes: u64,
    /// Maximum frames of an animation decoded by [`decode_frames`].
    pub max_frames: usize,
    /// Maximum pixels decoded over all frames of an animation.
    pub max_animation_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_dimension: MAX_DIMENSION,
            max_pixels: MAX_PIXELS,
            max_alloc: MAX_DECODE_ALLOC,
            max_file_bytes: MAX_FILE_BYTES,
            max_frames: MAX_FRAMES,
            max_animation_pixels: MAX_ANIMATION_PIXELS,
        }
    }
}

/// How to decode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Size limits.
    pub limits: DecodeLimits,
    /// Rotate/flip the pixels as the EXIF orientation tag says (off by default:
    /// Meta's reference hashes the stored pixels).
    pub exif_orient: bool,
}

/// Why an image could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not in any supported format.
    #[error("not a supported image (JPEG, PNG, WebP, GIF, BMP or TIFF)")]
    UnknownFormat,
    /// A format frankly does not decode.
    #[error("{0:?} images are not supported (JPEG, PNG, WebP, GIF, BMP or TIFF are)")]
    UnsupportedFormat(ImageFormat),
    /// The input is larger than `max_file_bytes`.
    #[error("file is {size} bytes, over the limit of {limit} bytes")]
    FileTooLarge {
        /// Size of the input.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The header declares a size over the limits; nothing was allocated.
    #[error("image is {width}x{height}, over the limit of {limit}")]
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Which limit, e.g. "32768 pixels per side".
        limit: String,
    },
    /// The header declares an empty image.
    #[error("image has no pixels ({width}x{height})")]
    Empty {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
    /// The decoder failed: truncated or corrupt data, or an allocation over
    /// `max_alloc`.
    #[error("cannot decode {format:?} image: {source}")]
    Malformed {
        /// The detected format.
        format: ImageFormat,
        /// What the decoder said.
        #[source]
        source: image::ImageError,
    },
}

impl DecodeError {
    /// Whether the decoder ran out of data (a truncated file), as far as its
    /// error says: an `UnexpectedEof` anywhere in the error's chain.
    pub fn is_unexpected_eof(&self) -> bool {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = next {
            let eof = |io: &std::io::Error| io.kind() == std::io::ErrorKind::UnexpectedEof;
            if e.downcast_ref::<std::io::Error>().is_some_and(eof) {
                return true;
            }
            if let Some(image::ImageError::IoError(io)) = e.downcast_ref::<image::ImageError>()
                && eof(io)
            {
                return true;
            }
            next = e.source();
        }
        false
    }
}

/// A decoded image, normalised to 8-bit RGB.
#[derive(Debug, Clone)]
pub struct DecodedImage {
    /// The pixels.
    pub rgb: RgbImage,
    /// The detected format.
    pub format: ImageFormat,
}

/// Decodes image bytes to 8-bit RGB within `options.limits`.
///
/// Animations (GIF, animated WebP, APNG) give their first frame; [`decode_frames`]
/// gives every frame.
///
/// ```
/// use frankly_hash::{decode, DecodeError, DecodeOptions};
/// let err = decode(b"not an image", &DecodeOptions::default()).unwrap_err();
/// assert!(matches!(err, DecodeError::UnknownFormat));
/// ```
pub fn decode(bytes: &[u8], options: &DecodeOptions) -> Result<DecodedImage, DecodeError> {
    let limits = &options.limits;
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(DecodeError::FileTooLarge { size: bytes.len() as u64, limit: limits.max_file_bytes });
    }
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|_| DecodeError::UnknownFormat)?;
    let format = reader.format().ok_or(DecodeError::UnknownFormat)?;
    if !SUPPORTED_FORMATS.contains(&format) {
        return Err(DecodeError::UnsupportedFormat(format));
    }
    let malformed = |source| DecodeError::Malformed { format, source };
    if format == ImageFormat::Jpeg
        && let Some(rgb) = crate::jpeg::decode_jpeg(bytes, limits)?
    {
        let orientation = options
            .exif_orient
            .then(|| image::codecs::jpeg::JpegDecoder::new(Cursor::new(bytes)).ok()?.orientation().ok())
            .flatten();
        let mut image = DynamicImage::ImageRgb8(rgb);
        if let Some(orientation) = orientation {
            image.apply_orientation(orientation);
        }
        return Ok(DecodedImage { rgb: to_rgb8(image), format });
    }
    let mut decoder = reader.into_decoder().map_err(malformed)?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height, limits)?;
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_dimension);
    image_limits.max_image_height = Some(limits.max_dimension);
    image_limits.max_alloc = Some(limits.max_alloc);
    decoder.set_limits(image_limits).map_err(malformed)?;
    let orientation = if options.exif_orient { decoder.orientation().ok() } else { None };
    let mut image = DynamicImage::from_decoder(decoder).map_err(malformed)?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(DecodedImage { rgb: to_rgb8(image), format })
}

/// How a walk over an image's frames ([`decode_frames`]) ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum FramesEnd {
    /// Every frame was decoded.
    Complete,
    /// More frames follow than `max_frames` or `max_animation_pixels` allow;
    /// they were not decoded.
    Limit,
    /// A frame after the first does not decode (truncated or corrupt); the
    /// frames before it were decoded.
    Failed {
        /// The frame, from 0.
        frame: usize,
        /// Why.
        error: DecodeError,
    },
}

/// What [`decode_frames`] decoded.
#[derive(Debug)]
pub struct Frames {
    /// The detected format.
    pub format: ImageFormat,
    /// How many frames were decoded (and passed to the callback).
    pub decoded: usize,
    /// Why it stopped.
    pub end: FramesEnd,
}

/// Decodes every frame of an animation (GIF, animated WebP, APNG), in order,
/// calling `each` with each frame composited as it is shown, normalised to
/// 8-bit RGB, one frame in memory at a time; a still image gives one frame,
/// as [`decode`] does.
///
/// An APNG's frame 0 is its default image (what a viewer without APNG
/// support shows, and what [`decode`] gives), then come the animation's
/// frames; when the default image is also the animation's first frame it is
/// passed once. The default image is always hashed because a sender chooses
/// whether it is part of the animation: left out, it is a "thumbnail" that
/// some viewers show and an animation decoder skips.
///
/// At most `limits.max_frames` frames and `limits.max_animation_pixels`
/// pixels (each frame is a full canvas) are decoded; [`FramesEnd::Limit`]
/// says more were left. An error in the first frame is an `Err`, as in
/// [`decode`]; in a later one it ends the walk with [`FramesEnd::Failed`],
/// after the frames that decoded.
pub fn decode_frames(
    bytes: &[u8],
    options: &DecodeOptions,
    mut each: impl FnMut(usize, &RgbImage),
) -> Result<Frames, DecodeError> {
    let limits = &options.limits;
    let format = image::guess_format(bytes).ok();
    let animated = limits.max_frames > 1
        && match format {
            Some(ImageFormat::Gif) => true,
            Some(ImageFormat::WebP) => WebPDecoder::new(Cursor::new(bytes)).is_ok_and(|d| d.has_animation()),
            Some(ImageFormat::Png) => PngDecoder::new(Cursor::new(bytes)).is_ok_and(|d| d.is_apng().unwrap_or(false)),
            _ => false,
        };
    let (Some(format), true) = (format, animated) else {
        let image = decode(bytes, options)?;
        each(0, &image.rgb);
        return Ok(Frames { format: image.format, decoded: 1, end: FramesEnd::Complete });
    };
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(DecodeError::FileTooLarge { size: bytes.len() as u64, limit: limits.max_file_bytes });
    }
    let malformed = |source| DecodeError::Malformed { format, source };
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_dimension);
    image_limits.max_image_height = Some(limits.max_dimension);
    image_limits.max_alloc = Some(limits.max_alloc);
    let walk = Walk { format, limits, first: 0, skip_first_if: None };
    match format {
        ImageFormat::Gif => {
            let mut decoder = GifDecoder::new(Cursor::new(bytes)).map_err(malformed)?;
            let (width, height) = decoder.dimensions();
            check_dimensions(width, height, limits)?;
            decoder.set_limits(image_limits).map_err(malformed)?;
            walk.run(width, height, decoder, each)
        }
        ImageFormat::WebP => {
            let mut decoder = WebPDecoder::new(Cursor::new(bytes)).map_err(malformed)?;
            let (width, height) = decoder.dimensions();
            check_dimensions(width, height, limits)?;
            decoder.set_limits(image_limits).map_err(malformed)?;
            walk.run(width, height, decoder, each)
        }
        _ => {
            // APNG: the default image first, decoded as a still PNG is.
            let default = decode(bytes, options)?;
            each(0, &default.rgb);
            let mut decoder = PngDecoder::new(Cursor::new(bytes)).map_err(malformed)?;
            let (width, height) = decoder.dimensions();
            decoder.set_limits(image_limits).map_err(malformed)?;
            let animation = decoder.apng().map_err(malformed)?;
            let walk = Walk { first: 1, skip_first_if: Some(&default.rgb), ..walk };
            walk.run(width, height, animation, |n, frame| each(n, frame))
        }
    }
}

/// One walk over an animation decoder's frames within the limits.
struct Walk<'l> {
    format: ImageFormat,
    limits: &'l DecodeLimits,
    /// Frames already passed to the callback before this walk.
    first: usize,
    /// The animation's first frame is not passed again when it has exactly
    /// these pixels (an APNG whose default image is also its first frame).
    skip_first_if: Option<&'l RgbImage>,
}

impl Walk<'_> {
    fn run<'a>(
        self,
        width: u32,
        height: u32,
        decoder: impl image::AnimationDecoder<'a>,
        mut each: impl FnMut(usize, &RgbImage),
    ) -> Result<Frames, DecodeError> {
        let Walk { format, limits, first, skip_first_if } = self;
        let malformed = |source| DecodeError::Malformed { format, source };
        // Every frame is a full canvas: the pixel budget caps the frame count.
        let canvas = (u64::from(width) * u64::from(height)).max(1);
        let by_pixels = usize::try_from(limits.max_animation_pixels / canvas).unwrap_or(usize::MAX);
        let max_frames = limits.max_frames.min(by_pixels).max(1);
        let mut decoded = first;
        for (n, frame) in decoder.into_frames().enumerate() {
            if decoded == max_frames {
                return Ok(Frames { format, decoded, end: FramesEnd::Limit });
            }
            match frame {
                Ok(frame) => {
                    let rgb = to_rgb8(DynamicImage::ImageRgba8(frame.into_buffer()));
                    if n == 0 && skip_first_if.is_some_and(|pixels| *pixels == rgb) {
                        continue;
                    }
                    each(decoded, &rgb);
                }
                Err(source) if decoded == 0 => return Err(malformed(source)),
                Err(source) => {
                    return Ok(Frames {
                        format,
                        decoded,
                        end: FramesEnd::Failed { frame: decoded, error: malformed(source) },
                    });
                }
            }
            decoded += 1;
        }
        if decoded == 0 {
            return Err(DecodeError::Empty { width: 0, height: 0 });
        }
        Ok(Frames { format, decoded, end: FramesEnd::Complete })
    }
}

pub(crate) fn check_dimensions(width: u32, height: u32, limits: &DecodeLimits) -> Result<(), DecodeError> {
    if width == 0 || height == 0 {
        return Err(DecodeError::Empty { width, height });
    }
    if width > limits.max_dimension || height > limits.max_dimension {
        let limit = format!("{} pixels per side", limits.max_dimension);
        return Err(DecodeError::TooLarge { width, height, limit });
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        let limit = format!("{} pixels in all", limits.max_pixels);
        return Err(DecodeError::TooLarge { width, height, limit });
    }
    Ok(())
}

/// Drops alpha without compositing and scales deeper samples to 8 bits.
/// 16-bit colour keeps each sample's high byte, as Pillow opens such a PNG
/// (raw mode `RGB;16B`), not the nearest 8-bit level the `image` crate
/// would round to: that moved PDQ by up to 8 bits and open_nsfw by 0.03 on
/// the Debian corpus's 16-bit PNGs.
fn to_rgb8(image: DynamicImage) -> RgbImage {
    let high_bytes = |w: u32, h: u32, samples: &[u16], channels: usize| {
        let rgb = samples.chunks_exact(channels).flat_map(|p| [p[0] >> 8, p[1] >> 8, p[2] >> 8].map(|v| v as u8));
        RgbImage::from_raw(w, h, rgb.collect())
    };
    match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        DynamicImage::ImageRgb16(i) => {
            high_bytes(i.width(), i.height(), i.as_raw(), 3).unwrap_or_else(|| DynamicImage::ImageRgb16(i).to_rgb8())
        }
        DynamicImage::ImageRgba16(i) => {
            high_bytes(i.width(), i.height(), i.as_raw(), 4).unwrap_or_else(|| DynamicImage::ImageRgba16(i).to_rgb8())
        }
        other => other.to_rgb8(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(format: ImageFormat) -> Vec<u8> {
        let img = RgbImage::from_fn(16, 16, |x, y| image::Rgb([x as u8 * 16, y as u8 * 16, 99]));
        let mut buf = Vec::new();
        img.write_to(&mut Cursor::new(&mut buf), format).unwrap();
        buf
    }

    /// A real PNG whose IHDR (with a valid CRC) now claims `width` x `height`:
    /// a decoder that trusted it would allocate for the claimed size.
    pub(crate) fn png_bomb(width: u32, height: u32) -> Vec<u8> {
        let mut png = encode(ImageFormat::Png);
        // Signature (8), length (4), "IHDR" at 12..16, width at 16..20, height at 20..24.
        png[16..20].copy_from_slice(&width.to_be_bytes());
        png[20..24].copy_from_slice(&height.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        png
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    /// A real baseline JPEG whose SOF0 now claims `width` x `height`.
    fn jpeg_bomb(width: u16, height: u16) -> Vec<u8> {
        let mut jpg = encode(ImageFormat::Jpeg);
        let sof = jpg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        // Marker (2), length (2), precision (1), height (2), width (2).
        jpg[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
        jpg[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
        jpg
    }

    #[test]
    fn png_bomb_is_refused_from_its_header() {
        let err = decode(&png_bomb(100_000, 100_000), &DecodeOptions::default()).unwrap_err();
        assert!(matches!(err, DecodeError::TooLarge { width: 100_000, height: 100_000, .. }), "{err}");
        assert_eq!(err.to_string(), "image is 100000x100000, over the limit of 32768 pixels per side");
    }

    #[test]
    fn jpeg_bomb_is_refused_from_its_header() {
        let err = decode(&jpeg_bomb(30_000, 30_000), &DecodeOptions::default()).unwrap_err();
        assert!(matches!(err, DecodeError::TooLarge { width: 30_000, height: 30_000, .. }), "{err}");
        assert!(err.to_string().contains("120000000 pixels in all"), "{err}");
    }

    #[test]
    fn limits_are_overridable() {
        let mut options = DecodeOptions::default();
        options.limits.max_pixels = 100;
        let err = decode(&png_bomb(11, 10), &options).unwrap_err();
        assert!(matches!(err, DecodeError::TooLarge { .. }), "{err}");
        // Within the limits, the header passes and the data is decoded.
        options.limits.max_pixels = 256;
        assert_eq!(decode(&encode(ImageFormat::Png), &options).unwrap().rgb.dimensions(), (16, 16));
        // The lying header passes the pixel limit, but the data does not match it.
        let err = decode(&png_bomb(10, 10), &options).unwrap_err();
        assert!(matches!(err, DecodeError::Malformed { format: ImageFormat::Png, .. }), "{err}");
        options.limits.max_file_bytes = 10;
        assert!(matches!(decode(&encode(ImageFormat::Png), &options), Err(DecodeError::FileTooLarge { .. })));
    }

    #[test]
    fn zero_sized_and_garbage_inputs_fail_cleanly() {
        let o = DecodeOptions::default();
        assert!(matches!(
            decode(&png_bomb(0, 10), &o),
            Err(DecodeError::Empty { .. }) | Err(DecodeError::Malformed { .. })
        ));
        assert!(matches!(decode(b"", &o), Err(DecodeError::UnknownFormat)));
        assert!(matches!(decode(&[0xFF, 0xD8, 0xFF], &o), Err(DecodeError::Malformed { .. })));
        let ico = [0u8, 0, 1, 0, 1, 0, 16, 16, 0, 0, 1, 0, 32, 0];
        assert!(decode(&ico, &o).is_err());
    }

    #[test]
    fn every_format_decodes_and_every_truncation_fails_without_panicking() {
        let o = DecodeOptions::default();
        for format in SUPPORTED_FORMATS {
            let buf = encode(format);
            let decoded = decode(&buf, &o).unwrap();
            assert_eq!((decoded.format, decoded.rgb.dimensions()), (format, (16, 16)));
            for len in 0..buf.len() {
                let _ = decode(&buf[..len], &o);
            }
        }
    }

    #[test]
    fn exif_orientation_applies_only_when_asked() {
        // Orientation 6: rotate 90 degrees clockwise to display.
        let jpg =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/exif/orientation-6.jpg")).unwrap();
        let mut o = DecodeOptions::default();
        assert_eq!(decode(&jpg, &o).unwrap().rgb.dimensions(), (64, 32));
        o.exif_orient = true;
        let rotated = decode(&jpg, &o).unwrap().rgb;
        assert_eq!(rotated.dimensions(), (32, 64));
        // The bright left half is now on top.
        assert!(rotated.get_pixel(16, 8).0[0] > 200 && rotated.get_pixel(16, 56).0[0] < 50);
    }

    /// Corrupted real files (random bytes overwritten, in every format) must
    /// give `Ok` or a clean `Err`, never a panic, and never allocate past the
    /// limits.
    #[test]
    fn corrupted_files_never_panic() {
        let photo = image::open(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/photos/skimage_chelsea.png"))
            .unwrap()
            .to_rgb8();
        let small = image::imageops::thumbnail(&photo, 90, 60);
        let mut seed = 0x853c_49e6_748f_ea9bu64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut options = DecodeOptions::default();
        options.limits.max_alloc = 64 << 20;
        for format in SUPPORTED_FORMATS {
            let mut clean = Vec::new();
            small.write_to(&mut Cursor::new(&mut clean), format).unwrap();
            for _ in 0..300 {
                let mut bytes = clean.clone();
                for _ in 0..1 + next() % 8 {
                    let at = (next() % bytes.len() as u64) as usize;
                    bytes[at] = next() as u8;
                }
                let _ = decode(&bytes, &options);
            }
        }
    }

    #[test]
    fn alpha_is_dropped_not_composited() {
        let rgba = image::RgbaImage::from_pixel(8, 8, image::Rgba([200, 100, 50, 0]));
        let mut buf = Vec::new();
        rgba.write_to(&mut Cursor::new(&mut buf), ImageFormat::Png).unwrap();
        let rgb = decode(&buf, &DecodeOptions::default()).unwrap().rgb;
        assert_eq!(rgb.get_pixel(3, 3).0, [200, 100, 50]);
    }

    #[test]
    fn sixteen_bit_grey_is_scaled_and_expanded() {
        let grey = image::ImageBuffer::<image::Luma<u16>, _>::from_pixel(6, 6, image::Luma([65535u16]));
        let mut buf = Vec::new();
        DynamicImage::ImageLuma16(grey).write_to(&mut Cursor::new(&mut buf), ImageFormat::Png).unwrap();
        let rgb = decode(&buf, &DecodeOptions::default()).unwrap().rgb;
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
    }
}
