//! Secret keys: the per-message franking key and the platform's tag keys.

use std::collections::BTreeMap;
use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::FrankingError;

/// The per-message franking key `k_f`: 32 fresh random bytes, carried inside
/// the end-to-end encrypted plaintext and never derived from ratchet keys.
/// Zeroized on drop; its `Debug` does not print it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct FrankingKey([u8; 32]);

impl FrankingKey {
    /// A fresh key from the operating system's random generator.
    pub fn generate() -> Result<Self, FrankingError> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).map_err(|e| FrankingError::Random(e.to_string()))?;
        Ok(FrankingKey(k))
    }

    /// A key from bytes received in a decrypted message or a report.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        FrankingKey(bytes)
    }

    /// The key bytes, to put in the E2EE plaintext or a report.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for FrankingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FrankingKey(..)")
    }
}

/// One platform tag key: `K_p[key_id]`, with the time window in which the
/// delivery service tags with it and the window in which tags made with it
/// are still accepted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PlatformKey {
    secret: [u8; 32],
    #[zeroize(skip)]
    id: u32,
    #[zeroize(skip)]
    active_from_ms: u64,
    #[zeroize(skip)]
    accept_until_ms: u64,
}

impl PlatformKey {
    /// A key with id `id`, used from `active_from_ms` and accepted for tags
    /// with timestamps before `accept_until_ms` (Unix milliseconds).
    pub fn new(id: u32, secret: [u8; 32], active_from_ms: u64, accept_until_ms: u64) -> Self {
        PlatformKey { secret, id, active_from_ms, accept_until_ms }
    }

    /// The key id, sent with every tag.
    pub fn id(&self) -> u32 {
        self.id
    }

    pub(crate) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// Whether a tag timestamped `timestamp_ms` may have been made with this key.
    pub fn covers(&self, timestamp_ms: u64) -> bool {
        self.active_from_ms <= timestamp_ms && timestamp_ms < self.accept_until_ms
    }
}

impl fmt::Debug for PlatformKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformKey")
            .field("id", &self.id)
            .field("active_from_ms", &self.active_from_ms)
            .field("accept_until_ms", &self.accept_until_ms)
            .finish_non_exhaustive()
    }
}

/// The platform's tag keys by id: the delivery service tags with the newest
/// key active at a message's timestamp; verifiers accept any key whose window
/// covers the tag's timestamp and whose retention has not ended.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: BTreeMap<u32, PlatformKey>,
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key, replacing any key with the same id.
    pub fn insert(&mut self, key: PlatformKey) {
        self.keys.insert(key.id, key);
    }

    /// The key to tag a message at `timestamp_ms` with: the most recently
    /// activated key that covers it.
    pub fn signing_key(&self, timestamp_ms: u64) -> Result<&PlatformKey, FrankingError> {
        self.keys
            .values()
            .filter(|k| k.covers(timestamp_ms))
            .max_by_key(|k| (k.active_from_ms, k.id))
            .ok_or(FrankingError::NoActiveKey { timestamp_ms })
    }

    /// The key a tag names, if it is known and covers the tag's timestamp.
    pub fn verifying_key(&self, id: u32, timestamp_ms: u64) -> Result<&PlatformKey, FrankingError> {
        let key = self.keys.get(&id).ok_or(FrankingError::UnknownKeyId(id))?;
        if !key.covers(timestamp_ms) {
            return Err(FrankingError::KeyNotValidAt { key_id: id, timestamp_ms });
        }
        Ok(key)
    }

    /// Drops the keys whose retention ended before `now_ms`: their tags can
    /// no longer be verified, which bounds how old a reportable message is.
    pub fn retire(&mut self, now_ms: u64) {
        self.keys.retain(|_, k| k.accept_until_ms > now_ms);
    }
}
