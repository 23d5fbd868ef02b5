//! Wrapping keys for the secrets the server keeps in its database (platform
//! tag keys, report keys), held outside the database in a file that only
//! ever moves forward.
//!
//! Each kind of key (`purpose`) has a one-way chain of states
//! `S_1, S_2, …` with `S_{i+1} = HMAC-SHA256(S_i, "frankly key chain v1 next")`.
//! Key `i` is stored in the database encrypted (ChaCha20-Poly1305, random
//! nonce) under `W_i = HMAC-SHA256(S_i, "frankly key chain v1 wrap" || purpose)`,
//! with the purpose, the id and the key's fixed metadata as associated data,
//! so a database writer can neither read a key nor move it to another id or
//! widen its window. The file holds only `(floor, S_floor)`, where `floor` is
//! the lowest id still in use: when the lowest key retires, the file moves to
//! the next state and the old one is overwritten. From then on no copy of the
//! database, however old the backup, can unwrap a retired key, because
//! `S_floor` cannot be run backwards. Keys above the floor stay readable from
//! backups (restoring one loses nothing live).
//!
//! Several instances each hold a copy of the file (made on the first
//! instance's first start and copied, like `device-master.secret`). They move
//! forward on their own to the database's lowest live id, so they agree
//! without talking to each other.
//!
//! Written here because no crate offers a ratcheting wrapping key: it is a
//! symmetric KDF chain (as in Signal's sending chains) over the workspace's
//! HMAC and AEAD crates.

use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, Payload};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::ServerError;

type HmacSha256 = Hmac<Sha256>;

const NEXT: &[u8] = b"frankly key chain v1 next";
const WRAP: &[u8] = b"frankly key chain v1 wrap";
const FILE_MAGIC: &str = "frankly-key-chain-v1";
/// Most states a chain moves forward in one step (a damaged floor in the
/// database cannot make the server spin).
pub const MAX_ADVANCE: u64 = 1 << 20;
const NONCE_LEN: usize = 12;

/// One chain, loaded from its file.
pub(crate) struct KeyChain {
    path: PathBuf,
    purpose: &'static str,
    floor: u64,
    state: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for KeyChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyChain").field("purpose", &self.purpose).field("floor", &self.floor).finish_non_exhaustive()
    }
}

fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(part);
    }
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

impl KeyChain {
    /// Loads the chain in `path`. A missing file is made (floor 1, a fresh
    /// state) only when `may_create` says the database holds no key of this
    /// purpose; otherwise the keys in the database could never be read, and
    /// that is an error naming the file to copy.
    pub(crate) fn load(path: &Path, purpose: &'static str, may_create: bool) -> Result<KeyChain, ServerError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                let bad = || {
                    ServerError::Config(format!(
                        "{} is not a frankly key chain file ({FILE_MAGIC} {purpose} FLOOR HEX)",
                        path.display()
                    ))
                };
                let mut words = text.split_whitespace();
                if words.next() != Some(FILE_MAGIC) || words.next() != Some(purpose) {
                    return Err(bad());
                }
                let floor: u64 = words.next().and_then(|w| w.parse().ok()).filter(|f| *f >= 1).ok_or_else(bad)?;
                let mut state = Zeroizing::new([0u8; 32]);
                hex::decode_to_slice(words.next().ok_or_else(bad)?, state.as_mut()).map_err(|_| bad())?;
                if words.next().is_some() {
                    return Err(bad());
                }
                Ok(KeyChain { path: path.to_owned(), purpose, floor, state })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !may_create {
                    return Err(ServerError::Config(format!(
                        "{} is missing but the database holds {purpose} keys wrapped under it: copy it from \
                         another instance (or the machine that made it); without it those keys are lost",
                        path.display()
                    )));
                }
                let chain = KeyChain { path: path.to_owned(), purpose, floor: 1, state: crate::secrets::random32()? };
                chain.save()?;
                tracing::info!(file = %path.display(), purpose, "created a key chain");
                Ok(chain)
            }
            Err(e) => Err(ServerError::Config(format!("cannot read {}: {e}", path.display()))),
        }
    }

    /// The lowest id whose wrapping key this chain can still make.
    pub(crate) fn floor(&self) -> u64 {
        self.floor
    }

    /// Writes the file with mode 0600: a temporary file, synced, renamed
    /// over the old one, and the directory synced, so a crash leaves either
    /// the old state or the new one.
    fn save(&self) -> Result<(), ServerError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let tmp = self.path.with_extension("tmp");
        let io = |e: std::io::Error| ServerError::Config(format!("cannot write {}: {e}", self.path.display()));
        let _ = std::fs::remove_file(&tmp);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(io)?;
        let text = Zeroizing::new(format!(
            "{FILE_MAGIC} {} {} {}\n",
            self.purpose,
            self.floor,
            hex::encode(self.state.as_ref())
        ));
        file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
    }

    /// Moves the chain forward so that `floor` is the lowest id it can
    /// unwrap, destroying every earlier wrapping key. Never moves back.
    pub(crate) fn advance_to(&mut self, floor: u64) -> Result<(), ServerError> {
        if floor <= self.floor {
            return Ok(());
        }
        let steps = floor - self.floor;
        if steps > MAX_ADVANCE {
            return Err(ServerError::Internal(format!(
                "{} key chain asked to move {steps} steps (limit {MAX_ADVANCE})",
                self.purpose
            )));
        }
        let mut state = self.state.clone();
        for _ in 0..steps {
            state = hmac(&state, &[NEXT]);
        }
        let old = std::mem::replace(&mut self.state, state);
        let old_floor = std::mem::replace(&mut self.floor, floor);
        if let Err(e) = self.save() {
            self.state = old;
            self.floor = old_floor;
            return Err(e);
        }
        tracing::info!(purpose = self.purpose, floor, "key chain moved forward: earlier keys are destroyed");
        Ok(())
    }

    /// The wrapping key of key `id`, or `None` if `id` is below the floor
    /// (retired: its wrapping key is gone).
    fn wrapping_key(&self, id: u64) -> Result<Option<Zeroizing<[u8; 32]>>, ServerError> {
        if id < self.floor {
            return Ok(None);
        }
        let steps = id - self.floor;
        if steps > MAX_ADVANCE {
            return Err(ServerError::Internal(format!("{} key id {id} is too far ahead of the chain", self.purpose)));
        }
        let mut state = self.state.clone();
        for _ in 0..steps {
            state = hmac(&state, &[NEXT]);
        }
        Ok(Some(hmac(&state, &[WRAP, self.purpose.as_bytes()])))
    }

    fn aad(&self, id: u64, metadata: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(self.purpose.len() + 9 + metadata.len());
        aad.extend_from_slice(self.purpose.as_bytes());
        aad.push(0);
        aad.extend_from_slice(&id.to_be_bytes());
        aad.extend_from_slice(metadata);
        aad
    }

    /// Encrypts `secret` as key `id` with its fixed `metadata`:
    /// `nonce || ciphertext`.
    pub(crate) fn wrap(&self, id: u64, metadata: &[u8], secret: &[u8]) -> Result<Vec<u8>, ServerError> {
        let key = self
            .wrapping_key(id)?
            .ok_or_else(|| ServerError::Internal(format!("{} key {id} is below the chain's floor", self.purpose)))?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| ServerError::Internal(format!("randomness: {e}")))?;
        let aad = self.aad(id, metadata);
        let key: &[u8; 32] = &key;
        let ciphertext = ChaCha20Poly1305::new(key.into())
            .encrypt(&nonce.into(), Payload { msg: secret, aad: &aad })
            .map_err(|_| ServerError::Internal("key wrapping failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Decrypts key `id`. `Ok(None)`: the key is retired (below the floor).
    /// An error: the file does not belong to this database, or the row was
    /// altered.
    pub(crate) fn unwrap(
        &self,
        id: u64,
        metadata: &[u8],
        wrapped: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, ServerError> {
        let Some(key) = self.wrapping_key(id)? else {
            return Ok(None);
        };
        let altered = || {
            ServerError::Config(format!(
                "{} key {id} does not unwrap with {}: the file belongs to another database, or the row was altered",
                self.purpose,
                self.path.display()
            ))
        };
        if wrapped.len() < NONCE_LEN {
            return Err(altered());
        }
        let (nonce, ciphertext) = wrapped.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| altered())?;
        let aad = self.aad(id, metadata);
        let key: &[u8; 32] = &key;
        ChaCha20Poly1305::new(key.into())
            .decrypt(&nonce.into(), Payload { msg: ciphertext, aad: &aad })
            .map(|plain| Some(Zeroizing::new(plain)))
            .map_err(|_| altered())
    }
}

impl Drop for KeyChain {
    fn drop(&mut self) {
        self.state.zeroize();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_retired_key_cannot_be_unwrapped_from_an_old_copy_of_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tag.chain");
        let mut chain = KeyChain::load(&path, "tag", true).unwrap();
        let one = chain.wrap(1, b"meta1", &[1u8; 32]).unwrap();
        let two = chain.wrap(2, b"meta2", &[2u8; 32]).unwrap();
        assert_eq!(chain.unwrap(1, b"meta1", &one).unwrap().unwrap().as_slice(), &[1u8; 32]);
        // The row cannot move to another id or change its metadata.
        assert!(chain.unwrap(2, b"meta2", &one).is_err());
        assert!(chain.unwrap(1, b"meta-wider", &one).is_err());
        chain.advance_to(2).unwrap();
        assert!(chain.unwrap(1, b"meta1", &one).unwrap().is_none(), "retired");
        // Reloaded from the file (as after a restart, or on another instance
        // that copied the file after the move), key 1 is still gone, key 2 is not.
        let reloaded = KeyChain::load(&path, "tag", false).unwrap();
        assert_eq!(reloaded.floor(), 2);
        assert!(reloaded.unwrap(1, b"meta1", &one).unwrap().is_none());
        assert_eq!(reloaded.unwrap(2, b"meta2", &two).unwrap().unwrap().as_slice(), &[2u8; 32]);
        // Never backwards.
        let mut reloaded = reloaded;
        reloaded.advance_to(1).unwrap();
        assert_eq!(reloaded.floor(), 2);
    }

    #[test]
    fn a_missing_file_is_an_error_when_keys_exist_and_a_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.chain");
        let err = KeyChain::load(&path, "report", false).unwrap_err().to_string();
        assert!(err.contains("report.chain") && err.contains("copy it"), "{err}");
        std::fs::write(&path, "frankly-key-chain-v1 tag 1 00").unwrap();
        let err = KeyChain::load(&path, "report", true).unwrap_err().to_string();
        assert!(err.contains("not a frankly key chain file"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tag.chain");
        let mut chain = KeyChain::load(&path, "tag", true).unwrap();
        chain.advance_to(5).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
