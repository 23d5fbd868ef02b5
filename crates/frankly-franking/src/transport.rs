//! Carrying a franked message through an AEAD-based E2EE channel: the
//! committing-AEAD pattern "CtE1" (Grubbs, Lu and Ristenpart, CRYPTO 2017).
//!
//! The E2EE plaintext is `k_f || lp(message_id) || body`; the commitment `c`
//! travels in the clear beside the ciphertext (the platform tags it) and is
//! the AEAD's associated data, so a ciphertext is bound to one `c`. The
//! conversation and sender are not in the plaintext: the recipient takes
//! them from the platform's delivery context, which the E2EE layer's
//! authenticated peer must match. After decryption the recipient recomputes
//! `c` from what it decrypted ([`crate::receive`]): a sender who commits to one body and encrypts another
//! is refused, so everything accepted can be reported.
//!
//! This module shows the pattern with ChaCha20-Poly1305 and a 32-byte message
//! key from whatever ratchet the messenger runs; protocols without associated
//! data (Olm) carry `c` inside the plaintext and compare it after decryption,
//! which `frankly-client` does.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};

use crate::FrankingError;
use crate::encoding::{Reader, put_lp};
use crate::frank::{AcceptedMessage, Commitment, DeliveryContext, MessageContext, Party, commit, receive};
use crate::keys::FrankingKey;

/// A franked message as it travels: commitment in the clear, the rest sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedMessage {
    /// `c`, tagged by the platform and authenticated as associated data.
    pub commitment: Commitment,
    /// AEAD nonce.
    pub nonce: [u8; 12],
    /// `AEAD(k_msg, nonce, k_f || lp(message_id) || body, ad = c)`.
    pub ciphertext: Vec<u8>,
}

/// The E2EE plaintext of a franked message, `k_f || lp(message_id) ||
/// body`, and the commitment to hand to the E2EE layer as associated data
/// (or to carry beside the ciphertext and compare after decryption, for
/// protocols without associated data). `k_f` is fresh for every message.
pub struct FrankedPlaintext {
    /// `c`, which the platform tags.
    pub commitment: Commitment,
    /// What the E2EE layer encrypts; zeroized on drop.
    pub plaintext: zeroize::Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for FrankedPlaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrankedPlaintext").field("commitment", &self.commitment).finish_non_exhaustive()
    }
}

/// Commits to `body` in `context` under a fresh franking key and lays out
/// the E2EE plaintext.
pub fn frank_plaintext(context: &MessageContext, body: &[u8]) -> Result<FrankedPlaintext, FrankingError> {
    let k_f = FrankingKey::generate()?;
    let commitment = commit(&k_f, context, body)?;
    let mut plaintext = zeroize::Zeroizing::new(k_f.as_bytes().to_vec());
    put_lp(&mut plaintext, context.message_id.as_bytes());
    plaintext.extend_from_slice(body);
    Ok(FrankedPlaintext { commitment, plaintext })
}

/// Commits to `body` under a fresh franking key and seals it under the
/// ratchet's message key.
pub fn seal_message(
    message_key: &[u8; 32],
    nonce: [u8; 12],
    context: &MessageContext,
    body: &[u8],
) -> Result<SealedMessage, FrankingError> {
    let franked = frank_plaintext(context, body)?;
    let ciphertext = ChaCha20Poly1305::new(message_key.into())
        .encrypt(&nonce.into(), Payload { msg: &franked.plaintext, aad: &franked.commitment.0 })
        .map_err(|_| FrankingError::Internal)?;
    Ok(SealedMessage { commitment: franked.commitment, nonce, ciphertext })
}

/// A decrypted and accepted message: the proof, the franking key (for a
/// report) and the body.
#[derive(Debug)]
pub struct OpenedMessage {
    /// Proof that the commitment opened and the sender is the peer.
    pub accepted: AcceptedMessage,
    /// The franking key, kept for reporting.
    pub franking_key: FrankingKey,
    /// The body.
    pub body: Vec<u8>,
}

/// Decrypts with `c` as associated data, parses `k_f || lp(message_id) ||
/// body`, and accepts only if [`receive`] does.
pub fn open_message(
    message_key: &[u8; 32],
    sealed: &SealedMessage,
    delivery: &DeliveryContext,
    authenticated_peer: &Party,
    me: &Party,
) -> Result<OpenedMessage, FrankingError> {
    let plaintext = zeroize::Zeroizing::new(
        ChaCha20Poly1305::new(message_key.into())
            .decrypt(&sealed.nonce.into(), Payload { msg: &sealed.ciphertext, aad: &sealed.commitment.0 })
            .map_err(|_| FrankingError::Decrypt)?,
    );
    open_franked_plaintext(&plaintext, &sealed.commitment, delivery, authenticated_peer, me)
}

/// Checks a decrypted franked plaintext against the commitment and
/// delivery that came with it ([`receive`]): the delivery is addressed to
/// `me` from the authenticated peer, and the commitment opens under the
/// context it names. Malformed plaintexts are refused, never a panic.
pub fn open_franked_plaintext(
    plaintext: &[u8],
    commitment: &Commitment,
    delivery: &DeliveryContext,
    authenticated_peer: &Party,
    me: &Party,
) -> Result<OpenedMessage, FrankingError> {
    let mut r = Reader::new(plaintext);
    let franking_key = FrankingKey::from_bytes(r.array::<32>("franking key").map_err(malformed)?);
    let message_id = r.id("message_id")?;
    let body = r.rest();
    let accepted = receive(commitment, &franking_key, &message_id, body, delivery, authenticated_peer, me)?;
    Ok(OpenedMessage { accepted, franking_key, body: body.to_vec() })
}

fn malformed(e: FrankingError) -> FrankingError {
    match e {
        FrankingError::Malformed(m) => FrankingError::MalformedPlaintext(m),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> MessageContext {
        MessageContext { conversation_id: "c".into(), sender: Party::new("alice", "a1"), message_id: "m1".into() }
    }

    fn delivery() -> DeliveryContext {
        DeliveryContext {
            conversation_id: "c".into(),
            sequence: 4,
            sender: Party::new("alice", "a1"),
            recipient: Party::new("bob", "b1"),
            timestamp_ms: 1,
            server_message_id: "s1".into(),
        }
    }

    #[test]
    fn round_trip() {
        let sealed = seal_message(&[5; 32], [1; 12], &context(), b"hello").unwrap();
        let opened =
            open_message(&[5; 32], &sealed, &delivery(), &Party::new("alice", "a1"), &Party::new("bob", "b1")).unwrap();
        assert_eq!(opened.body, b"hello");
        assert_eq!(opened.accepted.context(), &context());
    }

    #[test]
    fn commit_to_one_body_and_encrypt_another() {
        // A malicious sender: c commits to an innocent body, the ciphertext
        // (validly, with c as associated data) carries another.
        let k_f = FrankingKey::from_bytes([8; 32]);
        let c = commit(&k_f, &context(), b"innocent").unwrap();
        let mut plaintext = k_f.as_bytes().to_vec();
        put_lp(&mut plaintext, b"m1");
        plaintext.extend_from_slice(b"abusive");
        let ciphertext = ChaCha20Poly1305::new(&[5; 32].into())
            .encrypt(&[1; 12].into(), Payload { msg: &plaintext, aad: &c.0 })
            .unwrap();
        let sealed = SealedMessage { commitment: c, nonce: [1; 12], ciphertext };
        let (peer, me) = (Party::new("alice", "a1"), Party::new("bob", "b1"));
        assert_eq!(
            open_message(&[5; 32], &sealed, &delivery(), &peer, &me).unwrap_err(),
            FrankingError::CommitmentMismatch
        );
        // Swapping in another commitment breaks the AEAD instead.
        let swapped = SealedMessage { commitment: Commitment([0; 32]), ..sealed };
        assert_eq!(open_message(&[5; 32], &swapped, &delivery(), &peer, &me).unwrap_err(), FrankingError::Decrypt);
    }

    #[test]
    fn malformed_plaintexts_are_refused_without_panicking() {
        let (peer, me) = (Party::new("alice", "a1"), Party::new("bob", "b1"));
        for len in 0..120 {
            let plaintext: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let c = Commitment([0; 32]);
            let ciphertext = ChaCha20Poly1305::new(&[5; 32].into())
                .encrypt(&[1; 12].into(), Payload { msg: &plaintext, aad: &c.0 })
                .unwrap();
            let sealed = SealedMessage { commitment: c, nonce: [1; 12], ciphertext };
            assert!(open_message(&[5; 32], &sealed, &delivery(), &peer, &me).is_err());
        }
    }
}
