//! Attachments: encrypted separately, referenced from the committed body by
//! key, nonce and the SHA-256 of their *plaintext*.
//!
//! ChaCha20-Poly1305 is not key-committing: one ciphertext can decrypt
//! validly under two keys to two different plaintexts (Dodis, Grubbs,
//! Ristenpart and Woodage, CRYPTO 2018, "invisible salamanders", which broke
//! Facebook's attachment reporting). So the body commits to the plaintext's
//! hash, and [`open_attachment`] accepts a decryption only if it hashes to
//! that value: whatever key is tried, only the committed plaintext is ever
//! reported. Never commit only to an attachment key or to its ciphertext, and
//! never deduplicate attachments by ciphertext.

use chacha20poly1305::aead::Aead;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::FrankingError;

/// Bytes of an encoded [`AttachmentRef`]: key, nonce, plaintext hash.
pub const ATTACHMENT_REF_BYTES: usize = 32 + 12 + 32;

/// What the message body carries for one attachment. The key is zeroized on
/// drop and not printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct AttachmentRef {
    /// ChaCha20-Poly1305 key of the attachment.
    pub key: [u8; 32],
    /// Its nonce.
    pub nonce: [u8; 12],
    /// SHA-256 of the attachment's plaintext.
    pub plaintext_sha256: [u8; 32],
}

impl std::fmt::Debug for AttachmentRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AttachmentRef {{ plaintext_sha256: {}, .. }}", hex::encode(self.plaintext_sha256))
    }
}

impl AttachmentRef {
    /// `key || nonce || plaintext_sha256`, to put in the committed body.
    pub fn to_bytes(&self) -> [u8; ATTACHMENT_REF_BYTES] {
        let mut out = [0u8; ATTACHMENT_REF_BYTES];
        out[..32].copy_from_slice(&self.key);
        out[32..44].copy_from_slice(&self.nonce);
        out[44..].copy_from_slice(&self.plaintext_sha256);
        out
    }

    /// Reads the encoding of [`AttachmentRef::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FrankingError> {
        if bytes.len() != ATTACHMENT_REF_BYTES {
            return Err(FrankingError::AttachmentRef(bytes.len()));
        }
        let mut r = AttachmentRef { key: [0; 32], nonce: [0; 12], plaintext_sha256: [0; 32] };
        r.key.copy_from_slice(&bytes[..32]);
        r.nonce.copy_from_slice(&bytes[32..44]);
        r.plaintext_sha256.copy_from_slice(&bytes[44..]);
        Ok(r)
    }
}

/// Encrypts an attachment under a fresh random key and nonce.
pub fn encrypt_attachment(plaintext: &[u8]) -> Result<(AttachmentRef, Vec<u8>), FrankingError> {
    let mut r = AttachmentRef { key: [0; 32], nonce: [0; 12], plaintext_sha256: Sha256::digest(plaintext).into() };
    getrandom::fill(&mut r.key).map_err(|e| FrankingError::Random(e.to_string()))?;
    getrandom::fill(&mut r.nonce).map_err(|e| FrankingError::Random(e.to_string()))?;
    let cipher = ChaCha20Poly1305::new(&r.key.into());
    let ciphertext = cipher.encrypt(&r.nonce.into(), plaintext).map_err(|_| FrankingError::Internal)?;
    Ok((r, ciphertext))
}

/// Decrypts an attachment with the key its committed reference names and
/// accepts the plaintext only if it has the committed hash.
pub fn open_attachment(reference: &AttachmentRef, ciphertext: &[u8]) -> Result<Vec<u8>, FrankingError> {
    let cipher = ChaCha20Poly1305::new(&reference.key.into());
    let plaintext =
        cipher.decrypt(&reference.nonce.into(), ciphertext).map_err(|_| FrankingError::AttachmentDecrypt)?;
    let hash: [u8; 32] = Sha256::digest(&plaintext).into();
    if !bool::from(hash.ct_eq(&reference.plaintext_sha256)) {
        return Err(FrankingError::AttachmentHashMismatch);
    }
    Ok(plaintext)
}
