//! The reporter: a user's report of a franked conversation, built on the
//! device from both sides of it and verified by the moderation side, with
//! issue 15's reproduced failures at this layer.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use common::{NOW, Net, Phone, keyring, receive, root, send};
use frankly_classify::{ImageClassifier, TextClassifier};
use frankly_client::{
    Attachment, ClientError, MAX_CONVERSATIONS_PER_STRANGER, Message, Reporter, Scanner, trust_local_policy,
};
use frankly_franking::{Gap, Party};
use frankly_policy::Audience;
use frankly_report::{Reason, ReportKeyring, ServerKeyPair, Verdict, VerifiedReport, open_and_verify};

fn scanner() -> Scanner {
    let policy = trust_local_policy(&std::fs::read_to_string(root().join("policies/teen.toml")).unwrap()).unwrap();
    Scanner::builder(policy, Audience::Teen)
        .image_model(ImageClassifier::load(&root().join("models/open_nsfw.toml")).unwrap())
        .text_model(TextClassifier::load(&root().join("models/profanity_check.toml")).unwrap())
        .build()
        .unwrap()
}

fn server() -> (ReportKeyring, ServerKeyPair) {
    let mut ring = ReportKeyring::new();
    ring.insert(1, ServerKeyPair::derive(b"client test report key"), u64::MAX);
    (ring, ServerKeyPair::derive(b"client test report key"))
}

/// Seals `phone`'s report of `reported` and verifies it as the server would.
fn report(
    phone: &Phone,
    conversation: &str,
    reported: &frankly_franking::Commitment,
    before: usize,
    after: usize,
) -> VerifiedReport {
    let (ring, key) = server();
    let envelope = phone
        .reporter
        .report(conversation, reported, before, after, Reason::Harassment, "", true, (1, key.public()))
        .unwrap();
    open_and_verify(&envelope, &ring, &keyring(), &phone.me, NOW + 1000, &mut HashSet::new()).unwrap()
}

fn senders(v: &VerifiedReport) -> Vec<String> {
    v.report().messages.iter().map(|m| format!("{}#{}", m.delivery.sender.user_id, m.delivery.sequence)).collect()
}

/// Issue 15, failure 1: bob reports mallory's two messages with his own
/// reply between them; v1 gave `BrokenChain`.
#[test]
fn a_dialogue_with_the_reporters_reply_verifies_in_order() {
    let s = scanner();
    let mut net = Net::default();
    let (mut mallory, mut bob) = (Phone::new("mallory", "phone"), Phone::new("bob", "laptop"));
    for p in [&mallory, &bob] {
        net.join("mb", &p.me);
    }
    let photo = std::fs::read(root().join("tests/data/photos/skimage_coffee.png")).unwrap();
    send(
        &s,
        &mut net,
        &mut mallory,
        "mb",
        "m1",
        &Message::text("hey").with_attachment(Attachment::new(photo.clone(), "image/png")),
    );
    receive(&s, &mut net, &mut bob);
    send(&s, &mut net, &mut bob, "mb", "b1", &Message::text("who are you?"));
    receive(&s, &mut net, &mut mallory);
    let insult = send(&s, &mut net, &mut mallory, "mb", "m2", &Message::text("you are a fucking idiot"));
    assert!(receive(&s, &mut net, &mut bob).iter().all(Result::is_ok));
    let v = report(&bob, "mb", &insult, 2, 0);
    assert_eq!(senders(&v), ["mallory#1", "bob#2", "mallory#3"]);
    assert!(v.verdicts().iter().all(|x| *x == Verdict::Verified), "{:?}", v.verdicts());
    assert!(v.order().as_ref().unwrap().is_complete());
    assert_eq!(v.report().messages[0].opening.as_ref().unwrap().attachments[0].plaintext, photo);
    assert!(
        v.report().evidence.iter().any(|e| e.kind == "classifier:profanity_check/profanity"),
        "{:?}",
        v.report().evidence
    );
}

/// Two people typing at once: both franked before either is delivered.
#[test]
fn concurrent_sends_are_ordered_by_the_platform() {
    let s = scanner();
    let mut net = Net::default();
    let (mut alice, mut bob) = (Phone::new("alice", "phone"), Phone::new("bob", "laptop"));
    for p in [&alice, &bob] {
        net.join("ab", &p.me);
    }
    let a = s
        .prepare_outgoing(alice.state("ab"), "a1", &Message::text("are you there?"), Default::default())
        .unwrap()
        .franked
        .unwrap();
    let b = s
        .prepare_outgoing(bob.state("ab"), "b1", &Message::text("hello?"), Default::default())
        .unwrap()
        .franked
        .unwrap();
    // bob's reached the platform first.
    for (phone, f, m) in [(&mut bob, &b, "hello?"), (&mut alice, &a, "are you there?")] {
        let me = phone.me.clone();
        let (d, t) = net.post("ab", &me, f);
        phone.state("ab").record_sent(f, &d).unwrap();
        phone.reporter.remember_sent(f, &Message::text(m), &d, t);
    }
    receive(&s, &mut net, &mut bob);
    let v = report(&bob, "ab", &a.franked.commitment, 5, 5);
    assert_eq!(senders(&v), ["bob#1", "alice#2"]);
    assert!(v.order().as_ref().unwrap().is_complete());
}

/// Groups of 3 to 50, a member who joins late, and a user with two devices.
#[test]
fn groups_late_joiners_and_second_devices_report_both_sides() {
    let s = scanner();
    for size in [3usize, 5, 50] {
        let mut net = Net::default();
        let mut phones: Vec<Phone> = (0..size).map(|i| Phone::new(&format!("u{i}"), "phone")).collect();
        // u0 also has a laptop: a second device of the same user.
        phones.push(Phone::new("u0", "laptop"));
        for p in &phones[..size] {
            net.join("g", &p.me);
        }
        net.join("g", &phones[size].me);
        for i in 0..size.min(20) {
            send(&s, &mut net, &mut phones[i], "g", &format!("x{i}"), &Message::text(&format!("hello from {i}")));
        }
        // A new member joins late: it gets copies from now on.
        let mut late = Phone::new("late", "phone");
        net.join("g", &late.me);
        let bad = send(&s, &mut net, &mut late, "g", "l1", &Message::text("you are all fucking idiots"));
        send(&s, &mut net, &mut phones[0], "g", "reply", &Message::text("please be kind"));
        for p in phones.iter_mut().chain(std::iter::once(&mut late)) {
            assert!(receive(&s, &mut net, p).iter().all(Result::is_ok));
        }
        // u1 reports: both sides, in order.
        let v = report(&phones[1], "g", &bad, 50, 1);
        let n = size.min(20) + 2;
        assert_eq!(v.report().messages.len(), n);
        assert!(v.order().as_ref().unwrap().is_complete(), "{size}");
        // u0's laptop reports, with what u0's phone sent, as u0's.
        let v = report(&phones[size], "g", &bad, 3, 1);
        let own = v.report().messages.iter().filter(|m| m.delivery.sender == Party::new("u0", "phone")).count();
        // The window is the 3 messages before the reported one and "reply"
        // after it; u0's phone wrote "reply", and "x0" when it falls inside.
        assert_eq!(own, 1 + usize::from(size.min(20) <= 3), "{size}: {:?}", senders(&v));
        // The late joiner's report starts where it joined.
        let v = report(&late, "g", &bad, 50, 1);
        assert_eq!(v.order().as_ref().unwrap().first, (size.min(20) + 1) as u64);
    }
}

/// A refused copy keeps its place; the reporter selects by commitment.
#[test]
fn refused_messages_are_reported_unopened_and_selection_is_by_commitment() {
    let s = scanner();
    let mut net = Net::default();
    let (mut mallory, mut bob) = (Phone::new("mallory", "phone"), Phone::new("bob", "laptop"));
    for p in [&mallory, &bob] {
        net.join("mb", &p.me);
    }
    send(&s, &mut net, &mut mallory, "mb", "m1", &Message::text("hi"));
    // A forged message: committed to one text, carrying another.
    let f = s
        .prepare_outgoing(mallory.state("mb"), "m2", &Message::text("sorry"), Default::default())
        .unwrap()
        .franked
        .unwrap();
    let mut forged = f;
    let last = forged.franked.plaintext.len() - 1;
    forged.franked.plaintext[last] ^= 0x20;
    net.post("mb", &mallory.me, &forged);
    let third = send(&s, &mut net, &mut mallory, "mb", "m3", &Message::text("answer me, idiot"));
    let got = receive(&s, &mut net, &mut bob);
    assert!(got[1].is_err());
    let v = report(&bob, "mb", &third, 5, 0);
    assert_eq!(v.verdicts(), [Verdict::Verified, Verdict::Unopened, Verdict::Verified]);
    assert!(v.order().as_ref().unwrap().is_complete(), "the refused copy keeps its place");
    let (_, key) = server();
    let err = bob
        .reporter
        .report("mb", &forged.franked.commitment, 0, 0, Reason::Spam, "", false, (1, key.public()))
        .unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    // Leaving the middle out is visible.
    let mut v = report(&bob, "mb", &third, 0, 0).report().clone();
    v.messages.insert(0, report(&bob, "mb", &bob.reporter.commitments("mb")[0], 0, 0).report().messages[0].clone());
    v.reported = 1;
    let verified = frankly_report::verify_report(v, 1, &keyring(), &bob.me, NOW + 1000, &mut HashSet::new()).unwrap();
    assert_eq!(verified.order().as_ref().unwrap().gaps, vec![Gap { after: 1, before: 3, missing: 1 }]);
}

/// Issue 15, failure 4: a stranger sending 1,025 tiny messages under fresh
/// conversation ids evicted the victim's kept material everywhere.
#[test]
fn a_stranger_cannot_evict_other_conversations() {
    let s = scanner();
    let mut net = Net::default();
    let (mut alice, mut carol, mut spammer, mut bob) = (
        Phone::new("alice", "phone"),
        Phone::new("carol", "phone"),
        Phone::new("spammer", "phone"),
        Phone::new("bob", "laptop"),
    );
    bob.contacts.push("alice".into());
    for (c, p) in [("ab", &alice), ("cb", &carol)] {
        net.join(c, &p.me);
        net.join(c, &bob.me);
    }
    send(&s, &mut net, &mut alice, "ab", "a1", &Message::text("see you at 10"));
    let carol_msg = send(&s, &mut net, &mut carol, "cb", "c1", &Message::text("I am a stranger too, and rude: idiot"));
    receive(&s, &mut net, &mut bob);
    for i in 0..1025 {
        let c = format!("spam-{i}");
        net.join(&c, &spammer.me);
        net.join(&c, &bob.me);
        send(&s, &mut net, &mut spammer, &c, "s", &Message::text("x"));
    }
    receive(&s, &mut net, &mut bob);
    assert_eq!(bob.reporter.kept("ab"), 1, "the contact's conversation is kept");
    assert_eq!(bob.reporter.kept("cb"), 1, "another stranger's conversation is kept");
    let spam_kept = (0..1025).filter(|i| bob.reporter.kept(&format!("spam-{i}")) > 0).count();
    assert_eq!(spam_kept, MAX_CONVERSATIONS_PER_STRANGER, "the spammer only evicts their own");
    report(&bob, "cb", &carol_msg, 0, 0);
}

#[test]
fn memory_is_bounded_by_count_and_bytes() {
    let s = scanner();
    let photo = std::fs::read(root().join("tests/data/photos/skimage_coffee.png")).unwrap();
    let mut net = Net::default();
    let (mut alice, mut bob) = (Phone::new("alice", "phone"), Phone::new("bob", "laptop"));
    bob.reporter = Reporter::new(&bob.me, 3).unwrap();
    for p in [&alice, &bob] {
        net.join("ab", &p.me);
    }
    let sent: Vec<_> = (0..5)
        .map(|i| {
            let m = Message::text(&format!("message {i}")).with_attachment(Attachment::new(photo.clone(), "image/png"));
            send(&s, &mut net, &mut alice, "ab", &format!("m{i}"), &m)
        })
        .collect();
    receive(&s, &mut net, &mut bob);
    assert_eq!(bob.reporter.kept("ab"), 3, "only the last 3 are kept");
    let (_, key) = server();
    let err = bob.reporter.report("ab", &sent[0], 0, 0, Reason::Spam, "", false, (1, key.public())).unwrap_err();
    assert!(matches!(err, ClientError::Report(_)), "{err}");
    report(&bob, "ab", &sent[4], 5, 0);
    let small = Reporter::new(&bob.me, 3).unwrap().with_budgets(photo.len() * 2, photo.len() * 2);
    bob.reporter = small;
    net.mailbox.clear();
    for i in 5..9 {
        let m = Message::text(&format!("message {i}")).with_attachment(Attachment::new(photo.clone(), "image/png"));
        send(&s, &mut net, &mut alice, "ab", &format!("m{i}"), &m);
    }
    receive(&s, &mut net, &mut bob);
    assert!(bob.reporter.kept_bytes() <= photo.len() * 2);
    assert_eq!(bob.reporter.kept("ab"), 1);
    assert!(Reporter::new(&bob.me, 0).is_err());
}

/// Issue 15, "persisted device state": kept material and conversation
/// states survive a restart; a wrong key or a damaged file is a clear error.
#[test]
fn device_state_survives_a_restart_and_refuses_a_wrong_key_or_damage() {
    use frankly_client::{DeviceState, LoadedBundle, StateError};
    let s = scanner();
    let mut net = Net::default();
    let (mut alice, mut bob) = (Phone::new("alice", "phone"), Phone::new("bob", "laptop"));
    for p in [&alice, &bob] {
        net.join("ab", &p.me);
    }
    let c = send(&s, &mut net, &mut alice, "ab", "a1", &Message::text("you idiot"));
    receive(&s, &mut net, &mut bob);
    let mut state = DeviceState::new(std::mem::replace(&mut bob.reporter, Reporter::new(&bob.me, 1).unwrap()));
    state.conversations = std::mem::take(&mut bob.states);
    state.bundles.insert("bank:demo".into(), LoadedBundle { version: 7, digest: [3; 32] });
    let key = [0x42u8; 32];
    let pickle = state.pickle(&key).unwrap();
    // The app restarts.
    let restored = DeviceState::unpickle(&pickle, &key).unwrap();
    assert_eq!(restored.reporter.kept("ab"), 1);
    assert_eq!(restored.conversations["ab"].last_received, 1);
    assert_eq!(restored.bundles["bank:demo"].version, 7);
    bob.reporter = restored.reporter;
    bob.states = restored.conversations;
    report(&bob, "ab", &c, 0, 0);
    // The replayed copy is still refused after the restart.
    net.post(
        "ab",
        &alice.me,
        &s.prepare_outgoing(
            &frankly_client::ConversationState::new("ab", &alice.me),
            "a1",
            &Message::text("you idiot"),
            Default::default(),
        )
        .unwrap()
        .franked
        .unwrap(),
    );
    assert!(receive(&s, &mut net, &mut bob)[0].is_err(), "a reused message id is refused after the restart");
    assert_eq!(DeviceState::unpickle(&pickle, &[0x43; 32]).unwrap_err(), StateError::Decrypt);
    let mut flipped = pickle.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert_eq!(DeviceState::unpickle(&flipped, &key).unwrap_err(), StateError::Decrypt);
    assert_eq!(DeviceState::unpickle(&pickle[..pickle.len() / 2], &key).unwrap_err(), StateError::Decrypt);
    assert_eq!(DeviceState::unpickle(b"FDS", &key).unwrap_err(), StateError::NotAState);
    let mut v2 = pickle.clone();
    v2[5] = 2;
    assert_eq!(DeviceState::unpickle(&v2, &key).unwrap_err(), StateError::UnsupportedVersion(2));
}
