//! The reporter: a user's report of a franked conversation, built on the
//! device and verified by the moderation side.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use frankly_classify::{ImageClassifier, TextClassifier};
use frankly_client::{Attachment, ClientError, ConversationChain, Incoming, Message, Reporter, Scanner};
use frankly_franking::{DeliveryContext, Keyring, PlatformKey, PlatformTag, tag};
use frankly_policy::{Audience, Facts, Policy};
use frankly_report::{Reason, ServerKeyPair, Verdict as MessageVerdict, open_and_verify};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scanner() -> Scanner {
    let policy = Policy::from_toml(&std::fs::read_to_string(root().join("policies/teen.toml")).unwrap()).unwrap();
    Scanner::builder(policy, Audience::Teen)
        .image_model(ImageClassifier::load(&root().join("models/open_nsfw.toml")).unwrap())
        .text_model(TextClassifier::load(&root().join("models/profanity_check.toml")).unwrap())
        .build()
        .unwrap()
}

fn keyring() -> Keyring {
    let mut k = Keyring::new();
    k.insert(PlatformKey::new(7, [9; 32], 0, u64::MAX));
    k
}

/// Alice sends `messages` to Bob through a tagging platform; Bob accepts
/// each and returns what his device keeps, with delivery context and tag.
fn conversation(s: &Scanner, messages: &[Message]) -> Vec<(Incoming, DeliveryContext, PlatformTag)> {
    let (mut alice, mut bob) = (ConversationChain::new("conv-1", "alice"), ConversationChain::new("conv-1", "bob"));
    let keyring = keyring();
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let franked =
                s.prepare_outgoing(&mut alice, &format!("m{i}"), m, Facts::default()).unwrap().franked.unwrap();
            let delivery = DeliveryContext {
                sender_id: "alice".into(),
                conversation_id: "conv-1".into(),
                timestamp_ms: 1_800_000_000_000 + i as u64,
                server_message_id: format!("s{i}"),
            };
            let t = tag(&keyring, &franked.franked.commitment, &delivery).unwrap();
            let incoming = s
                .accept_incoming(
                    &mut bob,
                    &franked.franked.plaintext,
                    &franked.franked.commitment,
                    &franked.attachment_ciphertexts,
                    "alice",
                    Facts { sender_is_contact: Some(false), ..Facts::default() },
                )
                .unwrap();
            (incoming, delivery, t)
        })
        .collect()
}

#[test]
fn a_report_with_context_and_evidence_verifies_on_the_server() {
    let s = scanner();
    let photo = std::fs::read(root().join("tests/data/photos/skimage_coffee.png")).unwrap();
    let messages = [
        Message::text("hey"),
        Message::text("look at this").with_attachment(Attachment::new(photo.clone(), "image/png")),
        Message::text("you are a fucking idiot"),
    ];
    let mut reporter = Reporter::new("bob", 10).unwrap();
    for (incoming, delivery, t) in conversation(&s, &messages) {
        reporter.remember(&incoming, delivery, t);
    }
    assert_eq!(reporter.kept("conv-1"), 3);
    let server = ServerKeyPair::generate().unwrap();
    let envelope =
        reporter.report("conv-1", "m2", 2, Reason::Harassment, "he keeps insulting me", true, server.public()).unwrap();

    let mut seen = HashSet::new();
    let verified = open_and_verify(&envelope, &server, &keyring(), &mut seen).unwrap();
    assert_eq!(verified.verdicts(), [MessageVerdict::Verified, MessageVerdict::Verified, MessageVerdict::Verified]);
    assert!(verified.chain().is_ok(), "{:?}", verified.chain());
    let report = verified.report();
    assert_eq!(report.reporter_id, "bob");
    assert_eq!(report.messages[1].attachments[0].plaintext, photo);
    assert!(report.evidence.iter().any(|e| e.kind == "rule:offensive.incoming.stranger"), "{:?}", report.evidence);
    // The same report again is a replay.
    assert!(open_and_verify(&envelope, &server, &keyring(), &mut seen).is_err());
}

#[test]
fn memory_is_bounded_by_count_and_bytes() {
    let s = scanner();
    let photo = std::fs::read(root().join("tests/data/photos/skimage_coffee.png")).unwrap();
    let messages: Vec<Message> = (0..5)
        .map(|i| Message::text(&format!("message {i}")).with_attachment(Attachment::new(photo.clone(), "image/png")))
        .collect();
    let kept = conversation(&s, &messages);
    let mut reporter = Reporter::new("bob", 3).unwrap();
    for (incoming, delivery, t) in &kept {
        reporter.remember(incoming, delivery.clone(), *t);
    }
    assert_eq!(reporter.kept("conv-1"), 3, "only the last 3 are kept");
    let server = ServerKeyPair::generate().unwrap();
    let err = reporter.report("conv-1", "m0", 0, Reason::Spam, "", false, server.public()).unwrap_err();
    assert!(matches!(err, ClientError::Report(_)), "{err}");
    assert!(reporter.report("conv-1", "m4", 5, Reason::Spam, "", false, server.public()).is_ok());

    let mut small = Reporter::new("bob", 3).unwrap().with_max_bytes(photo.len() * 2);
    for (incoming, delivery, t) in &kept {
        small.remember(incoming, delivery.clone(), *t);
    }
    assert!(small.kept_bytes() <= photo.len() * 2);
    assert_eq!(small.kept("conv-1"), 1);
    assert!(Reporter::new("bob", 0).is_err());
}
