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

/// When a platform key tags and how long its tags verify: it tags
/// messages timestamped in `[tag_from_ms, tag_until_ms)`, and verifiers
/// accept its tags until `verify_until_ms` (the end of its retention), after
/// which it is destroyed. The two periods are separate: a rotated-out key
/// verifies old messages but never a fresh timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyWindow {
    /// First timestamp the key tags.
    pub tag_from_ms: u64,
    /// First timestamp it no longer tags.
    pub tag_until_ms: u64,
    /// When verification with it ends.
    pub verify_until_ms: u64,
}

impl KeyWindow {
    /// Checks `tag_from < tag_until <= verify_until`.
    pub fn check(&self) -> Result<(), FrankingError> {
        if self.tag_from_ms < self.tag_until_ms && self.tag_until_ms <= self.verify_until_ms {
            Ok(())
        } else {
            Err(FrankingError::InvalidKeyWindow(*self))
        }
    }

    /// Whether the key tags messages timestamped `timestamp_ms`.
    pub fn tags_at(&self, timestamp_ms: u64) -> bool {
        self.tag_from_ms <= timestamp_ms && timestamp_ms < self.tag_until_ms
    }
}

/// One platform tag key: `K_p[key_id]`, exactly 32 bytes, with its window.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PlatformKey {
    secret: [u8; 32],
    #[zeroize(skip)]
    id: u32,
    #[zeroize(skip)]
    window: KeyWindow,
}

impl PlatformKey {
    /// Key `id` with its window (checked).
    pub fn new(id: u32, secret: [u8; 32], window: KeyWindow) -> Result<Self, FrankingError> {
        window.check()?;
        Ok(PlatformKey { secret, id, window })
    }

    /// The key id, sent with every tag.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The key's window.
    pub fn window(&self) -> KeyWindow {
        self.window
    }

    pub(crate) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }
}

impl fmt::Debug for PlatformKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformKey").field("id", &self.id).field("window", &self.window).finish_non_exhaustive()
    }
}

/// The platform's tag keys by id.
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

    /// The key ids held.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.keys().copied()
    }

    /// The key that tags a message timestamped `timestamp_ms`: among the
    /// keys whose tagging period covers it, the one that started last.
    pub fn tagging_key(&self, timestamp_ms: u64) -> Result<&PlatformKey, FrankingError> {
        self.keys
            .values()
            .filter(|k| k.window.tags_at(timestamp_ms))
            .max_by_key(|k| (k.window.tag_from_ms, k.id))
            .ok_or(FrankingError::NoActiveKey { timestamp_ms })
    }

    /// The key a tag names, checked at `now_ms`: known, retention not
    /// ended, the message's timestamp inside its tagging period and not
    /// more than [`crate::MAX_CLOCK_SKEW_MS`] ahead of `now_ms`.
    pub fn verifying_key(&self, id: u32, timestamp_ms: u64, now_ms: u64) -> Result<&PlatformKey, FrankingError> {
        let key = self.keys.get(&id).ok_or(FrankingError::UnknownKeyId(id))?;
        if now_ms >= key.window.verify_until_ms {
            return Err(FrankingError::RetentionEnded { key_id: id, verify_until_ms: key.window.verify_until_ms });
        }
        if !key.window.tags_at(timestamp_ms) {
            return Err(FrankingError::KeyNotValidAt { key_id: id, timestamp_ms });
        }
        if timestamp_ms > now_ms.saturating_add(crate::MAX_CLOCK_SKEW_MS) {
            return Err(FrankingError::FutureTimestamp { timestamp_ms, now_ms });
        }
        Ok(key)
    }

    /// Drops the keys whose retention ended at or before `now_ms`; returns
    /// their ids so the caller can destroy every stored copy.
    pub fn retire(&mut self, now_ms: u64) -> Vec<u32> {
        let gone: Vec<u32> = self.keys.values().filter(|k| k.window.verify_until_ms <= now_ms).map(|k| k.id).collect();
        for id in &gone {
            self.keys.remove(id);
        }
        gone
    }
}
