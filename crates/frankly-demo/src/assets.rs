//! The demo's pictures and its hash bank.
//!
//! Four real photos from the shared corpus ship inside the binary (licences
//! in `assets/manifest.csv`). Three stand in for known abuse material: the
//! demo bank holds their PDQ hashes, as a hash-sharing list would, signed
//! like any bank. They are harmless public photos; only their role in the
//! story is not. The fourth is an ordinary picture that matches nothing.

use frankly_bank::{Bank, SignalType, SigningKey, TextFormat, VerifiedBank, sign_bundle, verify_bundle};
use frankly_hash::{DecodeOptions, PdqHasher, decode};
use image::ImageEncoder;

use crate::DemoError;

/// A photo shipped with the demo.
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
