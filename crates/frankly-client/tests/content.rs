//! Issue 16, item 1: the scanner decides by the bytes, not by the media
//! type the sender declared. A banked photo is matched however it is
//! labelled or wrapped; what cannot be scanned is a signal the shipped
//! child and teen policies act on. The photo is a real one from the shared
//! corpus.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use frankly_bank::{Bank, Entry, SignalType};
use frankly_classify::{ImageClassifier, TextClassifier};
use frankly_client::{Attachment, Message, Scanner, Verdict, trust_local_bank, trust_local_policy};
use frankly_hash::{DecodeOptions, PdqHasher, RgbImage, decode};
use frankly_policy::{Action, Audience, Facts, Source, UnscannableReason};
use image::{AnimationDecoder, Delay, Frame, ImageFormat, RgbaImage};

const BANKED: &str = "lomiri_Bridge_by_Sander_Klootwijk.jpg";
const OTHER: &str = "lomiri_Dragonfly_by_Bolly.jpg";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpus(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (the shared corpus)", path.display()))
}

fn pixels(bytes: &[u8]) -> RgbImage {
    decode(bytes, &DecodeOptions::default()).unwrap().rgb
}

/// A bank with the PDQ hash of the banked photo.
fn bank() -> Bank {
    let (hash, _) =
        SignalType::Pdq.hash_image(&pixels(&corpus(BANKED)), &mut PdqHasher::new()).expect("PDQ hashes images");
    let mut bank = Bank::new("known", SignalType::Pdq).unwrap();
    bank.entries.push(Entry { hash, labels: BTreeSet::from(["csam".to_owned()]), source_id: None });
    bank
}

fn scanner_with(policy: &str, audience: Audience, decode: DecodeOptions) -> Scanner {
    let text = std::fs::read_to_string(root().join(format!("policies/{policy}.toml"))).unwrap();
    Scanner::builder(trust_local_policy(&text).unwrap(), audience)
        .bank(trust_local_bank(&bank()).unwrap())
        .image_model(ImageClassifier::load(&root().join("models/open_nsfw.toml")).unwrap())
        .text_model(TextClassifier::load(&root().join("models/profanity_check.toml")).unwrap())
        .decode_options(decode)
        .build()
        .unwrap()
}

fn child() -> &'static Scanner {
    static CHILD: OnceLock<Scanner> = OnceLock::new();
    CHILD.get_or_init(|| scanner_with("child", Audience::Child, DecodeOptions::default()))
}

fn one(bytes: Vec<u8>, media_type: &str) -> Message {
    Message::text("").with_attachment(Attachment::new(bytes, media_type))
}

/// The bank matched attachment 0 (at `frame`), and the child policy acted.
fn assert_banked(incoming: &Verdict, frame: usize) {
    let m = incoming.signals.bank_matches.first().unwrap_or_else(|| panic!("no bank match: {incoming:#?}"));
    assert_eq!((m.bank.as_str(), m.source, m.frame), ("known", Source::Attachment(0), frame));
    assert!(m.distance <= 31, "{}", m.distance);
    assert_eq!(incoming.decision.fired[0].id, "known-abuse.incoming");
    assert!(incoming.decision.has(Action::Blur) && incoming.decision.has(Action::SuggestReport));
}

fn png_of(image: &RgbImage) -> Vec<u8> {
    let mut png = Vec::new();
    image.write_to(&mut Cursor::new(&mut png), ImageFormat::Png).unwrap();
    png
}

#[test]
fn a_banked_photo_labelled_octet_stream_or_text_is_matched_and_blocked() {
    for declared in ["application/octet-stream", "text/plain", "", "IMAGE/JPEG; q=1"] {
        let message = one(corpus(BANKED), declared);
        let outgoing = child().scan_outgoing(&message, Facts::default());
        assert_eq!(outgoing.decision.actions, [Action::ShowResources, Action::BlockSend], "{declared}");
        assert_eq!(outgoing.decision.fired[0].id, "known-abuse.outgoing");
        let incoming = child().scan_incoming(&message, Facts::default());
        assert_banked(&incoming, 0);
        // The classifier ran too.
        assert!(incoming.signals.scores.iter().any(|s| s.model == "open_nsfw" && s.source == Source::Attachment(0)));
        // A declared type that is not the bytes' is its own signal.
        let mismatch: Vec<(&str, &str)> =
            incoming.signals.type_mismatches.iter().map(|m| (m.declared.as_str(), m.sniffed.as_str())).collect();
        if declared.starts_with("IMAGE/JPEG") {
            assert!(mismatch.is_empty(), "{mismatch:?}");
        } else {
            assert_eq!(mismatch, [(declared, "image/jpeg")]);
        }
        assert!(incoming.signals.unscannable.is_empty(), "{:?}", incoming.signals.unscannable);
    }
}

/// A ZIP archive of one stored file, `a.txt`, with its CRC.
fn zip() -> Vec<u8> {
    let data = b"hello from inside the zip\n";
    let crc = {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    };
    let len = (data.len() as u32).to_le_bytes();
    let mut z = Vec::new();
    z.extend_from_slice(b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0");
    z.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&len);
    z.extend_from_slice(&len);
    z.extend_from_slice(b"\x05\0\0\0a.txt");
    z.extend_from_slice(data);
    let central = z.len() as u32;
    z.extend_from_slice(b"PK\x01\x02\x14\0\x14\0\0\0\0\0\0\0\0\0");
    z.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&len);
    z.extend_from_slice(&len);
    z.extend_from_slice(b"\x05\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0a.txt");
    let central_len = z.len() as u32 - central;
    z.extend_from_slice(b"PK\x05\x06\0\0\0\0\x01\0\x01\0");
    z.extend_from_slice(&central_len.to_le_bytes());
    z.extend_from_slice(&central.to_le_bytes());
    z.extend_from_slice(b"\0\0");
    z
}

#[test]
fn a_png_zip_polyglot_is_decoded_as_the_png_and_matched() {
    let mut polyglot = png_of(&pixels(&corpus(BANKED)));
    polyglot.extend_from_slice(&zip());
    let incoming = child().scan_incoming(&one(polyglot, "application/zip"), Facts::default());
    assert_banked(&incoming, 0);
    assert_eq!(incoming.signals.type_mismatches[0].sniffed, "image/png");
    assert!(incoming.signals.unscannable.is_empty(), "{:?}", incoming.signals.unscannable);
}

/// A GIF of `frames`, each shown once.
fn gif(frames: &[RgbImage]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new_with_speed(&mut out, 30);
        for f in frames {
            let rgba: RgbaImage = image::DynamicImage::ImageRgb8(f.clone()).to_rgba8();
            encoder.encode_frame(Frame::from_parts(rgba, 0, 0, Delay::from_numer_denom_ms(100, 1))).unwrap();
        }
    }
    out
}

/// The two photos at the same small size (a GIF is one canvas).
fn gif_frames() -> (RgbImage, RgbImage) {
    let size = |p: &RgbImage| image::imageops::resize(p, 320, 240, image::imageops::FilterType::Triangle);
    (size(&pixels(&corpus(OTHER))), size(&pixels(&corpus(BANKED))))
}

#[test]
fn a_banked_photo_as_the_second_frame_of_a_gif_is_matched() {
    let (other, banked) = gif_frames();
    let bytes = gif(&[other, banked]);
    let frames = image::codecs::gif::GifDecoder::new(Cursor::new(&bytes)).unwrap().into_frames().count();
    assert_eq!(frames, 2, "the test GIF has two frames");
    let incoming = child().scan_incoming(&one(bytes, "image/gif"), Facts::default());
    assert_banked(&incoming, 1);
    assert!(incoming.decision.fired[0].reasons[0].contains("attachment 0 frame 1 matched bank known"));
    assert!(incoming.signals.unscannable.is_empty(), "{:?}", incoming.signals.unscannable);
}

/// An animated WebP of `frames`, each replacing the canvas. No Rust crate
/// encodes animated WebP, so the frames are the `image` crate's lossless
/// (VP8L) stills, put in the RIFF container here by the WebP container
/// specification: VP8X (animation flag), ANIM, then one ANMF per frame.
fn webp(frames: &[RgbImage]) -> Vec<u8> {
    let (w, h) = frames[0].dimensions();
    let u24 = |v: u32| v.to_le_bytes()[..3].to_vec();
    let chunk = |tag: &[u8; 4], body: &[u8]| {
        let mut c = tag.to_vec();
        c.extend((body.len() as u32).to_le_bytes());
        c.extend(body);
        if body.len() % 2 == 1 {
            c.push(0);
        }
        c
    };
    let mut riff = b"WEBP".to_vec();
    riff.extend(chunk(b"VP8X", &[[0x02, 0, 0, 0].as_slice(), &u24(w - 1), &u24(h - 1)].concat()));
    // Background colour (BGRA), loop count 0 = forever.
    riff.extend(chunk(b"ANIM", &[0, 0, 0, 0, 0, 0]));
    for f in frames {
        let mut still = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut still)
            .encode(f.as_raw(), w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        assert_eq!(&still[12..16], b"VP8L");
        // Offset 0,0; frame size; 100 ms; flags: do not blend, do not dispose.
        let header = [vec![0; 6], u24(w - 1), u24(h - 1), u24(100), vec![0x02]].concat();
        riff.extend(chunk(b"ANMF", &[header.as_slice(), &still[12..]].concat()));
    }
    let mut out = b"RIFF".to_vec();
    out.extend((riff.len() as u32).to_le_bytes());
    out.extend(riff);
    out
}

/// An APNG (the `png` crate's encoder) whose default image is `default` and
/// whose animation is `animation`; with `default` `None` the default image
/// is the animation's first frame.
fn apng(default: Option<&RgbImage>, animation: &[RgbImage]) -> Vec<u8> {
    let (w, h) = animation[0].dimensions();
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_animated(animation.len() as u32, 0).unwrap();
        encoder.set_sep_def_img(default.is_some()).unwrap();
        let mut writer = encoder.write_header().unwrap();
        for f in default.into_iter().chain(animation) {
            writer.write_image_data(f.as_raw()).unwrap();
        }
        writer.finish().unwrap();
    }
    out
}

/// Every frame `decode_frames` gives, with its number.
fn frames_of(bytes: &[u8]) -> Vec<(usize, RgbImage)> {
    let mut frames = Vec::new();
    let walked =
        frankly_hash::decode_frames(bytes, &DecodeOptions::default(), |n, f| frames.push((n, f.clone()))).unwrap();
    assert!(matches!(walked.end, frankly_hash::FramesEnd::Complete), "{walked:?}");
    assert_eq!(walked.decoded, frames.len());
    frames
}

#[test]
fn every_frame_of_an_animated_webp_and_an_apng_is_decoded_in_order() {
    let (other, banked) = gif_frames();
    let three = [other.clone(), banked.clone(), other.clone()];
    let numbered = |frames: &[(usize, RgbImage)]| frames.iter().map(|(n, _)| *n).collect::<Vec<_>>();
    // Lossless frames: the pixels come back exactly.
    let webp = frames_of(&webp(&three));
    assert_eq!(numbered(&webp), [0, 1, 2]);
    assert!(webp.iter().zip(&three).all(|((_, got), want)| got == want), "WebP frames differ");
    // An APNG whose default image is its first frame: passed once.
    let png = frames_of(&apng(None, &three));
    assert_eq!(numbered(&png), [0, 1, 2]);
    assert!(png.iter().zip(&three).all(|((_, got), want)| got == want), "APNG frames differ");
    // An APNG whose default image is not in the animation (a "thumbnail"
    // an animation decoder skips) still has it hashed, as frame 0.
    let png = frames_of(&apng(Some(&banked), &[other.clone(), other.clone()]));
    assert_eq!(numbered(&png), [0, 1, 2]);
    assert_eq!(png[0].1, banked);
    assert_eq!(png[1].1, other);
}

#[test]
fn a_banked_photo_as_a_middle_frame_of_an_animated_webp_or_apng_is_matched() {
    let (other, banked) = gif_frames();
    let three = [other.clone(), banked.clone(), other.clone()];
    for (bytes, declared) in [(webp(&three), "image/webp"), (apng(None, &three), "image/png")] {
        let incoming = child().scan_incoming(&one(bytes.clone(), declared), Facts::default());
        assert_banked(&incoming, 1);
        assert!(incoming.decision.fired[0].reasons[0].contains("attachment 0 frame 1 matched bank known"));
        assert!(incoming.signals.unscannable.is_empty(), "{:?}", incoming.signals.unscannable);
        // The sender's device blocks it, labelled as anything.
        let outgoing = child().scan_outgoing(&one(bytes, "text/plain"), Facts::default());
        assert_eq!(outgoing.decision.actions, [Action::ShowResources, Action::BlockSend], "{declared}");
    }
    // Hidden as an APNG's thumbnail.
    let incoming =
        child().scan_incoming(&one(apng(Some(&banked), &[other.clone(), other]), "image/png"), Facts::default());
    assert_banked(&incoming, 0);
}

#[test]
fn the_image_models_score_the_first_frame_and_an_even_sample_of_the_rest() {
    // 40 different frames: the photo brightened a little more each time, so
    // a score given for the wrong frame would differ from that frame's own.
    let (other, _) = gif_frames();
    let frames: Vec<RgbImage> = (0..40)
        .map(|i| {
            let mut f = image::imageops::resize(&other, 96, 72, image::imageops::FilterType::Triangle);
            f.pixels_mut().for_each(|p| p.0.iter_mut().for_each(|c| *c = c.saturating_add(i * 4)));
            f
        })
        .collect();
    let bytes = gif(&frames);
    let decoded = frames_of(&bytes);
    assert_eq!(decoded.len(), 40);
    let incoming = child().scan_incoming(&one(bytes, "image/gif"), Facts::default());
    let scored: Vec<&frankly_policy::ScoreSignal> =
        incoming.signals.scores.iter().filter(|s| s.model == "open_nsfw" && s.label == "nsfw").collect();
    // Frame 0, then the reservoir of 15 over frames 1..39: stride 4 from frame 1.
    let numbers: Vec<u64> = scored.iter().map(|s| s.frame).collect();
    let expected: Vec<u64> = std::iter::once(0).chain((1..40).step_by(4)).collect();
    assert_eq!(numbers, expected);
    assert!(scored.len() <= frankly_client::MAX_CLASSIFIED_FRAMES);
    let model = ImageClassifier::load(&root().join("models/open_nsfw.toml")).unwrap();
    for s in &scored {
        let own = model.classify(&decoded[s.frame as usize].1).unwrap().scores.get("nsfw").unwrap();
        assert!((s.score - own).abs() < 1e-6, "frame {}: scanner {} own {own}", s.frame, s.score);
    }
    assert!(scored.windows(2).any(|w| (w[0].score - w[1].score).abs() > 1e-6), "the frames score differently");
    assert!(incoming.skipped.is_empty(), "{:?}", incoming.skipped);
}

#[test]
fn an_animation_of_100000_frames_is_scanned_to_the_frame_limit_and_says_so() {
    // A 100,000-frame GIF of 1x1 frames (a few hundred kilobytes): decoded up
    // to MAX_FRAMES, the rest an unscannable signal.
    let tiny = RgbImage::from_pixel(1, 1, image::Rgb([7, 7, 7]));
    let bytes = gif(&vec![tiny; 100_000]);
    let incoming = child().scan_incoming(&one(bytes, "image/gif"), Facts::default());
    let u = &incoming.signals.unscannable[0];
    assert_eq!(u.reason, UnscannableReason::TooManyFrames);
    let limit = frankly_hash::MAX_FRAMES;
    assert!(u.detail.contains(&format!("frames {limit} and later are not scanned")), "{}", u.detail);
}

#[test]
fn frames_past_the_limit_are_unscannable_not_silently_dropped() {
    let (other, banked) = gif_frames();
    let bytes = gif(&[other.clone(), other, banked]);
    let mut decode = DecodeOptions::default();
    decode.limits.max_frames = 2;
    let s = scanner_with("teen", Audience::Teen, decode);
    let incoming = s.scan_incoming(&one(bytes, "image/gif"), Facts::default());
    assert!(incoming.signals.bank_matches.is_empty(), "the banked frame is past the limit");
    let u = &incoming.signals.unscannable[0];
    assert_eq!(u.reason, UnscannableReason::TooManyFrames);
    assert!(u.detail.contains("frames 2 and later are not scanned"), "{}", u.detail);
    assert_eq!(incoming.decision.actions, [Action::Blur]);
    assert_eq!(incoming.decision.messages, ["unscannable.incoming"]);
}

#[test]
fn a_truncated_photo_is_unscannable_and_the_child_and_teen_policies_blur_it() {
    let jpeg = corpus(BANKED);
    let png = png_of(&pixels(&jpeg));
    let teen = scanner_with("teen", Audience::Teen, DecodeOptions::default());
    for (bytes, cut) in [(jpeg.clone(), jpeg.len() / 2), (jpeg.clone(), 200), (png.clone(), png.len() / 2)] {
        let message = one(bytes[..cut].to_vec(), "image/jpeg");
        for s in [child(), &teen] {
            let v = s.scan_incoming(&message, Facts::default());
            let u = v.signals.unscannable.first().unwrap_or_else(|| panic!("{cut}: {v:#?}"));
            assert_eq!((u.source, u.reason), (Source::Attachment(0), UnscannableReason::Truncated), "{}", u.detail);
            assert!(v.decision.has(Action::Blur), "{cut}: {:?}", v.decision);
            assert!(v.decision.messages.contains(&"unscannable.incoming".to_owned()));
            let fired = v.decision.fired.iter().find(|f| f.id == "unscannable.incoming").unwrap();
            assert!(fired.reasons[0].contains("cannot be scanned (truncated)"), "{:?}", fired.reasons);
        }
    }
    // The adult policy does not act on it; research logs it and the mismatch.
    let research = scanner_with("research", Audience::Adult, DecodeOptions::default());
    let v = research.scan_incoming(&one(png[..png.len() / 2].to_vec(), "image/jpeg"), Facts::default());
    let fired: Vec<&str> = v.decision.fired.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(fired, ["log.unscannable", "log.type-mismatch"]);
    assert_eq!(v.decision.actions, [Action::Log]);
}

#[test]
fn what_is_not_an_image_is_unscannable_whatever_it_claims() {
    let cases: [(&[u8], &str, UnscannableReason); 4] = [
        (b"just some text", "image/jpeg", UnscannableReason::UnknownFormat),
        (b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", "image/jpeg", UnscannableReason::UnsupportedFormat),
        (b"%PDF-1.7\n", "application/pdf", UnscannableReason::UnsupportedFormat),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRgarbage", "image/png", UnscannableReason::Truncated),
    ];
    for (bytes, declared, reason) in cases {
        let v = child().scan_incoming(&one(bytes.to_vec(), declared), Facts::default());
        assert_eq!(v.signals.unscannable.len(), 1, "{declared}: {:?}", v.signals.unscannable);
        assert_eq!(v.signals.unscannable[0].reason, reason, "{}", v.signals.unscannable[0].detail);
        assert_eq!(v.decision.actions, [Action::Blur]);
    }
    let v = child().scan_incoming(&one(b"\0\0\0\x18ftypheic\0\0\0\0".to_vec(), "image/jpeg"), Facts::default());
    assert_eq!(v.signals.type_mismatches[0].sniffed, "image/heic");
}
