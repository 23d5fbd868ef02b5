//! The platform's franking tag keys, kept in the database (wrapped under
//! the tag key chain, [`crate::keychain`]) so that every instance tags and
//! verifies with the same keyring and a database dump alone cannot forge a
//! tag.
//!
//! A key tags for `key_rotation_hours` (its tagging period), then the next
//! key takes over; its tags verify until `key_retention_days` after the
//! tagging period ends (its retention), but only for timestamps inside the
//! tagging period. Then its row is deleted and the chain moves past it, so
//! no backup of the database can verify a tag made with it again: a bound on
//! how long anyone can prove what a sender said. Instances racing to rotate
//! insert the same next id; the database keeps one.

use std::sync::{Arc, Mutex, RwLock};

use frankly_franking::{KeyWindow, Keyring, PlatformKey};
use sqlx::Row;
use zeroize::Zeroizing;

use crate::ServerError;
use crate::db::Db;
use crate::keychain::KeyChain;
use crate::secrets::random32;

/// The file of the tag key chain, in the key directory.
pub const TAG_CHAIN_FILE: &str = "tag-keys.chain";

/// How far before its creation a key's tagging period starts, so a message
/// stamped by a device whose clock is a little behind is tagged on a
/// server's first start (the same bound as verification's clock skew).
pub const TAG_BACKDATE_MS: i64 = frankly_franking::MAX_CLOCK_SKEW_MS as i64;

/// The keyring in memory, reloaded from the database when it changes.
#[derive(Debug)]
pub struct PlatformKeys {
    rotation_ms: i64,
    retention_ms: i64,
    chain: Mutex<KeyChain>,
    state: RwLock<Arc<Loaded>>,
}

#[derive(Debug, Default)]
pub(crate) struct Loaded {
    keyring: Keyring,
    /// When the newest key stops tagging.
    current_until_ms: i64,
}

/// What the wrapping binds besides the id: the key's window, so a database
/// writer cannot widen it.
fn metadata(from: i64, until: i64, accept: i64) -> Vec<u8> {
    [from, until, accept].iter().flat_map(|v| v.to_be_bytes()).collect()
}

impl PlatformKeys {
    /// Loads the keys, making the chain file and the first key if there are
    /// none, and wrapping any plaintext key an older version left in
    /// `platform_keys`.
    pub async fn load(
        db: &Db,
        key_dir: &std::path::Path,
        rotation_hours: u64,
        retention_days: u64,
    ) -> Result<PlatformKeys, ServerError> {
        let stored: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM tag_keys").fetch_one(db.writer()).await?.try_get("n")?;
        let legacy: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM platform_keys").fetch_one(db.writer()).await?.try_get("n")?;
        let chain = KeyChain::load(&key_dir.join(TAG_CHAIN_FILE), "tag", stored == 0)?;
        let keys = PlatformKeys {
            rotation_ms: i64::try_from(rotation_hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX),
            retention_ms: i64::try_from(retention_days.saturating_mul(86_400_000)).unwrap_or(i64::MAX),
            chain: Mutex::new(chain),
            state: RwLock::new(Arc::new(Loaded::default())),
        };
        if legacy > 0 {
            keys.import_plaintext(db).await?;
        }
        keys.rotate_if_due(db, crate::now_ms()).await?;
        Ok(keys)
    }

    fn chain(&self) -> Result<std::sync::MutexGuard<'_, KeyChain>, ServerError> {
        self.chain.lock().map_err(|_| ServerError::Internal("tag key chain lock poisoned".into()))
    }

    /// Wraps the plaintext keys of schema version 2 into `tag_keys` and
    /// deletes them (SQLite is vacuumed, so no plaintext stays in free pages).
    async fn import_plaintext(&self, db: &Db) -> Result<(), ServerError> {
        let rows =
            sqlx::query("SELECT id, secret, active_from_ms, active_until_ms, accept_until_ms FROM platform_keys")
                .fetch_all(db.writer())
                .await?;
        let mut tx = db.writer().begin().await?;
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            let secret = Zeroizing::new(row.try_get::<Vec<u8>, _>("secret")?);
            let (from, until, accept): (i64, i64, i64) =
                (row.try_get("active_from_ms")?, row.try_get("active_until_ms")?, row.try_get("accept_until_ms")?);
            let wrapped = self.chain()?.wrap(positive(id)?, &metadata(from, until, accept), &secret)?;
            sqlx::query(
                "INSERT INTO tag_keys (id, wrapped, active_from_ms, active_until_ms, accept_until_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(wrapped)
            .bind(from)
            .bind(until)
            .bind(accept)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM platform_keys").execute(&mut *tx).await?;
        tx.commit().await?;
        if db.backend() == crate::db::Backend::Sqlite {
            sqlx::query("VACUUM").execute(db.writer()).await?;
        }
        tracing::info!(keys = rows.len(), "wrapped the plaintext tag keys of an older version");
        Ok(())
    }

    /// The keyring to verify with.
    pub fn keyring(&self) -> Arc<Keyring> {
        Arc::new(self.snapshot().keyring.clone())
    }

    fn snapshot(&self) -> Arc<Loaded> {
        self.state.read().map(|s| Arc::clone(&s)).unwrap_or_default()
    }

    /// The keyring to tag a message at `now_ms` with, rotating first if the
    /// current key's period has ended.
    pub(crate) async fn for_tagging(&self, db: &Db, now_ms: i64) -> Result<Arc<Loaded>, ServerError> {
        if self.snapshot().current_until_ms <= now_ms {
            self.rotate_if_due(db, now_ms).await?;
        }
        Ok(self.snapshot())
    }

    /// Adds the next key if the newest one's period has ended, then deletes
    /// keys whose retention has ended and reloads (which moves the chain
    /// past them). The new key comes first, so the newest id is never
    /// deleted and ids are never reused.
    pub async fn rotate_if_due(&self, db: &Db, now_ms: i64) -> Result<(), ServerError> {
        let newest = sqlx::query("SELECT id, active_until_ms FROM tag_keys ORDER BY id DESC LIMIT 1")
            .fetch_optional(db.writer())
            .await?;
        let floor = i64::try_from(self.chain()?.floor()).unwrap_or(i64::MAX);
        let (next_id, due, first) = match &newest {
            None => (floor, true, true),
            Some(row) => {
                let id: i64 = row.try_get("id")?;
                (id.saturating_add(1).max(floor), row.try_get::<i64, _>("active_until_ms")? <= now_ms, false)
            }
        };
        if due {
            let secret = random32()?;
            // The first key also covers a bounded clock skew before it was made.
            let from = if first { now_ms.saturating_sub(TAG_BACKDATE_MS) } else { now_ms };
            let until = now_ms.saturating_add(self.rotation_ms);
            let accept = until.saturating_add(self.retention_ms);
            let wrapped = self.chain()?.wrap(positive(next_id)?, &metadata(from, until, accept), secret.as_ref())?;
            let inserted = sqlx::query(
                "INSERT INTO tag_keys (id, wrapped, active_from_ms, active_until_ms, accept_until_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            )
            .bind(next_id)
            .bind(wrapped)
            .bind(from)
            .bind(until)
            .bind(accept)
            .execute(db.writer())
            .await?
            .rows_affected();
            if inserted == 1 {
                tracing::info!(key_id = next_id, "rotated the platform tag key");
            }
        }
        sqlx::query("DELETE FROM tag_keys WHERE accept_until_ms <= $1 AND id < (SELECT MAX(id) FROM tag_keys)")
            .bind(now_ms)
            .execute(db.writer())
            .await?;
        self.reload(db).await
    }

    async fn reload(&self, db: &Db) -> Result<(), ServerError> {
        let rows = sqlx::query(
            "SELECT id, wrapped, active_from_ms, active_until_ms, accept_until_ms FROM tag_keys ORDER BY id",
        )
        .fetch_all(db.writer())
        .await?;
        let mut loaded = Loaded::default();
        let mut retired = Vec::new();
        {
            let mut chain = self.chain()?;
            if let Some(lowest) = rows.first() {
                chain.advance_to(positive(lowest.try_get("id")?)?)?;
            }
            for row in &rows {
                let id: i64 = row.try_get("id")?;
                let from: i64 = row.try_get("active_from_ms")?;
                let until: i64 = row.try_get("active_until_ms")?;
                let accept: i64 = row.try_get("accept_until_ms")?;
                let wrapped: Vec<u8> = row.try_get("wrapped")?;
                let Some(secret) = chain.unwrap(positive(id)?, &metadata(from, until, accept), &wrapped)? else {
                    // A row from a restored backup whose key had retired.
                    retired.push(id);
                    continue;
                };
                let bytes: [u8; 32] = secret
                    .as_slice()
                    .try_into()
                    .map_err(|_| ServerError::Internal(format!("platform key {id} is not 32 bytes")))?;
                let key_id = u32::try_from(id).map_err(|_| ServerError::Internal(format!("platform key id {id}")))?;
                let window = KeyWindow {
                    tag_from_ms: u64::try_from(from).unwrap_or(0),
                    tag_until_ms: u64::try_from(until).unwrap_or(0),
                    verify_until_ms: u64::try_from(accept).unwrap_or(0),
                };
                let key = PlatformKey::new(key_id, bytes, window)
                    .map_err(|e| ServerError::Internal(format!("platform key {id}: {e}")))?;
                loaded.keyring.insert(key);
                loaded.current_until_ms = loaded.current_until_ms.max(until);
            }
        }
        for id in retired {
            tracing::warn!(key_id = id, "deleted a retired tag key found in the database (a restored backup?)");
            sqlx::query("DELETE FROM tag_keys WHERE id = $1").bind(id).execute(db.writer()).await?;
        }
        if let Ok(mut state) = self.state.write() {
            *state = Arc::new(loaded);
        }
        Ok(())
    }
}

pub(crate) fn positive(id: i64) -> Result<u64, ServerError> {
    u64::try_from(id).ok().filter(|i| *i >= 1).ok_or_else(|| ServerError::Internal(format!("key id {id}")))
}

impl Loaded {
    /// The keyring.
    pub(crate) fn keyring(&self) -> &Keyring {
        &self.keyring
    }
}
