//! Hashing uploaded media the way HMA's hasher does: a content type
//! (`photo`, `video`) names the signal types it is hashed into, `types`
//! narrows them, and each hash comes out as HMA's text.

use frankly_bank::SignalType;
use frankly_hash::{DecodeOptions, PdqHasher};

/// Under this PDQ quality HMA's hasher answers an empty hash (`""`), not an
/// error (python-threatexchange's `PdqSignal.QUALITY_THRESHOLD`).
pub const HMA_PDQ_QUALITY_THRESHOLD: u8 = 50;

/// HMA's content types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentType {
    /// Images, hashed with PDQ (the first frame of an animation, as Pillow
    /// opens it).
    Photo,
    /// Videos, hashed with the MD5 of their bytes.
    Video,
}

impl ContentType {
    /// Both, in HMA's order.
    pub const ALL: [ContentType; 2] = [ContentType::Photo, ContentType::Video];

    /// Its HMA name.
    pub fn name(self) -> &'static str {
        match self {
            ContentType::Photo => "photo",
            ContentType::Video => "video",
        }
    }

    /// The content type named `name`, or HMA's `no such content_type: 'x'`.
    pub fn parse(name: &str) -> Result<ContentType, HashError> {
        ContentType::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| HashError::Request(format!("no such content_type: '{name}'")))
    }

    /// Whether `signal` hashes this content type.
    fn hashes_into(self, signal: SignalType) -> bool {
        match self {
            ContentType::Photo => signal == SignalType::Pdq,
            ContentType::Video => signal == SignalType::VideoMd5,
        }
    }
}

/// Why media could not be hashed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HashError {
    /// The request is wrong (HMA's 400 texts).
    #[error("{0}")]
    Request(String),
    /// The media is not what its content type says, or breaks a limit.
    #[error("the {content} could not be decoded: {reason}")]
    Undecodable {
        /// `photo` or `video`.
        content: &'static str,
        /// The decoder's reason.
        reason: String,
    },
}

/// The signal types `content` is hashed into, of those `served`, narrowed
/// by HMA's `types` parameter (comma-separated; items trimmed, empty ones
/// skipped), with HMA's errors.
pub fn select_signal_types(
    content: ContentType,
    served: &[SignalType],
    types: Option<&str>,
) -> Result<Vec<SignalType>, HashError> {
    let eligible: Vec<SignalType> = served.iter().copied().filter(|s| content.hashes_into(*s)).collect();
    let Some(types) = types else { return Ok(eligible) };
    let mut chosen = Vec::new();
    for name in types.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let signal = eligible
            .iter()
            .copied()
            .find(|s| s.name() == name)
            .ok_or_else(|| HashError::Request(format!("signal type '{name}' doesn't exist or is disabled")))?;
        if !chosen.contains(&signal) {
            chosen.push(signal);
        }
    }
    if chosen.is_empty() {
        return Err(HashError::Request("empty signal type selection".into()));
    }
    Ok(chosen)
}

/// Hashes `bytes` as `content` into each of `signals`, as HMA's text: PDQ
/// as 64 hex digits, or `""` under [`HMA_PDQ_QUALITY_THRESHOLD`]; video
/// MD5 as 32. Images are decoded within `decode`'s limits (JPEG through
/// libjpeg-turbo, so the pixels are Pillow's and the PDQ is the one HMA
/// computes).
pub fn hash_content(
    content: ContentType,
    bytes: &[u8],
    signals: &[SignalType],
    decode: &DecodeOptions,
) -> Result<Vec<(SignalType, String)>, HashError> {
    let mut out = Vec::with_capacity(signals.len());
    for &signal in signals {
        let text = match signal {
            SignalType::Pdq => {
                let image = frankly_hash::decode(bytes, decode)
                    .map_err(|e| HashError::Undecodable { content: content.name(), reason: e.to_string() })?;
                let pdq = PdqHasher::new().hash(&image.rgb);
                if pdq.quality < HMA_PDQ_QUALITY_THRESHOLD { String::new() } else { pdq.hash.to_string() }
            }
            SignalType::VideoMd5 => frankly_hash::md5_hex(bytes),
            other => {
                return Err(HashError::Request(format!("signal type '{}' doesn't exist or is disabled", other.name())));
            }
        };
        out.push((signal, text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVED: [SignalType; 2] = [SignalType::Pdq, SignalType::VideoMd5];

    #[test]
    fn types_follow_hma() {
        assert_eq!(select_signal_types(ContentType::Photo, &SERVED, None).unwrap(), [SignalType::Pdq]);
        assert_eq!(
            select_signal_types(ContentType::Video, &SERVED, Some(" video_md5 ,")).unwrap(),
            [SignalType::VideoMd5]
        );
        assert_eq!(
            select_signal_types(ContentType::Photo, &SERVED, Some("video_md5")).unwrap_err().to_string(),
            "signal type 'video_md5' doesn't exist or is disabled"
        );
        assert_eq!(
            select_signal_types(ContentType::Photo, &SERVED, Some(",")).unwrap_err().to_string(),
            "empty signal type selection"
        );
        assert_eq!(ContentType::parse("file").unwrap_err().to_string(), "no such content_type: 'file'");
    }

    #[test]
    fn flat_images_hash_to_the_empty_string_and_garbage_is_refused() {
        let mut png = Vec::new();
        image::RgbImage::from_pixel(64, 64, image::Rgb([90, 90, 90]))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let options = DecodeOptions::default();
        let hashed = hash_content(ContentType::Photo, &png, &[SignalType::Pdq], &options).unwrap();
        assert_eq!(hashed, [(SignalType::Pdq, String::new())]);
        let err = hash_content(ContentType::Photo, b"not an image", &[SignalType::Pdq], &options).unwrap_err();
        assert!(matches!(err, HashError::Undecodable { content: "photo", .. }), "{err}");
        let md5 = hash_content(ContentType::Video, b"", &[SignalType::VideoMd5], &options).unwrap();
        assert_eq!(md5[0].1, "d41d8cd98f00b204e9800998ecf8427e");
    }
}
