//! Senders, reporters and relays that cheat, each with the precise outcome.
//! The moderation server answers every report it opens alike, so what a
//! cheat achieved is read from the queue, as a moderator sees it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use frankly_api::{Copy, SendRequest, SendResponse};
use frankly_client::{ClientError, Message};
use frankly_demo::{DemoError, E2eeError};
use frankly_franking::{
    AttachmentRef, Body, FrankingError, MessageContext, Party, frank_plaintext, mac_delivery, tag as platform_tag,
};
use frankly_report::{Reason, seal_report};
use frankly_server::StoredVerdict;
use http::Method;
use sha2::{Digest, Sha256};

use crate::{AB, MB, World};

/// mallory's message context in `conversation`, as her client commits to it.
fn context(conversation: &str, message_id: &str) -> MessageContext {
    MessageContext {
        conversation_id: conversation.into(),
        sender: Party::new("mallory", "phone"),
        message_id: message_id.into(),
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
    w.mallory.send_raw(&mut w.directory, MB, &franked.commitment, &swapped, &[]).await.unwrap();

    // The commitment beside the ciphertext differs from the one inside it.
    let inside = frank_plaintext(&context(MB, "inside"), &body("hello")).unwrap();
    let outside = frank_plaintext(&context(MB, "outside"), &body("hello")).unwrap();
    let wire =
        w.mallory.device_mut().encrypt(&mut w.directory, "bob/phone", &inside.commitment, &inside.plaintext).unwrap();
    let request = SendRequest {
        conversation_id: MB.into(),
        copies: vec![Copy { recipient: Party::new("bob", "phone"), ciphertext: B64.encode(&wire) }],
        attachments: Vec::new(),
        commitment: outside.commitment,
    };
    let _: SendResponse = w.mallory.relay().json(Method::POST, "/v1/messages", Some(&request)).await.unwrap();

    let got = w.bob.receive(&w.directory).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(refused_franking(&got[0].outcome), FrankingError::CommitmentMismatch);
    assert!(matches!(got[1].outcome, Err(DemoError::E2ee(E2eeError::CommitmentMismatch))), "{:?}", got[1].outcome);
    // Refused copies are kept unopened (their place shows), never as content.
    assert_eq!(w.bob.reporter().kept(MB), 2);
    let err = w.bob.reporter().build_report(MB, &franked.commitment, 0, 0, Reason::Harassment, "", false).unwrap_err();
    assert!(err.to_string().contains("refused on this device"), "{err}");
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
    w.mallory.send_raw(&mut w.directory, MB, &franked.commitment, &franked.plaintext, &files).await.unwrap();
    let salamander = franked.commitment;
    // A body naming key 2 with plaintext 1's hash: key 2 decrypts, to the wrong plaintext.
    let swapped = AttachmentRef { key: k2, nonce, plaintext_sha256: Sha256::digest(&p1).into() };
    let attached = Body { text: "file".into(), attachments: vec![("application/octet-stream".into(), swapped)] };
    let franked = frank_plaintext(&context(MB, "salamander-2"), &attached.encode().unwrap()).unwrap();
    w.mallory.send_raw(&mut w.directory, MB, &franked.commitment, &franked.plaintext, &files).await.unwrap();

    let got = w.bob.receive(&w.directory).await.unwrap();
    let shown = got[0].outcome.as_ref().unwrap();
    assert_eq!(shown.message.attachments[0].bytes, p1);
    assert_eq!(refused_franking(&got[1].outcome), FrankingError::AttachmentHashMismatch);

    // The moderator sees plaintext 1 too: what bob was shown.
    w.bob.report(MB, &salamander, 0, 0, Reason::Other, "odd file").await.unwrap();
    let views = w.queued().await;
    assert_eq!(views[0].attachments.len(), 1, "stored once, beside the report");
    let shown = w.media(views[0].row.id, 0, 0).await;
    assert_eq!(shown, p1);
    assert_ne!(shown, p2);

    // A reporter who swaps in plaintext 2 gets the same answer, and nothing is queued.
    let mut report = w.bob.reporter().build_report(MB, &salamander, 0, 0, Reason::Spam, "", false).unwrap();
    report.messages[0].opening.as_mut().unwrap().attachments[0].plaintext = p2;
    post(&w, &report).await;
    assert_eq!(w.queued().await.len(), 1);
}

/// mallory sends bob four messages; bob accepts them all.
async fn four_messages(w: &mut World) -> Vec<frankly_franking::Commitment> {
    let mut out = Vec::new();
    for text in ["one", "two", "three", "four"] {
        out.push(w.mallory.send(&mut w.directory, MB, &Message::text(text)).await.unwrap().commitment.unwrap());
    }
    let got = w.bob.receive(&w.directory).await.unwrap();
    assert!(got.iter().all(|r| r.outcome.is_ok()));
    out
}

async fn post(w: &World, report: &frankly_report::Report) -> frankly_api::Received {
    let keys = w.bob.server_keys();
    let received =
        w.bob.relay().post_report(seal_report(report, keys.report_key_id, &keys.report).unwrap()).await.unwrap();
    assert_eq!(received.status, "received", "every opened report gets the same answer");
    received
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reporter_who_edits_drops_or_replays_is_caught() {
    let mut w = World::new().await;
    let cs = four_messages(&mut w).await;
    let build = |w: &World, reason| w.bob.reporter().build_report(MB, &cs[3], 3, 0, reason, "", false).unwrap();

    // Edits the reported message, or its delivery time: answered, not queued.
    let mut edited = build(&w, Reason::Harassment);
    edited.messages[3].opening.as_mut().unwrap().body = body("four, but worse");
    post(&w, &edited).await;
    let mut retimed = build(&w, Reason::Harassment);
    retimed.messages[3].delivery.timestamp_ms += 60_000;
    post(&w, &retimed).await;
    assert_eq!(w.queued().await.len(), 0);

    // Edits a context message and drops another: queued, the edited one
    // marked, the dropped one shown as an omission.
    let mut context_edited = build(&w, Reason::Harassment);
    context_edited.messages[1].opening.as_mut().unwrap().body = body("two, but worse");
    context_edited.messages.remove(2);
    context_edited.reported = 2;
    post(&w, &context_edited).await;
    let views = w.queued().await;
    assert_eq!(views.len(), 1);
    let v = &views[0].stored;
    assert!(
        matches!(&v.verdicts[1], StoredVerdict::Rejected(why) if why.starts_with("commitment does not match")),
        "{:?}",
        v.verdicts
    );
    assert_eq!((&v.verdicts[0], &v.verdicts[2]), (&StoredVerdict::Verified, &StoredVerdict::Verified));
    let gaps = &v.order.as_ref().unwrap().gaps;
    assert_eq!(
        gaps.iter().map(|g| g.missing).sum::<u64>(),
        2,
        "message 2 (edited) and 3 (dropped) are not vouched for"
    );

    // The honest report of the same message again: one report per message
    // per reporter, so nothing new is queued; a replayed envelope likewise.
    let honest = build(&w, Reason::Spam);
    post(&w, &honest).await;
    post(&w, &honest).await;
    assert_eq!(w.queued().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_that_alters_a_delivery_is_caught() {
    let mut w = World::new().await;
    for text in ["first", "second", "third"] {
        w.alice.send(&mut w.directory, AB, &Message::text(text)).await.unwrap();
    }
    let delivered = w.bob.fetch().await.unwrap();
    assert_eq!(delivered.len(), 3);

    // In transit, after the platform MACed the delivery: the MAC breaks.
    let mut retimed = delivered[0].clone_for_test();
    retimed.delivery.timestamp_ms += 60_000;
    assert_eq!(refused_franking(&w.bob.open(&w.directory, &retimed)), FrankingError::DeliveryMac);
    let mut renumbered = delivered[0].clone_for_test();
    renumbered.delivery.sequence = 9;
    assert_eq!(refused_franking(&w.bob.open(&w.directory, &renumbered)), FrankingError::DeliveryMac);

    // The platform itself names another sender, with a fresh tag and a valid
    // MAC: Olm authenticates the peer, so the copy does not decrypt in a
    // session with mallory's key.
    let state = w.platform.state();
    let mut lied = delivered[0].clone_for_test();
    lied.delivery.sender = Party::new("mallory", "phone");
    lied.franked.tag = platform_tag(&state.platform_keys().keyring(), &lied.commitment, &lied.delivery).unwrap();
    let key = state.secrets().device_key(&Party::new("bob", "phone")).unwrap();
    lied.franked.delivery_mac =
        hex::encode(mac_delivery(&key, &lied.franked.tag, &lied.commitment, &lied.delivery).unwrap());
    let outcome = w.bob.open(&w.directory, &lied);
    assert!(
        matches!(&outcome, Err(DemoError::E2ee(E2eeError::Decrypt { sender })) if sender == "mallory/phone"),
        "{outcome:?}"
    );

    // That refused copy took sequence 1's place; the untouched copies 2 and
    // 3 are accepted afterwards: the refusals did not disturb the Olm session.
    for (d, text) in delivered.iter().zip(["first", "second", "third"]).skip(1) {
        assert_eq!(w.bob.open(&w.directory, d).unwrap().message.text, text);
    }
    // A replayed copy is refused as out of order.
    assert!(matches!(refused_franking(&w.bob.open(&w.directory, &delivered[2])), FrankingError::OutOfOrder { .. }));
}

/// `Delivered` is a wire type without `Clone`; the relay-in-the-middle
/// copies it through JSON, as it would on the wire.
trait CloneForTest {
    fn clone_for_test(&self) -> Self;
}

impl CloneForTest for frankly_api::Delivered {
    fn clone_for_test(&self) -> Self {
        serde_json::from_value(serde_json::to_value(self).unwrap()).unwrap()
    }
}
