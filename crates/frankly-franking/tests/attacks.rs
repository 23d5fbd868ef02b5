//! Every property of the franking layer, attacked: each attempt must be
//! refused with its own error. Issue 15's reproduced failures that live at
//! this layer are named in the tests.

#![allow(clippy::unwrap_used)]

use frankly_franking::{
    Commitment, DeliveryContext, DeviceKey, FrankingError, FrankingKey, Gap, KeyWindow, Keyring, MessageContext, Party,
    PlatformKey, PlatformTag, commit, mac_delivery, receive, tag, verify_commitment, verify_delivery, verify_order,
    verify_tag,
};

const T0: u64 = 1_800_000_000_000;
const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;

fn window(from: u64, until: u64, verify_until: u64) -> KeyWindow {
    KeyWindow { tag_from_ms: from, tag_until_ms: until, verify_until_ms: verify_until }
}

/// Key 1 tags for a day from T0 - 1 h and verifies for 90 days after; key 2 takes over.
fn keyring() -> Keyring {
    let mut k = Keyring::new();
    k.insert(PlatformKey::new(1, [0x11; 32], window(T0 - HOUR, T0 + DAY, T0 + 91 * DAY)).unwrap());
    k.insert(PlatformKey::new(2, [0x22; 32], window(T0 + DAY, T0 + 2 * DAY, T0 + 92 * DAY)).unwrap());
    k
}

fn alice() -> Party {
    Party::new("alice", "phone")
}
fn bob() -> Party {
    Party::new("bob", "laptop")
}

struct Sent {
    key: FrankingKey,
    message_id: String,
    body: Vec<u8>,
    commitment: Commitment,
    delivery: DeliveryContext,
    tag: PlatformTag,
}

fn send(sender: Party, to: Party, sequence: u64, body: &[u8], at: u64) -> Sent {
    let key = FrankingKey::generate().unwrap();
    let message_id = format!("{}-{sequence}", sender.user_id);
    let context =
        MessageContext { conversation_id: "conv-1".into(), sender: sender.clone(), message_id: message_id.clone() };
    let commitment = commit(&key, &context, body).unwrap();
    let delivery = DeliveryContext {
        conversation_id: "conv-1".into(),
        sequence,
        sender,
        recipient: to,
        timestamp_ms: at,
        server_message_id: format!("srv-{sequence}"),
    };
    let tag = tag(&keyring(), &commitment, &delivery).unwrap();
    Sent { key, message_id, body: body.to_vec(), commitment, delivery, tag }
}

fn recv(m: &Sent) -> Result<(), FrankingError> {
    receive(&m.commitment, &m.key, &m.message_id, &m.body, &m.delivery, &m.delivery.sender, &m.delivery.recipient)
        .map(|_| ())
}

#[test]
fn honest_messages_verify_end_to_end() {
    let m = send(alice(), bob(), 1, b"hello", T0);
    let accepted = receive(&m.commitment, &m.key, &m.message_id, &m.body, &m.delivery, &alice(), &bob()).unwrap();
    assert_eq!(accepted.context().sender, alice());
    verify_commitment(&m.commitment, &m.key, &m.delivery.message_context(&m.message_id), &m.body).unwrap();
    verify_tag(&keyring(), &m.tag, &m.commitment, &m.delivery, T0).unwrap();
    assert_eq!(m.tag.key_id, 1);
}

#[test]
fn commit_to_one_body_and_send_another() {
    let m = send(alice(), bob(), 1, b"the committed body", T0);
    let err = receive(&m.commitment, &m.key, &m.message_id, b"another body", &m.delivery, &alice(), &bob());
    assert_eq!(err.unwrap_err(), FrankingError::CommitmentMismatch);
}

#[test]
fn reporter_edits_body_key_or_message_id() {
    let m = send(alice(), bob(), 1, b"you are late", T0);
    let ctx = m.delivery.message_context(&m.message_id);
    assert_eq!(
        verify_commitment(&m.commitment, &m.key, &ctx, b"you are LATE").unwrap_err(),
        FrankingError::CommitmentMismatch
    );
    let other = FrankingKey::from_bytes([1; 32]);
    assert_eq!(verify_commitment(&m.commitment, &other, &ctx, &m.body).unwrap_err(), FrankingError::CommitmentMismatch);
    let renamed = m.delivery.message_context("alice-9");
    assert_eq!(
        verify_commitment(&m.commitment, &m.key, &renamed, &m.body).unwrap_err(),
        FrankingError::CommitmentMismatch
    );
}

#[test]
fn every_field_the_tag_binds_is_bound() {
    let m = send(alice(), bob(), 7, b"x", T0);
    let ring = keyring();
    type Edit = Box<dyn Fn(&mut DeliveryContext)>;
    let edits: Vec<Edit> = vec![
        Box::new(|d| d.conversation_id = "conv-2".into()),
        Box::new(|d| d.sequence += 1),
        Box::new(|d| d.sender = Party::new("mallory", "phone")),
        Box::new(|d| d.sender.device_id = "tablet".into()),
        Box::new(|d| d.recipient = Party::new("carol", "phone")),
        Box::new(|d| d.recipient.device_id = "desktop".into()),
        Box::new(|d| d.timestamp_ms += 1),
        Box::new(|d| d.server_message_id = "srv-other".into()),
    ];
    for (i, edit) in edits.iter().enumerate() {
        let mut d = m.delivery.clone();
        edit(&mut d);
        assert_eq!(
            verify_tag(&ring, &m.tag, &m.commitment, &d, T0).unwrap_err(),
            FrankingError::TagMismatch,
            "edit {i}"
        );
    }
    let mut c = m.commitment;
    c.0[0] ^= 1;
    assert_eq!(verify_tag(&ring, &m.tag, &c, &m.delivery, T0).unwrap_err(), FrankingError::TagMismatch);
    let forged = PlatformTag { key_id: 1, mac: [0; 32] };
    assert_eq!(verify_tag(&ring, &forged, &m.commitment, &m.delivery, T0).unwrap_err(), FrankingError::TagMismatch);
}

#[test]
fn a_copy_for_another_device_or_from_another_sender_is_refused_on_the_device() {
    let m = send(alice(), bob(), 1, b"hi", T0);
    let err =
        receive(&m.commitment, &m.key, &m.message_id, &m.body, &m.delivery, &alice(), &Party::new("bob", "phone"));
    assert!(matches!(err.unwrap_err(), FrankingError::NotForThisDevice { .. }));
    let err =
        receive(&m.commitment, &m.key, &m.message_id, &m.body, &m.delivery, &Party::new("alice", "tablet"), &bob());
    assert!(matches!(err.unwrap_err(), FrankingError::SenderMismatch { .. }));
}

/// Issue 15, failure 7: a rotated-out key verified fresh timestamps for 90
/// days because `accept_until` was tested against the message timestamp,
/// and `verify_tag` never took `now`.
#[test]
fn key_windows_separate_tagging_from_retention() {
    let ring = keyring();
    // A message timestamped after key 1 stopped tagging, tagged with key 1
    // anyway (a leaked key, or a confused platform): refused.
    let late = T0 + DAY + HOUR;
    let key1_only = {
        let mut k = Keyring::new();
        k.insert(PlatformKey::new(1, [0x11; 32], window(T0 - HOUR, T0 + 3 * DAY, T0 + 91 * DAY)).unwrap());
        k
    };
    let m = send(alice(), bob(), 1, b"x", T0);
    let mut d = m.delivery.clone();
    d.timestamp_ms = late;
    let forged = tag(&key1_only, &m.commitment, &d).unwrap();
    assert_eq!(forged.key_id, 1);
    assert_eq!(
        verify_tag(&ring, &forged, &m.commitment, &d, late).unwrap_err(),
        FrankingError::KeyNotValidAt { key_id: 1, timestamp_ms: late }
    );
    // The genuine old message verifies until key 1's retention ends, then never.
    verify_tag(&ring, &m.tag, &m.commitment, &m.delivery, T0 + 90 * DAY).unwrap();
    assert_eq!(
        verify_tag(&ring, &m.tag, &m.commitment, &m.delivery, T0 + 91 * DAY).unwrap_err(),
        FrankingError::RetentionEnded { key_id: 1, verify_until_ms: T0 + 91 * DAY }
    );
    // A timestamp ahead of the verifier's clock.
    let ahead = send(alice(), bob(), 2, b"y", T0 + HOUR);
    assert!(matches!(
        verify_tag(&ring, &ahead.tag, &ahead.commitment, &ahead.delivery, T0).unwrap_err(),
        FrankingError::FutureTimestamp { .. }
    ));
    assert_eq!(
        verify_tag(&ring, &PlatformTag { key_id: 9, mac: m.tag.mac }, &m.commitment, &m.delivery, T0).unwrap_err(),
        FrankingError::UnknownKeyId(9)
    );
    // Rotation: key 2 tags from T0 + 1 day.
    assert_eq!(send(alice(), bob(), 3, b"z", T0 + DAY).tag.key_id, 2);
    let mut retiring = keyring();
    assert_eq!(retiring.retire(T0 + 91 * DAY), vec![1]);
    assert!(PlatformKey::new(3, [3; 32], window(5, 5, 9)).is_err(), "an empty tagging period is refused");
}

/// Issue 15, failure 3: random sender links blamed the reporter, and
/// `prev + 1` overflowed. v2 orders by the platform's tagged sequence
/// number: the sender has no say, omissions are located, arithmetic is
/// checked.
#[test]
fn order_is_the_platforms_and_shows_every_omission() {
    let ms: Vec<Sent> = (1..=6)
        .map(|s| send(if s % 2 == 0 { alice() } else { Party::new("carol", "c1") }, bob(), s, b"m", T0))
        .collect();
    let all: Vec<&DeliveryContext> = ms.iter().map(|m| &m.delivery).collect();
    let o = verify_order(&all).unwrap();
    assert!(o.is_complete());
    assert_eq!((o.first, o.last), (1, 6));
    // The reporter leaves out messages 3 and 5: both omissions are shown, with where.
    let some = [all[0], all[1], all[3], all[5]];
    let o = verify_order(&some).unwrap();
    assert_eq!(o.gaps, vec![Gap { after: 2, before: 4, missing: 1 }, Gap { after: 4, before: 6, missing: 1 }]);
    // Reordered, or the same message twice.
    assert!(matches!(verify_order(&[all[1], all[0]]).unwrap_err(), FrankingError::OutOfOrder { index: 1, .. }));
    assert!(matches!(verify_order(&[all[2], all[2]]).unwrap_err(), FrankingError::OutOfOrder { .. }));
    // u64::MAX then 0 neither panics nor passes.
    let mut top = ms[0].delivery.clone();
    top.sequence = u64::MAX;
    let mut zero = ms[0].delivery.clone();
    zero.sequence = 0;
    assert!(matches!(verify_order(&[&top, &zero]).unwrap_err(), FrankingError::OutOfOrder { .. }));
    let mut low = ms[0].delivery.clone();
    low.sequence = 0;
    assert_eq!(verify_order(&[&low, &top]).unwrap().gaps[0].missing, u64::MAX - 1);
    // Another conversation or another recipient's copy.
    let mut elsewhere = ms[1].delivery.clone();
    elsewhere.conversation_id = "conv-2".into();
    assert_eq!(verify_order(&[all[0], &elsewhere]).unwrap_err(), FrankingError::OrderConversation { index: 1 });
    let mut theirs = ms[1].delivery.clone();
    theirs.recipient = Party::new("carol", "c1");
    assert_eq!(verify_order(&[all[0], &theirs]).unwrap_err(), FrankingError::OrderRecipient { index: 1 });
    assert_eq!(verify_order(&[]).unwrap_err(), FrankingError::EmptyOrder);
}

#[test]
fn identifiers_are_bounded_and_printable() {
    let key = FrankingKey::from_bytes([1; 32]);
    for (bad, why) in [("", "empty"), ("evil\u{0}", "NUL"), ("a\nb", "newline")] {
        let ctx = MessageContext { conversation_id: bad.into(), sender: alice(), message_id: "m".into() };
        assert!(matches!(commit(&key, &ctx, b"x").unwrap_err(), FrankingError::InvalidId { .. }), "{why}");
    }
    let long = "x".repeat(frankly_franking::MAX_ID_BYTES + 1);
    let ctx = MessageContext { conversation_id: "c".into(), sender: Party::new(&long, "d"), message_id: "m".into() };
    assert!(matches!(commit(&key, &ctx, b"x").unwrap_err(), FrankingError::InvalidId { field: "user_id", .. }));
    let ok = "é".repeat(frankly_franking::MAX_ID_BYTES / 2);
    let ctx = MessageContext { conversation_id: ok, sender: alice(), message_id: "m".into() };
    commit(&key, &ctx, b"x").unwrap();
}

#[test]
fn the_delivery_mac_binds_the_copy_and_is_per_device() {
    let m = send(alice(), bob(), 1, b"hi", T0);
    let master = [0x44; 32];
    let k_bob = DeviceKey::derive(&master, &bob()).unwrap();
    let k_other = DeviceKey::derive(&master, &Party::new("bob", "phone")).unwrap();
    assert_ne!(k_bob.as_bytes(), k_other.as_bytes());
    let mac = mac_delivery(&k_bob, &m.tag, &m.commitment, &m.delivery).unwrap();
    verify_delivery(&k_bob, &m.tag, &m.commitment, &m.delivery, &mac).unwrap();
    assert_eq!(
        verify_delivery(&k_other, &m.tag, &m.commitment, &m.delivery, &mac).unwrap_err(),
        FrankingError::DeliveryMac
    );
    let mut d = m.delivery.clone();
    d.sequence = 2;
    assert_eq!(verify_delivery(&k_bob, &m.tag, &m.commitment, &d, &mac).unwrap_err(), FrankingError::DeliveryMac);
    assert_eq!(format!("{k_bob:?}"), "DeviceKey(..)");
}

#[test]
fn recv_helper_accepts_honest_copies_for_every_member() {
    for to in [bob(), Party::new("carol", "c1"), Party::new("alice", "tablet")] {
        recv(&send(alice(), to, 1, b"group hello", T0)).unwrap();
    }
}

/// Issue 15, failure 6 (deniability): v1 signed deliveries, so a leaked
/// platform key made stored openings provable to anyone. In v2 everything
/// the platform emits is a MAC: whoever holds a leaked key (or a device
/// key) can make tags and delivery MACs for any text, indistinguishable
/// from the platform's, so a leaked report plus a leaked key proves nothing.
#[test]
fn a_leaked_platform_key_makes_nothing_provable() {
    let genuine = send(alice(), bob(), 1, b"what alice really said", T0);
    // The forger holds the leaked key 1 and bob's device key; writes any text.
    let leaked = keyring();
    let forged_key = FrankingKey::from_bytes([0x66; 32]);
    let context = genuine.delivery.message_context("alice-1");
    let forged_c = commit(&forged_key, &context, b"words alice never wrote").unwrap();
    let forged_tag = tag(&leaked, &forged_c, &genuine.delivery).unwrap();
    verify_tag(&keyring(), &forged_tag, &forged_c, &genuine.delivery, T0).unwrap();
    verify_tag(&keyring(), &genuine.tag, &genuine.commitment, &genuine.delivery, T0).unwrap();
    verify_commitment(&forged_c, &forged_key, &context, b"words alice never wrote").unwrap();
    let device = DeviceKey::derive(&[0x44; 32], &bob()).unwrap();
    let forged_mac = mac_delivery(&device, &forged_tag, &forged_c, &genuine.delivery).unwrap();
    verify_delivery(&device, &forged_tag, &forged_c, &genuine.delivery, &forged_mac).unwrap();
    // Both pass every check a key holder can run: the checks cannot tell them apart.
}
