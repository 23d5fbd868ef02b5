//! The fixture of the bindings' device tests (the C program in
//! `crates/frankly-ffi/tests/c/franking.c`, the JUnit suite in
//! `bindings/uniffi/java/test`): what they read from their directory, and
//! the moderation server's check of the report they write there. Included
//! by `#[path]` from both crates' tests.
//!
//! Written: `policy-v1.bundle`, `policy-v2.bundle` (the adult policy signed
//! by the platform's bundle key), `bank.bundle` (the PDQ of `banked.jpg`),
//! `platform.pub` (32 bytes), `tag.key` (the platform's tag key, id 7),
//! `report.pub` (the server's report key, id 1), `banked.jpg`, `photo.jpg`
//! with `pdq.txt` (Rust's PDQ and quality of it), `adult.toml`, `models/`.
//! Read back: `report.bin`, Bob's report of messages 1 to 3 (both sides,
//! the third with an attachment) and the refused message 4.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What the check of the report needs.
pub struct Keys {
    tag_secret: [u8; 32],
    server: frankly_report::ServerKeyPair,
}

pub fn prepare(d: &Path, now_s: u64) -> Keys {
    let signing = frankly_bundle::SigningKey::from_bytes(&[41; 32]);
    let policy = std::fs::read_to_string(repo().join("policies/adult.toml")).unwrap();
    std::fs::write(d.join("adult.toml"), &policy).unwrap();
    for version in [1, 2] {
        let (bytes, _) = frankly_policy::sign_policy(&policy, &signing, version, now_s - 60, now_s + 3600).unwrap();
        std::fs::write(d.join(format!("policy-v{version}.bundle")), bytes).unwrap();
    }
    let copy = |from: &str, to: &str| {
        let bytes = std::fs::read(repo().join("tests/data/photos").join(from)).unwrap();
        std::fs::write(d.join(to), &bytes).unwrap();
        frankly_hash::decode(&bytes, &frankly_hash::DecodeOptions::default()).unwrap().rgb
    };
    let banked = copy("skimage_rocket.jpg", "banked.jpg");
    let photo = frankly_hash::pdq(&copy("lomiri_Bridge_by_Sander_Klootwijk.jpg", "photo.jpg"));
    std::fs::write(d.join("pdq.txt"), format!("{} {}", photo.hash, photo.quality)).unwrap();
    let mut bank = frankly_bank::Bank::new("known", frankly_bank::SignalType::Pdq).unwrap();
    bank.entries.push(frankly_bank::Entry {
        hash: frankly_bank::SignalType::Pdq.hash_image(&banked, &mut frankly_hash::PdqHasher::new()).unwrap().0,
        labels: ["csam".to_owned()].into(),
        source_id: None,
    });
    let (bytes, _) = frankly_bank::sign_bundle(&bank, &signing, 1, now_s - 60, now_s + 3600).unwrap();
    std::fs::write(d.join("bank.bundle"), bytes).unwrap();
    std::fs::write(d.join("platform.pub"), signing.verifying_key().as_bytes()).unwrap();
    let tag_secret = [0x77u8; 32];
    std::fs::write(d.join("tag.key"), tag_secret).unwrap();
    let server = frankly_report::ServerKeyPair::derive(b"the moderation server's report key");
    std::fs::write(d.join("report.pub"), server.public().to_bytes()).unwrap();
    std::os::unix::fs::symlink(repo().join("models"), d.join("models")).unwrap();
    Keys { tag_secret, server }
}

/// Opens and verifies `report.bin` as the moderation server does: three
/// verified messages of both sides and the refused fourth, unopened, in a
/// complete order, with the texts, the attachment, the reason and the note
/// as sent.
pub fn check_report(d: &Path, now_s: u64, keys: Keys) {
    use frankly_report::Verdict::{Unopened, Verified};
    let now_ms = now_s * 1000;
    let envelope = std::fs::read(d.join("report.bin")).unwrap();
    let mut report_keys = frankly_report::ReportKeyring::new();
    report_keys.insert(1, keys.server, u64::MAX);
    let mut platform = frankly_franking::Keyring::new();
    let window = frankly_franking::KeyWindow {
        tag_from_ms: now_ms - 86_400_000,
        tag_until_ms: now_ms + 86_400_000,
        verify_until_ms: now_ms + 86_400_000,
    };
    platform.insert(frankly_franking::PlatformKey::new(7, keys.tag_secret, window).unwrap());
    let bob = frankly_franking::Party::new("bob", "laptop");
    let mut seen = std::collections::HashSet::new();
    let verified =
        frankly_report::open_and_verify(&envelope, &report_keys, &platform, &bob, now_ms, &mut seen).unwrap();
    assert_eq!(verified.verdicts(), [Verified, Verified, Verified, Unopened]);
    assert!(verified.order().as_ref().unwrap().is_complete(), "{:?}", verified.order());
    let report = verified.report();
    assert_eq!(report.reason, frankly_report::Reason::Harassment);
    assert_eq!(report.note, "threats");
    let senders: Vec<&str> = report.messages.iter().map(|m| m.delivery.sender.user_id.as_str()).collect();
    assert_eq!(senders, ["alice", "bob", "alice", "alice"], "both sides, in the platform's order");
    let bodies: Vec<String> = report
        .messages
        .iter()
        .filter_map(|m| m.opening.as_ref())
        .map(|o| frankly_client::Body::decode(&o.body).unwrap().text)
        .collect();
    assert_eq!(bodies, ["hi bob", "leave me alone", "you will regret it"]);
    assert_eq!(report.messages[2].opening.as_ref().unwrap().attachments[0].plaintext, b"meet me at six");
}
