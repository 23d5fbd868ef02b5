//! Sender commit + platform tag + recipient check for a 1 KB message.

#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use frankly_franking::{
    DeliveryContext, FrankingKey, KeyWindow, Keyring, MessageContext, Party, PlatformKey, commit, receive, tag,
    verify_tag,
};

fn franking(c: &mut Criterion) {
    let body = vec![0x61u8; 1024];
    let key = FrankingKey::from_bytes([7; 32]);
    let (alice, bob) = (Party::new("alice@example.org", "phone-1"), Party::new("bob@example.org", "laptop-2"));
    let context =
        MessageContext { conversation_id: "conversation-1".into(), sender: alice.clone(), message_id: "m-0001".into() };
    let delivery = DeliveryContext {
        conversation_id: "conversation-1".into(),
        sequence: 41,
        sender: alice.clone(),
        recipient: bob.clone(),
        timestamp_ms: 1_800_000_000_000,
        server_message_id: "srv-1".into(),
    };
    let mut ring = Keyring::new();
    let window = KeyWindow { tag_from_ms: 0, tag_until_ms: u64::MAX - 1, verify_until_ms: u64::MAX };
    ring.insert(PlatformKey::new(1, [9; 32], window).unwrap());
    let now = 1_800_000_000_000;
    let mut group = c.benchmark_group("franking");
    group.throughput(Throughput::Bytes(1024));
    group.bench_function("commit/1KB", |b| b.iter(|| commit(&key, &context, &body).unwrap()));
    let cm = commit(&key, &context, &body).unwrap();
    group.bench_function("tag", |b| b.iter(|| tag(&ring, &cm, &delivery).unwrap()));
    group.bench_function("receive/1KB", |b| {
        b.iter(|| receive(&cm, &key, "m-0001", &body, &delivery, &alice, &bob).unwrap())
    });
    group.bench_function("commit+tag+receive/1KB", |b| {
        b.iter(|| {
            let cm = commit(&key, &context, &body).unwrap();
            let t = tag(&ring, &cm, &delivery).unwrap();
            receive(&cm, &key, "m-0001", &body, &delivery, &alice, &bob).unwrap();
            t
        })
    });
    let t = tag(&ring, &cm, &delivery).unwrap();
    group.bench_function("verify_tag", |b| b.iter(|| verify_tag(&ring, &t, &cm, &delivery, now).unwrap()));
    group.finish();
}

criterion_group!(benches, franking);
criterion_main!(benches);
