//! Report seal and open-and-verify with 5 and 30 context messages.

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

use std::collections::HashSet;

use criterion::{Criterion, criterion_group, criterion_main};
use frankly_franking::{Commitment, DeliveryContext, FrankingKey, Keyring, MessageContext, PlatformKey, commit, tag};
use frankly_report::{Reason, Report, ReportedMessage, ServerKeyPair, open_and_verify, seal_report};

fn keyring() -> Keyring {
    let mut k = Keyring::new();
    k.insert(PlatformKey::new(1, [0x33; 32], 0, u64::MAX));
    k
}

/// `n` franked messages of about 200 bytes each.
fn conversation(n: usize) -> Vec<ReportedMessage> {
    let mut previous: Option<Commitment> = None;
    (0..n)
        .map(|i| {
            let sender = if i % 2 == 0 { "alice@example.org" } else { "bob@example.org" };
            let key = FrankingKey::generate().unwrap();
            let context = MessageContext {
                conversation_id: "conversation-1".into(),
                sender_id: sender.into(),
                message_id: format!("m-{i}"),
                sequence: (i / 2) as u64,
                previous,
            };
            let body = vec![b'a' + (i % 26) as u8; 200];
            let commitment = commit(&key, &context, &body).unwrap();
            let delivery = DeliveryContext {
                sender_id: sender.into(),
                conversation_id: "conversation-1".into(),
                timestamp_ms: 1_800_000_000_000 + i as u64,
                server_message_id: format!("srv-{i}"),
            };
            let tag = tag(&keyring(), &commitment, &delivery).unwrap();
            previous = Some(commitment);
            ReportedMessage {
                body,
                franking_key: (&key).into(),
                commitment,
                context,
                delivery,
                tag,
                attachments: Vec::new(),
            }
        })
        .collect()
}

fn reports(c: &mut Criterion) {
    let server = ServerKeyPair::generate().unwrap();
    let ring = keyring();
    let mut group = c.benchmark_group("report");
    for context in [5usize, 30] {
        let mut messages = conversation(context + 1);
        let reported = messages.pop().unwrap();
        let report = Report::new("bob@example.org", Reason::Harassment, "note", messages, reported).unwrap();
        group.bench_function(format!("seal/{context}-context"), |b| {
            b.iter(|| seal_report(&report, server.public()).unwrap())
        });
        let envelope = seal_report(&report, server.public()).unwrap();
        group.bench_function(format!("open_and_verify/{context}-context"), |b| {
            b.iter(|| open_and_verify(&envelope, &server, &ring, &mut HashSet::new()).unwrap())
        });
        println!("envelope with {context} context messages: {} bytes", envelope.len());
    }
    group.finish();
}

criterion_group!(benches, reports);
criterion_main!(benches);
