//! `docs/franking-vectors.json`: every intermediate value of commitments and
//! tags for fixed keys, so that other implementations can check themselves.
//! This test recomputes each vector; `FRANKLY_BLESS=1` rewrites the file.

#![allow(clippy::unwrap_used)]

use frankly_franking::{
    COMMIT_DOMAIN, Commitment, DeliveryContext, FrankingKey, Keyring, MessageContext, PlatformKey, TAG_DOMAIN, commit,
    tag,
};
use serde_json::{Value, json};

fn path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/franking-vectors.json")
}

fn vector(
    name: &str,
    k_f: [u8; 32],
    context: MessageContext,
    body: &[u8],
    platform_key: [u8; 32],
    key_id: u32,
    delivery: DeliveryContext,
) -> Value {
    let key = FrankingKey::from_bytes(k_f);
    let encoded_context = context.encode().unwrap();
    let mut commit_input = COMMIT_DOMAIN.to_vec();
    commit_input.extend_from_slice(&encoded_context);
    commit_input.extend_from_slice(body);
    let c = commit(&key, &context, body).unwrap();
    let mut ring = Keyring::new();
    ring.insert(PlatformKey::new(key_id, platform_key, 0, u64::MAX));
    let t = tag(&ring, &c, &delivery).unwrap();
    let mut tag_input = TAG_DOMAIN.to_vec();
    tag_input.extend_from_slice(&delivery.encode(key_id, &c).unwrap());
    json!({
        "name": name,
        "franking_key": hex::encode(k_f),
        "context": context,
        "body": hex::encode(body),
        "encoded_context": hex::encode(&encoded_context),
        "commitment_input": hex::encode(&commit_input),
        "commitment": hex::encode(c.0),
        "platform_key_id": key_id,
        "platform_key": hex::encode(platform_key),
        "delivery": delivery,
        "tag_input": hex::encode(&tag_input),
        "tag": hex::encode(t.mac),
    })
}

fn vectors() -> Value {
    let first = MessageContext {
        conversation_id: "conversation-1".into(),
        sender_id: "alice@example.org".into(),
        message_id: "m-0001".into(),
        sequence: 0,
        previous: None,
    };
    let delivery = |sender: &str, ts: u64, id: &str| DeliveryContext {
        sender_id: sender.into(),
        conversation_id: "conversation-1".into(),
        timestamp_ms: ts,
        server_message_id: id.into(),
    };
    let v1 = vector(
        "first message, no previous",
        [0x01; 32],
        first.clone(),
        b"Hello, Bob!",
        [0xa5; 32],
        7,
        delivery("alice@example.org", 1_800_000_000_123, "srv-1"),
    );
    let c1: [u8; 32] = {
        let mut b = [0u8; 32];
        hex::decode_to_slice(v1["commitment"].as_str().unwrap(), &mut b).unwrap();
        b
    };
    let second = MessageContext {
        sender_id: "bob@example.org".into(),
        message_id: "m-0002".into(),
        sequence: 0,
        previous: Some(Commitment(c1)),
        ..first.clone()
    };
    let v2 = vector(
        "reply, chained to the first",
        std::array::from_fn(|i| i as u8),
        second,
        "Hi Alice 👋".as_bytes(),
        [0xa5; 32],
        7,
        delivery("bob@example.org", 1_800_000_001_000, "srv-2"),
    );
    let empty = MessageContext { sequence: 1, message_id: String::new(), ..first };
    let v3 = vector(
        "empty body and message id",
        [0xff; 32],
        empty,
        b"",
        [0x5a; 32],
        4_294_967_295,
        delivery("alice@example.org", 0, ""),
    );
    json!({
        "description": "frankly franking v1 test vectors; encodings in docs/franking.md. Hex strings; context and delivery as JSON.",
        "commit_domain": hex::encode(COMMIT_DOMAIN),
        "tag_domain": hex::encode(TAG_DOMAIN),
        "vectors": [v1, v2, v3],
    })
}

#[test]
fn vectors_match_the_published_file() {
    let computed = vectors();
    if std::env::var_os("FRANKLY_BLESS").is_some() {
        std::fs::write(path(), serde_json::to_string_pretty(&computed).unwrap() + "\n").unwrap();
    }
    let published: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    assert_eq!(computed, published, "franking output changed: the v1 encoding is frozen");
}
