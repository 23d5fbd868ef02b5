//! Issue 18: video attachments, sniffed by their bytes, are matched against
//! vPDQ banks built from Meta's published hashes and against `video_md5`
//! banks, their sampled frames are classified, and damaged or hostile ones
//! are unscannable signals the child policy acts on. The videos are the
//! shared sample videos of facebook/ThreatExchange.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use frankly_bank::{Bank, Entry, SignalType, VideoBank, VideoEntry};
use frankly_client::{
    Attachment, MAX_CLASSIFIED_FRAMES, Message, Scanner, Verdict, trust_local_bank, trust_local_policy,
    trust_local_video_bank,
};
use frankly_policy::{Action, Audience, Facts, Source, UnscannableReason};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shared(path: &str) -> PathBuf {
    root().join("../shared/vectors/vpdq").join(path)
}

fn video(name: &str) -> Vec<u8> {
    let path = shared(&format!("videos/{name}.mp4"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (the shared sample videos)", path.display()))
}

/// A video bank of one clip, from Meta's published vPDQ file for it.
fn video_bank() -> VideoBank {
    let text = std::fs::read_to_string(shared("sample-hashes/chair-orig-22-sd-bar.txt")).unwrap();
    let mut bank = VideoBank::new("known-videos").unwrap();
    let features = frankly_hash::parse_meta(&text).unwrap();
    let labels = BTreeSet::from(["csam".to_owned()]);
    bank.add(VideoEntry { features, labels, source_id: Some("chair-orig-22-sd-bar".into()) }).unwrap();
    bank
}

/// A `video_md5` bank with the doorknob clip's MD5.
fn md5_bank() -> Bank {
    let mut bank = Bank::new("known-md5", SignalType::VideoMd5).unwrap();
    let hash = SignalType::VideoMd5.hash_file(&video("doorknob-hd-no-bar")).unwrap();
    bank.entries.push(Entry { hash, labels: BTreeSet::from(["csam".to_owned()]), source_id: None });
    bank
}

fn child() -> &'static Scanner {
    static CHILD: OnceLock<Scanner> = OnceLock::new();
    CHILD.get_or_init(|| {
        let text = std::fs::read_to_string(root().join("policies/child.toml")).unwrap();
        Scanner::builder(trust_local_policy(&text).unwrap(), Audience::Child)
            .video_bank(trust_local_video_bank(&video_bank()).unwrap())
            .bank(trust_local_bank(&md5_bank()).unwrap())
            .models_from_dir(&root().join("models"))
            .unwrap()
            .build()
            .unwrap()
    })
}

/// The frames open_nsfw scored.
fn nsfw_frames(v: &Verdict) -> Vec<u64> {
    v.signals.scores.iter().filter(|s| s.model == "open_nsfw" && s.label == "nsfw").map(|s| s.frame).collect()
}

fn one(bytes: Vec<u8>, media_type: &str) -> Message {
    Message::text("").with_attachment(Attachment::new(bytes, media_type))
}

#[test]
fn a_variant_of_a_banked_clip_is_blocked_whatever_its_declared_type() {
    // The sepia re-edit of the banked clip, labelled as anything.
    for declared in ["video/mp4", "application/octet-stream", "image/jpeg"] {
        let message = one(video("chair-22-sd-sepia-bar"), declared);
        let outgoing = child().scan_outgoing(&message, Facts::default());
        assert_eq!(outgoing.decision.actions, [Action::ShowResources, Action::BlockSend], "{declared}");
        let m = &outgoing.signals.video_matches[0];
        assert_eq!(
            (m.bank.as_str(), m.source, m.labels.as_slice()),
            ("known-videos", Source::Attachment(0), &["csam".to_owned()][..])
        );
        eprintln!(
            "sepia vs banked: {:.1} % of its frames, {:.1} % of the banked clip's",
            m.query_percent, m.compared_percent
        );
        assert!(m.query_percent >= 80.0, "{m:?}");
        assert!(!m.frames.is_empty());
        // 23 hashed frames: an even sample of 12 is scored.
        let frames = nsfw_frames(&outgoing);
        assert!((9..=MAX_CLASSIFIED_FRAMES).contains(&frames.len()), "{frames:?}");
        assert_eq!(frames[..3], [0, 60, 120], "{frames:?}");
        assert!(outgoing.decision.fired[0].reasons[0].contains("matched video bank known-videos (csam) by vpdq"));
        let mismatch = !declared.starts_with("video/");
        assert_eq!(!outgoing.signals.type_mismatches.is_empty(), mismatch, "{declared}");
        assert!(outgoing.signals.unscannable.is_empty(), "{:?}", outgoing.signals.unscannable);
    }
}

#[test]
fn another_clip_is_not_matched_and_its_sampled_frames_are_classified() {
    let incoming = child().scan_incoming(&one(video("pattern-sd-grey-bar"), "video/mp4"), Facts::default());
    assert!(incoming.signals.video_matches.is_empty(), "{:?}", incoming.signals.video_matches);
    assert!(incoming.signals.bank_matches.is_empty());
    assert!(incoming.signals.unscannable.is_empty(), "{:?}", incoming.signals.unscannable);
    // A 7-second clip at one hashed frame a second (30 fps): every hashed frame is scored.
    assert_eq!(nsfw_frames(&incoming), [0, 30, 60, 90, 120, 150, 180]);
    assert_eq!(incoming.decision.actions, [Action::Allow], "{:?}", incoming.decision);
}

#[test]
fn video_md5_matches_the_exact_file_only() {
    let exact = child().scan_incoming(&one(video("doorknob-hd-no-bar"), "video/mp4"), Facts::default());
    let m = &exact.signals.bank_matches[0];
    assert_eq!((m.bank.as_str(), m.algorithm.as_str(), m.distance), ("known-md5", "video_md5", 0));
    assert!(exact.decision.has(Action::SuggestReport));
    // One byte more is another file.
    let mut other = video("doorknob-hd-no-bar");
    other.push(0);
    let changed = child().scan_incoming(&one(other, "video/mp4"), Facts::default());
    assert!(changed.signals.bank_matches.is_empty());
}

fn unscannable(v: &Verdict) -> (UnscannableReason, &str) {
    let u = v.signals.unscannable.first().unwrap_or_else(|| panic!("scanned fully: {:?}", v.signals));
    (u.reason, u.detail.as_str())
}

#[test]
fn damaged_and_empty_videos_are_unscannable_and_blurred_for_a_child() {
    let clip = video("chair-22-sd-sepia-bar");
    // Cut in half: what decoded is scanned (and matches), the cut is a signal.
    let half = child().scan_incoming(&one(clip[..clip.len() / 2].to_vec(), "video/mp4"), Facts::default());
    let (reason, detail) = unscannable(&half);
    assert!(matches!(reason, UnscannableReason::Truncated | UnscannableReason::Malformed), "{reason:?}: {detail}");
    assert!(half.decision.has(Action::Blur));
    // Only the container header: no frame at all.
    let header = child().scan_incoming(&one(clip[..4096].to_vec(), "video/mp4"), Facts::default());
    let (reason, detail) = unscannable(&header);
    assert_eq!(
        (reason, detail),
        (UnscannableReason::Truncated, "the video ends inside its container header (truncated)")
    );
    assert!(header.decision.has(Action::Blur));
    // A WebM signature and nothing else.
    let empty = child().scan_incoming(&one(b"\x1a\x45\xdf\xa3".to_vec(), "video/webm"), Facts::default());
    let (reason, detail) = unscannable(&empty);
    assert!(
        matches!(reason, UnscannableReason::UnsupportedFormat | UnscannableReason::Malformed),
        "{reason:?}: {detail}"
    );
    assert!(empty.decision.has(Action::Blur));
}
