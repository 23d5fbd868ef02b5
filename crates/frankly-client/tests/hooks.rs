//! The send and receive hooks: scan then frank, check franking then scan.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use frankly_bank::{Bank, Entry, SignalType};
use frankly_classify::{ImageClassifier, TextClassifier};
use frankly_client::{Attachment, Body, ClientError, ConversationChain, Message, Scanner};
use frankly_franking::{AttachmentRef, FrankingError, verify_chain};
use frankly_hash::{DecodeOptions, PdqHasher, decode};
use frankly_policy::{Action, Audience, Facts, Policy};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn photo(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/data/photos").join(name)).unwrap()
}

fn scanner() -> Scanner {
    let image = decode(&photo("skimage_rocket.jpg"), &DecodeOptions::default()).unwrap().rgb;
    let (hash, _) = SignalType::Pdq.hash_image(&image, &mut PdqHasher::new());
    let mut bank = Bank::new("demo", SignalType::Pdq).unwrap();
    bank.entries.push(Entry { hash, labels: BTreeSet::from(["csam".to_owned()]), source_id: None });
    let policy = Policy::from_toml(&std::fs::read_to_string(root().join("policies/adult.toml")).unwrap()).unwrap();
    Scanner::builder(policy, Audience::Adult)
        .bank(bank)
        .image_model(ImageClassifier::load(&root().join("models/open_nsfw.toml")).unwrap())
        .text_model(TextClassifier::load(&root().join("models/profanity_check.toml")).unwrap())
        .build()
        .unwrap()
}

#[test]
fn franked_messages_arrive_scanned_and_chained_across_senders() {
    let s = scanner();
    let mut alice = ConversationChain::new("conv-1", "alice");
    let mut bob = ConversationChain::new("conv-1", "bob");
    let photo_message =
        Message::text("hello bob").with_attachment(Attachment::new(photo("skimage_coffee.png"), "image/png"));
    let script = [
        ("alice", "m1", photo_message),
        ("bob", "m2", Message::text("nice coffee")),
        ("alice", "m3", Message::text("did you get the photo?")),
    ];
    let mut contexts = Vec::new();
    for (from, id, message) in &script {
        let (sender, recipient) = if *from == "alice" { (&mut alice, &mut bob) } else { (&mut bob, &mut alice) };
        let out = s.prepare_outgoing(sender, id, message, Facts::default()).unwrap();
        assert_eq!(out.verdict.decision.actions, [Action::Allow]);
        let franked = out.franked.unwrap();
        assert_eq!(franked.attachment_ciphertexts.len(), message.attachments.len());
        // The E2EE layer would encrypt `plaintext` with `commitment` as
        // associated data; the recipient decrypts and hands both back.
        let incoming = s
            .accept_incoming(
                recipient,
                &franked.franked.plaintext,
                &franked.franked.commitment,
                &franked.attachment_ciphertexts,
                from,
                Facts::default(),
            )
            .unwrap();
        assert_eq!(&incoming.message, message);
        assert_eq!(incoming.attachment_refs.len(), message.attachments.len());
        assert_eq!(incoming.accepted.context(), &franked.context);
        assert_eq!(incoming.verdict.decision.actions, [Action::Allow]);
        contexts.push((franked.context, franked.franked.commitment));
    }
    assert_eq!((alice.next_sequence, bob.next_sequence), (2, 1));
    assert_eq!(contexts[1].0.previous, Some(contexts[0].1));
    assert_eq!(contexts[2].0.previous, Some(contexts[1].1));
    verify_chain(&contexts).unwrap();
}

#[test]
fn a_blocked_message_is_not_franked_and_the_chain_does_not_move() {
    let s = scanner();
    let mut chain = ConversationChain::new("conv-1", "alice");
    let banked = Message::text("").with_attachment(Attachment::new(photo("skimage_rocket.jpg"), "image/jpeg"));
    let out = s.prepare_outgoing(&mut chain, "m1", &banked, Facts::default()).unwrap();
    assert!(out.verdict.decision.has(Action::BlockSend));
    assert!(out.franked.is_none());
    assert_eq!(chain, ConversationChain::new("conv-1", "alice"));
}

#[test]
fn messages_that_fail_the_franking_check_are_refused() {
    let s = scanner();
    let mut chain = ConversationChain::new("conv-1", "alice");
    let out = s.prepare_outgoing(&mut chain, "m1", &Message::text("meet at noon"), Facts::default()).unwrap();
    let franked = out.franked.unwrap().franked;
    let mut edited = franked.plaintext.to_vec();
    let last = edited.len() - 1;
    edited[last] ^= 1;
    let accept = |plaintext: &[u8], atts: &[Vec<u8>], peer: &str, conv: &str| {
        let mut chain = ConversationChain::new(conv, "bob");
        s.accept_incoming(&mut chain, plaintext, &franked.commitment, atts, peer, Facts::default()).unwrap_err()
    };
    assert_eq!(accept(&edited, &[], "alice", "conv-1"), ClientError::Franking(FrankingError::CommitmentMismatch));
    let err = accept(&franked.plaintext, &[], "mallory", "conv-1");
    assert!(matches!(err, ClientError::Franking(FrankingError::SenderMismatch { .. })), "{err}");
    let err = accept(&franked.plaintext, &[], "alice", "conv-2");
    assert!(matches!(err, ClientError::Franking(FrankingError::ConversationMismatch { .. })), "{err}");
    let err = accept(&franked.plaintext, &[vec![1, 2, 3]], "alice", "conv-1");
    assert!(err.to_string().contains("references 0 attachments, 1 were given"), "{err}");
}

#[test]
fn a_swapped_attachment_is_refused() {
    let s = scanner();
    let mut chain = ConversationChain::new("conv-1", "alice");
    let message = Message::text("photo").with_attachment(Attachment::new(photo("skimage_coffee.png"), "image/png"));
    let franked = s.prepare_outgoing(&mut chain, "m1", &message, Facts::default()).unwrap().franked.unwrap();
    // A relay or sender substitutes another ciphertext for the committed one.
    let other = Message::text("").with_attachment(Attachment::new(photo("skimage_chelsea.png"), "image/png"));
    let mut other_chain = ConversationChain::new("conv-9", "alice");
    let swapped = s.prepare_outgoing(&mut other_chain, "x", &other, Facts::default()).unwrap().franked.unwrap();
    let err = s
        .accept_incoming(
            &mut ConversationChain::new("conv-1", "bob"),
            &franked.franked.plaintext,
            &franked.franked.commitment,
            &swapped.attachment_ciphertexts,
            "alice",
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
