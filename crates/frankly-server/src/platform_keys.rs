//! The platform's franking tag keys, kept in the database so that every
//! instance tags and verifies with the same keyring.
//!
//! A key tags for `key_rotation_hours` (its tagging period), then the next
//! key takes over; its tags verify until `key_retention_days` after the
//! tagging period ends (its retention), but only for timestamps inside the
//! tagging period; then its secret is deleted, so a message older than that can
//! no longer be reported (a bound on how long anyone can prove what a sender
//! said). Instances racing to rotate insert the same next id; the database
//! keeps one.

use std::sync::{Arc, RwLock};

use frankly_franking::{KeyWindow, Keyring, PlatformKey};
use sqlx::Row;
use zeroize::Zeroizing;

use crate::ServerError;
use crate::db::Db;
use crate::secrets::random32;

/// The keyring in memory, reloaded from the database when it changes.
#[derive(Debug)]
pub struct PlatformKeys {
    rotation_ms: i64,
    retention_ms: i64,
    state: RwLock<Arc<Loaded>>,
}

#[derive(Debug, Default)]
pub(crate) struct Loaded {
    keyring: Keyring,
    /// When the newest key stops tagging.
    current_until_ms: i64,
}

impl PlatformKeys {
    /// Loads the keys, making the first one if there is none.
    pub async fn load(db: &Db, rotation_hours: u64, retention_days: u64) -> Result<PlatformKeys, ServerError> {
        let keys = PlatformKeys {
            rotation_ms: i64::try_from(rotation_hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX),
            retention_ms: i64::try_from(retention_days.saturating_mul(86_400_000)).unwrap_or(i64::MAX),
            state: RwLock::new(Arc::new(Loaded::default())),
        };
        keys.rotate_if_due(db, crate::now_ms()).await?;
        Ok(keys)
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

    /// Deletes expired keys, adds the next key if the newest one's period
    /// has ended, and reloads.
    pub async fn rotate_if_due(&self, db: &Db, now_ms: i64) -> Result<(), ServerError> {
        sqlx::query("DELETE FROM platform_keys WHERE accept_until_ms <= $1").bind(now_ms).execute(db.writer()).await?;
        let newest = sqlx::query("SELECT id, active_until_ms FROM platform_keys ORDER BY id DESC LIMIT 1")
            .fetch_optional(db.writer())
            .await?;
        let (next_id, due) = match &newest {
            None => (1, true),
            Some(row) => (row.try_get::<i64, _>("id")? + 1, row.try_get::<i64, _>("active_until_ms")? <= now_ms),
        };
        if due {
            let secret = random32()?;
            let until = now_ms.saturating_add(self.rotation_ms);
            let inserted = sqlx::query(
                "INSERT INTO platform_keys (id, secret, active_from_ms, active_until_ms, accept_until_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            )
            .bind(next_id)
            .bind(secret.to_vec())
            .bind(now_ms)
            .bind(until)
            .bind(until.saturating_add(self.retention_ms))
            .execute(db.writer())
            .await?
            .rows_affected();
            if inserted == 1 {
                tracing::info!(key_id = next_id, "rotated the platform tag key");
            }
        }
        self.reload(db).await
    }

    async fn reload(&self, db: &Db) -> Result<(), ServerError> {
        let rows =
            sqlx::query("SELECT id, secret, active_from_ms, active_until_ms, accept_until_ms FROM platform_keys")
                .fetch_all(db.writer())
                .await?;
        let mut loaded = Loaded::default();
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let secret = Zeroizing::new(row.try_get::<Vec<u8>, _>("secret")?);
            let bytes: [u8; 32] = secret
                .as_slice()
                .try_into()
                .map_err(|_| ServerError::Internal(format!("platform key {id} is not 32 bytes")))?;
            let from: i64 = row.try_get("active_from_ms")?;
            let until: i64 = row.try_get("active_until_ms")?;
            let accept: i64 = row.try_get("accept_until_ms")?;
            let id = u32::try_from(id).map_err(|_| ServerError::Internal(format!("platform key id {id}")))?;
            let window = KeyWindow {
                tag_from_ms: u64::try_from(from).unwrap_or(0),
                tag_until_ms: u64::try_from(until).unwrap_or(0),
                verify_until_ms: u64::try_from(accept).unwrap_or(0),
            };
            let key = PlatformKey::new(id, bytes, window)
                .map_err(|e| ServerError::Internal(format!("platform key {id}: {e}")))?;
            loaded.keyring.insert(key);
            loaded.current_until_ms = loaded.current_until_ms.max(until);
        }
        if let Ok(mut state) = self.state.write() {
            *state = Arc::new(loaded);
        }
        Ok(())
    }
}

impl Loaded {
    /// The keyring.
    pub(crate) fn keyring(&self) -> &Keyring {
        &self.keyring
    }
}
