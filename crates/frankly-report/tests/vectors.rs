//! The franking v2 test vectors, `tests/vectors/franking/{valid,invalid}/*.json`
//! (one case per file, each self-contained, with its expected outcome; the
//! format is in `docs/franking.md` and `tests/check_franking_vectors.py`).
//! This test regenerates every case from fixed keys and fixed HPKE
//! randomness, checks the files are exactly what it generates, and checks
//! that this implementation reaches each file's stated outcome.
//! `FRANKLY_BLESS=1` rewrites the files.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::path::PathBuf;

use frankly_franking::{
    AttachmentRef, Body, Commitment, DeliveryContext, DeviceKey, FrankingError, FrankingKey, KeyWindow, Keyring,
    MessageContext, Party, PlatformKey, PlatformTag, commit, mac_delivery, tag, tag_input,
};
use frankly_report::{
    ENVELOPE_MAGIC, Evidence, HPKE_INFO, KeyBytes, Opening, Reason, Report, ReportError, ReportKeyring,
    ReportedAttachment, ReportedMessage, ServerKeyPair, Verdict, encode_report, open_and_verify, padme,
    seal_report_with_rng,
};
use hpke::rand_core::{TryCryptoRng, TryRng};
use hpke::{Deserializable, Kem as _, OpModeS, Serializable};
use serde_json::{Value, json};

const NOW: u64 = 1_800_000_000_000;
const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;

/// "Randomness" that is a fixed byte string, for test vectors only.
struct FixedBytes(Vec<u8>, usize);

impl TryRng for FixedBytes {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for d in dst {
            *d = self.0[self.1 % self.0.len()];
            self.1 += 1;
        }
        Ok(())
    }
}

impl TryCryptoRng for FixedBytes {}

fn party(user: &str, device: &str) -> Party {
    Party::new(user, device)
}

/// Key 1 tagged until NOW - 1 day and verifies for 90 days; key 2 tags now.
fn platform_keys() -> Vec<(u32, [u8; 32], KeyWindow)> {
    vec![
        (
            1,
            [0x11; 32],
            KeyWindow { tag_from_ms: NOW - 10 * DAY, tag_until_ms: NOW - DAY, verify_until_ms: NOW + 89 * DAY },
        ),
        (2, [0x22; 32], KeyWindow { tag_from_ms: NOW - DAY, tag_until_ms: NOW + DAY, verify_until_ms: NOW + 91 * DAY }),
    ]
}

fn keyring() -> Keyring {
    let mut k = Keyring::new();
    for (id, secret, w) in platform_keys() {
        k.insert(PlatformKey::new(id, secret, w).unwrap());
    }
    k
}

const REPORT_IKM_1: &[u8; 32] = b"frankly vector report key one..!";
const REPORT_IKM_2: &[u8; 32] = b"frankly vector report key two..!";
const EPHEMERAL_IKM: [u8; 32] = [0x5e; 32];

fn report_keys() -> ReportKeyring {
    let mut r = ReportKeyring::new();
    r.insert(1, ServerKeyPair::derive(REPORT_IKM_1), NOW + DAY);
    r.insert(2, ServerKeyPair::derive(REPORT_IKM_2), u64::MAX);
    r
}

/// A message in conversation `conv` numbered `seq`, from `sender`, as
/// `recipient`'s copy, with a deterministic franking key.
fn msg(conv: &str, seq: u64, sender: &Party, recipient: &Party, text: &str, at: u64) -> ReportedMessage {
    let body = Body { text: text.into(), attachments: vec![] }.encode().unwrap();
    msg_body(conv, seq, sender, recipient, body, at)
}

fn msg_body(conv: &str, seq: u64, sender: &Party, recipient: &Party, body: Vec<u8>, at: u64) -> ReportedMessage {
    let key = FrankingKey::from_bytes([seq as u8 ^ 0xa0; 32]);
    let message_id = format!("{}-{seq}", sender.user_id);
    let context =
        MessageContext { conversation_id: conv.into(), sender: sender.clone(), message_id: message_id.clone() };
    let commitment = commit(&key, &context, &body).unwrap();
    let delivery = DeliveryContext {
        conversation_id: conv.into(),
        sequence: seq,
        sender: sender.clone(),
        recipient: recipient.clone(),
        timestamp_ms: at,
        server_message_id: format!("srv-{conv}-{seq}"),
    };
    let tag = tag(&keyring(), &commitment, &delivery).unwrap();
    ReportedMessage {
        commitment,
        delivery,
        tag,
        opening: Some(Opening { franking_key: KeyBytes::from(&key), message_id, body, attachments: vec![] }),
    }
}

fn report(reporter: &Party, messages: Vec<ReportedMessage>, reported: usize, id: u8) -> Report {
    Report {
        report_id: [id; 16],
        reporter: reporter.clone(),
        reason: Reason::Harassment,
        note: String::new(),
        reported: reported as u16,
        messages,
        evidence: vec![],
    }
}

fn seal(r: &Report, key_id: u32) -> Vec<u8> {
    let public = report_keys().keys_public(key_id);
    seal_report_with_rng(r, key_id, &public, &mut FixedBytes(EPHEMERAL_IKM.to_vec(), 0)).unwrap()
}

trait Public {
    fn keys_public(&self, id: u32) -> frankly_report::ServerPublicKey;
}

impl Public for ReportKeyring {
    fn keys_public(&self, id: u32) -> frankly_report::ServerPublicKey {
        let ikm: &[u8] = if id == 1 { REPORT_IKM_1 } else { REPORT_IKM_2 };
        let _ = self;
        ServerKeyPair::derive(ikm).public().clone()
    }
}

/// Seals arbitrary bytes as the HPKE plaintext, for malformed-padding cases.
fn seal_raw(header: &[u8], plaintext: &[u8], ikm: &[u8]) -> Vec<u8> {
    type Kem = hpke::kem::X25519HkdfSha256;
    let (_, pk) = Kem::derive_keypair(ikm);
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&pk.to_bytes()).unwrap();
    let (enc, ct) = hpke::single_shot_seal_with_rng::<hpke::aead::ChaCha20Poly1305, hpke::kdf::HkdfSha256, Kem>(
        &OpModeS::Base,
        &pk,
        HPKE_INFO,
        plaintext,
        header,
        &mut FixedBytes(EPHEMERAL_IKM.to_vec(), 0),
    )
    .unwrap();
    let mut out = header.to_vec();
    out.extend_from_slice(&enc.to_bytes());
    out.extend_from_slice(&ct);
    out
}

fn header(version: u16, key_id: u32) -> Vec<u8> {
    let mut h = ENVELOPE_MAGIC.to_vec();
    h.extend_from_slice(&version.to_be_bytes());
    h.extend_from_slice(&key_id.to_be_bytes());
    h
}

fn padded(report: &[u8]) -> Vec<u8> {
    let mut out = (report.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(report);
    out.resize(padme(4 + report.len()), 0);
    out
}

fn verdict_code(e: &FrankingError) -> &'static str {
    match e {
        FrankingError::CommitmentMismatch => "commitment",
        FrankingError::TagMismatch => "tag",
        FrankingError::UnknownKeyId(_) => "unknown-key-id",
        FrankingError::RetentionEnded { .. } => "retention-ended",
        FrankingError::KeyNotValidAt { .. } => "key-not-valid-at",
        FrankingError::FutureTimestamp { .. } => "future-timestamp",
        FrankingError::NotForThisDevice { .. } => "not-for-this-device",
        FrankingError::AttachmentNotCommitted => "attachment-not-committed",
        FrankingError::AttachmentHashMismatch => "attachment-hash",
        other => panic!("no vector code for {other:?}"),
    }
}

fn reason_code(e: &ReportError) -> (&'static str, Option<&'static str>) {
    match e {
        ReportError::NotAnEnvelope => ("not-an-envelope", None),
        ReportError::UnsupportedVersion(_) => ("unsupported-version", None),
        ReportError::UnknownReportKey(_) => ("unknown-report-key", None),
        ReportError::Decrypt => ("decrypt", None),
        ReportError::Malformed(_) => ("malformed", None),
        ReportError::ReporterMismatch { .. } => ("reporter-mismatch", None),
        ReportError::ReportedMessage { error, .. } => ("reported-message", Some(verdict_code(error))),
        ReportError::ReportedUnopened(_) => ("reported-unopened", None),
        other => panic!("no vector code for {other:?}"),
    }
}

fn keys_json() -> (Value, Value) {
    let platform: Vec<Value> = platform_keys()
        .iter()
        .map(|(id, s, w)| json!({"id": id, "secret": hex::encode(s), "tag_from_ms": w.tag_from_ms, "tag_until_ms": w.tag_until_ms, "verify_until_ms": w.verify_until_ms}))
        .collect();
    let report = json!([
        {"id": 1, "ikm": hex::encode(REPORT_IKM_1), "open_until_ms": NOW + DAY},
        {"id": 2, "ikm": hex::encode(REPORT_IKM_2), "open_until_ms": u64::MAX},
    ]);
    (Value::Array(platform), report)
}

fn party_json(p: &Party) -> Value {
    json!({"user_id": p.user_id, "device_id": p.device_id})
}

/// A report case: verified here, described for the file.
fn report_case(
    name: &str,
    description: &str,
    envelope: Vec<u8>,
    submitter: &Party,
    now: u64,
    sealed: Option<&Report>,
) -> (String, Value) {
    let (platform, report_keys_json) = keys_json();
    let outcome = open_and_verify(&envelope, &report_keys(), &keyring(), submitter, now, &mut HashSet::new());
    let mut v = json!({
        "name": name, "description": description, "kind": "report",
        "now_ms": now, "platform_keys": platform, "report_keys": report_keys_json,
        "reporter": party_json(submitter), "envelope": hex::encode(&envelope),
    });
    match outcome {
        Ok(verified) => {
            let r = sealed.expect("a valid case names its report");
            assert_eq!(verified.report(), r, "{name}");
            v["expected"] = json!("valid");
            v["ephemeral_ikm"] = json!(hex::encode(EPHEMERAL_IKM));
            v["report"] = json!(hex::encode(encode_report(r).unwrap()));
            v["messages"] = Value::Array(
                r.messages
                    .iter()
                    .map(|m| {
                        let commit_input = m.opening.as_ref().map(|o| {
                            let mut input = frankly_franking::COMMIT_DOMAIN.to_vec();
                            input.extend_from_slice(&m.delivery.message_context(&o.message_id).encode().unwrap());
                            input.extend_from_slice(&o.body);
                            hex::encode(input)
                        });
                        json!({
                            "commit_input": commit_input,
                            "commitment": hex::encode(m.commitment.0),
                            "tag_input": hex::encode(tag_input(m.tag.key_id, &m.commitment, &m.delivery).unwrap()),
                            "tag": hex::encode(m.tag.mac),
                        })
                    })
                    .collect(),
            );
            v["verdicts"] = Value::Array(
                verified
                    .verdicts()
                    .iter()
                    .map(|x| {
                        json!(match x {
                            Verdict::Verified => "verified".to_string(),
                            Verdict::Unopened => "unopened".to_string(),
                            Verdict::Rejected(e) => format!("rejected:{}", verdict_code(e)),
                        })
                    })
                    .collect(),
            );
            v["order"] = match verified.order() {
                Ok(o) => {
                    json!({"first": o.first, "last": o.last, "gaps": o.gaps.iter().map(|g| json!({"after": g.after, "before": g.before, "missing": g.missing})).collect::<Vec<_>>()})
                }
                Err(
                    FrankingError::OutOfOrder { .. }
                    | FrankingError::OrderConversation { .. }
                    | FrankingError::OrderRecipient { .. },
                ) => {
                    json!({"error": "out-of-order"})
                }
                Err(e) => panic!("{name}: order {e}"),
            };
            (format!("valid/{name}.json"), v)
        }
        Err(e) => {
            let (reason, check) = reason_code(&e);
            v["expected"] = json!("invalid");
            v["reason"] = json!(reason);
            if let Some(c) = check {
                v["reported_check"] = json!(c);
            }
            (format!("invalid/{name}.json"), v)
        }
    }
}

fn cases() -> Vec<(String, Value)> {
    let (alice, bob, carol, dave, eve) = (
        party("alice", "phone"),
        party("bob", "phone"),
        party("carol", "phone"),
        party("dave", "tablet"),
        party("eve", "phone"),
    );
    let bob_laptop = party("bob", "laptop");
    let t = NOW - HOUR;
    let dialogue = |r: &Party| {
        vec![
            msg("dm", 1, &alice, r, "are you coming?", t),
            msg("dm", 2, &bob, r, "who is this?", t + 1),
            msg("dm", 3, &alice, r, "you will regret it", t + 2),
        ]
    };
    let mut out = Vec::new();
    let mut valid = |name: &str, description: &str, r: Report, key_id: u32| {
        let envelope = seal(&r, key_id);
        let case = report_case(name, description, envelope, &r.reporter.clone(), NOW, Some(&r));
        assert!(case.0.starts_with("valid/"), "{name} must verify: {}", case.1);
        out.push(case);
    };
    valid(
        "dialogue-both-sides",
        "bob reports alice's message with his own reply before it: both sides, in order",
        report(&bob, dialogue(&bob), 2, 1),
        2,
    );
    let group: Vec<ReportedMessage> = (4..=7)
        .map(|s| {
            msg("group", s, [&alice, &carol, &dave, &bob][(s % 4) as usize], &eve, &format!("group message {s}"), t + s)
        })
        .collect();
    valid(
        "group-late-joiner",
        "eve joined a group of 5 at sequence 4 and reports what she saw: the order starts there",
        report(&eve, group, 3, 2),
        2,
    );
    let two: Vec<ReportedMessage> = vec![
        msg("g2", 10, &carol, &bob_laptop, "hi all", t),
        msg("g2", 11, &bob, &bob_laptop, "sent from bob's phone", t + 1),
        msg("g2", 12, &carol, &bob_laptop, "you are pathetic", t + 2),
    ];
    valid(
        "two-devices",
        "bob's laptop reports, with what bob sent from his phone: the laptop's own copies",
        report(&bob_laptop, two, 2, 3),
        2,
    );
    let mut refused = dialogue(&bob);
    refused[1].opening = None;
    valid(
        "refused-unopened",
        "a copy bob's device refused is reported unopened and keeps its place",
        report(&bob, refused, 2, 4),
        2,
    );
    let mut edited: Vec<ReportedMessage> =
        (1..=5).map(|s| msg("dm", s, if s % 2 == 1 { &alice } else { &bob }, &bob, &format!("m{s}"), t + s)).collect();
    edited[1].opening.as_mut().unwrap().body =
        Body { text: "I apologise".into(), attachments: vec![] }.encode().unwrap();
    edited.remove(3);
    valid(
        "context-edited-and-omitted",
        "an edited context message is rejected and left out of the order; an omitted one shows as a gap",
        report(&bob, edited, 3, 5),
        2,
    );
    let mut fabricated = dialogue(&bob);
    let mut copy = fabricated[0].clone();
    copy.delivery.sequence = 2;
    fabricated[1] = copy;
    valid(
        "fabricated-copy",
        "a message copying its predecessor's commitment and tag under another sequence number is rejected",
        report(&bob, fabricated, 2, 6),
        2,
    );
    let (reference, _) = frankly_franking::encrypt_attachment(b"the picture bytes").unwrap();
    let reference = AttachmentRef { key: [0x33; 32], nonce: [0x44; 12], ..reference };
    let with =
        Body { text: "look".into(), attachments: vec![("image/jpeg".into(), reference.clone())] }.encode().unwrap();
    let mut pic = msg_body("dm", 1, &alice, &bob, with, t);
    pic.opening
        .as_mut()
        .unwrap()
        .attachments
        .push(ReportedAttachment { reference: reference.to_bytes(), plaintext: b"the picture bytes".to_vec() });
    let mut r = report(&bob, vec![pic.clone()], 0, 7);
    r.reason = Reason::NonConsensualImagery;
    r.note = "sent without consent — «please remove»".into();
    r.evidence = vec![Evidence { kind: "pdq-match".into(), detail: "bank demo distance 8".into() }];
    valid(
        "attachment-note-evidence",
        "an attachment checked against its committed hash, a non-ASCII note and local evidence",
        r,
        2,
    );
    let rotated = vec![
        msg("dm", 1, &alice, &bob, "from last week", NOW - 5 * DAY),
        msg("dm", 2, &bob, &bob, "old reply", NOW - 2 * DAY),
        msg("dm", 3, &alice, &bob, "today", t),
    ];
    assert_eq!((rotated[0].tag.key_id, rotated[2].tag.key_id), (1, 2));
    valid(
        "platform-key-rotation",
        "context tagged with a rotated-out key (still in retention) and the reported message with the current key",
        report(&bob, rotated, 2, 8),
        2,
    );
    let mut stale = dialogue(&bob);
    let mut d = stale[0].delivery.clone();
    d.timestamp_ms = t;
    stale[0].tag = PlatformTag { key_id: 1, ..tag_with(1, &stale[0].commitment, &d) };
    stale[0].delivery = d;
    valid(
        "rotated-out-key-fresh-timestamp",
        "a context tag made with key 1 for a timestamp after key 1 stopped tagging is rejected",
        report(&bob, stale, 2, 9),
        2,
    );
    let mut leaked = dialogue(&bob);
    leaked.insert(1, msg("dm", 2, &bob, &carol, "someone else's copy", t + 1));
    leaked.remove(2);
    valid(
        "context-for-another-device",
        "a context message copied from another device's report is rejected",
        report(&bob, leaked, 2, 10),
        2,
    );
    valid(
        "old-report-key",
        "sealed to report key 1, rotated out but inside its window",
        report(&bob, dialogue(&bob), 2, 11),
        1,
    );
    let mut shuffled = dialogue(&bob);
    shuffled.swap(0, 1);
    valid(
        "out-of-order-context",
        "context messages out of the platform's order: the order is refused, the messages verify",
        report(&bob, shuffled, 2, 12),
        2,
    );
    let big = Body { text: "x".repeat(100_000), attachments: vec![] }.encode().unwrap();
    valid(
        "padding-large-body",
        "a 100 kB body: padded to its Padmé size",
        report(&bob, vec![msg_body("dm", 1, &alice, &bob, big, t)], 0, 13),
        2,
    );

    // Boundaries of the key windows and the clock.
    let mut edge = dialogue(&bob);
    edge[2] = msg("dm", 3, &alice, &bob, "exactly 5 minutes ahead", NOW + 300_000);
    valid(
        "timestamp-at-skew-limit",
        "a timestamp exactly MAX_CLOCK_SKEW_MS (300000 ms) ahead of now still verifies",
        report(&bob, edge, 2, 14),
        2,
    );
    let mut last_ms = dialogue(&bob);
    last_ms[0] = msg("dm", 1, &alice, &bob, "the last millisecond key 1 tags", NOW - DAY - 1);
    assert_eq!(last_ms[0].tag.key_id, 1);
    valid(
        "last-millisecond-of-a-tagging-period",
        "tag_until_ms is exclusive: key 1 tags at tag_until_ms - 1, key 2 from tag_until_ms",
        report(&bob, last_ms, 2, 15),
        2,
    );
    let mut elsewhere_conv = dialogue(&bob);
    elsewhere_conv[0] = msg("other", 1, &alice, &bob, "from another conversation", t);
    valid(
        "context-from-another-conversation",
        "a verified copy from another conversation of the same reporter: the order is refused (out-of-order covers other conversations and recipients too)",
        report(&bob, elsewhere_conv, 2, 16),
        2,
    );

    // Invalid envelopes and reports.
    let r = report(&bob, dialogue(&bob), 2, 20);
    let good = seal(&r, 2);
    let mut invalid = |name: &str, description: &str, envelope: Vec<u8>, submitter: &Party, now: u64| {
        let case = report_case(name, description, envelope, submitter, now, None);
        assert!(case.0.starts_with("invalid/"), "{name} must be refused");
        out.push(case);
    };
    invalid(
        "not-an-envelope",
        "random bytes",
        b"GET / HTTP/1.1\r\n\r\n this is not a report envelope at all......".to_vec(),
        &bob,
        NOW,
    );
    let mut v1 = good.clone();
    v1[9] = 1;
    invalid("unsupported-version", "a version 1 header", v1, &bob, NOW);
    let mut unknown = good.clone();
    unknown[13] = 9;
    invalid("unknown-report-key", "sealed to report key 9, which the server does not have", unknown, &bob, NOW);
    invalid("expired-report-key", "sealed to report key 1 after its window ended", seal(&r, 1), &bob, NOW + 2 * DAY);
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    invalid("decrypt", "one bit of the ciphertext flipped", flipped, &bob, NOW);
    let encoded = encode_report(&r).unwrap();
    let mut dirty = padded(&encoded);
    *dirty.last_mut().unwrap() = 1;
    invalid("padding-not-zero", "a padding byte is not zero", seal_raw(&header(2, 2), &dirty, REPORT_IKM_2), &bob, NOW);
    let mut short = padded(&encoded);
    short.truncate(short.len() - 1);
    invalid(
        "padding-wrong-size",
        "the padded plaintext is not the Padmé size",
        seal_raw(&header(2, 2), &short, REPORT_IKM_2),
        &bob,
        NOW,
    );
    let mut trailing = encoded.clone();
    trailing.push(0);
    invalid(
        "trailing-bytes",
        "a byte after the encoded report",
        seal_raw(&header(2, 2), &padded(&trailing), REPORT_IKM_2),
        &bob,
        NOW,
    );
    let mut reason = encoded.clone();
    let at = 4 + 16 + 4 + 3 + 4 + 5;
    assert_eq!(reason[at], 3, "the reason byte of bob/phone's report");
    reason[at] = 9;
    invalid("unknown-reason", "reason code 9", seal_raw(&header(2, 2), &padded(&reason), REPORT_IKM_2), &bob, NOW);
    let mut nul = encoded.clone();
    let i = 4 + 16 + 4 + 2;
    assert_eq!(nul[i], b'b');
    nul[i] = 0;
    invalid(
        "nul-in-id",
        "a NUL byte in the reporter's user id",
        seal_raw(&header(2, 2), &padded(&nul), REPORT_IKM_2),
        &bob,
        NOW,
    );
    let mut index = r.clone();
    index.reported = 3;
    let bytes = encode_report_unchecked(&index);
    invalid(
        "reported-index-out-of-range",
        "the reported index names no message",
        seal_raw(&header(2, 2), &padded(&bytes), REPORT_IKM_2),
        &bob,
        NOW,
    );
    invalid("reporter-mismatch", "eve submits a report that names bob (leaked openings)", good.clone(), &eve, NOW);
    let as_eve = report(&eve, dialogue(&bob), 2, 21);
    invalid(
        "leaked-openings",
        "eve submits bob's leaked copies as her own report: not addressed to her",
        seal(&as_eve, 2),
        &eve,
        NOW,
    );
    let mut worse = r.clone();
    worse.messages[2].opening.as_mut().unwrap().body =
        Body { text: "worse".into(), attachments: vec![] }.encode().unwrap();
    invalid("reported-body-edited", "the reporter edits the reported message", seal(&worse, 2), &bob, NOW);
    let mut renumbered = r.clone();
    renumbered.messages[2].delivery.sequence = 9;
    invalid("reported-sequence-edited", "the reporter renumbers the reported message", seal(&renumbered, 2), &bob, NOW);
    invalid("retention-ended", "verified after the platform key's retention", good.clone(), &bob, NOW + 92 * DAY);
    invalid(
        "retention-ends-exactly",
        "verified at exactly verify_until_ms of the reported message's key",
        good.clone(),
        &bob,
        NOW + 91 * DAY,
    );
    let mut past_skew = r.clone();
    past_skew.messages[2] = msg("dm", 3, &alice, &bob, "one millisecond too far ahead", NOW + 300_001);
    invalid("timestamp-past-skew-limit", "a timestamp 300001 ms ahead of now", seal(&past_skew, 2), &bob, NOW);
    invalid(
        "report-key-window-ends-exactly",
        "sealed to report key 1 and opened at exactly its open_until_ms",
        seal(&r, 1),
        &bob,
        NOW + DAY,
    );
    let mut tiny = header(2, 2);
    tiny.extend_from_slice(&[0u8; 47]);
    invalid(
        "envelope-too-short",
        "a valid header followed by 47 bytes: shorter than header + enc + AEAD tag (62 bytes)",
        tiny,
        &bob,
        NOW,
    );
    let mut ahead = r.clone();
    ahead.messages[2] = msg("dm", 3, &alice, &bob, "from the future", NOW + HOUR);
    invalid("future-timestamp", "a timestamp an hour ahead of the verifier's clock", seal(&ahead, 2), &bob, NOW);
    let mut forged = r.clone();
    forged.messages[2].tag.key_id = 7;
    invalid("unknown-platform-key", "a tag naming platform key 7", seal(&forged, 2), &bob, NOW);
    let mut zero = r.clone();
    zero.messages[2].tag.mac = [0; 32];
    invalid("forged-tag", "a made-up tag", seal(&zero, 2), &bob, NOW);
    let mut unopened = r.clone();
    unopened.messages[2].opening = None;
    invalid("reported-unopened", "the reported message carries no opening", seal(&unopened, 2), &bob, NOW);
    let mut swapped = report(&bob, vec![pic.clone()], 0, 22);
    swapped.messages[0].opening.as_mut().unwrap().attachments[0].plaintext = b"another picture".to_vec();
    invalid("attachment-swapped", "an attachment plaintext other than the committed one", seal(&swapped, 2), &bob, NOW);
    let mut elsewhere = report(&bob, vec![pic], 0, 23);
    elsewhere.messages[0].opening.as_mut().unwrap().attachments[0].reference[0] ^= 1;
    invalid(
        "attachment-not-committed",
        "an attachment whose reference is not in the committed body",
        seal(&elsewhere, 2),
        &bob,
        NOW,
    );

    // FMB1 bodies.
    let refs = [
        AttachmentRef { key: [1; 32], nonce: [2; 12], plaintext_sha256: [3; 32] },
        AttachmentRef { key: [4; 32], nonce: [5; 12], plaintext_sha256: [6; 32] },
    ];
    let body = Body {
        text: "héllo".into(),
        attachments: vec![("image/png".into(), refs[0].clone()), ("application/octet-stream".into(), refs[1].clone())],
    };
    let bytes = body.encode().unwrap();
    out.push(("valid/fmb1-two-attachments.json".into(), json!({
        "name": "fmb1-two-attachments", "description": "an FMB1 body with non-ASCII text and two attachments", "kind": "fmb1", "expected": "valid",
        "body": hex::encode(&bytes), "text": body.text,
        "attachments": body.attachments.iter().map(|(t, r)| json!({"media_type": t, "reference": hex::encode(r.to_bytes())})).collect::<Vec<_>>(),
    })));
    let mut spaced = bytes.clone();
    let at = bytes.windows(9).position(|w| w == b"image/png").unwrap();
    spaced[at + 5] = b' ';
    let mut extra = bytes.clone();
    extra.push(0);
    for (name, description, b) in [
        ("fmb1-space-in-media-type", "a media type with a space (only 0x21..0x7E are allowed)", spaced),
        ("fmb1-trailing-byte", "a byte after the last attachment", extra),
        ("fmb1-truncated", "the last attachment reference cut short", bytes[..bytes.len() - 1].to_vec()),
    ] {
        assert!(Body::decode(&b).is_err(), "{name}");
        out.push((format!("invalid/{name}.json"), json!({"name": name, "description": description, "kind": "fmb1", "expected": "invalid", "reason": "malformed-body", "body": hex::encode(b)})));
    }

    // Delivery MAC and device key.
    let master = [0x77u8; 32];
    let m = msg("dm", 1, &alice, &bob, "hi", t);
    let key = DeviceKey::derive(&master, &bob).unwrap();
    let mac = mac_delivery(&key, &m.tag, &m.commitment, &m.delivery).unwrap();
    out.push(("valid/delivery-mac.json".into(), json!({
        "name": "delivery-mac", "description": "bob's device key from the platform's master secret, and the MAC of his copy", "kind": "delivery-mac", "expected": "valid",
        "device_master": hex::encode(master), "device": party_json(&bob), "device_key": hex::encode(key.as_bytes()),
        "key_id": m.tag.key_id, "tag": hex::encode(m.tag.mac), "commitment": hex::encode(m.commitment.0),
        "delivery": hex::encode(m.delivery.encode().unwrap()), "mac": hex::encode(mac),
    })));
    let mut bad = mac;
    bad[0] ^= 1;
    assert!(frankly_franking::verify_delivery(&key, &m.tag, &m.commitment, &m.delivery, &bad).is_err());
    out.push(("invalid/delivery-mac-altered.json".into(), json!({
        "name": "delivery-mac-altered", "description": "the same copy with one bit of its MAC flipped", "kind": "delivery-mac", "expected": "invalid", "reason": "delivery-mac",
        "device_master": hex::encode(master), "device": party_json(&bob), "device_key": hex::encode(key.as_bytes()),
        "key_id": m.tag.key_id, "tag": hex::encode(m.tag.mac), "commitment": hex::encode(m.commitment.0),
        "delivery": hex::encode(m.delivery.encode().unwrap()), "mac": hex::encode(bad),
    })));
    let sizes: Vec<Value> = [0usize, 1, 2, 3, 9, 100, 1000, 4096, 65_537, 1_000_000, 16 << 20, 32 << 20]
        .iter()
        .map(|&l| json!([l, padme(l)]))
        .collect();
    out.push((
        "valid/padme.json".into(),
        json!({"name": "padme", "description": "Padmé sizes", "kind": "padme", "expected": "valid", "sizes": sizes}),
    ));
    out
}

fn tag_with(key_id: u32, c: &Commitment, d: &DeliveryContext) -> PlatformTag {
    let mut only = Keyring::new();
    let (_, secret, _) = platform_keys().into_iter().find(|(id, _, _)| *id == key_id).unwrap();
    only.insert(
        PlatformKey::new(
            key_id,
            secret,
            KeyWindow { tag_from_ms: 0, tag_until_ms: u64::MAX - 1, verify_until_ms: u64::MAX },
        )
        .unwrap(),
    );
    tag(&only, c, d).unwrap()
}

/// The FRP2 bytes of a report that `encode_report` would refuse (its
/// reported index is out of range): encoded with a valid index, then patched.
fn encode_report_unchecked(r: &Report) -> Vec<u8> {
    let mut ok = r.clone();
    ok.reported = 0;
    let mut bytes = encode_report(&ok).unwrap();
    let at = 4 + 16 + (4 + r.reporter.user_id.len()) + (4 + r.reporter.device_id.len()) + 1 + 4 + r.note.len();
    bytes[at..at + 2].copy_from_slice(&r.reported.to_be_bytes());
    bytes
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/franking")
}

#[test]
fn vectors_are_what_this_implementation_generates() {
    let cases: BTreeMap<String, Value> = cases().into_iter().collect();
    let bless = std::env::var_os("FRANKLY_BLESS").is_some();
    for sub in ["valid", "invalid"] {
        std::fs::create_dir_all(dir().join(sub)).unwrap();
        for entry in std::fs::read_dir(dir().join(sub)).unwrap() {
            let name = format!("{sub}/{}", entry.unwrap().file_name().to_string_lossy());
            if !cases.contains_key(&name) {
                assert!(bless, "{name} is not generated by this test (stale?)");
                std::fs::remove_file(dir().join(&name)).unwrap();
            }
        }
    }
    for (name, value) in &cases {
        let text = serde_json::to_string_pretty(value).unwrap() + "\n";
        let path = dir().join(name);
        if bless {
            std::fs::write(&path, &text).unwrap();
        } else {
            let on_disk =
                std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{name} missing: run with FRANKLY_BLESS=1"));
            assert_eq!(on_disk, text, "{name} differs from what the implementation generates");
        }
    }
    let valid = cases.keys().filter(|k| k.starts_with("valid/")).count();
    assert!(valid >= 15 && cases.len() - valid >= 20, "{valid} valid, {} invalid", cases.len() - valid);
}
