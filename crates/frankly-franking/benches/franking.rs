//! Sender commit + platform tag + recipient check for a 1 KB message.

#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use frankly_franking::{
    DeliveryContext, FrankingKey, Keyring, MessageContext, PlatformKey, commit, receive, tag, verify_tag,
};

fn franking(c: &mut Criterion) {
    let body = vec![0x61u8; 1024];
    let key = FrankingKey::from_bytes([7; 32]);
    let context = MessageContext {
        conversation_id: "conversation-1".into(),
        sender_id: "alice@example.org".into(),
        message_id: "m-0001".into(),
        sequence: 41,
        previous: None,
    };
    let delivery = DeliveryContext {
        sender_id: "alice@example.org".into(),
        conversation_id: "conversation-1".into(),
        timestamp_ms: 1_800_000_000_000,
        server_message_id: "srv-1".into(),
    };
    let mut ring = Keyring::new();
    ring.insert(PlatformKey::new(1, [9; 32], 0, u64::MAX));
    let mut group = c.benchmark_group("franking");
    group.throughput(Throughput::Bytes(1024));
    group.bench_function("commit/1KB", |b| b.iter(|| commit(&key, &context, &body).unwrap()));
    let cm = commit(&key, &context, &body).unwrap();
    group.bench_function("tag", |b| b.iter(|| tag(&ring, &cm, &delivery).unwrap()));
    group.bench_function("receive/1KB", |b| {
        b.iter(|| receive(&cm, &key, &context, &body, "alice@example.org", "conversation-1").unwrap())
    });
    group.bench_function("commit+tag+receive/1KB", |b| {
        b.iter(|| {
            let cm = commit(&key, &context, &body).unwrap();
            let t = tag(&ring, &cm, &delivery).unwrap();
            receive(&cm, &key, &context, &body, "alice@example.org", "conversation-1").unwrap();
            t
        })
    });
    let t = tag(&ring, &cm, &delivery).unwrap();
    group.bench_function("verify_tag", |b| b.iter(|| verify_tag(&ring, &t, &cm, &delivery).unwrap()));
    group.finish();
}

criterion_group!(benches, franking);
criterion_main!(benches);
