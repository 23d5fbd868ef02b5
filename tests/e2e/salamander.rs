//! The invisible salamander: one ChaCha20-Poly1305 ciphertext that decrypts
//! validly under two keys to two different plaintexts, built here the way
//! Len, Grubbs and Ristenpart describe ("Partitioning Oracle Attacks", USENIX
//! Security 2021): Poly1305 is linear in the ciphertext blocks, so with two
//! free blocks the two tags can be made equal by solving a 2x2 linear system
//! over GF(2^130 - 5). Then franking must report the committed plaintext and
//! refuse the other: checked here on the franking functions alone, and in
//! `adversaries.rs` through devices, the relay and the moderation server.

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20poly1305::aead::Aead;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use frankly_franking::{
    AttachmentRef, FrankingError, FrankingKey, MessageContext, commit, open_attachment, verify_commitment,
};
use num_bigint::BigUint;
use sha2::{Digest, Sha256};

fn p() -> BigUint {
    (BigUint::from(1u8) << 130u32) - BigUint::from(5u8)
}

fn le(bytes: &[u8]) -> BigUint {
    BigUint::from_bytes_le(bytes)
}

fn to_le16(x: &BigUint) -> [u8; 16] {
    let mut out = [0u8; 16];
    let b = x.to_bytes_le();
    out[..b.len()].copy_from_slice(&b);
    out
}

/// Poly1305 `(r, s)` and the message keystream for `key`, `nonce`.
fn chacha_parts(key: &[u8; 32], nonce: &[u8; 12], len: usize) -> (BigUint, BigUint, Vec<u8>) {
    let mut c = ChaCha20::new(key.into(), nonce.into());
    let mut block0 = [0u8; 32];
    c.apply_keystream(&mut block0);
    // Clamp r (RFC 8439 2.5): top four bits of bytes 3, 7, 11, 15 and bottom
    // two bits of bytes 4, 8, 12 cleared.
    let mut r = block0[..16].to_vec();
    for i in [3, 7, 11, 15] {
        r[i] &= 15;
    }
    for i in [4, 8, 12] {
        r[i] &= 252;
    }
    c.seek(64u64);
    let mut stream = vec![0u8; len];
    c.apply_keystream(&mut stream);
    (le(&r), le(&block0[16..]), stream)
}

fn pow(base: &BigUint, e: usize) -> BigUint {
    base.modpow(&BigUint::from(e), &p())
}

fn inverse(x: &BigUint) -> BigUint {
    x.modpow(&(p() - BigUint::from(2u8)), &p())
}

/// A ciphertext-with-tag that ChaCha20-Poly1305 accepts under both keys.
pub(crate) fn two_key_ciphertext(k1: &[u8; 32], k2: &[u8; 32], nonce: &[u8; 12]) -> Vec<u8> {
    const BLOCKS: usize = 8;
    let p = p();
    let two128: BigUint = BigUint::from(1u8) << 128u32;
    let (r1, s1, _) = chacha_parts(k1, nonce, 0);
    let (r2, s2, _) = chacha_parts(k2, nonce, 0);
    // Blocks 2.. are fixed; blocks 0 and 1 are solved for. The Poly1305 input
    // is the ciphertext blocks and one length block (no AAD): n = BLOCKS + 1.
    let mut blocks: Vec<[u8; 16]> = (0..BLOCKS).map(|i| [i as u8 * 17 + 3; 16]).collect();
    let mut length_block = [0u8; 16];
    length_block[8..].copy_from_slice(&((BLOCKS * 16) as u64).to_le_bytes());
    let n = BLOCKS + 1;
    for attempt in 0u32..1000 {
        // Target tag T; need acc_k = (T - s_k) mod 2^128, which is < p.
        let t = le(&Sha256::digest(attempt.to_le_bytes())[..16]);
        let a1 = (&t + &two128 - &s1) % &two128;
        let a2 = (&t + &two128 - &s2) % &two128;
        // acc_k = sum_i (m_i + 2^128) r_k^(n - i), i from 0; unknown m_0, m_1.
        let rest = |r: &BigUint| {
            let mut sum = BigUint::from(0u8);
            for (i, b) in blocks.iter().enumerate() {
                let m = if i < 2 { two128.clone() } else { le(b) + &two128 };
                sum += m * pow(r, n - i);
            }
            sum += (le(&length_block) + &two128) * r;
            sum % &p
        };
        let (b1, b2) = (rest(&r1), rest(&r2));
        // [r1^n r1^(n-1); r2^n r2^(n-1)] [x; y] = [a1 - b1; a2 - b2]  (mod p)
        let (m11, m12, m21, m22) = (pow(&r1, n), pow(&r1, n - 1), pow(&r2, n), pow(&r2, n - 1));
        let v1 = (&a1 + &p - &b1) % &p;
        let v2 = (&a2 + &p - &b2) % &p;
        let det = (&m11 * &m22 + &p - (&m12 * &m21) % &p) % &p;
        let inv = inverse(&det);
        let x = ((&v1 * &m22 + &p - (&m12 * &v2) % &p) % &p * &inv) % &p;
        let y = ((&m11 * &v2 + &p - (&m21 * &v1) % &p) % &p * &inv) % &p;
        if x < two128 && y < two128 {
            blocks[0] = to_le16(&x);
            blocks[1] = to_le16(&y);
            let mut out: Vec<u8> = blocks.concat();
            out.extend_from_slice(&to_le16(&t));
            return out;
        }
    }
    panic!("no solution with blocks under 2^128 in 1000 attempts");
}

#[test]
fn one_ciphertext_two_keys_and_franking_reports_only_the_committed_plaintext() {
    let (k1, k2, nonce) = ([0x11u8; 32], [0x22u8; 32], [0x07u8; 12]);
    let ciphertext = two_key_ciphertext(&k1, &k2, &nonce);

    // The attack works on the AEAD alone: both keys accept, with different plaintexts.
    let p1 = ChaCha20Poly1305::new(&k1.into()).decrypt(&nonce.into(), ciphertext.as_slice()).unwrap();
    let p2 = ChaCha20Poly1305::new(&k2.into()).decrypt(&nonce.into(), ciphertext.as_slice()).unwrap();
    assert_ne!(p1, p2);
    assert_eq!(p1.len(), 128);

    // The sender commits to a body naming key 1 and the hash of plaintext 1.
    let committed = AttachmentRef { key: k1, nonce, plaintext_sha256: Sha256::digest(&p1).into() };
    let body = committed.to_bytes();
    let fk = FrankingKey::from_bytes([9; 32]);
    let context = MessageContext {
        conversation_id: "c".into(),
        sender: frankly_franking::Party::new("mallory", "phone"),
        message_id: "m".into(),
    };
    let c = commit(&fk, &context, &body).unwrap();

    // Recipient and moderator open the attachment from the committed body:
    // they see plaintext 1, whoever tries which key.
    let reference = AttachmentRef::from_bytes(&body).unwrap();
    assert_eq!(open_attachment(&reference, &ciphertext).unwrap(), p1);
    // Key 2 with the committed hash: decrypts, but to the other plaintext.
    let swapped = AttachmentRef { key: k2, ..reference.clone() };
    assert_eq!(open_attachment(&swapped, &ciphertext).unwrap_err(), FrankingError::AttachmentHashMismatch);
    // A body naming key 2 and plaintext 2 is not what was committed.
    let other = AttachmentRef { key: k2, nonce, plaintext_sha256: Sha256::digest(&p2).into() };
    assert_eq!(open_attachment(&other, &ciphertext).unwrap(), p2, "consistent on its own");
    assert_eq!(verify_commitment(&c, &fk, &context, &other.to_bytes()).unwrap_err(), FrankingError::CommitmentMismatch);
}

#[test]
fn attachments_round_trip_and_refuse_tampering() {
    let (r, mut ct) = frankly_franking::encrypt_attachment(b"holiday photo bytes").unwrap();
    assert_eq!(open_attachment(&r, &ct).unwrap(), b"holiday photo bytes");
    ct[0] ^= 1;
    assert_eq!(open_attachment(&r, &ct).unwrap_err(), FrankingError::AttachmentDecrypt);
    assert!(AttachmentRef::from_bytes(&[0; 75]).is_err());
    assert!(!format!("{r:?}").contains(&hex::encode(r.key)));
}
