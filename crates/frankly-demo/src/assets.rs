//! The demo's pictures, its clip, and its hash and video banks.
//!
//! Four real photos from the shared corpus ship inside the binary (licences
//! in `assets/manifest.csv`). Three stand in for known abuse material: the
//! demo bank holds their PDQ hashes, as a hash-sharing list would, signed
//! like any bank. They are harmless public photos; only their role in the
//! story is not. The fourth is an ordinary picture that matches nothing.
//!
//! One video does the same for clips: the demo video bank holds Meta's
//! published vPDQ of `doorknob-hd-no-bar.mp4`, a facebook/ThreatExchange
//! sample video (BSD, `assets/LICENSE-threatexchange-sample-videos`), and
//! the clip shipped here is that video re-encoded at half size, as a
//! sender would re-share it.

use frankly_bank::{
    Bank, SignalType, SigningKey, TextFormat, VerifiedBank, VerifiedVideoBank, VideoBank, VideoEntry, sign_bundle,
    sign_video_bundle, verify_bundle, verify_video_bundle,
};
use frankly_hash::{DecodeOptions, PdqHasher, decode};
use image::ImageEncoder;

use crate::DemoError;

/// A photo or clip shipped with the demo.
#[derive(Clone, Copy, Debug)]
pub struct Photo {
    /// File name in `assets/`.
    pub name: &'static str,
    /// Media type.
    pub media_type: &'static str,
    /// The bytes.
    pub bytes: &'static [u8],
}

/// The photos whose hashes are in the demo bank.
pub const BANKED: [Photo; 3] = [
    Photo {
        name: "skimage_rocket.jpg",
        media_type: "image/jpeg",
        bytes: include_bytes!("../assets/skimage_rocket.jpg"),
    },
    Photo {
        name: "lomiri_seeding_by_Clements_Engelhardt.jpg",
        media_type: "image/jpeg",
        bytes: include_bytes!("../assets/lomiri_seeding_by_Clements_Engelhardt.jpg"),
    },
    Photo {
        name: "scratch_castle.jpg",
        media_type: "image/jpeg",
        bytes: include_bytes!("../assets/scratch_castle.jpg"),
    },
];

/// A photo that matches nothing.
pub const ORDINARY: Photo = Photo {
    name: "skimage_chelsea.png",
    media_type: "image/png",
    bytes: include_bytes!("../assets/skimage_chelsea.png"),
};

/// The banked clip re-encoded at half size (640x360, H.264 CRF 26, by
/// Debian's FFmpeg 5.1:
/// `ffmpeg -i doorknob-hd-no-bar.mp4 -vf scale=640:360 -c:v libx264 -preset medium -crf 26 -an`).
pub const CLIP: Photo =
    Photo { name: "doorknob-half.mp4", media_type: "video/mp4", bytes: include_bytes!("../assets/doorknob-half.mp4") };

/// Meta's published vPDQ of the original clip (every frame, full size).
const CLIP_VPDQ: &str = include_str!("../assets/doorknob-hd-no-bar.vpdq.txt");

/// The demo video bank's name.
pub const VIDEO_BANK_NAME: &str = "demo-known-videos";

/// Builds the demo video bank from Meta's published vPDQ of the original
/// clip, signs it with `key` and verifies it as a device does.
pub fn demo_video_bank(key: &SigningKey, now: u64) -> Result<VerifiedVideoBank, DemoError> {
    let setup = |e: String| DemoError::Setup(format!("demo video bank: {e}"));
    let features = frankly_hash::parse_meta(CLIP_VPDQ).map_err(|e| setup(e.to_string()))?;
    let mut bank = VideoBank::new(VIDEO_BANK_NAME).map_err(|e| setup(e.to_string()))?;
    let labels = [BANK_LABEL.to_owned()].into();
    bank.add(VideoEntry { features, labels, source_id: Some("doorknob-hd-no-bar".into()) })
        .map_err(|e| setup(e.to_string()))?;
    let (bundle, _) = sign_video_bundle(&bank, key, 1, now, now + 86_400).map_err(|e| setup(e.to_string()))?;
    verify_video_bundle(&bundle, &key.verifying_key(), now, None).map_err(|e| setup(e.to_string()))
}

/// The demo bank's name.
pub const BANK_NAME: &str = "demo-known-abuse";
/// The label of its entries.
pub const BANK_LABEL: &str = "demo-stand-in";

/// The PDQ hash of a photo, with its quality.
pub fn pdq_of(bytes: &[u8]) -> Result<frankly_hash::Pdq, DemoError> {
    let image = decode(bytes, &DecodeOptions::default()).map_err(|e| DemoError::Setup(format!("decode: {e}")))?;
    Ok(PdqHasher::new().hash(&image.rgb))
}

/// Builds the demo bank from the PDQ hashes of [`BANKED`], signs it as a
/// bundle with `key` and verifies it the way a device does: what the
/// scanners and the server load is the verified bank. Returns the bundle
/// and the bank.
pub fn demo_bank(key: &SigningKey, now: u64) -> Result<(Vec<u8>, VerifiedBank), DemoError> {
    let mut csv = String::from("hash,label\n");
    for photo in BANKED {
        csv.push_str(&format!("{},{BANK_LABEL}\n", pdq_of(photo.bytes)?.hash));
    }
    let (bank, _) = Bank::import_text(BANK_NAME, SignalType::Pdq, TextFormat::Csv, &csv, true)
        .map_err(|e| DemoError::Setup(format!("demo bank: {e}")))?;
    let (bundle, _) =
        sign_bundle(&bank, key, 1, now, now + 86_400).map_err(|e| DemoError::Setup(format!("demo bank: {e}")))?;
    let verified = verify_bundle(&bundle, &key.verifying_key(), now, None)
        .map_err(|e| DemoError::Setup(format!("demo bank: {e}")))?;
    Ok((bundle, verified))
}

/// The photo as someone trying to dodge an exact-hash filter would send it:
/// scaled by `scale` and re-encoded as JPEG at `quality`. Its bytes (and so
/// its SHA-256) change entirely; its PDQ hash barely moves.
pub fn disguise(bytes: &[u8], scale: f64, quality: u8) -> Result<Vec<u8>, DemoError> {
    let image = decode(bytes, &DecodeOptions::default()).map_err(|e| DemoError::Setup(format!("decode: {e}")))?.rgb;
    let scaled = |d: u32| ((f64::from(d) * scale).round() as u32).max(1);
    let resized = image::imageops::resize(
        &image,
        scaled(image.width()),
        scaled(image.height()),
        image::imageops::FilterType::Triangle,
    );
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .write_image(resized.as_raw(), resized.width(), resized.height(), image::ExtendedColorType::Rgb8)
        .map_err(|e| DemoError::Setup(format!("encode: {e}")))?;
    Ok(out)
}
