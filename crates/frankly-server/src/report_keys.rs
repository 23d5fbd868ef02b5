//! The report keys (HPKE, RFC 9180 X25519) that devices seal reports to,
//! kept in the database wrapped under the report key chain
//! ([`crate::keychain`]) so every instance opens with the same keys.
//!
//! The newest key is the current one, served by `GET /v1/keys`. It is
//! replaced every `report_key_rotation_days` (or at once by
//! `frankly serve admin rotate-report-key`); the key it replaces keeps
//! opening reports for `report_key_grace_days`, so a report sealed by a
//! device that had not yet fetched the new key still arrives. Then the old
//! key is deleted and the chain moves past it: reports sealed to it can no
//! longer be opened from any copy of the database.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use frankly_report::{ReportKeyring, ServerKeyPair};
use sqlx::Row;
use zeroize::Zeroizing;

use crate::ServerError;
use crate::db::Db;
use crate::keychain::KeyChain;
use crate::platform_keys::positive;
use crate::secrets::random32;

/// The file of the report key chain, in the key directory.
pub const REPORT_CHAIN_FILE: &str = "report-keys.chain";
/// The report key file of earlier versions (HPKE input keying material),
/// imported as key 1 on first start and then removed.
pub const LEGACY_REPORT_KEY_FILE: &str = "report-key.secret";
/// `open_until_ms` of the current key: no end until it is replaced.
const OPEN: i64 = i64::MAX;

/// The report keyring in memory, reloaded when it changes.
#[derive(Debug)]
pub struct ReportKeys {
    rotation_ms: i64,
    grace_ms: i64,
    chain: Mutex<KeyChain>,
    state: RwLock<Arc<ReportKeyring>>,
}

fn metadata(created_ms: i64) -> [u8; 8] {
    created_ms.to_be_bytes()
}

impl ReportKeys {
    /// Loads the keys, making the chain and the first key if there are
    /// none (importing an earlier version's report key file as key 1).
    pub async fn load(
        db: &Db,
        data_dir: &Path,
        key_dir: &Path,
        rotation_days: u64,
        grace_days: u64,
    ) -> Result<ReportKeys, ServerError> {
        let stored: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM report_keys").fetch_one(db.writer()).await?.try_get("n")?;
        let chain = KeyChain::load(&key_dir.join(REPORT_CHAIN_FILE), "report", stored == 0)?;
        let keys = ReportKeys {
            rotation_ms: i64::try_from(rotation_days.saturating_mul(86_400_000)).unwrap_or(i64::MAX),
            grace_ms: i64::try_from(grace_days.saturating_mul(86_400_000)).unwrap_or(i64::MAX),
            chain: Mutex::new(chain),
            state: RwLock::new(Arc::new(ReportKeyring::new())),
        };
        let legacy = data_dir.join(LEGACY_REPORT_KEY_FILE);
        if stored == 0 && legacy.exists() {
            let ikm = crate::secrets::read_hex32(&legacy)?;
            keys.insert(db, 1, crate::now_ms(), &ikm).await?;
            std::fs::remove_file(&legacy)
                .map_err(|e| ServerError::Config(format!("cannot remove {}: {e}", legacy.display())))?;
            tracing::info!(file = %legacy.display(), "imported the report key file as report key 1 and removed it");
        }
        keys.rotate(db, crate::now_ms(), false).await?;
        Ok(keys)
    }

    fn chain(&self) -> Result<std::sync::MutexGuard<'_, KeyChain>, ServerError> {
        self.chain.lock().map_err(|_| ServerError::Internal("report key chain lock poisoned".into()))
    }

    async fn insert(&self, db: &Db, id: i64, created_ms: i64, ikm: &[u8; 32]) -> Result<bool, ServerError> {
        let wrapped = self.chain()?.wrap(positive(id)?, &metadata(created_ms), ikm)?;
        let inserted = sqlx::query(
            "INSERT INTO report_keys (id, wrapped, created_ms, open_until_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(wrapped)
        .bind(created_ms)
        .bind(OPEN)
        .execute(db.writer())
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// The keyring to open reports with; its current key is the one
    /// devices seal to.
    pub fn keyring(&self) -> Arc<ReportKeyring> {
        self.state.read().map(|s| Arc::clone(&s)).unwrap_or_default()
    }

    /// Makes a new current key if the current one is older than the
    /// rotation period (or always, with `force`), gives the keys it replaces
    /// their grace period, deletes keys past it, and reloads.
    pub async fn rotate(&self, db: &Db, now_ms: i64, force: bool) -> Result<(), ServerError> {
        let newest = sqlx::query("SELECT id, created_ms FROM report_keys ORDER BY id DESC LIMIT 1")
            .fetch_optional(db.writer())
            .await?;
        let floor = i64::try_from(self.chain()?.floor()).unwrap_or(i64::MAX);
        let (next_id, due) = match &newest {
            None => (floor, true),
            Some(row) => {
                let id: i64 = row.try_get("id")?;
                let created: i64 = row.try_get("created_ms")?;
                (id.saturating_add(1).max(floor), force || created.saturating_add(self.rotation_ms) <= now_ms)
            }
        };
        if due && self.insert(db, next_id, now_ms, &*random32()?).await? {
            tracing::info!(key_id = next_id, "rotated the report key");
        }
        // Every key but the newest closes at the end of its grace period.
        sqlx::query(
            "UPDATE report_keys SET open_until_ms = $1 \
             WHERE id < (SELECT MAX(id) FROM report_keys) AND open_until_ms > $1",
        )
        .bind(now_ms.saturating_add(self.grace_ms))
        .execute(db.writer())
        .await?;
        sqlx::query("DELETE FROM report_keys WHERE open_until_ms <= $1 AND id < (SELECT MAX(id) FROM report_keys)")
            .bind(now_ms)
            .execute(db.writer())
            .await?;
        self.reload(db).await
    }

    async fn reload(&self, db: &Db) -> Result<(), ServerError> {
        let rows = sqlx::query("SELECT id, wrapped, created_ms, open_until_ms FROM report_keys ORDER BY id")
            .fetch_all(db.writer())
            .await?;
        let mut keyring = ReportKeyring::new();
        let mut retired = Vec::new();
        {
            let mut chain = self.chain()?;
            if let Some(lowest) = rows.first() {
                chain.advance_to(positive(lowest.try_get("id")?)?)?;
            }
            for row in &rows {
                let id: i64 = row.try_get("id")?;
                let created: i64 = row.try_get("created_ms")?;
                let open_until: i64 = row.try_get("open_until_ms")?;
                let wrapped: Vec<u8> = row.try_get("wrapped")?;
                let Some(ikm) = chain.unwrap(positive(id)?, &metadata(created), &wrapped)? else {
                    retired.push(id);
                    continue;
                };
                let ikm = Zeroizing::new(ikm.to_vec());
                let key_id = u32::try_from(id).map_err(|_| ServerError::Internal(format!("report key id {id}")))?;
                keyring.insert(key_id, ServerKeyPair::derive(&ikm), u64::try_from(open_until).unwrap_or(0));
            }
        }
        for id in retired {
            tracing::warn!(key_id = id, "deleted a retired report key found in the database (a restored backup?)");
            sqlx::query("DELETE FROM report_keys WHERE id = $1").bind(id).execute(db.writer()).await?;
        }
        if let Ok(mut state) = self.state.write() {
            *state = Arc::new(keyring);
        }
        Ok(())
    }
}
