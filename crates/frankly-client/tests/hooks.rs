//! The send and receive hooks: scan then frank, check franking then scan.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{Net, Phone, receive, send};
use frankly_bank::{Bank, Entry, SignalType};
use frankly_classify::{ImageClassifier, TextClassifier};
use frankly_client::{
    Attachment, Body, ClientError, ConversationState, Message, Scanner, trust_local_bank, trust_local_policy,
};
use frankly_franking::{AttachmentRef, FrankingError, Party};
use frankly_hash::{DecodeOptions, PdqHasher, decode};
use frankly_policy::{Action, Audience, Facts};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn photo(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/data/photos").join(name)).unwrap()
}

fn scanner() -> Scanner {
    let image = decode(&photo("skimage_rocket.jpg"), &DecodeOptions::default()).unwrap().rgb;
    let (hash, _) = SignalType::Pdq.hash_image(&image, &mut PdqHasher::new()).expect("PDQ hashes images");
    let mut bank = Bank::new("demo", SignalType::Pdq).unwrap();
    bank.entries.push(Entry { hash, labels: BTreeSet::from(["csam".to_owned()]), source_id: None });
    let policy = trust_local_policy(&std::fs::read_to_string(root().join("policies/adult.toml")).unwrap()).unwrap();
    Scanner::builder(policy, Audience::Adult)
        .bank(trust_local_bank(&bank).unwrap())
        .image_model(ImageClassifier::load(&root().join("models/open_nsfw.toml")).unwrap())
        .text_model(TextClassifier::load(&root().join("models/profanity_check.toml")).unwrap())
        .build()
        .unwrap()
}

#[test]
fn franked_messages_arrive_scanned_in_the_platforms_order_across_senders() {
    let s = scanner();
    let mut net = Net::default();
    let (mut alice, mut bob) = (Phone::new("alice", "phone"), Phone::new("bob", "laptop"));
    net.join("conv-1", &alice.me);
    net.join("conv-1", &bob.me);
    let photo_message =
        Message::text("hello bob").with_attachment(Attachment::new(photo("skimage_coffee.png"), "image/png"));
    send(&s, &mut net, &mut alice, "conv-1", "m1", &photo_message);
    let got = receive(&s, &mut net, &mut bob);
    let incoming = got[0].as_ref().unwrap();
    assert_eq!(incoming.message, photo_message);
    assert_eq!(incoming.verdict.decision.actions, [Action::Allow]);
    assert_eq!(incoming.accepted.context().sender, alice.me);
    send(&s, &mut net, &mut bob, "conv-1", "m2", &Message::text("nice coffee"));
    send(&s, &mut net, &mut alice, "conv-1", "m3", &Message::text("did you get the photo?"));
    assert!(receive(&s, &mut net, &mut alice).iter().all(Result::is_ok));
    assert!(receive(&s, &mut net, &mut bob).iter().all(Result::is_ok));
    assert_eq!((alice.state("conv-1").last_received, bob.state("conv-1").last_received), (2, 3));
    assert_eq!(bob.reporter.kept("conv-1"), 3, "bob keeps both sides");
}

#[test]
fn a_blocked_message_is_not_franked_and_the_state_does_not_move() {
    let s = scanner();
    let state = ConversationState::new("conv-1", &Party::new("alice", "phone"));
    let banked = Message::text("").with_attachment(Attachment::new(photo("skimage_rocket.jpg"), "image/jpeg"));
    let out = s.prepare_outgoing(&state, "m1", &banked, Facts::default()).unwrap();
    assert!(out.verdict.decision.has(Action::BlockSend));
    assert!(out.franked.is_none());
    assert_eq!(state, ConversationState::new("conv-1", &Party::new("alice", "phone")));
}

#[test]
fn messages_that_fail_a_check_are_refused_with_the_reason() {
    let s = scanner();
    let mut net = Net::default();
    let (mut alice, bob) = (Phone::new("alice", "phone"), Phone::new("bob", "laptop"));
    net.join("conv-1", &alice.me);
    net.join("conv-1", &bob.me);
    send(&s, &mut net, &mut alice, "conv-1", "m1", &Message::text("meet at noon"));
    let copy = net.take(&bob.me).pop().unwrap();
    let accept =
        |plaintext: &[u8], atts: &[Vec<u8>], delivery: &frankly_franking::DeliveryContext, peer: &Party, me: &Party| {
            let mut state = ConversationState::new("conv-1", me);
            s.accept_incoming(&mut state, plaintext, &copy.commitment, delivery, atts, peer, Facts::default())
                .unwrap_err()
        };
    let mut edited = copy.plaintext.clone();
    *edited.last_mut().unwrap() ^= 1;
    let (d, alice_p, bob_p) = (&copy.delivery, &alice.me, &bob.me);
    assert_eq!(accept(&edited, &[], d, alice_p, bob_p), ClientError::Franking(FrankingError::CommitmentMismatch));
    let err = accept(&copy.plaintext, &[], d, &Party::new("mallory", "phone"), bob_p);
    assert!(matches!(err, ClientError::Franking(FrankingError::SenderMismatch { .. })), "{err}");
    let err = accept(&copy.plaintext, &[], d, alice_p, &Party::new("bob", "phone"));
    assert!(matches!(err, ClientError::Franking(FrankingError::NotForThisDevice { .. })), "{err}");
    let mut elsewhere = d.clone();
    elsewhere.conversation_id = "conv-2".into();
    let err = accept(&copy.plaintext, &[], &elsewhere, alice_p, bob_p);
    assert!(matches!(err, ClientError::Franking(FrankingError::ConversationMismatch { .. })), "{err}");
    let err = accept(&copy.plaintext, &[vec![1, 2, 3]], d, alice_p, bob_p);
    assert!(err.to_string().contains("references 0 attachments, 1 were given"), "{err}");
}

/// Issue 15, failures 3 and 4 on the device: a replayed or re-numbered copy,
/// a repeated commitment, and a message id reused for another message are
/// refused, so a report can never pick the wrong message.
#[test]
fn replays_repeats_and_reused_message_ids_are_refused() {
    let s = scanner();
    let mut net = Net::default();
    let (mut mallory, mut bob) = (Phone::new("mallory", "phone"), Phone::new("bob", "laptop"));
    net.join("conv-1", &mallory.me);
    net.join("conv-1", &bob.me);
    send(&s, &mut net, &mut mallory, "conv-1", "m1", &Message::text("hi, nice to meet you"));
    let first = net.take(&bob.me).pop().unwrap();
    let peer = mallory.me.clone();
    let accept = |bob: &mut Phone, c: &common::Copy| {
        s.accept_incoming(
            bob.state("conv-1"),
            &c.plaintext,
            &c.commitment,
            &c.delivery,
            &c.attachments,
            &peer,
            Facts::default(),
        )
    };
    accept(&mut bob, &first).unwrap();
    // The same copy again (a relay replays it).
    assert!(matches!(accept(&mut bob, &first).unwrap_err(), ClientError::Franking(FrankingError::OutOfOrder { .. })));
    // The same commitment under a new sequence number.
    let mut renumbered = common::Copy { delivery: first.delivery.clone(), ..first };
    renumbered.delivery.sequence = 9;
    assert!(matches!(accept(&mut bob, &renumbered).unwrap_err(), ClientError::Franking(FrankingError::Duplicate(_))));
    // mallory's modified client reuses the benign message's id for abuse.
    let reused = s
        .prepare_outgoing(
            &ConversationState::new("conv-1", &mallory.me),
            "m1",
            &Message::text("you are worthless"),
            Facts::default(),
        )
        .unwrap()
        .franked
        .unwrap();
    net.post("conv-1", &mallory.me, &reused);
    let abusive = net.take(&bob.me).pop().unwrap();
    assert!(matches!(accept(&mut bob, &abusive).unwrap_err(), ClientError::Franking(FrankingError::Duplicate(_))));
    // An honest client refuses to reuse its own id.
    let err = s.prepare_outgoing(mallory.state("conv-1"), "m1", &Message::text("again"), Facts::default()).unwrap_err();
    assert!(matches!(err, ClientError::Franking(FrankingError::Duplicate(_))));
}

#[test]
fn a_swapped_attachment_is_refused() {
    let s = scanner();
    let mut net = Net::default();
    let (mut alice, bob) = (Phone::new("alice", "phone"), Phone::new("bob", "laptop"));
    net.join("conv-1", &alice.me);
    net.join("conv-1", &bob.me);
    let message = Message::text("photo").with_attachment(Attachment::new(photo("skimage_coffee.png"), "image/png"));
    send(&s, &mut net, &mut alice, "conv-1", "m1", &message);
    let copy = net.take(&bob.me).pop().unwrap();
    // A relay or sender substitutes another ciphertext for the committed one.
    let other = Message::text("").with_attachment(Attachment::new(photo("skimage_chelsea.png"), "image/png"));
    let swapped = s
        .prepare_outgoing(&ConversationState::new("conv-9", &alice.me), "x", &other, Facts::default())
        .unwrap()
        .franked
        .unwrap();
    let err = s
        .accept_incoming(
            &mut ConversationState::new("conv-1", &bob.me),
            &copy.plaintext,
            &copy.commitment,
            &copy.delivery,
            &swapped.attachment_ciphertexts,
            &alice.me,
            Facts::default(),
        )
        .unwrap_err();
    assert_eq!(err, ClientError::Franking(FrankingError::AttachmentDecrypt));
}

#[test]
fn bodies_round_trip_and_malformed_ones_are_refused() {
    let r = |n: u8| AttachmentRef { key: [n; 32], nonce: [n; 12], plaintext_sha256: [n; 32] };
    let body = Body {
        text: "héllo".into(),
        attachments: vec![("image/png".into(), r(1)), ("application/octet-stream".into(), r(2))],
    };
    let bytes = body.encode().unwrap();
    assert_eq!(Body::decode(&bytes).unwrap(), body);
    for cut in 0..bytes.len() {
        assert!(matches!(Body::decode(&bytes[..cut]), Err(frankly_franking::FrankingError::MalformedBody(_))), "{cut}");
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(Body::decode(&trailing).unwrap_err().to_string().contains("trailing bytes"));
    let bad = Body { text: String::new(), attachments: vec![("no media type".into(), r(3))] };
    assert!(bad.encode().unwrap_err().to_string().contains("media type"));
}
