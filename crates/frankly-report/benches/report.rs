//! Report seal and open-and-verify with 5 and 30 context messages, and the
//! envelope sizes of issue 15: 5 and 30 messages of 200 bytes with a 1 MB
//! photo, binary v2 against the same report as hex JSON (v1's encoding),
//! and the Padmé overhead.

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

use std::collections::HashSet;

use criterion::{Criterion, criterion_group, criterion_main};
use frankly_franking::{
    Body, DeliveryContext, FrankingKey, KeyWindow, Keyring, MessageContext, Party, PlatformKey, commit,
    encrypt_attachment, tag,
};
use frankly_report::{
    KeyBytes, Opening, Reason, Report, ReportKeyring, ReportedAttachment, ReportedMessage, ServerKeyPair,
    encode_report, open_and_verify, seal_report,
};

const NOW: u64 = 1_800_000_000_000;

fn keyring() -> Keyring {
    let mut k = Keyring::new();
    let w = KeyWindow { tag_from_ms: 0, tag_until_ms: u64::MAX - 1, verify_until_ms: u64::MAX };
    k.insert(PlatformKey::new(1, [0x33; 32], w).unwrap());
    k
}

fn bob() -> Party {
    Party::new("bob@example.org", "laptop-2")
}

/// `n` franked messages with 200-byte texts, alternating sides, as bob's
/// device keeps them; the last one carries `photo` if given.
fn conversation(n: usize, photo: Option<&[u8]>) -> Vec<ReportedMessage> {
    (0..n)
        .map(|i| {
            let sender = if i % 2 == 0 { Party::new("alice@example.org", "phone-1") } else { bob() };
            let key = FrankingKey::generate().unwrap();
            let mut body =
                Body { text: String::from_utf8(vec![b'a' + (i % 26) as u8; 200]).unwrap(), attachments: vec![] };
            let mut attachments = Vec::new();
            if let (Some(p), true) = (photo, i == n - 1) {
                let (reference, _) = encrypt_attachment(p).unwrap();
                attachments.push(ReportedAttachment { reference: reference.to_bytes(), plaintext: p.to_vec() });
                body.attachments.push(("image/jpeg".into(), reference));
            }
            let body = body.encode().unwrap();
            let message_id = format!("m-{i}");
            let context = MessageContext {
                conversation_id: "conversation-1".into(),
                sender: sender.clone(),
                message_id: message_id.clone(),
            };
            let commitment = commit(&key, &context, &body).unwrap();
            let delivery = DeliveryContext {
                conversation_id: "conversation-1".into(),
                sequence: i as u64 + 1,
                sender,
                recipient: bob(),
                timestamp_ms: NOW - 1000 + i as u64,
                server_message_id: format!("srv-{i}"),
            };
            let tag = tag(&keyring(), &commitment, &delivery).unwrap();
            ReportedMessage {
                commitment,
                delivery,
                tag,
                opening: Some(Opening { franking_key: KeyBytes::from(&key), message_id, body, attachments }),
            }
        })
        .collect()
}

fn reports(c: &mut Criterion) {
    let server = ServerKeyPair::generate().unwrap();
    let mut keys = ReportKeyring::new();
    keys.insert(1, ServerKeyPair::derive(b"bench report key"), u64::MAX);
    let public = ServerKeyPair::derive(b"bench report key").public().clone();
    drop(server);
    let ring = keyring();
    let mut group = c.benchmark_group("report");
    for context in [5usize, 30] {
        let report = Report::new(&bob(), Reason::Harassment, "note", conversation(context + 1, None), context).unwrap();
        group.bench_function(format!("seal/{context}-context"), |b| {
            b.iter(|| seal_report(&report, 1, &public).unwrap())
        });
        let envelope = seal_report(&report, 1, &public).unwrap();
        group.bench_function(format!("open_and_verify/{context}-context"), |b| {
            b.iter(|| open_and_verify(&envelope, &keys, &ring, &bob(), NOW, &mut HashSet::new()).unwrap())
        });
    }
    group.finish();
    let photo: Vec<u8> = (0..1_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    println!("messages | photo | encoded v2 | envelope v2 (padded) | padding | hex JSON (v1 encoding) | v2/v1");
    for n in [5usize, 30] {
        for with_photo in [false, true] {
            let report = Report::new(
                &bob(),
                Reason::Harassment,
                "note",
                conversation(n, with_photo.then_some(&photo[..])),
                n - 1,
            )
            .unwrap();
            let encoded = encode_report(&report).unwrap().len();
            let envelope = seal_report(&report, 1, &public).unwrap().len();
            let json = serde_json::to_vec(&report).unwrap().len();
            let padding = envelope - encoded - 14 - 32 - 16 - 4;
            println!(
                "{n} | {} | {encoded} | {envelope} | {padding} ({:.2} %) | {json} | {:.3}",
                if with_photo { "1 MB" } else { "none" },
                padding as f64 * 100.0 / encoded as f64,
                envelope as f64 / json as f64
            );
        }
    }
}

criterion_group!(benches, reports);
criterion_main!(benches);
