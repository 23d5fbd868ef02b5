//! The scanner with the shipped models and policies, a bank made from a
//! sample photo, and hostile attachments.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use frankly_bank::{Bank, Entry, SignalType};
use frankly_classify::{ImageClassifier, TextClassifier};
use frankly_client::{
    Attachment, ClientError, MAX_ATTACHMENTS, Message, Scanner, trust_local_bank, trust_local_policy,
};
use frankly_hash::{DecodeOptions, PdqHasher, decode};
use frankly_policy::{Action, Audience, Facts, Source, UnscannableReason, UnscannableSignal, VerifiedPolicy};
use image::ImageEncoder;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn policy(name: &str) -> VerifiedPolicy {
    trust_local_policy(&std::fs::read_to_string(root().join(format!("policies/{name}.toml"))).unwrap()).unwrap()
}

fn photo(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/data/photos").join(name)).unwrap()
}

/// A bank holding the PDQ hash of one sample photo, labelled `csam` as a
/// stand-in for a known-abuse list.
fn demo_bank() -> Bank {
    let image = decode(&photo("skimage_rocket.jpg"), &DecodeOptions::default()).unwrap().rgb;
    let (hash, _) = SignalType::Pdq.hash_image(&image, &mut PdqHasher::new()).expect("PDQ hashes images");
    let mut bank = Bank::new("demo", SignalType::Pdq).unwrap();
    bank.entries.push(Entry { hash, labels: BTreeSet::from(["csam".to_owned()]), source_id: None });
    bank
}

fn scanner(policy_name: &str, audience: Audience) -> Scanner {
    Scanner::builder(policy(policy_name), audience)
        .bank(trust_local_bank(&demo_bank()).unwrap())
        .image_model(ImageClassifier::load(&root().join("models/open_nsfw.toml")).unwrap())
        .text_model(TextClassifier::load(&root().join("models/profanity_check.toml")).unwrap())
        .build()
        .unwrap()
}

/// The photo, half size, re-encoded as JPEG at quality 70.
fn resized_reencoded(name: &str) -> Vec<u8> {
    let image = decode(&photo(name), &DecodeOptions::default()).unwrap().rgb;
    let small =
        image::imageops::resize(&image, image.width() / 2, image.height() / 2, image::imageops::FilterType::Triangle);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 70)
        .write_image(small.as_raw(), small.width(), small.height(), image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

#[test]
fn a_banked_photo_is_blocked_from_sending_even_resized_and_reencoded() {
    let s = scanner("child", Audience::Child);
    for bytes in [photo("skimage_rocket.jpg"), resized_reencoded("skimage_rocket.jpg")] {
        let message = Message::text("look").with_attachment(Attachment::new(bytes, "image/jpeg"));
        let v = s.scan_outgoing(&message, Facts::default());
        assert_eq!(v.decision.actions, [Action::ShowResources, Action::BlockSend]);
        assert_eq!(v.decision.fired[0].id, "known-abuse.outgoing");
        let m = &v.signals.bank_matches[0];
        assert_eq!((m.bank.as_str(), m.source, m.algorithm.as_str()), ("demo", Source::Attachment(0), "pdq"));
        assert!(m.distance <= 31, "{}", m.distance);
        assert_eq!(v.signals.digests.len(), 1);
        assert!(v.timings.total_us >= v.timings.decode_us + v.timings.hash_us);
    }
}

#[test]
fn an_innocent_photo_and_a_kind_message_are_allowed() {
    let s = scanner("child", Audience::Child);
    let message = Message::text("see you at the station at 5")
        .with_attachment(Attachment::new(photo("skimage_coffee.png"), "image/png"));
    let v = s.scan_incoming(&message, Facts { sender_is_contact: Some(true), ..Facts::default() });
    assert_eq!(v.decision.actions, [Action::Allow]);
    assert!(v.signals.bank_matches.is_empty());
    let models: BTreeSet<&str> = v.signals.scores.iter().map(|s| s.model.as_str()).collect();
    assert_eq!(models, BTreeSet::from(["open_nsfw", "profanity_check"]));
    assert!(v.skipped.is_empty());
}

#[test]
fn insults_get_the_policy_s_text_actions() {
    let s = scanner("child", Audience::Child);
    let v = s.scan_incoming(&Message::text("you are a fucking idiot"), Facts::default());
    assert_eq!(v.decision.actions, [Action::Warn, Action::ShowResources, Action::SuggestReport]);
    assert_eq!(v.decision.resources, ["bullying"]);
    let v = s.scan_outgoing(&Message::text("you are a fucking idiot"), Facts::default());
    assert_eq!(v.decision.messages, ["offensive.outgoing.reconsider"]);
}

#[test]
fn hostile_and_unscannable_attachments_are_reported_not_fatal() {
    let s = scanner("adult", Audience::Adult);
    let mut bomb = photo("skimage_rocket.jpg");
    bomb.truncate(bomb.len() / 3);
    let mut message = Message::text("")
        .with_attachment(Attachment::new(b"%PDF-1.7 ...".to_vec(), "application/pdf"))
        .with_attachment(Attachment::new(bomb, "image/jpeg"))
        .with_attachment(Attachment::new(b"not an image".to_vec(), "image/png"));
    let v = s.scan_incoming(&message, Facts::default());
    assert_eq!(v.signals.digests.len(), 3, "every attachment keeps its digest");
    // The PDF is a format frankly does not decode; the truncated JPEG
    // decodes (the decoder fills what is missing) and is scanned, and is
    // still reported; the garbage is no format at all. Every one is a
    // signal the policy sees (the adult policy does not act on them).
    let reasons: Vec<(Source, UnscannableReason)> =
        v.signals.unscannable.iter().map(|u| (u.source, u.reason)).collect();
    assert_eq!(
        reasons,
        [
            (Source::Attachment(0), UnscannableReason::UnsupportedFormat),
            (Source::Attachment(1), UnscannableReason::Truncated),
            (Source::Attachment(2), UnscannableReason::UnknownFormat),
        ]
    );
    assert!(v.signals.unscannable[0].detail.contains("application/pdf is not scanned"), "{:?}", v.signals.unscannable);
    assert!(v.skipped.is_empty(), "{:?}", v.skipped);
    assert_eq!(v.decision.actions, [Action::Allow]);

    for _ in 0..MAX_ATTACHMENTS {
        message.attachments.push(Attachment::new(vec![0; 4], "application/octet-stream"));
    }
    let v = s.scan_incoming(&message, Facts::default());
    assert_eq!(v.signals.digests.len(), MAX_ATTACHMENTS);
    let over: Vec<&UnscannableSignal> =
        v.signals.unscannable.iter().filter(|u| u.reason == UnscannableReason::TooManyAttachments).collect();
    assert_eq!(over.len(), 3);
    assert_eq!(over[0].source, Source::Attachment(MAX_ATTACHMENTS));
    assert!(over[0].detail.contains("over 32 attachments"));
    // The child policy blurs what it could not check.
    let v = scanner("child", Audience::Child).scan_incoming(&message, Facts::default());
    assert!(v.decision.has(Action::Blur));
    assert_eq!(v.decision.messages, ["unscannable.incoming"]);
}

#[test]
fn a_scanner_refuses_a_policy_it_cannot_honour() {
    let open_nsfw = || ImageClassifier::load(&root().join("models/open_nsfw.toml")).unwrap();
    let err = Scanner::builder(policy("child"), Audience::Adult).build().unwrap_err();
    assert!(matches!(err, ClientError::Audience { .. }), "{err}");
    let err = Scanner::builder(policy("child"), Audience::Child).image_model(open_nsfw()).build().unwrap_err();
    assert_eq!(
        err,
        ClientError::MissingModel {
            policy: "child".into(),
            model: "profanity_check".into(),
            label: "profanity".into()
        }
    );
    let err = Scanner::builder(policy("adult"), Audience::Adult).setting("nope", true).build().unwrap_err();
    assert!(matches!(err, ClientError::UnknownSetting { .. }), "{err}");
}

#[test]
fn verdicts_serialize_for_the_app_and_the_cli() {
    let s = scanner("research", Audience::Teen);
    let v =
        s.scan_incoming(&Message::text("shut up, loser"), Facts { sender_is_contact: Some(false), ..Facts::default() });
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["decision"]["actions"], serde_json::json!(["log"]));
    assert_eq!(json["signals"]["scores"][1]["source"], "text");
    assert!(json["timings"]["total_us"].is_u64());
}
