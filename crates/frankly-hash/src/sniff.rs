//! What a file is, from its bytes: magic numbers, never the name or the
//! media type someone declared.
//!
//! Images are recognised by `image::guess_format`, the same table the
//! decoder in [`crate::decode`] uses, so "sniffed as an image" and "decoded
//! as" never disagree and no second magic-number table can drift from the
//! decoder (a crate such as `infer` would be one). A few other kinds are
//! recognised here, by hand, only to name them in signals and errors (an
//! iPhone's HEIC photo, a video, a PDF, an archive): their signatures are
//! short and fixed, listed in [`sniff`].
//!
//! Two image signatures are two bytes long (BMP `BM`, PNM `P1`..`P7`) and
//! also begin some text; such a file is sniffed as the image format and then
//! fails to decode, which the scanner reports.

use image::ImageFormat;

/// What the bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// An image format `image` knows (frankly decodes the
    /// [`SUPPORTED_FORMATS`](crate::SUPPORTED_FORMATS) among them).
    Image(ImageFormat),
    /// Something else recognised by its signature, by media type
    /// (`image/heic`, `video/mp4`, `application/pdf`, ...).
    Other(&'static str),
    /// No signature recognised.
    Unknown,
}

impl Sniffed {
    /// The media type of what was recognised (`None` for [`Sniffed::Unknown`]).
    pub fn media_type(self) -> Option<&'static str> {
        match self {
            Sniffed::Image(format) => Some(format.to_mime_type()),
            Sniffed::Other(media_type) => Some(media_type),
            Sniffed::Unknown => None,
        }
    }
}

/// ISO base media file brands (bytes 8..12 after `ftyp` at 4..8).
const FTYP_BRANDS: [(&[u8; 4], &str); 10] = [
    (b"heic", "image/heic"),
    (b"heix", "image/heic"),
    (b"mif1", "image/heif"),
    (b"msf1", "image/heif"),
    (b"avis", "image/avif"),
    (b"qt  ", "video/quicktime"),
    (b"M4V ", "video/mp4"),
    (b"isom", "video/mp4"),
    (b"mp41", "video/mp4"),
    (b"mp42", "video/mp4"),
];

/// Fixed signatures at offset 0 of non-image kinds.
const SIGNATURES: [(&[u8], &str); 11] = [
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"PK\x05\x06", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b"\x1a\x45\xdf\xa3", "video/webm"),
    (b"OggS", "application/ogg"),
    (b"ID3", "audio/mpeg"),
    (b"FLV\x01", "video/x-flv"),
    (b"\x00\x00\x01\xba", "video/mpeg"),
];

/// MPEG transport stream packets are 188 bytes, each starting with 0x47.
const TS_PACKET: usize = 188;

/// Sniffs the bytes' format from their first bytes.
///
/// ```
/// use frankly_hash::{sniff, ImageFormat, Sniffed};
/// assert_eq!(sniff(b"\x89PNG\r\n\x1a\n..."), Sniffed::Image(ImageFormat::Png));
/// assert_eq!(sniff(b"%PDF-1.7"), Sniffed::Other("application/pdf"));
/// assert_eq!(sniff(b"hello"), Sniffed::Unknown);
/// ```
pub fn sniff(bytes: &[u8]) -> Sniffed {
    if let Ok(format) = image::guess_format(bytes) {
        return Sniffed::Image(format);
    }
    if bytes.get(4..8) == Some(b"ftyp")
        && let Some(brand) = bytes.get(8..12)
    {
        return FTYP_BRANDS
            .iter()
            .find(|(b, _)| b.as_slice() == brand)
            .map_or(Sniffed::Other("video/mp4"), |(_, media_type)| Sniffed::Other(media_type));
    }
    if bytes.starts_with(b"RIFF") {
        match bytes.get(8..12) {
            Some(b"WAVE") => return Sniffed::Other("audio/wav"),
            Some(b"AVI ") => return Sniffed::Other("video/x-msvideo"),
            _ => {}
        }
    }
    if (0..3).all(|k| bytes.get(k * TS_PACKET) == Some(&0x47)) {
        return Sniffed::Other("video/mp2t");
    }
    SIGNATURES.iter().find(|(sig, _)| bytes.starts_with(sig)).map_or(Sniffed::Unknown, |(_, t)| Sniffed::Other(t))
}

impl Sniffed {
    /// Whether the bytes are a container that may hold video (the
    /// scanner hands these to the video decoder).
    pub fn is_video(self) -> bool {
        matches!(self, Sniffed::Other(t) if t.starts_with("video/") || t == "application/ogg")
    }
}

/// Whether an image file visibly ends before its format says it does: a
/// JPEG without an end-of-image marker after its first scan, a PNG without
/// its `IEND` chunk, a WebP or BMP shorter than the size in its header.
/// (Decoders may decode what is there without an error, so this is checked
/// apart.) `false` for formats without such a mark (GIF, TIFF).
pub fn is_truncated(bytes: &[u8], format: ImageFormat) -> bool {
    let u32_le = |at: usize| bytes.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    match format {
        // Entropy-coded data stuffs every 0xFF with 0x00 (or is a restart
        // marker D0..D7), so FF D9 after the first SOS (FF DA) is the EOI.
        ImageFormat::Jpeg => match jpeg_first_scan(bytes) {
            Some(sos) => !bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9]),
            None => true,
        },
        ImageFormat::Png => !bytes.windows(4).any(|w| w == b"IEND"),
        // RIFF size counts the bytes after its 8-byte header.
        ImageFormat::WebP => u32_le(4).is_none_or(|n| (bytes.len() as u64) < u64::from(n) + 8),
        // The BMP file header's size field (offset 2) is the file's size; some
        // writers leave it 0.
        ImageFormat::Bmp => u32_le(2).is_none_or(|n| (bytes.len() as u64) < u64::from(n)),
        _ => false,
    }
}

/// The offset of a JPEG's first SOS marker, found by walking the marker
/// segments from the SOI by their lengths (so an EXIF thumbnail inside an
/// APP1 segment, with its own SOS and EOI, is skipped); `None` when the
/// segments run past the end.
fn jpeg_first_scan(bytes: &[u8]) -> Option<usize> {
    let mut at = 2; // after SOI
    loop {
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        match marker {
            0xDA => return Some(at),
            0xFF => at += 1, // fill byte
            0x01 | 0xD0..=0xD8 => at += 2,
            _ => {
                let len = usize::from(u16::from_be_bytes([*bytes.get(at + 2)?, *bytes.get(at + 3)?]));
                at = at.checked_add(2)?.checked_add(len)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_and_other_kinds_are_told_apart_by_their_bytes() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Sniffed::Image(ImageFormat::Jpeg));
        assert_eq!(sniff(b"GIF89a"), Sniffed::Image(ImageFormat::Gif));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Sniffed::Image(ImageFormat::WebP));
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0\0\0"), Sniffed::Other("image/heic"));
        assert_eq!(sniff(b"\0\0\0\x18ftypisom\0\0\0\0"), Sniffed::Other("video/mp4"));
        assert_eq!(sniff(b"PK\x03\x04rest"), Sniffed::Other("application/zip"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), Sniffed::Other("audio/wav"));
        assert_eq!(sniff(b""), Sniffed::Unknown);
        assert_eq!(sniff(b"\0\0\0\x18ftyp"), Sniffed::Unknown);
        assert_eq!(Sniffed::Image(ImageFormat::Png).media_type(), Some("image/png"));
        let mut ts = vec![0u8; 3 * 188];
        for k in 0..3 {
            ts[k * 188] = 0x47;
        }
        assert_eq!(sniff(&ts), Sniffed::Other("video/mp2t"));
        assert_eq!(sniff(b"FLV\x01\x05"), Sniffed::Other("video/x-flv"));
        assert!(sniff(&ts).is_video() && sniff(b"\x1a\x45\xdf\xa3").is_video() && sniff(b"OggS").is_video());
        assert!(!sniff(b"%PDF-1.7").is_video() && !sniff(b"\0\0\0\x18ftypheic\0\0\0\0").is_video());
    }

    #[test]
    fn truncation_is_seen_from_the_format_marks() {
        // SOI, an APP1 holding a thumbnail's own SOS and EOI, SOS, data, EOI.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xDA, 0xFF, 0xD9, 0xFF, 0xDA, 0x00, 0x08, 0x12, 0xFF, 0x00, 0xFF,
            0xD9,
        ];
        assert!(!is_truncated(&jpeg, ImageFormat::Jpeg));
        assert!(is_truncated(&jpeg[..17], ImageFormat::Jpeg), "the thumbnail's EOI is not the image's");
        assert!(is_truncated(&jpeg[..5], ImageFormat::Jpeg));
        assert!(is_truncated(b"RIFF\x10\0\0\0WEBP", ImageFormat::WebP));
        assert!(!is_truncated(b"RIFF\x04\0\0\0WEBP", ImageFormat::WebP));
        assert!(is_truncated(b"BM", ImageFormat::Bmp));
        assert!(!is_truncated(b"GIF89a", ImageFormat::Gif));
    }
}
