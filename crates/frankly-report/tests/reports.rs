//! Reports end to end: franked messages from both sides, sealing, opening,
//! verification, and every refusal, including issue 15's reproduced
//! failures at this layer.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use common::{DAY, T0, alice, bob, dialogue, keyring, send};
use frankly_franking::{FrankingError, Gap, Party};
use frankly_report::{
    MAX_ENVELOPE_BYTES, Reason, Report, ReportError, ReportKeyring, ReportedMessage, ServerKeyPair, Verdict,
    encode_report, open_and_verify, padme, seal_report, seal_report_with_rng,
};
use rand::{RngExt, SeedableRng};

fn server() -> (ReportKeyring, ServerKeyPair) {
    let mut ring = ReportKeyring::new();
    ring.insert(7, ServerKeyPair::derive(b"report key seven"), u64::MAX);
    (ring, ServerKeyPair::derive(b"report key seven"))
}

fn report(messages: Vec<ReportedMessage>, reported: usize) -> Report {
    Report::new(&bob(), Reason::Harassment, "this keeps happening", messages, reported).unwrap()
}

fn check(ring: &ReportKeyring, r: &Report) -> Result<frankly_report::VerifiedReport, ReportError> {
    let key = ServerKeyPair::derive(b"report key seven");
    let envelope = seal_report(r, 7, key.public()).unwrap();
    open_and_verify(&envelope, ring, &keyring(), &bob(), T0 + 1000, &mut HashSet::new())
}

/// Issue 15, failure 1: bob reports mallory's two messages with his own
/// reply between them. v1 said `BrokenChain`; v2 verifies all three, in order.
#[test]
fn a_dialogue_with_the_reporters_own_replies_verifies_in_order() {
    let (ring, _) = server();
    for n in [1u64, 3, 6, 31, 51] {
        let messages = dialogue(n);
        let r = report(messages, (n - 1) as usize);
        let v = check(&ring, &r).unwrap();
        assert_eq!(v.report(), &r);
        assert!(v.verdicts().iter().all(|v| *v == Verdict::Verified), "{n}: {:?}", v.verdicts());
        let order = v.order().as_ref().unwrap();
        assert_eq!((order.first, order.last, order.is_complete()), (1, n, true));
        let own = v.report().messages.iter().filter(|m| m.delivery.sender.user_id == "bob").count();
        assert_eq!(own as u64, n / 2, "bob's own messages are in the report, as his");
    }
}

/// Two people typing at once: the platform orders them, whatever each
/// had seen when they wrote.
#[test]
fn concurrent_sends_and_context_after_the_reported_message() {
    let (ring, _) = server();
    // alice and bob both send "at once"; the platform numbered alice's 2, bob's 3.
    let messages = vec![
        send(&alice(), 1, b"are you coming?").copy_for(&bob(), true),
        send(&alice(), 2, b"answer me").copy_for(&bob(), true),
        send(&bob(), 3, b"yes, on my way").copy_for(&bob(), true),
        send(&alice(), 4, b"you will regret it").copy_for(&bob(), true),
        send(&bob(), 5, b"stop").copy_for(&bob(), true),
    ];
    let v = check(&ring, &report(messages, 3)).unwrap();
    assert_eq!(v.reported().delivery.sequence, 4);
    assert!(v.order().as_ref().unwrap().is_complete(), "context after the reported message is kept in order");
}

/// Issue 15, failure 2: the chain was computed over messages that failed
/// verification. v2 orders only messages whose tags verified, and a failed
/// message gets its own verdict.
#[test]
fn edited_or_fabricated_context_is_rejected_and_left_out_of_the_order() {
    let (ring, _) = server();
    let mut messages = dialogue(5);
    // Edit a context body, keeping its commitment and tag.
    messages[1].opening.as_mut().unwrap().body = b"I apologise".to_vec();
    // Fabricate a message that copies its predecessor's commitment and tag
    // under another sequence number.
    let mut fake = messages[2].clone();
    fake.delivery.sequence = 4;
    messages[3] = fake;
    let v = check(&ring, &report(messages, 4)).unwrap();
    assert_eq!(v.verdicts()[1], Verdict::Rejected(FrankingError::CommitmentMismatch));
    assert_eq!(v.verdicts()[3], Verdict::Rejected(FrankingError::TagMismatch));
    // The edited message's tag still verifies (it was delivered there) but
    // it is Rejected, so it is left out of the order and its place is a gap.
    let order = v.order().as_ref().unwrap();
    assert_eq!(order.gaps, vec![Gap { after: 1, before: 3, missing: 1 }, Gap { after: 3, before: 5, missing: 1 }]);
}

/// Issue 15, failure 3 (truncation): an omission anywhere in the range is
/// located; a refused message the device kept unopened fills its place.
#[test]
fn omissions_are_located_and_refused_messages_keep_their_place() {
    let (ring, _) = server();
    let all = dialogue(6);
    let some = vec![all[0].clone(), all[1].clone(), all[4].clone(), all[5].clone()];
    let v = check(&ring, &report(some, 3)).unwrap();
    assert_eq!(v.order().as_ref().unwrap().gaps, vec![Gap { after: 2, before: 5, missing: 2 }]);
    // Message 3 was refused by bob's device (it did not open): reported
    // unopened, its tag shows the platform delivered something there.
    let mut with_refused = all.clone();
    with_refused[2].opening = None;
    let v = check(&ring, &report(with_refused, 5)).unwrap();
    assert_eq!(v.verdicts()[2], Verdict::Unopened);
    assert!(v.order().as_ref().unwrap().is_complete());
    // The reported message itself must open.
    let mut unopened = all;
    unopened[5].opening = None;
    assert_eq!(check(&ring, &report(unopened, 5)).unwrap_err(), ReportError::ReportedUnopened(5));
}

/// Issue 15, failure 6: an outsider holding leaked openings sealed them
/// under a fresh report id and learned whether they were genuine. v2 binds
/// every copy to the device it was delivered to, and the reporter is the
/// authenticated submitter: someone else's copies verify nothing.
#[test]
fn leaked_openings_of_another_device_verify_nothing() {
    let (ring, key) = server();
    let carol = Party::new("carol", "phone");
    let m = send(&alice(), 1, b"a genuine message");
    // carol holds bob's copy and opening (leaked); she submits as herself.
    let leaked = vec![m.copy_for(&bob(), true)];
    let as_carol = Report::new(&carol, Reason::Other, "", leaked.clone(), 0).unwrap();
    let envelope = seal_report(&as_carol, 7, key.public()).unwrap();
    let err = open_and_verify(&envelope, &ring, &keyring(), &carol, T0, &mut HashSet::new()).unwrap_err();
    assert!(matches!(err, ReportError::ReportedMessage { error: FrankingError::NotForThisDevice { .. }, .. }));
    // ... or she claims to be bob without being authenticated as him.
    let as_bob = Report::new(&bob(), Reason::Other, "", leaked, 0).unwrap();
    let envelope = seal_report(&as_bob, 7, key.public()).unwrap();
    let err = open_and_verify(&envelope, &ring, &keyring(), &carol, T0, &mut HashSet::new()).unwrap_err();
    assert!(matches!(err, ReportError::ReporterMismatch { .. }));
}

#[test]
fn replays_retired_keys_and_unknown_report_keys_are_refused() {
    let (ring, key) = server();
    let r = report(dialogue(2), 1);
    let envelope = seal_report(&r, 7, key.public()).unwrap();
    let mut seen = HashSet::new();
    open_and_verify(&envelope, &ring, &keyring(), &bob(), T0, &mut seen).unwrap();
    assert_eq!(
        open_and_verify(&envelope, &ring, &keyring(), &bob(), T0, &mut seen).unwrap_err(),
        ReportError::Replay(r.id_hex())
    );
    // After the platform key's retention the same report verifies nothing.
    let err = open_and_verify(&envelope, &ring, &keyring(), &bob(), T0 + 91 * DAY, &mut HashSet::new()).unwrap_err();
    assert!(matches!(err, ReportError::ReportedMessage { error: FrankingError::RetentionEnded { .. }, .. }));
    // Sealed to a report key id the server does not have, or has retired.
    let other = seal_report(&r, 8, key.public()).unwrap();
    assert_eq!(
        open_and_verify(&other, &ring, &keyring(), &bob(), T0, &mut HashSet::new()).unwrap_err(),
        ReportError::UnknownReportKey(8)
    );
    let mut rotated = ReportKeyring::new();
    rotated.insert(7, ServerKeyPair::derive(b"report key seven"), T0 + 10);
    rotated.insert(9, ServerKeyPair::derive(b"report key nine"), u64::MAX);
    assert_eq!(rotated.current().unwrap().0, 9, "devices seal to the newest key");
    open_and_verify(&envelope, &rotated, &keyring(), &bob(), T0, &mut HashSet::new()).unwrap();
    assert_eq!(
        open_and_verify(&envelope, &rotated, &keyring(), &bob(), T0 + 10, &mut HashSet::new()).unwrap_err(),
        ReportError::UnknownReportKey(7),
        "an old report key opens envelopes only within its window"
    );
    // Sealed to another server's key under the right id.
    let stranger = ServerKeyPair::derive(b"someone else");
    let wrong = seal_report(&r, 7, stranger.public()).unwrap();
    assert_eq!(
        open_and_verify(&wrong, &ring, &keyring(), &bob(), T0, &mut HashSet::new()).unwrap_err(),
        ReportError::Decrypt
    );
}

#[test]
fn altered_or_arbitrary_bytes_never_panic() {
    let (ring, key) = server();
    let envelope = seal_report(&report(dialogue(2), 1), 7, key.public()).unwrap();
    for i in 0..envelope.len() * 8 {
        let mut e = envelope.clone();
        e[i / 8] ^= 1 << (i % 8);
        assert!(open_and_verify(&e, &ring, &keyring(), &bob(), T0, &mut HashSet::new()).is_err(), "bit {i}");
    }
    for len in 0..envelope.len() {
        assert!(open_and_verify(&envelope[..len], &ring, &keyring(), &bob(), T0, &mut HashSet::new()).is_err());
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..2000 {
        let len = rng.random_range(0..400);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        assert!(open_and_verify(&bytes, &ring, &keyring(), &bob(), T0, &mut HashSet::new()).is_err());
    }
    assert!(matches!(
        open_and_verify(&vec![0; MAX_ENVELOPE_BYTES + 1], &ring, &keyring(), &bob(), T0, &mut HashSet::new()),
        Err(ReportError::TooLarge { .. })
    ));
}

#[test]
fn every_truncation_and_extension_of_the_encoded_report_is_refused() {
    let mut r = report(dialogue(3), 2);
    r.evidence.push(frankly_report::Evidence { kind: "pdq-match".into(), detail: "bank demo distance 8".into() });
    let bytes = encode_report(&r).unwrap();
    assert_eq!(frankly_report::decode_report(&bytes).unwrap(), r);
    for len in 0..bytes.len() {
        assert!(frankly_report::decode_report(&bytes[..len]).is_err(), "truncated to {len}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(frankly_report::decode_report(&longer), Err(ReportError::Malformed(m)) if m.contains("trailing")));
}

#[test]
fn attachments_are_checked_against_the_committed_hash() {
    use frankly_franking::{Body, encrypt_attachment};
    use frankly_report::ReportedAttachment;
    let (ring, _) = server();
    let (reference, _ciphertext) = encrypt_attachment(b"the picture").unwrap();
    let body = Body { text: "look at this".into(), attachments: vec![("image/jpeg".into(), reference.clone())] };
    let sent = send(&alice(), 1, &body.encode().unwrap());
    let with = |plaintext: &[u8], reference: [u8; 76]| {
        let mut m = sent.copy_for(&bob(), true);
        m.opening.as_mut().unwrap().attachments = vec![ReportedAttachment { reference, plaintext: plaintext.to_vec() }];
        check(&ring, &report(vec![m], 0))
    };
    with(b"the picture", reference.to_bytes()).unwrap();
    assert_eq!(
        with(b"another picture", reference.to_bytes()).unwrap_err(),
        ReportError::ReportedMessage { index: 0, error: FrankingError::AttachmentHashMismatch }
    );
    let (elsewhere, _) = encrypt_attachment(b"another picture").unwrap();
    assert_eq!(
        with(b"another picture", elsewhere.to_bytes()).unwrap_err(),
        ReportError::ReportedMessage { index: 0, error: FrankingError::AttachmentNotCommitted }
    );
}

/// Issue 15, failure 8: envelopes were hex JSON, twice the size, unpadded.
#[test]
fn envelopes_are_binary_and_padded_to_padme_sizes() {
    let (_, key) = server();
    // A 16 MiB attachment (the relay's limit) fits in one envelope.
    let mut m = send(&alice(), 1, b"x").copy_for(&bob(), true);
    let big = vec![7u8; 16 << 20];
    let reference = [0u8; 76];
    m.opening.as_mut().unwrap().attachments.push(frankly_report::ReportedAttachment { reference, plaintext: big });
    let envelope = seal_report(&report(vec![m], 0), 7, key.public()).unwrap();
    assert!(envelope.len() < (16 << 20) * 113 / 100, "{} bytes", envelope.len());
    // Sizes fall in Padmé buckets: reports a few bytes apart seal to the same size.
    let sizes: HashSet<usize> = (0..40)
        .map(|i| {
            let m = send(&alice(), 1, &vec![b'a'; 3000 + i]).copy_for(&bob(), true);
            seal_report(&report(vec![m], 0), 7, key.public()).unwrap().len()
        })
        .collect();
    assert_eq!(sizes.len(), 1, "{sizes:?}");
    for len in [2usize, 9, 100, 1000, 65_537, 1 << 20, 30 << 20] {
        let p = padme(len);
        assert!(p >= len && (p - len) * 100 <= len * 12, "padme({len}) = {p}");
    }
    assert_eq!((padme(100), padme(1000), padme(65_537)), (104, 1024, 67_584));
}

#[test]
fn limits_are_enforced_when_building() {
    let err = Report::new(&bob(), Reason::Spam, "", dialogue(52), 51).unwrap_err();
    assert_eq!(err, ReportError::Malformed("52 messages (1 to 51)".into()));
    let err = Report::new(&bob(), Reason::Spam, "", dialogue(2), 2).unwrap_err();
    assert_eq!(err, ReportError::Malformed("reported index 2 of 2 messages".into()));
}

#[test]
fn fixed_randomness_gives_a_reproducible_envelope() {
    let (ring, key) = server();
    let mut r = report(dialogue(2), 1);
    r.report_id = *b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff";
    let seal = |seed| seal_report_with_rng(&r, 7, key.public(), &mut rand::rngs::StdRng::seed_from_u64(seed)).unwrap();
    assert_eq!(seal(1), seal(1));
    assert_ne!(seal(1), seal(2));
    open_and_verify(&seal(1), &ring, &keyring(), &bob(), T0, &mut HashSet::new()).unwrap();
}

#[test]
fn reason_names_are_the_json_names_and_parse_back() {
    for reason in Reason::ALL {
        assert_eq!(serde_json::to_value(reason).unwrap(), serde_json::Value::from(reason.name()));
        assert_eq!(reason.name().parse::<Reason>().unwrap(), reason);
    }
    let e = "threats".parse::<Reason>().unwrap_err();
    assert!(e.contains("unknown reason \"threats\"") && e.contains("harassment"), "{e}");
}
