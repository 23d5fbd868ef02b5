//! Senders, reporters and relays that cheat, each with the precise outcome.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use frankly_client::{ClientError, Message};
use frankly_demo::{DemoError, E2eeError};
use frankly_franking::{
    AttachmentRef, Body, FrankingError, MessageContext, frank_plaintext, sign_delivery, tag as platform_tag,
};
use frankly_report::{Reason, seal_report};
use frankly_server::{SendRequest, SendResponse, queue};
use http::Method;
use sha2::{Digest, Sha256};

use crate::{AB, MB, World};

/// mallory's next message context in `conversation`, as her client would
/// commit to it (the chain does not matter to the checks tested here).
fn context(conversation: &str, message_id: &str) -> MessageContext {
    MessageContext {
        conversation_id: conversation.into(),
        sender_id: "mallory".into(),
        message_id: message_id.into(),
        sequence: 0,
        previous: None,
    }
}

fn body(text: &str) -> Vec<u8> {
    Body { text: text.into(), attachments: Vec::new() }.encode().unwrap()
}

fn refused_franking(outcome: &Result<frankly_demo::Shown, DemoError>) -> FrankingError {
    match outcome {
        Err(DemoError::Client(ClientError::Franking(e))) | Err(DemoError::Franking(e)) => e.clone(),
        other => panic!("expected a franking refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sender_whose_commitment_does_not_match_the_body_is_refused_and_nothing_is_shown() {
    let mut w = World::new().await;
    // Commit to an innocent body, encrypt an abusive one under the same commitment.
    let innocent = body("sorry, wrong person");
    let franked = frank_plaintext(&context(MB, "forged"), &innocent).unwrap();
    let mut swapped = franked.plaintext.to_vec();
    swapped.truncate(swapped.len() - innocent.len());
    swapped.extend_from_slice(&body("I know where you live"));
    w.mallory.send_raw(&mut w.directory, MB, "bob", &franked.commitment, &swapped, &[]).await.unwrap();

    // The commitment beside the ciphertext differs from the one inside it.
    let inside = frank_plaintext(&context(MB, "inside"), &body("hello")).unwrap();
    let outside = frank_plaintext(&context(MB, "outside"), &body("hello")).unwrap();
    let wire = w.mallory.device_mut().encrypt(&mut w.directory, "bob", &inside.commitment, &inside.plaintext).unwrap();
    let request = SendRequest {
        conversation_id: MB.into(),
        recipients: vec!["bob".into()],
        ciphertext: B64.encode(&wire),
        attachments: Vec::new(),
        commitment: outside.commitment,
    };
    let _: SendResponse = w.mallory.relay().json(Method::POST, "/v1/messages", Some(&request)).await.unwrap();

    let got = w.bob.receive(&w.directory).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(refused_franking(&got[0].outcome), FrankingError::CommitmentMismatch);
    assert!(matches!(got[1].outcome, Err(DemoError::E2ee(E2eeError::CommitmentMismatch))), "{:?}", got[1].outcome);
    // Nothing refused is kept, so nothing unverifiable can be shown or reported.
    assert_eq!(w.bob.reporter().kept(MB), 0);
    let err = w.bob.reporter().build_report(MB, "forged", 0, Reason::Harassment, "", false).unwrap_err();
    assert_eq!(err.to_string(), "report: message forged of mallory/bob is not kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_two_key_attachment_is_shown_and_reported_as_the_committed_plaintext() {
    let mut w = World::new().await;
    let (k1, k2, nonce) = ([0x11u8; 32], [0x22u8; 32], [0x07u8; 12]);
    let ciphertext = crate::salamander::two_key_ciphertext(&k1, &k2, &nonce);
    let decrypt = |k: &[u8; 32]| {
        use chacha20poly1305::aead::Aead;
        use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
        ChaCha20Poly1305::new(k.into()).decrypt(&nonce.into(), ciphertext.as_slice()).unwrap()
    };
    let (p1, p2) = (decrypt(&k1), decrypt(&k2));
    assert_ne!(p1, p2, "one ciphertext, two valid plaintexts");

    // The body commits to key 1 and plaintext 1's hash: bob is shown plaintext 1.
    let committed = AttachmentRef { key: k1, nonce, plaintext_sha256: Sha256::digest(&p1).into() };
    let attached = Body { text: "file".into(), attachments: vec![("application/octet-stream".into(), committed)] };
    let franked = frank_plaintext(&context(MB, "salamander"), &attached.encode().unwrap()).unwrap();
    let files = [ciphertext.clone()];
    w.mallory.send_raw(&mut w.directory, MB, "bob", &franked.commitment, &franked.plaintext, &files).await.unwrap();
    // A body naming key 2 with plaintext 1's hash: key 2 decrypts, to the wrong plaintext.
    let swapped = AttachmentRef { key: k2, nonce, plaintext_sha256: Sha256::digest(&p1).into() };
    let attached = Body { text: "file".into(), attachments: vec![("application/octet-stream".into(), swapped)] };
    let franked = frank_plaintext(&context(MB, "salamander-2"), &attached.encode().unwrap()).unwrap();
    w.mallory.send_raw(&mut w.directory, MB, "bob", &franked.commitment, &franked.plaintext, &files).await.unwrap();

    let got = w.bob.receive(&w.directory).await.unwrap();
    let shown = got[0].outcome.as_ref().unwrap();
    assert_eq!(shown.message.attachments[0].bytes, p1);
    assert_eq!(refused_franking(&got[1].outcome), FrankingError::AttachmentHashMismatch);

    // The moderator sees plaintext 1 too: what bob was shown.
    let accepted = w.bob.report(MB, "salamander", 0, Reason::Other, "odd file").await.unwrap();
    assert_eq!(accepted.messages, ["verified"]);
    let user = w.moderator().await;
    let db = w.platform.state().db();
    let id = queue::claim(db, &user, &accepted.queue, 60_000).await.unwrap().unwrap();
    let view = queue::view(db, &user, id).await.unwrap();
    assert_eq!(view.stored.report.messages[0].attachments[0].plaintext, p1);
    assert_ne!(view.stored.report.messages[0].attachments[0].plaintext, p2);

    // A reporter who swaps in plaintext 2 is refused: it is not the committed one.
    let mut report = w.bob.reporter().build_report(MB, "salamander", 0, Reason::Other, "", false).unwrap();
    report.messages[0].attachments[0].plaintext = p2;
    let err = w.bob.relay().post_report(seal_report(&report, &w.bob.server_keys().report).unwrap()).await.unwrap_err();
    assert_refused(&err, 422, "reported_message_unverified", Some(0), "attachment");
}

fn assert_refused(err: &DemoError, status: u16, code: &str, index: Option<usize>, says: &str) {
    match err {
        DemoError::Refused { status: s, code: c, message, message_index } => {
            assert_eq!((*s, c.as_str(), *message_index), (status, code, index), "{message}");
            assert!(message.contains(says), "{message:?} should mention {says:?}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// mallory sends bob four messages; bob accepts them all.
async fn four_messages(w: &mut World) -> Vec<String> {
    let mut ids = Vec::new();
    for text in ["one", "two", "three", "four"] {
        ids.push(w.mallory.send(&mut w.directory, MB, "bob", &Message::text(text)).await.unwrap().message_id);
    }
    let got = w.bob.receive(&w.directory).await.unwrap();
    assert!(got.iter().all(|r| r.outcome.is_ok()));
    ids
}

async fn post(w: &World, report: &frankly_report::Report) -> Result<frankly_server::Accepted, DemoError> {
    w.bob.relay().post_report(seal_report(report, &w.bob.server_keys().report).unwrap()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reporter_who_edits_drops_or_replays_is_caught() {
    let mut w = World::new().await;
    let ids = four_messages(&mut w).await;
    let build = |w: &World| w.bob.reporter().build_report(MB, &ids[3], 3, Reason::Harassment, "", false).unwrap();

    // Edits the reported message: refused, naming the message and the check.
    let mut edited = build(&w);
    edited.messages[3].body = body("four, but worse");
    let err = post(&w, &edited).await.unwrap_err();
    assert_refused(&err, 422, "reported_message_unverified", Some(3), "commitment does not match");

    // Edits the reported message's delivery time: the platform's tag no longer matches.
    let mut retimed = build(&w);
    retimed.messages[3].delivery.timestamp_ms += 60_000;
    let err = post(&w, &retimed).await.unwrap_err();
    assert_refused(&err, 422, "reported_message_unverified", Some(3), "platform tag does not match");

    // Edits a context message: accepted (the reported message verifies), with
    // that message marked as failing its check.
    let mut context_edited = build(&w);
    context_edited.messages[1].body = body("two, but worse");
    let accepted = post(&w, &context_edited).await.unwrap();
    assert!(accepted.messages[1].starts_with("commitment does not match"), "{:?}", accepted.messages);
    assert_eq!([&accepted.messages[0], &accepted.messages[2], &accepted.messages[3]], ["verified"; 3]);

    // Drops a context message: every message verifies, the chain does not.
    let mut dropped = build(&w);
    dropped.messages.remove(1);
    let accepted = post(&w, &dropped).await.unwrap();
    assert_eq!(accepted.messages, ["verified"; 3]);
    assert!(!accepted.chain_ok, "a missing context message breaks the chain");

    // The honest report verifies; sending the same envelope again is a replay.
    let honest = seal_report(&build(&w), &w.bob.server_keys().report).unwrap();
    let accepted = w.bob.relay().post_report(honest.clone()).await.unwrap();
    assert_eq!(accepted.messages, ["verified"; 4]);
    assert!(accepted.chain_ok);
    let err = w.bob.relay().post_report(honest).await.unwrap_err();
    assert_refused(&err, 409, "replay", None, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_that_alters_sender_or_timestamp_is_caught() {
    let mut w = World::new().await;
    for text in ["first", "second", "third"] {
        w.alice.send(&mut w.directory, AB, "bob", &Message::text(text)).await.unwrap();
    }
    let delivered = w.bob.fetch().await.unwrap();
    assert_eq!(delivered.len(), 3);

    // In transit, after the delivery service signed: the signature breaks.
    let mut retimed = delivered[0].clone_for_test();
    retimed.delivery.timestamp_ms += 60_000;
    assert_eq!(refused_franking(&w.bob.open(&w.directory, &retimed)), FrankingError::DeliverySignature);
    let mut resent = delivered[0].clone_for_test();
    resent.delivery.sender_id = "mallory".into();
    assert_eq!(refused_franking(&w.bob.open(&w.directory, &resent)), FrankingError::DeliverySignature);

    // The platform itself names another sender, with a fresh tag and a valid
    // signature: Olm authenticates the peer, so the message does not decrypt
    // in a session with mallory's key.
    let state = w.platform.state();
    let mut lied = delivered[0].clone_for_test();
    lied.delivery.sender_id = "mallory".into();
    lied.franked.tag = platform_tag(&state.platform_keys().keyring(), &lied.commitment, &lied.delivery).unwrap();
    let signature = sign_delivery(&state.secrets().delivery_key, &lied.franked.tag, &lied.delivery).unwrap();
    lied.franked.delivery_signature = hex::encode(signature);
    let outcome = w.bob.open(&w.directory, &lied);
    assert!(
        matches!(&outcome, Err(DemoError::E2ee(E2eeError::Decrypt { sender })) if sender == "mallory"),
        "{outcome:?}"
    );

    // Untouched, the same messages are accepted afterwards: the refusals did
    // not disturb the Olm session.
    for (d, text) in delivered.iter().zip(["first", "second", "third"]) {
        assert_eq!(w.bob.open(&w.directory, d).unwrap().message.text, text);
    }
}

/// `Delivered` is a wire type without `Clone`; the relay-in-the-middle
/// copies it through JSON, as it would on the wire.
trait CloneForTest {
    fn clone_for_test(&self) -> Self;
}

impl CloneForTest for frankly_server::Delivered {
    fn clone_for_test(&self) -> Self {
        serde_json::from_value(serde_json::to_value(self).unwrap()).unwrap()
    }
}
