//! Coop's action webhooks as Coop signs them, with an implementation
//! outside Rust: Python's `cryptography` makes a 2048-bit RSA key, writes
//! its public key as Coop shows it (SPKI, the base64 on one line) and signs
//! a body with RSASSA-PKCS1-v1_5 over SHA-256, base64 in the header.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::process::Command;

use frankly_coop::{CoopError, CoopKey, verify_action};

const SIGN: &str = r#"
import base64, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
body = open(sys.argv[1], "rb").read()
sig = key.sign(body, padding.PKCS1v15(), hashes.SHA256())
print("-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der).decode() + "\n-----END PUBLIC KEY-----")
print(base64.b64encode(sig).decode())
"#;

/// Coop's body for a moderator's removal: compact, keys sorted, as Coop sends it.
const BODY: &str = r#"{"action":{"id":"act-remove"},"actorEmail":"mod@example.org","actorNote":"see message 3","creator":{"id":"mallory","typeId":"tUser"},"custom":{"reason":"Threats","severity":"high"},"decisionReason":"Threats","item":{"id":"frankly:00ff:2","typeId":"tMessage","typeName":"Message"},"policies":[{"id":"pol-harassment","name":"Harassment","penalty":"HIGH"}],"rules":[],"userStrikeCount":3}"#;

/// (PEM, signature) from Python, or `None` (with a notice) without it.
fn python_signs(body: &[u8]) -> Option<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.json");
    std::fs::write(&file, body).unwrap();
    let out = match Command::new("python3").arg("-c").arg(SIGN).arg(&file).output() {
        Ok(out) if out.status.success() => out,
        other => {
            assert!(
                std::env::var_os("FRANKLY_REQUIRE_SERVICES").is_none_or(|v| v != "1"),
                "python3 with cryptography (Debian python3-cryptography) is needed: {other:?}"
            );
            eprintln!("python3 with cryptography not available; skipped");
            return None;
        }
    };
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    Some((lines[..3].join("\n"), lines[3].to_string()))
}

#[test]
fn coop_signed_webhooks_verify_and_anything_else_is_refused() {
    let Some((pem, signature)) = python_signs(BODY.as_bytes()) else { return };
    assert_eq!(pem.lines().nth(1).unwrap().len(), 392, "Coop's one-line base64 SPKI of an RSA-2048 key");
    let key = CoopKey::parse(pem.as_bytes()).unwrap();
    let action = verify_action(&key, BODY.as_bytes(), Some(&signature)).unwrap();
    assert_eq!((action.action.id.as_str(), action.item.id.as_str()), ("act-remove", "frankly:00ff:2"));
    assert_eq!(action.actor_email.as_deref(), Some("mod@example.org"));
    assert_eq!(action.policies[0].name, "Harassment");
    assert_eq!(action.user_strike_count, Some(3));
    // The same key wrapped at 64 columns reads the same.
    let b64 = pem.lines().nth(1).unwrap();
    let wrapped: Vec<String> = b64.as_bytes().chunks(64).map(|c| String::from_utf8(c.to_vec()).unwrap()).collect();
    let pem64 = format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", wrapped.join("\n"));
    verify_action(&CoopKey::parse(pem64.as_bytes()).unwrap(), BODY.as_bytes(), Some(&signature)).unwrap();

    // A body changed by one byte, re-serialised, unsigned, or signed by another key.
    let tampered = BODY.replace("act-remove", "act-removf");
    assert_eq!(verify_action(&key, tampered.as_bytes(), Some(&signature)).unwrap_err(), CoopError::BadSignature);
    let pretty = serde_json::to_vec_pretty(&serde_json::from_str::<serde_json::Value>(BODY).unwrap()).unwrap();
    assert_eq!(verify_action(&key, &pretty, Some(&signature)).unwrap_err(), CoopError::BadSignature);
    assert_eq!(verify_action(&key, BODY.as_bytes(), None).unwrap_err(), CoopError::Unsigned);
    assert_eq!(verify_action(&key, BODY.as_bytes(), Some("not base64!")).unwrap_err(), CoopError::BadSignature);
    let (other, _) = python_signs(b"x").unwrap();
    let other = CoopKey::parse(other.as_bytes()).unwrap();
    assert_eq!(verify_action(&other, BODY.as_bytes(), Some(&signature)).unwrap_err(), CoopError::BadSignature);
    // A signed body that is not an action is refused after the signature.
    let (pem, sig) = python_signs(b"{\"hello\":1}").unwrap();
    let k = CoopKey::parse(pem.as_bytes()).unwrap();
    assert!(matches!(verify_action(&k, b"{\"hello\":1}", Some(&sig)), Err(CoopError::BadBody(_))));
    assert!(matches!(
        CoopKey::parse(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
        Err(CoopError::BadKey(_))
    ));
}
