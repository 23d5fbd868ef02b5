//! `docs/report-vectors.json`: a sealed report with fixed keys and fixed HPKE
//! randomness (the ephemeral key is RFC 9180 `DeriveKeyPair(ikmE)`), so
//! another implementation can reproduce the envelope byte for byte.
//! `FRANKLY_BLESS=1` rewrites the file.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::convert::Infallible;

use frankly_franking::{Commitment, DeliveryContext, FrankingKey, Keyring, MessageContext, PlatformKey, commit, tag};
use frankly_report::{
    HPKE_INFO, Reason, Report, ReportedMessage, ServerKeyPair, open_and_verify, seal_report_with_rng,
};
use hpke::rand_core::{TryCryptoRng, TryRng};
use serde_json::{Value, json};

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

fn keyring() -> Keyring {
    let mut k = Keyring::new();
    k.insert(PlatformKey::new(7, [0xa5; 32], 0, u64::MAX));
    k
}

fn message(i: u8, sender: &str, previous: Option<Commitment>, body: &str) -> ReportedMessage {
    let key = FrankingKey::from_bytes([i; 32]);
    let context = MessageContext {
        conversation_id: "conversation-1".into(),
        sender_id: sender.into(),
        message_id: format!("m-{i}"),
        sequence: 0,
        previous,
    };
    let commitment = commit(&key, &context, body.as_bytes()).unwrap();
    let delivery = DeliveryContext {
        sender_id: sender.into(),
        conversation_id: "conversation-1".into(),
        timestamp_ms: 1_800_000_000_000 + u64::from(i),
        server_message_id: format!("srv-{i}"),
    };
    let tag = tag(&keyring(), &commitment, &delivery).unwrap();
    ReportedMessage {
        body: body.as_bytes().to_vec(),
        franking_key: (&key).into(),
        commitment,
        context,
        delivery,
        tag,
        attachments: Vec::new(),
    }
}

fn path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/report-vectors.json")
}

#[test]
fn sealed_report_vector_is_reproduced() {
    let server_ikm = b"frankly report vector: server key";
    let server = ServerKeyPair::derive(server_ikm);
    let first = message(1, "alice@example.org", None, "you again?");
    let reported = message(2, "mallory@example.org", Some(first.commitment), "a threat, reported");
    let report = Report {
        version: 1,
        report_id: "00112233445566778899aabbccddeeff".into(),
        reporter_id: "alice@example.org".into(),
        reason: Reason::Violence,
        note: "he threatened me".into(),
        messages: vec![first, reported],
        evidence: Vec::new(),
    };
    let ikm_e = [0x42u8; 32];
    let envelope = seal_report_with_rng(&report, server.public(), &mut FixedBytes(ikm_e.to_vec(), 0)).unwrap();
    let computed = json!({
        "description": "frankly report envelope v1: HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305; envelope = header || enc || ciphertext; aad = header; see docs/franking.md",
        "server_ikm": hex::encode(server_ikm),
        "server_public_key": hex::encode(server.public().to_bytes()),
        "info": hex::encode(HPKE_INFO),
        "ephemeral_ikm": hex::encode(ikm_e),
        "header": hex::encode(&envelope[..10]),
        "report_json": String::from_utf8(serde_json::to_vec(&report).unwrap()).unwrap(),
        "enc": hex::encode(&envelope[10..42]),
        "ciphertext": hex::encode(&envelope[42..]),
        "envelope": hex::encode(&envelope),
    });
    if std::env::var_os("FRANKLY_BLESS").is_some() {
        std::fs::write(path(), serde_json::to_string_pretty(&computed).unwrap() + "\n").unwrap();
    }
    let published: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    assert_eq!(computed, published, "the v1 envelope is frozen");
    let verified = open_and_verify(&envelope, &server, &keyring(), &mut HashSet::new()).unwrap();
    assert_eq!(verified.report(), &report);
}
