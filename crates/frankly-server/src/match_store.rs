//! The matching service's tables: banks, content, signals, API keys. SQL
//! only; the rules are `frankly_match`'s and the HTTP is `hma.rs`'s.

use frankly_bank::SignalType;
use frankly_match::{BankInfo, ContentInfo, parse_signal};
use sha2::{Digest, Sha256};
use sqlx::Row;
use subtle::ConstantTimeEq;

use crate::{Db, ServerError, now_ms};

/// A bank row.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BankRow {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) matching_enabled_ratio: f64,
    pub(crate) negative: bool,
}

impl BankRow {
    pub(crate) fn info(&self) -> BankInfo {
        BankInfo {
            id: self.id,
            name: self.name.clone(),
            matching_enabled_ratio: self.matching_enabled_ratio,
            negative: self.negative,
        }
    }
}

/// A content row with its signals (normalised text).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ContentRow {
    pub(crate) id: i64,
    pub(crate) bank_id: i64,
    pub(crate) disable_until_ts: i64,
    pub(crate) note: Option<String>,
    pub(crate) metadata: Option<serde_json::Value>,
    pub(crate) signals: Vec<(SignalType, String)>,
}

impl ContentRow {
    /// The content as the index holds it (signals that no longer parse, of
    /// a type this build does not know, are left out).
    pub(crate) fn info(&self) -> ContentInfo {
        ContentInfo {
            id: self.id,
            bank: self.bank_id,
            disable_until_ts: self.disable_until_ts,
            signals: self.signals.iter().filter_map(|(s, text)| Some((*s, parse_signal(*s, text).ok()?.0))).collect(),
        }
    }
}

fn bank_of(row: &sqlx::any::AnyRow) -> Result<BankRow, ServerError> {
    Ok(BankRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        matching_enabled_ratio: row.try_get("matching_enabled_ratio")?,
        negative: row.try_get::<i64, _>("negative")? != 0,
    })
}

fn signal_type(name: &str) -> Option<SignalType> {
    SignalType::ALL.into_iter().find(|s| s.name() == name)
}

/// Every bank, in creation order.
pub(crate) async fn banks(db: &Db) -> Result<Vec<BankRow>, ServerError> {
    let rows = sqlx::query("SELECT id, name, matching_enabled_ratio, negative FROM match_banks ORDER BY id")
        .fetch_all(db.reader())
        .await?;
    rows.iter().map(bank_of).collect()
}

/// The bank named `name`.
pub(crate) async fn bank(db: &Db, name: &str) -> Result<Option<BankRow>, ServerError> {
    let row = sqlx::query("SELECT id, name, matching_enabled_ratio, negative FROM match_banks WHERE name = $1")
        .bind(name)
        .fetch_optional(db.reader())
        .await?;
    row.as_ref().map(bank_of).transpose()
}

/// Creates a bank; `None` when the name is taken.
pub(crate) async fn create_bank(
    db: &Db,
    name: &str,
    ratio: f64,
    negative: bool,
) -> Result<Option<BankRow>, ServerError> {
    let now = now_ms();
    let row = sqlx::query(
        "INSERT INTO match_banks (name, matching_enabled_ratio, negative, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO NOTHING RETURNING id",
    )
    .bind(name)
    .bind(ratio)
    .bind(i64::from(negative))
    .bind(now)
    .fetch_optional(db.writer())
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(BankRow { id: row.try_get("id")?, name: name.to_owned(), matching_enabled_ratio: ratio, negative }))
}

/// Renames a bank and sets its ratio; `false` when the new name is taken.
pub(crate) async fn update_bank(db: &Db, bank: &BankRow) -> Result<bool, ServerError> {
    let taken = sqlx::query("SELECT id FROM match_banks WHERE name = $1 AND id <> $2")
        .bind(&bank.name)
        .bind(bank.id)
        .fetch_optional(db.writer())
        .await?;
    if taken.is_some() {
        return Ok(false);
    }
    sqlx::query("UPDATE match_banks SET name = $1, matching_enabled_ratio = $2, updated_ms = $3 WHERE id = $4")
        .bind(&bank.name)
        .bind(bank.matching_enabled_ratio)
        .bind(now_ms())
        .bind(bank.id)
        .execute(db.writer())
        .await?;
    Ok(true)
}

/// Deletes a bank with its content and signals (one transaction).
pub(crate) async fn delete_bank(db: &Db, id: i64) -> Result<(), ServerError> {
    let mut tx = db.writer().begin().await?;
    sqlx::query("DELETE FROM match_signals WHERE content_id IN (SELECT id FROM match_content WHERE bank_id = $1)")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM match_content WHERE bank_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM match_banks WHERE id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Adds one content with its signals (one transaction); returns its id.
pub(crate) async fn add_content(
    db: &Db,
    bank_id: i64,
    signals: &[(SignalType, String)],
    note: Option<&str>,
    metadata: Option<&serde_json::Value>,
) -> Result<i64, ServerError> {
    let now = now_ms();
    let mut tx = db.writer().begin().await?;
    let id: i64 = sqlx::query(
        "INSERT INTO match_content (bank_id, disable_until_ts, note, metadata, created_ms, updated_ms) \
         VALUES ($1, 1, $2, $3, $4, $4) RETURNING id",
    )
    .bind(bank_id)
    .bind(note)
    .bind(metadata.map(serde_json::Value::to_string))
    .bind(now)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    for (signal, text) in signals {
        sqlx::query("INSERT INTO match_signals (content_id, signal_type, signal) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(signal.name())
            .bind(text)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(id)
}

async fn signals_of(db: &Db, id: i64) -> Result<Vec<(SignalType, String)>, ServerError> {
    let rows = sqlx::query("SELECT signal_type, signal FROM match_signals WHERE content_id = $1 ORDER BY signal_type")
        .bind(id)
        .fetch_all(db.reader())
        .await?;
    let mut out = Vec::new();
    for row in rows {
        let name: String = row.try_get("signal_type")?;
        if let Some(signal) = signal_type(&name) {
            out.push((signal, row.try_get("signal")?));
        }
    }
    Ok(out)
}

/// One content with its signals.
pub(crate) async fn content(db: &Db, id: i64) -> Result<Option<ContentRow>, ServerError> {
    let row = sqlx::query("SELECT id, bank_id, disable_until_ts, note, metadata FROM match_content WHERE id = $1")
        .bind(id)
        .fetch_optional(db.reader())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let metadata: Option<String> = row.try_get("metadata")?;
    Ok(Some(ContentRow {
        id: row.try_get("id")?,
        bank_id: row.try_get("bank_id")?,
        disable_until_ts: row.try_get("disable_until_ts")?,
        note: row.try_get("note")?,
        metadata: metadata.and_then(|m| serde_json::from_str(&m).ok()),
        signals: signals_of(db, id).await?,
    }))
}

/// Sets a content's `disable_until_ts` and note.
pub(crate) async fn update_content(
    db: &Db,
    id: i64,
    disable_until_ts: i64,
    note: Option<&str>,
) -> Result<(), ServerError> {
    sqlx::query("UPDATE match_content SET disable_until_ts = $1, note = $2, updated_ms = $3 WHERE id = $4")
        .bind(disable_until_ts)
        .bind(note)
        .bind(now_ms())
        .bind(id)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// Deletes a content and its signals; returns the rows deleted (0 or 1).
pub(crate) async fn delete_content(db: &Db, id: i64) -> Result<u64, ServerError> {
    let mut tx = db.writer().begin().await?;
    sqlx::query("DELETE FROM match_signals WHERE content_id = $1").bind(id).execute(&mut *tx).await?;
    let n = sqlx::query("DELETE FROM match_content WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
    tx.commit().await?;
    Ok(n)
}

/// Every content with its signals, for loading the indexes at start.
pub(crate) async fn all_content(db: &Db) -> Result<Vec<ContentInfo>, ServerError> {
    let rows = sqlx::query("SELECT id, bank_id, disable_until_ts FROM match_content ORDER BY id")
        .fetch_all(db.reader())
        .await?;
    let mut by_id: std::collections::BTreeMap<i64, ContentInfo> = std::collections::BTreeMap::new();
    for row in rows {
        let id: i64 = row.try_get("id")?;
        let info = ContentInfo {
            id,
            bank: row.try_get("bank_id")?,
            disable_until_ts: row.try_get("disable_until_ts")?,
            signals: Vec::new(),
        };
        by_id.insert(id, info);
    }
    let rows = sqlx::query("SELECT content_id, signal_type, signal FROM match_signals").fetch_all(db.reader()).await?;
    for row in rows {
        let id: i64 = row.try_get("content_id")?;
        let name: String = row.try_get("signal_type")?;
        let text: String = row.try_get("signal")?;
        let (Some(content), Some(signal)) = (by_id.get_mut(&id), signal_type(&name)) else { continue };
        if let Ok((words, _)) = parse_signal(signal, &text) {
            content.signals.push((signal, words));
        }
    }
    Ok(by_id.into_values().collect())
}

/// What an API key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// `/h`: hash uploaded media.
    Hash,
    /// `/m`: look up and compare hashes.
    Match,
    /// `/c`: create, change and delete banks and their content.
    Curate,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 3] = [Scope::Hash, Scope::Match, Scope::Curate];

    /// Its name in `--scopes` and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Hash => "hash",
            Scope::Match => "match",
            Scope::Curate => "curate",
        }
    }

    /// The scope named `name`.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The prefix of every API key (`frk_<id>_<secret>`), so a leaked one is
/// recognisable by secret scanners.
const KEY_PREFIX: &str = "frk_";

/// Longest API key name.
pub const MAX_API_KEY_NAME_CHARS: usize = 100;

/// Creates an API key named `name` (who or what uses it) with `scopes`,
/// audited as `actor`; returns its id and the key, shown once (only the
/// SHA-256 of its 32 random secret bytes is stored: a key is high-entropy,
/// so a slow password hash would add nothing).
pub async fn create_api_key(
    db: &Db,
    actor: &str,
    name: &str,
    scopes: &[Scope],
) -> Result<(i64, zeroize::Zeroizing<String>), ServerError> {
    use base64::Engine;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_API_KEY_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ServerError::refused(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_key",
            format!("an API key's name is 1 to {MAX_API_KEY_NAME_CHARS} printable characters"),
        ));
    }
    if scopes.is_empty() {
        return Err(ServerError::refused(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_key",
            "an API key needs at least one scope (hash, match, curate)",
        ));
    }
    let mut secret = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(secret.as_mut()).map_err(|e| ServerError::Internal(format!("no randomness: {e}")))?;
    let mut names: Vec<&str> = scopes.iter().map(|s| s.name()).collect();
    names.sort_unstable();
    names.dedup();
    let scopes = names.join(",");
    let mut tx = db.writer().begin().await?;
    let id: i64 = sqlx::query(
        "INSERT INTO api_keys (name, secret_sha256, scopes, created_ms) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(name)
    .bind(Sha256::digest(secret.as_ref()).to_vec())
    .bind(&scopes)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    crate::audit::append(
        &mut tx,
        db.backend(),
        actor,
        "create-api-key",
        &format!("api-key:{id}"),
        &format!("{name} [{scopes}]"),
    )
    .await?;
    tx.commit().await?;
    let encoded = zeroize::Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret.as_ref()));
    Ok((id, zeroize::Zeroizing::new(format!("{KEY_PREFIX}{id}_{}", encoded.as_str()))))
}

/// An API key as the admin page and `list-api-keys` show it (never its
/// secret, which is not stored).
#[derive(Clone, Debug, serde::Serialize)]
pub struct ApiKeyRow {
    /// Id (the number in `frk_<id>_...`).
    pub id: i64,
    /// Who or what uses it.
    pub name: String,
    /// Its scopes, comma-separated.
    pub scopes: String,
    /// When it was created (ms since the epoch).
    pub created_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<i64>,
}

/// Every API key, newest first.
pub async fn api_keys(db: &Db) -> Result<Vec<ApiKeyRow>, ServerError> {
    let rows = sqlx::query("SELECT id, name, scopes, created_ms, revoked_ms FROM api_keys ORDER BY id DESC")
        .fetch_all(db.reader())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ApiKeyRow {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                scopes: r.try_get("scopes")?,
                created_ms: r.try_get("created_ms")?,
                revoked_ms: r.try_get("revoked_ms")?,
            })
        })
        .collect()
}

/// The scopes of a presented key, or `None` when it is malformed, unknown,
/// revoked or wrong (compared in constant time).
pub(crate) async fn api_key_scopes(db: &Db, key: &str) -> Result<Option<Vec<Scope>>, ServerError> {
    use base64::Engine;
    let Some((id, secret)) = key.strip_prefix(KEY_PREFIX).and_then(|rest| rest.split_once('_')) else {
        return Ok(None);
    };
    let (Ok(id), Ok(secret)) = (id.parse::<i64>(), base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(secret))
    else {
        return Ok(None);
    };
    let secret = zeroize::Zeroizing::new(secret);
    let row = sqlx::query("SELECT secret_sha256, scopes FROM api_keys WHERE id = $1 AND revoked_ms IS NULL")
        .bind(id)
        .fetch_optional(db.reader())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let stored: Vec<u8> = row.try_get("secret_sha256")?;
    if !bool::from(Sha256::digest(secret.as_slice()).as_slice().ct_eq(&stored)) {
        return Ok(None);
    }
    let scopes: String = row.try_get("scopes")?;
    Ok(Some(scopes.split(',').filter_map(Scope::parse).collect()))
}

/// Revokes an API key, audited as `actor`; returns whether it existed and
/// was live.
pub async fn revoke_api_key(db: &Db, actor: &str, id: i64) -> Result<bool, ServerError> {
    let mut tx = db.writer().begin().await?;
    let n = sqlx::query("UPDATE api_keys SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL")
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 1 {
        crate::audit::append(&mut tx, db.backend(), actor, "revoke-api-key", &format!("api-key:{id}"), "").await?;
    }
    tx.commit().await?;
    Ok(n == 1)
}
