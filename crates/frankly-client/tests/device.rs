//! The device side of franking on a `DeviceState`: send and confirm,
//! check before decrypting, accept or refuse, keep both sides, survive a
//! restart, and report what the moderation side verifies.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use common::{NOW, keyring};
use frankly_client::{
    ClientError, Delivered, DeviceState, Message, PendingSend, Reporter, Scanner, trust_local_policy,
};
use frankly_franking::{Commitment, DeliveryContext, DeviceKey, FrankingError, Party, mac_delivery, tag};
use frankly_policy::{Audience, Facts};
use frankly_report::{Reason, ReportKeyring, ServerKeyPair, Verdict, open_and_verify};

/// A policy of bank rules only (no models to load).
const POLICY: &str = r#"
format = "frankly-policy-v1"
name = "banks-only"
description = "bank matches block sending"
audiences = ["adult"]

[[rules]]
id = "known-abuse.outgoing"
description = "a bank matched"
direction = "outgoing"
when.bank = {}
actions = ["block_send"]
message = "known-abuse.block-send"
"#;

fn scanner() -> Scanner {
    Scanner::builder(trust_local_policy(POLICY).unwrap(), Audience::Adult).build().unwrap()
}

fn key(p: &Party) -> DeviceKey {
    DeviceKey::derive(&[3; 32], p).unwrap()
}

/// The platform's copy of commitment `c`, message `seq` of `conv`, for `to`.
fn copy(conv: &str, seq: u64, from: &Party, to: &Party, c: Commitment) -> Delivered {
    let delivery = DeliveryContext {
        conversation_id: conv.to_owned(),
        sequence: seq,
        sender: from.clone(),
        recipient: to.clone(),
        timestamp_ms: NOW + seq,
        server_message_id: format!("srv-{seq}"),
    };
    let tag = tag(&keyring(), &c, &delivery).unwrap();
    let delivery_mac = mac_delivery(&key(to), &tag, &c, &delivery).unwrap();
    Delivered { commitment: c, delivery, tag, delivery_mac }
}

fn send(s: &Scanner, state: &mut DeviceState, conv: &str, seq: u64, id: &str, text: &str) -> PendingSend {
    let pending = state.prepare_outgoing(s, conv, id, Message::text(text), Facts::default()).unwrap();
    let c = pending.outgoing.franked.as_ref().unwrap().franked.commitment;
    let me = state.me().clone();
    state.confirm_sent(&key(&me), &pending, &copy(conv, seq, &me, &me, c)).unwrap();
    pending
}

fn plaintext(p: &PendingSend) -> Vec<u8> {
    p.outgoing.franked.as_ref().unwrap().franked.plaintext.to_vec()
}

fn commitment(p: &PendingSend) -> Commitment {
    p.outgoing.franked.as_ref().unwrap().franked.commitment
}

#[test]
fn an_honest_conversation_is_kept_on_both_sides_survives_a_restart_and_verifies() {
    let s = scanner();
    let (alice, bob) = (Party::new("alice", "phone"), Party::new("bob", "laptop"));
    let mut a = DeviceState::new(Reporter::new(&alice, 10).unwrap());
    let mut b = DeviceState::new(Reporter::new(&bob, 10).unwrap());
    let m1 = send(&s, &mut a, "ab", 1, "a1", "hi bob");
    let d1 = copy("ab", 1, &alice, &bob, commitment(&m1));
    b.check_delivered(&key(&bob), &d1).unwrap();
    let got = b.accept_incoming(&s, &key(&bob), &d1, &plaintext(&m1), &[], &alice, Facts::default(), true).unwrap();
    assert_eq!(got.message.text, "hi bob");
    let m2 = send(&s, &mut b, "ab", 2, "b1", "go away");
    let m3 = send(&s, &mut a, "ab", 3, "a2", "you will regret it");
    let d3 = copy("ab", 3, &alice, &bob, commitment(&m3));
    b.accept_incoming(&s, &key(&bob), &d3, &plaintext(&m3), &[], &alice, Facts::default(), true).unwrap();
    assert_eq!(b.reporter.kept("ab"), 3, "both sides");
    assert_eq!(b.conversations["ab"].last_received, 3);

    let pickle_key = [5u8; 32];
    let b = DeviceState::unpickle(&b.pickle(&pickle_key).unwrap(), &pickle_key).unwrap();
    let server = ServerKeyPair::derive(b"report key");
    let envelope = b
        .reporter
        .report("ab", &commitment(&m3), 2, 0, Reason::Violence, "threat", false, (1, server.public()))
        .unwrap();
    let mut keys = ReportKeyring::new();
    keys.insert(1, server, u64::MAX);
    let verified = open_and_verify(&envelope, &keys, &keyring(), &bob, NOW + 10, &mut HashSet::new()).unwrap();
    assert_eq!(verified.verdicts(), [Verdict::Verified, Verdict::Verified, Verdict::Verified]);
    assert!(verified.order().as_ref().unwrap().is_complete());
    let _ = m2;
}

#[test]
fn a_copy_with_a_bad_delivery_mac_changes_nothing() {
    let s = scanner();
    let (alice, bob) = (Party::new("alice", "phone"), Party::new("bob", "laptop"));
    let mut a = DeviceState::new(Reporter::new(&alice, 10).unwrap());
    let mut b = DeviceState::new(Reporter::new(&bob, 10).unwrap());
    let m1 = send(&s, &mut a, "ab", 1, "a1", "hi");
    let mut d1 = copy("ab", 1, &alice, &bob, commitment(&m1));
    d1.delivery.timestamp_ms += 1;
    let refused = |e: ClientError| matches!(e, ClientError::Franking(FrankingError::DeliveryMac));
    assert!(refused(b.check_delivered(&key(&bob), &d1).unwrap_err()));
    assert!(refused(
        b.accept_incoming(&s, &key(&bob), &d1, &plaintext(&m1), &[], &alice, Facts::default(), true).unwrap_err()
    ));
    assert!(refused(b.refuse(&key(&bob), &d1, true).unwrap_err()));
    assert!(!b.conversations.contains_key("ab"), "no conversation state was created");
    assert_eq!(b.reporter.kept("ab"), 0);
}

#[test]
fn a_forged_or_undecryptable_copy_is_refused_kept_unopened_and_not_reportable() {
    let s = scanner();
    let (alice, bob) = (Party::new("alice", "phone"), Party::new("bob", "laptop"));
    let mut a = DeviceState::new(Reporter::new(&alice, 10).unwrap());
    let mut b = DeviceState::new(Reporter::new(&bob, 10).unwrap());
    // Alice's client commits to one body and encrypts another.
    let m1 = send(&s, &mut a, "ab", 1, "a1", "what was committed");
    let other = send(&s, &mut a, "ab", 2, "a2", "what was encrypted");
    let d1 = copy("ab", 1, &alice, &bob, commitment(&m1));
    let e = b.accept_incoming(&s, &key(&bob), &d1, &plaintext(&other), &[], &alice, Facts::default(), false);
    assert!(matches!(e.unwrap_err(), ClientError::Franking(FrankingError::CommitmentMismatch)));
    // A copy the E2EE layer could not decrypt.
    let d2 = copy("ab", 2, &alice, &bob, commitment(&other));
    b.check_delivered(&key(&bob), &d2).unwrap();
    b.refuse(&key(&bob), &d2, false).unwrap();
    assert_eq!((b.conversations["ab"].last_received, b.reporter.kept("ab")), (2, 2));
    let server = ServerKeyPair::derive(b"report key");
    let e = b.reporter.report("ab", &commitment(&m1), 0, 0, Reason::Spam, "", false, (1, server.public()));
    assert!(e.unwrap_err().to_string().contains("refused on this device"));
    // A replay of an accepted place is refused before decryption.
    assert!(b.check_delivered(&key(&bob), &d1).is_err());
    let m3 = send(&s, &mut a, "ab", 3, "a3", "fine");
    let d3 = copy("ab", 3, &alice, &bob, commitment(&m3));
    b.accept_incoming(&s, &key(&bob), &d3, &plaintext(&m3), &[], &alice, Facts::default(), false).unwrap();
}

#[test]
fn the_platform_s_answer_to_a_send_must_be_this_message_for_this_device() {
    let s = scanner();
    let alice = Party::new("alice", "phone");
    let mut a = DeviceState::new(Reporter::new(&alice, 10).unwrap());
    let p = a.prepare_outgoing(&s, "ab", "a1", Message::text("hi"), Facts::default()).unwrap();
    let wrong = copy("ab", 1, &alice, &alice, Commitment([7; 32]));
    assert!(matches!(
        a.confirm_sent(&key(&alice), &p, &wrong).unwrap_err(),
        ClientError::Franking(FrankingError::CommitmentMismatch)
    ));
    let bob = Party::new("bob", "laptop");
    let for_bob = copy("ab", 1, &alice, &bob, commitment(&p));
    assert!(a.confirm_sent(&key(&alice), &p, &for_bob).is_err(), "MAC under bob's key, copy for bob");
    assert_eq!(a.reporter.kept("ab"), 0);
    a.confirm_sent(&key(&alice), &p, &copy("ab", 1, &alice, &alice, commitment(&p))).unwrap();
    assert_eq!(a.reporter.kept("ab"), 1);
}

#[test]
fn a_refused_bundle_or_setting_leaves_the_loaded_versions_as_they_were() {
    let key = frankly_bundle::SigningKey::from_bytes(&[41; 32]);
    let now = 1_800_000_000;
    let sign = |version| frankly_policy::sign_policy(POLICY, &key, version, now - 60, now + 60).unwrap().0;
    let mut state = DeviceState::new(Reporter::new(&Party::new("alice", "phone"), 10).unwrap());
    let vk = key.verifying_key();
    let e = state.scanner_from_bundles(&sign(2), [], &vk, now, None, None, [("no_such_setting", true)]).unwrap_err();
    assert!(e.to_string().contains("no setting \"no_such_setting\""), "{e}");
    assert!(state.bundles.is_empty(), "a refused scanner records no bundle version");
    state.scanner_from_bundles(&sign(2), [], &vk, now, None, None, []).unwrap();
    assert_eq!(state.bundles["policy:banks-only"].version, 2);
    let e = state.scanner_from_bundles(&sign(1), [], &vk, now, None, None, []).unwrap_err();
    assert!(e.to_string().contains("rollback"), "{e}");
    assert_eq!(state.bundles["policy:banks-only"].version, 2);
}
