//! JPEG through libjpeg-turbo, so that frankly's pixels are Pillow's.
//!
//! Meta's HMA, the `pdqhash` users and the reference classifiers all read a
//! JPEG with `PIL.Image.open(path).convert("RGB")`, and Pillow's wheels decode
//! with libjpeg-turbo (accurate integer IDCT, fancy upsampling, libjpeg's
//! colour conversion). A different decoder (the `image` crate's zune-jpeg)
//! gives pixels a level or two away, which moves PDQ bits and, through the
//! JPEG round trip of open_nsfw's preprocessing, classifier scores. So JPEG
//! is decoded and encoded here by libjpeg-turbo itself, through the
//! `turbojpeg` crate, built from the source that `turbojpeg-sys` 1.2.0
//! vendors (libjpeg-turbo 3.1.0, SIMD required) and never from a system
//! library: the pin is in the workspace manifest and `docs/hashes.md` says
//! what it was checked against.
//!
//! Written here rather than taken from a crate: the mapping of libjpeg's
//! warnings (decoding goes on, as in Pillow) and of a CMYK JPEG to Pillow's
//! RGB (`CMYK;I` then `cmyk2rgb`), which no crate reproduces.

use image::{ImageFormat, RgbImage};
use turbojpeg::{Colorspace, Decompressor, PixelFormat};

use crate::decode::{DecodeError, DecodeLimits, check_dimensions};

/// Most progressive scans a JPEG may have: each scan walks the whole
/// coefficient buffer, so a file of thousands of tiny scans costs minutes.
/// Real progressive JPEGs have about ten.
pub const MAX_JPEG_SCANS: u32 = 500;

/// libjpeg's warnings (`JWRN_*` in `jerror.h`): the decoder carried on and
/// the pixels are complete, as Pillow, which ignores warnings, returns them.
/// `Premature end of JPEG file` is not among them: Pillow refuses a
/// truncated file, and so does frankly (as a truncated image).
const WARNINGS: [&str; 7] = [
    "Corrupt JPEG data:",
    "Unknown Adobe color transform code",
    "Inconsistent progression sequence",
    "Warning: unknown JFIF revision number",
    "Invalid SOS parameters for sequential JPEG",
    "Application transferred too many scanlines",
    "Warning: thumbnail image size does not match data length",
];

/// What libjpeg says when the data ends before the image does.
const EOF_WARNING: &str = "Premature end of JPEG file";

fn error(message: String) -> DecodeError {
    let kind = if message.starts_with(EOF_WARNING) {
        std::io::Error::new(std::io::ErrorKind::UnexpectedEof, message)
    } else {
        std::io::Error::other(message)
    };
    DecodeError::Malformed { format: ImageFormat::Jpeg, source: image::ImageError::IoError(kind) }
}

fn turbo(e: turbojpeg::Error) -> DecodeError {
    match e {
        turbojpeg::Error::TurboJpegError(message) => error(message),
        other => error(other.to_string()),
    }
}

/// Decodes a JPEG to 8-bit RGB exactly as Pillow 13's
/// `Image.open(...).convert("RGB")` does: grey is replicated, a CMYK or YCCK
/// JPEG goes through Pillow's Adobe inversion and `cmyk2rgb`. The size is
/// checked against `limits` from the header, before any pixel memory.
///
/// `Ok(None)` when libjpeg-turbo warns while reading the header (stray bytes
/// between markers, an odd JFIF version, a bad ICC marker): the `turbojpeg`
/// crate then refuses to decompress at all (its `decompress` re-reads the
/// header and turns the warning into an error), so the caller decodes such a
/// file with the `image` crate instead, whose pixels may be a level away from
/// Pillow's. None of the 257 JPEGs of the shared and Debian corpora does this.
pub(crate) fn decode_jpeg(bytes: &[u8], limits: &DecodeLimits) -> Result<Option<RgbImage>, DecodeError> {
    let mut decompressor = Decompressor::new().map_err(turbo)?;
    let header = match decompressor.read_header(bytes) {
        Ok(header) => header,
        Err(turbojpeg::Error::TurboJpegError(message)) if is_warning(&message) => return Ok(None),
        Err(e) => return Err(turbo(e)),
    };
    let (width, height) = (u32::try_from(header.width), u32::try_from(header.height));
    let (Ok(width), Ok(height)) = (width, height) else {
        return Err(error(format!("header size {}x{} is out of range", header.width, header.height)));
    };
    check_dimensions(width, height, limits)?;
    let cmyk = matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    let channels: usize = if cmyk { 4 } else { 3 };
    // The pixels, plus for a progressive JPEG libjpeg's whole-image
    // coefficient buffer (2 bytes per coefficient, at most one per pixel
    // and component): the turbojpeg crate does not expose libjpeg-turbo's
    // own memory limit, so the bound is checked here from the header.
    let pixels_bytes = u64::from(width) * u64::from(height) * channels as u64;
    let coefficients = if header.is_progressive { pixels_bytes * 2 } else { 0 };
    let bytes_needed = pixels_bytes + coefficients;
    if bytes_needed > limits.max_alloc {
        return Err(DecodeError::TooLarge {
            width,
            height,
            limit: format!("{} bytes of decoded pixels", limits.max_alloc),
        });
    }
    decompressor.set_scan_limit(MAX_JPEG_SCANS).map_err(turbo)?;
    let (w, h) = (header.width, header.height);
    let mut pixels = vec![0u8; w * h * channels];
    let format = if cmyk { PixelFormat::CMYK } else { PixelFormat::RGB };
    let output = turbojpeg::Image { pixels: &mut pixels[..], width: w, pitch: w * channels, height: h, format };
    match decompressor.decompress(bytes, output) {
        Ok(()) => {}
        Err(turbojpeg::Error::TurboJpegError(message)) if is_warning(&message) => {}
        Err(e) => return Err(turbo(e)),
    }
    let rgb = if cmyk { pillow_cmyk_to_rgb(&pixels) } else { pixels };
    RgbImage::from_raw(width, height, rgb).map(Some).ok_or_else(|| error("decoded buffer has the wrong size".into()))
}

fn is_warning(message: &str) -> bool {
    WARNINGS.iter().any(|w| message.starts_with(w))
}

/// Pillow's CMYK JPEG path: it reads libjpeg's CMYK output with raw mode
/// `CMYK;I` (every sample inverted, "assume adobe conventions"), then
/// `convert("RGB")` runs `cmyk2rgb` (`libImaging/Convert.c`):
/// `nk = 255 - k; r = clip8(nk - muldiv255(c, nk))`, with
/// `muldiv255(a, b) = ((t >> 8) + t) >> 8` for `t = a * b + 128`.
fn pillow_cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    let muldiv255 = |a: i32, b: i32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let [c, m, y, k] = [px[0], px[1], px[2], px[3]].map(|v| 255 - i32::from(v));
        let nk = 255 - k;
        for v in [c, m, y] {
            rgb.push((nk - muldiv255(v, nk)).clamp(0, 255) as u8);
        }
    }
    rgb
}

/// Encodes RGB pixels as a baseline JPEG as Pillow's `save(format="JPEG")`
/// does by default (libjpeg's standard tables scaled to `quality`, 4:2:0
/// chroma subsampling, accurate DCT, no optimisation), and decodes it again
/// as [`decode`](crate::decode) would: the round trip some classifiers'
/// reference preprocessing applies.
pub fn jpeg_round_trip(image: &RgbImage, quality: u8) -> Result<RgbImage, DecodeError> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let mut compressor = turbojpeg::Compressor::new().map_err(turbo)?;
    compressor.set_quality(i32::from(quality)).map_err(turbo)?;
    compressor.set_subsamp(turbojpeg::Subsamp::Sub2x2).map_err(turbo)?;
    let source = turbojpeg::Image {
        pixels: image.as_raw().as_slice(),
        width: w,
        pitch: w * 3,
        height: h,
        format: PixelFormat::RGB,
    };
    let jpeg = compressor.compress_to_vec(source).map_err(turbo)?;
    let limits = DecodeLimits { max_file_bytes: u64::MAX, ..DecodeLimits::default() };
    decode_jpeg(&jpeg, &limits)?.ok_or_else(|| error("libjpeg-turbo warned about its own JPEG".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmyk_follows_pillow() {
        // libjpeg's output v is Pillow's 255 - v; these are Pillow 13.0.0's
        // Image.frombytes("CMYK", (1, 1), bytes(255 - v for v in px)).convert("RGB").
        assert_eq!(pillow_cmyk_to_rgb(&[255, 255, 255, 255]), vec![255, 255, 255]);
        assert_eq!(pillow_cmyk_to_rgb(&[0, 0, 0, 0]), vec![0, 0, 0]);
        assert_eq!(pillow_cmyk_to_rgb(&[100, 255, 255, 200]), vec![78, 200, 200]);
    }

    #[test]
    fn truncation_is_an_unexpected_eof_and_warnings_decode() {
        let image = RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 77]));
        let mut compressor = turbojpeg::Compressor::new().unwrap();
        compressor.set_quality(90).unwrap();
        let source = turbojpeg::Image {
            pixels: image.as_raw().as_slice(),
            width: 64,
            pitch: 192,
            height: 48,
            format: PixelFormat::RGB,
        };
        let jpeg = compressor.compress_to_vec(source).unwrap();
        let whole = decode_jpeg(&jpeg, &DecodeLimits::default()).unwrap().unwrap();
        assert_eq!(whole.dimensions(), (64, 48));
        let cut = decode_jpeg(&jpeg[..jpeg.len() * 2 / 3], &DecodeLimits::default()).unwrap_err();
        assert!(cut.is_unexpected_eof(), "{cut}");
        // Two stray bytes after the first segment (APP0): libjpeg warns
        // "2 extraneous bytes before marker" in the header; left to the
        // `image` crate, which decodes it.
        assert_eq!(&jpeg[2..4], &[0xFF, 0xE0]);
        let end = 4 + usize::from(u16::from_be_bytes([jpeg[4], jpeg[5]]));
        let mut stray = jpeg[..end].to_vec();
        stray.extend_from_slice(&[0x12, 0x34]);
        stray.extend_from_slice(&jpeg[end..]);
        assert!(decode_jpeg(&stray, &DecodeLimits::default()).unwrap().is_none());
        let fallback = crate::decode(&stray, &crate::DecodeOptions::default()).unwrap();
        assert_eq!(fallback.rgb.dimensions(), (64, 48));
        // Stray bytes inside the entropy-coded data: a warning while
        // decompressing, and the pixels libjpeg-turbo made are kept (as Pillow keeps them).
        let mut scan = jpeg.clone();
        let eoi = scan.len() - 2;
        scan.splice(eoi..eoi, [0xFF, 0xD0]);
        assert!(decode_jpeg(&scan, &DecodeLimits::default()).unwrap().is_some());
        let small = DecodeLimits { max_pixels: 1000, ..DecodeLimits::default() };
        assert!(matches!(decode_jpeg(&jpeg, &small), Err(DecodeError::TooLarge { .. })));
        // A progressive JPEG also needs its coefficient buffer: pixels alone (9,216 bytes) fit
        // a 20,000-byte budget, pixels and coefficients (27,648) do not.
        compressor.set_progressive(true).unwrap();
        let progressive = compressor.compress_to_vec(source).unwrap();
        let budget = DecodeLimits { max_alloc: 20_000, ..DecodeLimits::default() };
        assert!(decode_jpeg(&jpeg, &budget).unwrap().is_some());
        assert!(matches!(decode_jpeg(&progressive, &budget), Err(DecodeError::TooLarge { .. })));
    }
}
