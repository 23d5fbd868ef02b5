//! Every property of the franking layer, attacked: each attempt must be refused.

#![allow(clippy::unwrap_used)]

use frankly_franking::{
    Commitment, DeliveryContext, FrankingError, FrankingKey, Keyring, MessageContext, PlatformKey, commit, receive,
    tag, verify_chain, verify_commitment, verify_tag,
};

const T0: u64 = 1_800_000_000_000;

fn keyring() -> Keyring {
    let mut k = Keyring::new();
    k.insert(PlatformKey::new(1, [0x11; 32], T0 - 1_000_000, T0 + 10_000_000));
    k.insert(PlatformKey::new(2, [0x22; 32], T0 + 5_000_000, T0 + 20_000_000));
    k
}

struct Sent {
    key: FrankingKey,
    context: MessageContext,
    body: Vec<u8>,
    commitment: Commitment,
    delivery: DeliveryContext,
    tag: frankly_franking::PlatformTag,
}

fn send(sender: &str, seq: u64, previous: Option<Commitment>, body: &[u8], at: u64) -> Sent {
    let key = FrankingKey::generate().unwrap();
    let context = MessageContext {
        conversation_id: "conv-1".into(),
        sender_id: sender.into(),
        message_id: format!("{sender}-{seq}"),
        sequence: seq,
        previous,
    };
    let commitment = commit(&key, &context, body).unwrap();
    let delivery = DeliveryContext {
        sender_id: sender.into(),
        conversation_id: "conv-1".into(),
        timestamp_ms: at,
        server_message_id: format!("srv-{at}"),
    };
    let tag = tag(&keyring(), &commitment, &delivery).unwrap();
    Sent { key, context, body: body.to_vec(), commitment, delivery, tag }
}

#[test]
fn honest_messages_verify_end_to_end() {
    let m = send("alice", 0, None, b"hello", T0);
    let accepted = receive(&m.commitment, &m.key, &m.context, &m.body, "alice", "conv-1").unwrap();
    assert_eq!(accepted.context().sender_id, "alice");
    verify_commitment(&m.commitment, &m.key, &m.context, &m.body).unwrap();
    verify_tag(&keyring(), &m.tag, &m.commitment, &m.delivery).unwrap();
    assert_eq!(m.tag.key_id, 1);
}

#[test]
fn commit_to_one_body_and_send_another() {
    let m = send("alice", 0, None, b"the committed body", T0);
    let err = receive(&m.commitment, &m.key, &m.context, b"a different body", "alice", "conv-1").unwrap_err();
    assert_eq!(err, FrankingError::CommitmentMismatch);
}

#[test]
fn reporter_edits_the_body_or_the_key() {
    let m = send("alice", 0, None, b"you are nice", T0);
    assert_eq!(
        verify_commitment(&m.commitment, &m.key, &m.context, b"you are not nice").unwrap_err(),
        FrankingError::CommitmentMismatch
    );
    let other = FrankingKey::generate().unwrap();
    assert_eq!(
        verify_commitment(&m.commitment, &other, &m.context, &m.body).unwrap_err(),
        FrankingError::CommitmentMismatch
    );
    let mut ctx = m.context.clone();
    ctx.message_id = "alice-9".into();
    assert_eq!(verify_commitment(&m.commitment, &m.key, &ctx, &m.body).unwrap_err(), FrankingError::CommitmentMismatch);
}

#[test]
fn random_or_reused_tags() {
    let a = send("alice", 0, None, b"one", T0);
    let b = send("alice", 1, Some(a.commitment), b"two", T0 + 1);
    let mut random = a.tag;
    random.mac = [7; 32];
    assert_eq!(verify_tag(&keyring(), &random, &a.commitment, &a.delivery).unwrap_err(), FrankingError::TagMismatch);
    // A's tag presented for B.
    assert_eq!(verify_tag(&keyring(), &a.tag, &b.commitment, &b.delivery).unwrap_err(), FrankingError::TagMismatch);
}

#[test]
fn re_attributed_sender() {
    // The sender commits as someone else: the recipient refuses it.
    let m = send("mallory", 0, None, b"hi", T0);
    let err = receive(&m.commitment, &m.key, &m.context, &m.body, "bob", "conv-1").unwrap_err();
    assert!(matches!(err, FrankingError::SenderMismatch { .. }), "{err}");
    // A reporter (or relay) names another sender: the tag refuses it.
    let mut delivery = m.delivery.clone();
    delivery.sender_id = "carol".into();
    assert_eq!(verify_tag(&keyring(), &m.tag, &m.commitment, &delivery).unwrap_err(), FrankingError::TagMismatch);
}

#[test]
fn shifted_timestamp() {
    let m = send("alice", 0, None, b"hi", T0);
    let mut delivery = m.delivery.clone();
    delivery.timestamp_ms += 1;
    assert_eq!(verify_tag(&keyring(), &m.tag, &m.commitment, &delivery).unwrap_err(), FrankingError::TagMismatch);
}

#[test]
fn message_transplanted_from_another_conversation() {
    let m = send("alice", 0, None, b"hi", T0);
    let err = receive(&m.commitment, &m.key, &m.context, &m.body, "alice", "conv-2").unwrap_err();
    assert!(matches!(err, FrankingError::ConversationMismatch { .. }), "{err}");
    let mut delivery = m.delivery.clone();
    delivery.conversation_id = "conv-2".into();
    assert_eq!(verify_tag(&keyring(), &m.tag, &m.commitment, &delivery).unwrap_err(), FrankingError::TagMismatch);
}

#[test]
fn context_omitted_or_reordered() {
    let a = send("alice", 0, None, b"1", T0);
    let b = send("bob", 0, Some(a.commitment), b"2", T0 + 1);
    let c = send("alice", 1, Some(b.commitment), b"3", T0 + 2);
    let d = send("bob", 1, Some(c.commitment), b"4", T0 + 3);
    let chain = |ms: &[&Sent]| ms.iter().map(|m| (m.context.clone(), m.commitment)).collect::<Vec<_>>();
    verify_chain(&chain(&[&a, &b, &c, &d])).unwrap();
    assert_eq!(verify_chain(&chain(&[&a, &c, &d])).unwrap_err(), FrankingError::BrokenChain { index: 1 });
    assert_eq!(verify_chain(&chain(&[&a, &c, &b, &d])).unwrap_err(), FrankingError::BrokenChain { index: 1 });
    // A sender skipping a sequence number, with the links intact.
    let e = send("alice", 3, Some(d.commitment), b"5", T0 + 4);
    assert_eq!(
        verify_chain(&chain(&[&a, &b, &c, &d, &e])).unwrap_err(),
        FrankingError::SequenceGap { index: 4, expected: 2, found: 3 }
    );
}

#[test]
fn unknown_or_expired_key_ids() {
    let m = send("alice", 0, None, b"hi", T0);
    let mut unknown = m.tag;
    unknown.key_id = 99;
    assert_eq!(
        verify_tag(&keyring(), &unknown, &m.commitment, &m.delivery).unwrap_err(),
        FrankingError::UnknownKeyId(99)
    );
    // After rotation: the old key's retention ended, so its tags are refused.
    let mut ring = keyring();
    ring.retire(T0 + 10_000_001);
    assert_eq!(verify_tag(&ring, &m.tag, &m.commitment, &m.delivery).unwrap_err(), FrankingError::UnknownKeyId(1));
    // A tag claiming a timestamp outside its key's window.
    let late = send("alice", 1, None, b"late", T0 + 6_000_000);
    assert_eq!(late.tag.key_id, 2, "the newest active key tags");
    let mut forged = late.tag;
    forged.key_id = 1;
    let mut delivery = late.delivery.clone();
    delivery.timestamp_ms = T0 + 15_000_000;
    assert_eq!(
        verify_tag(&keyring(), &forged, &late.commitment, &delivery).unwrap_err(),
        FrankingError::KeyNotValidAt { key_id: 1, timestamp_ms: T0 + 15_000_000 }
    );
    assert!(matches!(
        tag(&keyring(), &m.commitment, &DeliveryContext { timestamp_ms: 0, ..m.delivery.clone() }),
        Err(FrankingError::NoActiveKey { .. })
    ));
}

#[test]
fn secrets_do_not_print() {
    let k = FrankingKey::from_bytes([0xab; 32]);
    assert_eq!(format!("{k:?}"), "FrankingKey(..)");
    let p = PlatformKey::new(1, [0xcd; 32], 0, 1);
    assert!(!format!("{p:?}").contains("cd"), "{p:?}");
}

#[test]
fn oversized_identifiers_are_refused() {
    let key = FrankingKey::from_bytes([1; 32]);
    let context = MessageContext {
        conversation_id: "c".repeat(2000),
        sender_id: "s".into(),
        message_id: "m".into(),
        sequence: 0,
        previous: None,
    };
    assert!(matches!(commit(&key, &context, b"x"), Err(FrankingError::FieldTooLong { field: "conversation_id", .. })));
}

#[test]
fn relay_alterations_and_malleated_delivery_signatures_are_refused() {
    use frankly_franking::{SigningKey, sign_delivery, verify_delivery};
    let platform = SigningKey::from_bytes(&[0x42; 32]);
    let public = platform.verifying_key();
    let m = send("alice", 0, None, b"hi", T0);
    let sig = sign_delivery(&platform, &m.tag, &m.delivery).unwrap();
    verify_delivery(&public, &m.tag, &m.delivery, &sig).unwrap();
    // A relay shifts the timestamp or re-attributes the sender.
    let mut shifted = m.delivery.clone();
    shifted.timestamp_ms -= 3_600_000;
    assert_eq!(verify_delivery(&public, &m.tag, &shifted, &sig).unwrap_err(), FrankingError::DeliverySignature);
    let mut other = m.delivery.clone();
    other.sender_id = "mallory".into();
    assert_eq!(verify_delivery(&public, &m.tag, &other, &sig).unwrap_err(), FrankingError::DeliverySignature);
    // Malleability: S + l (the group order) verifies in lax Ed25519
    // implementations; it must not here.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut malleated = sig;
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(malleated[32 + i]) + u16::from(L[i]) + carry;
        malleated[32 + i] = v as u8;
        carry = v >> 8;
    }
    assert_ne!(malleated, sig);
    assert_eq!(
        verify_delivery(&public, &m.tag, &m.delivery, &malleated).unwrap_err(),
        FrankingError::DeliverySignature
    );
    // A small-order public key (the identity point) with a forged signature.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    {
        let weak = frankly_franking::VerifyingKey::from_bytes(&identity).unwrap();
        let mut forged = [0u8; 64];
        forged[0] = 1; // R = identity, S = 0: valid for every message under lax rules
        let lax =
            ed25519_dalek::Verifier::verify(&weak, b"any message", &ed25519_dalek::Signature::from_bytes(&forged));
        assert!(lax.is_ok(), "the lax check accepts the forgery; the strict one must not");
        assert_eq!(verify_delivery(&weak, &m.tag, &m.delivery, &forged).unwrap_err(), FrankingError::DeliverySignature);
    }
}
