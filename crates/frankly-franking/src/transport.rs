//! Carrying a franked message through an AEAD-based E2EE channel: the
//! committing-AEAD pattern "CtE1" (Grubbs, Lu and Ristenpart, CRYPTO 2017).
//!
//! The E2EE plaintext is `k_f || encoded context || body`; the commitment `c`
//! travels in the clear beside the ciphertext (the platform tags it) and is
//! the AEAD's associated data, so a ciphertext is bound to one `c`. After
//! decryption the recipient recomputes `c` from what it decrypted
//! ([`crate::receive`]): a sender who commits to one body and encrypts another
//! is refused, so everything accepted can be reported.
//!
//! This module shows the pattern with ChaCha20-Poly1305 and a 32-byte message
//! key from whatever ratchet the messenger runs; protocols without associated
//! data (Olm) carry `c` inside the plaintext and compare it after decryption,
//! which `frankly-client` does.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};

use crate::FrankingError;
use crate::encoding::MAX_ID_BYTES;
use crate::frank::{AcceptedMessage, Commitment, MessageContext, commit, receive};
use crate::keys::FrankingKey;

/// A franked message as it travels: commitment in the clear, the rest sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedMessage {
    /// `c`, tagged by the platform and authenticated as associated data.
    pub commitment: Commitment,
    /// AEAD nonce.
    pub nonce: [u8; 12],
    /// `AEAD(k_msg, nonce, k_f || context || body, ad = c)`.
    pub ciphertext: Vec<u8>,
}

/// The E2EE plaintext of a franked message, `k_f || encoded context ||
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
    plaintext.extend_from_slice(&context.encode()?);
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

/// Decrypts with `c` as associated data, parses `k_f || context || body`,
/// and accepts only if the commitment opens and names the authenticated peer.
pub fn open_message(
    message_key: &[u8; 32],
    sealed: &SealedMessage,
    authenticated_peer: &str,
    conversation_id: &str,
) -> Result<OpenedMessage, FrankingError> {
    let plaintext = zeroize::Zeroizing::new(
        ChaCha20Poly1305::new(message_key.into())
            .decrypt(&sealed.nonce.into(), Payload { msg: &sealed.ciphertext, aad: &sealed.commitment.0 })
            .map_err(|_| FrankingError::Decrypt)?,
    );
    open_franked_plaintext(&plaintext, &sealed.commitment, authenticated_peer, conversation_id)
}

/// Checks a decrypted franked plaintext against the commitment that came
/// with it: recomputes `c` from the franking key, context and body inside,
/// and refuses the message unless it matches, the committed sender is the
/// authenticated peer and the conversation is the one it was delivered in
/// ([`receive`]). Malformed plaintexts are refused, never a panic.
pub fn open_franked_plaintext(
    plaintext: &[u8],
    commitment: &Commitment,
    authenticated_peer: &str,
    conversation_id: &str,
) -> Result<OpenedMessage, FrankingError> {
    let (k_f, rest) = plaintext.split_first_chunk::<32>().ok_or(FrankingError::MalformedPlaintext("too short"))?;
    let franking_key = FrankingKey::from_bytes(*k_f);
    let (context, body) = decode_context(rest)?;
    let accepted = receive(commitment, &franking_key, &context, body, authenticated_peer, conversation_id)?;
    Ok(OpenedMessage { accepted, franking_key, body: body.to_vec() })
}

/// Parses an encoded [`MessageContext`] from the front of `bytes`.
fn decode_context(bytes: &[u8]) -> Result<(MessageContext, &[u8]), FrankingError> {
    fn string(b: &[u8]) -> Result<(String, &[u8]), FrankingError> {
        let (len, rest) = b.split_first_chunk::<4>().ok_or(FrankingError::MalformedPlaintext("truncated length"))?;
        let len = u32::from_be_bytes(*len) as usize;
        if len > MAX_ID_BYTES || len > rest.len() {
            return Err(FrankingError::MalformedPlaintext("identifier length out of range"));
        }
        let (s, rest) = rest.split_at(len);
        let s = std::str::from_utf8(s).map_err(|_| FrankingError::MalformedPlaintext("identifier is not UTF-8"))?;
        Ok((s.to_string(), rest))
    }
    let (conversation_id, b) = string(bytes)?;
    let (sender_id, b) = string(b)?;
    let (message_id, b) = string(b)?;
    let (sequence, b) = b.split_first_chunk::<8>().ok_or(FrankingError::MalformedPlaintext("truncated sequence"))?;
    let (flag, b) = b.split_first().ok_or(FrankingError::MalformedPlaintext("truncated previous flag"))?;
    let (previous, b) = match flag {
        0 => (None, b),
        1 => {
            let (c, b) = b.split_first_chunk::<32>().ok_or(FrankingError::MalformedPlaintext("truncated previous"))?;
            (Some(Commitment(*c)), b)
        }
        _ => return Err(FrankingError::MalformedPlaintext("bad previous flag")),
    };
    let context =
        MessageContext { conversation_id, sender_id, message_id, sequence: u64::from_be_bytes(*sequence), previous };
    Ok((context, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> MessageContext {
        MessageContext {
            conversation_id: "c".into(),
            sender_id: "alice".into(),
            message_id: "m1".into(),
            sequence: 4,
            previous: Some(Commitment([3; 32])),
        }
    }

    #[test]
    fn round_trip() {
        let sealed = seal_message(&[5; 32], [1; 12], &context(), b"hello").unwrap();
        let opened = open_message(&[5; 32], &sealed, "alice", "c").unwrap();
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
        plaintext.extend_from_slice(&context().encode().unwrap());
        plaintext.extend_from_slice(b"abusive");
        let ciphertext = ChaCha20Poly1305::new(&[5; 32].into())
            .encrypt(&[1; 12].into(), Payload { msg: &plaintext, aad: &c.0 })
            .unwrap();
        let sealed = SealedMessage { commitment: c, nonce: [1; 12], ciphertext };
        assert_eq!(open_message(&[5; 32], &sealed, "alice", "c").unwrap_err(), FrankingError::CommitmentMismatch);
        // Swapping in another commitment breaks the AEAD instead.
        let swapped = SealedMessage { commitment: Commitment([0; 32]), ..sealed };
        assert_eq!(open_message(&[5; 32], &swapped, "alice", "c").unwrap_err(), FrankingError::Decrypt);
    }

    #[test]
    fn malformed_plaintexts_are_refused_without_panicking() {
        for len in 0..120 {
            let plaintext: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let c = Commitment([0; 32]);
            let ciphertext = ChaCha20Poly1305::new(&[5; 32].into())
                .encrypt(&[1; 12].into(), Payload { msg: &plaintext, aad: &c.0 })
                .unwrap();
            let sealed = SealedMessage { commitment: c, nonce: [1; 12], ciphertext };
            assert!(open_message(&[5; 32], &sealed, "alice", "c").is_err());
        }
    }
}
