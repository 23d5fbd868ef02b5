//! Reports end to end: franked messages, sealing, opening, verification, and
//! every refusal.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use frankly_franking::{
    Commitment, DeliveryContext, FrankingError, FrankingKey, Keyring, MessageContext, PlatformKey, commit, tag,
};
use frankly_report::{
    Reason, Report, ReportError, ReportedMessage, ServerKeyPair, Verdict, open_and_verify, seal_report,
    seal_report_with_rng,
};
use rand::{RngExt, SeedableRng};

const T0: u64 = 1_800_000_000_000;

fn keyring() -> Keyring {
    let mut k = Keyring::new();
    k.insert(PlatformKey::new(3, [0x33; 32], T0 - 1000, T0 + 1_000_000));
    k
}

/// A conversation of `n` messages alternating between alice and bob, each
/// franked and tagged as the platform would.
fn conversation(n: usize) -> Vec<ReportedMessage> {
    let mut out: Vec<ReportedMessage> = Vec::new();
    let mut previous: Option<Commitment> = None;
    for i in 0..n {
        let sender = if i % 2 == 0 { "alice" } else { "bob" };
        let key = FrankingKey::generate().unwrap();
        let context = MessageContext {
            conversation_id: "c1".into(),
            sender_id: sender.into(),
            message_id: format!("m{i}"),
            sequence: (i / 2) as u64,
            previous,
        };
        let body = format!("message {i} from {sender}").into_bytes();
        let commitment = commit(&key, &context, &body).unwrap();
        let delivery = DeliveryContext {
            sender_id: sender.into(),
            conversation_id: "c1".into(),
            timestamp_ms: T0 + i as u64,
            server_message_id: format!("s{i}"),
        };
        let tag = tag(&keyring(), &commitment, &delivery).unwrap();
        previous = Some(commitment);
        out.push(ReportedMessage {
            body,
            franking_key: (&key).into(),
            commitment,
            context,
            delivery,
            tag,
            attachments: Vec::new(),
        });
    }
    out
}

fn report_of(mut messages: Vec<ReportedMessage>) -> Report {
    let reported = messages.pop().unwrap();
    Report::new("bob", Reason::Harassment, "this keeps happening", messages, reported).unwrap()
}

#[test]
fn sealed_reports_open_and_verify_with_5_and_30_context_messages() {
    let server = ServerKeyPair::generate().unwrap();
    for n in [1, 6, 31] {
        let report = report_of(conversation(n));
        let envelope = seal_report(&report, server.public()).unwrap();
        let verified = open_and_verify(&envelope, &server, &keyring(), &mut HashSet::new()).unwrap();
        assert_eq!(verified.report(), &report);
        assert!(verified.verdicts().iter().all(|v| *v == Verdict::Verified));
        assert_eq!(verified.chain(), &Ok(()));
        assert_eq!(
            verified.reported().body,
            format!("message {} from {}", n - 1, if (n - 1) % 2 == 0 { "alice" } else { "bob" }).into_bytes()
        );
    }
}

#[test]
fn replayed_report_is_refused() {
    let server = ServerKeyPair::generate().unwrap();
    let envelope = seal_report(&report_of(conversation(3)), server.public()).unwrap();
    let mut seen = HashSet::new();
    open_and_verify(&envelope, &server, &keyring(), &mut seen).unwrap();
    let err = open_and_verify(&envelope, &server, &keyring(), &mut seen).unwrap_err();
    assert!(matches!(err, ReportError::Replay(_)), "{err}");
}

#[test]
fn reporter_edits_are_refused() {
    let server = ServerKeyPair::generate().unwrap();
    let mut messages = conversation(3);
    messages[2].body = b"something the sender never wrote".to_vec();
    let envelope = seal_report(&report_of(messages), server.public()).unwrap();
    let err = open_and_verify(&envelope, &server, &keyring(), &mut HashSet::new()).unwrap_err();
    assert!(matches!(err, ReportError::ReportedMessage { error: FrankingError::CommitmentMismatch, .. }), "{err:?}");

    let mut messages = conversation(3);
    messages[2].delivery.sender_id = "carol".into(); // re-attribute alice's message
    messages[2].context.sender_id = "carol".into();
    let envelope = seal_report(&report_of(messages), server.public()).unwrap();
    let err = open_and_verify(&envelope, &server, &keyring(), &mut HashSet::new()).unwrap_err();
    assert!(matches!(err, ReportError::ReportedMessage { error: FrankingError::CommitmentMismatch, .. }), "{err:?}");

    let mut messages = conversation(3);
    messages[2].delivery.timestamp_ms += 60_000; // shift the time
    let envelope = seal_report(&report_of(messages), server.public()).unwrap();
    let err = open_and_verify(&envelope, &server, &keyring(), &mut HashSet::new()).unwrap_err();
    assert!(matches!(err, ReportError::ReportedMessage { error: FrankingError::TagMismatch, .. }), "{err:?}");
}

#[test]
fn bad_context_messages_get_their_own_verdicts() {
    let server = ServerKeyPair::generate().unwrap();
    // An edited context message: the report stands, that message is rejected.
    let mut messages = conversation(4);
    messages[1].body = b"edited".to_vec();
    let envelope = seal_report(&report_of(messages), server.public()).unwrap();
    let v = open_and_verify(&envelope, &server, &keyring(), &mut HashSet::new()).unwrap();
    assert_eq!(v.verdicts()[1], Verdict::Rejected(FrankingError::CommitmentMismatch));
    assert_eq!(v.verdicts()[3], Verdict::Verified);
    // An omitted context message breaks the chain.
    let mut messages = conversation(4);
    messages.remove(1);
    let envelope = seal_report(&report_of(messages), server.public()).unwrap();
    let v = open_and_verify(&envelope, &server, &keyring(), &mut HashSet::new()).unwrap();
    assert_eq!(v.chain(), &Err(FrankingError::BrokenChain { index: 1 }));
}

#[test]
fn expired_keys_and_wrong_servers_are_refused() {
    let server = ServerKeyPair::generate().unwrap();
    let envelope = seal_report(&report_of(conversation(2)), server.public()).unwrap();
    let mut retired = keyring();
    retired.retire(T0 + 2_000_000);
    let err = open_and_verify(&envelope, &server, &retired, &mut HashSet::new()).unwrap_err();
    assert!(matches!(err, ReportError::ReportedMessage { error: FrankingError::UnknownKeyId(3), .. }), "{err:?}");
    let other = ServerKeyPair::generate().unwrap();
    assert_eq!(open_and_verify(&envelope, &other, &keyring(), &mut HashSet::new()).unwrap_err(), ReportError::Decrypt);
}

#[test]
fn altered_or_arbitrary_bytes_never_panic() {
    let server = ServerKeyPair::generate().unwrap();
    let envelope = seal_report(&report_of(conversation(3)), server.public()).unwrap();
    for at in 0..envelope.len() {
        let mut e = envelope.clone();
        e[at] ^= 0x01;
        assert!(open_and_verify(&e, &server, &keyring(), &mut HashSet::new()).is_err(), "flip at {at}");
    }
    for len in 0..envelope.len() {
        assert!(open_and_verify(&envelope[..len], &server, &keyring(), &mut HashSet::new()).is_err());
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for _ in 0..2000 {
        let len = (rng.random::<u16>() % 600) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random::<u8>()).collect();
        if rng.random::<bool>() && bytes.len() >= 10 {
            bytes[..10].copy_from_slice(b"FRNKRPT\0\0\x01");
        }
        assert!(open_and_verify(&bytes, &server, &keyring(), &mut HashSet::new()).is_err());
    }
}

#[test]
fn attachments_are_checked_against_the_committed_hash() {
    use frankly_franking::encrypt_attachment;
    use frankly_report::ReportedAttachment;
    let server = ServerKeyPair::generate().unwrap();
    let (reference, _ciphertext) = encrypt_attachment(b"the picture").unwrap();
    // The body carries text and the attachment reference; it is what is committed.
    let mut body = b"look at this: ".to_vec();
    body.extend_from_slice(&reference.to_bytes());
    let key = FrankingKey::generate().unwrap();
    let context = MessageContext {
        conversation_id: "c1".into(),
        sender_id: "alice".into(),
        message_id: "a".into(),
        sequence: 0,
        previous: None,
    };
    let commitment = commit(&key, &context, &body).unwrap();
    let delivery = DeliveryContext {
        sender_id: "alice".into(),
        conversation_id: "c1".into(),
        timestamp_ms: T0,
        server_message_id: "s".into(),
    };
    let tag = tag(&keyring(), &commitment, &delivery).unwrap();
    let message = |plaintext: &[u8], reference: Vec<u8>| ReportedMessage {
        body: body.clone(),
        franking_key: (&key).into(),
        commitment,
        context: context.clone(),
        delivery: delivery.clone(),
        tag,
        attachments: vec![ReportedAttachment { reference, plaintext: plaintext.to_vec() }],
    };
    let open = |m: ReportedMessage| {
        let report = Report::new("bob", Reason::NonConsensualImagery, "", Vec::new(), m).unwrap();
        open_and_verify(&seal_report(&report, server.public()).unwrap(), &server, &keyring(), &mut HashSet::new())
    };
    assert!(open(message(b"the picture", reference.to_bytes().to_vec())).is_ok());
    assert_eq!(
        open(message(b"another picture", reference.to_bytes().to_vec())).unwrap_err(),
        ReportError::ReportedMessage { index: 0, error: FrankingError::AttachmentHashMismatch }
    );
    let (elsewhere, _) = encrypt_attachment(b"another picture").unwrap();
    assert_eq!(
        open(message(b"another picture", elsewhere.to_bytes().to_vec())).unwrap_err(),
        ReportError::ReportedMessage { index: 0, error: FrankingError::AttachmentNotCommitted }
    );
}

#[test]
fn limits_are_enforced_when_sealing() {
    let mut messages = conversation(60);
    let reported = messages.pop().unwrap();
    let err = Report::new("bob", Reason::Spam, "", messages, reported).unwrap_err();
    assert_eq!(err, ReportError::Malformed("59 context messages (limit 50)".into()));
}

#[test]
fn fixed_randomness_gives_a_reproducible_envelope() {
    let server = ServerKeyPair::derive(b"frankly test vector server key material");
    let mut report = report_of(conversation(2));
    report.report_id = "00112233445566778899aabbccddeeff".into();
    let seal =
        |seed| seal_report_with_rng(&report, server.public(), &mut rand::rngs::StdRng::seed_from_u64(seed)).unwrap();
    assert_eq!(seal(1), seal(1));
    assert_ne!(seal(1), seal(2));
    open_and_verify(&seal(1), &server, &keyring(), &mut HashSet::new()).unwrap();
}
