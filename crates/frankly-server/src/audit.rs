//! The audit log: append-only, each entry hash-chained to the one before.
//!
//! `hash = SHA-256("frankly audit v1\0" || prev_hash || u64be(seq) ||
//! u64be(at_ms) || lp(actor) || lp(action) || lp(subject) || lp(detail))`,
//! with `lp` a u32be length prefix and an all-zero `prev_hash` for entry 1.
//! Appends happen inside the transaction of the action they record, so an
//! action and its entry commit together. The database refuses `UPDATE` and
//! `DELETE` on the table (triggers), and [`verify`] recomputes the chain, so
//! an edit made by going around the server is found. The chain alone cannot
//! show that its newest entries were removed, so the server also signs its
//! head in [`Checkpoint`]s kept outside the database.

use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};

use crate::ServerError;
use crate::db::{Backend, Db, Filters, PG_LOCK_AUDIT};

pub use frankly_api::moderation::AuditEntry;

const DOMAIN: &[u8] = b"frankly audit v1\0";

fn lp(out: &mut Sha256, bytes: &[u8]) {
    out.update(u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.update(bytes);
}

fn entry_hash(prev: &[u8], seq: i64, at_ms: i64, actor: &str, action: &str, subject: &str, detail: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(at_ms.to_be_bytes());
    lp(&mut h, actor.as_bytes());
    lp(&mut h, action.as_bytes());
    lp(&mut h, subject.as_bytes());
    lp(&mut h, detail.as_bytes());
    h.finalize().into()
}

/// Appends an entry inside `tx` and returns its position. On PostgreSQL an
/// advisory lock serialises appends from every instance; on SQLite the
/// single writer does.
pub(crate) async fn append(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> Result<i64, ServerError> {
    Appender::default().append(tx, backend, actor, action, subject, detail).await
}

/// Appends several entries in one transaction, reading the log's head once:
/// after its first append it holds the head itself (the transaction holds
/// the single writer on SQLite and the advisory lock on PostgreSQL until it
/// ends, so no other append can come between). Every append of the
/// transaction must go through the same `Appender`.
#[derive(Debug, Default)]
pub(crate) struct Appender {
    head: Option<(i64, Vec<u8>)>,
}

impl Appender {
    /// Appends an entry inside `tx` and returns its position.
    pub(crate) async fn append(
        &mut self,
        tx: &mut Transaction<'_, Any>,
        backend: Backend,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Result<i64, ServerError> {
        let (last_seq, prev) = match self.head.take() {
            Some(head) => head,
            None => {
                if backend == Backend::Postgres {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(PG_LOCK_AUDIT).execute(&mut **tx).await?;
                }
                let last = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(&mut **tx)
                    .await?;
                match last {
                    Some(row) => (row.try_get::<i64, _>("seq")?, row.try_get::<Vec<u8>, _>("hash")?),
                    None => (0, vec![0u8; 32]),
                }
            }
        };
        let seq = last_seq + 1;
        let at_ms = crate::now_ms();
        let hash = entry_hash(&prev, seq, at_ms, actor, action, subject, detail);
        sqlx::query(
            "INSERT INTO audit (seq, at_ms, actor, action, subject, detail, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(seq)
        .bind(at_ms)
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(detail)
        .bind(prev)
        .bind(hash.to_vec())
        .execute(&mut **tx)
        .await?;
        self.head = Some((seq, hash.to_vec()));
        Ok(seq)
    }
}

/// Appends one entry in its own transaction.
pub(crate) async fn record(db: &Db, actor: &str, action: &str, subject: &str, detail: &str) -> Result<(), ServerError> {
    let mut tx = db.writer().begin().await?;
    append(&mut tx, db.backend(), actor, action, subject, detail).await?;
    tx.commit().await?;
    Ok(())
}

fn row_entry(row: &sqlx::any::AnyRow) -> Result<AuditEntry, ServerError> {
    Ok(AuditEntry {
        seq: row.try_get("seq")?,
        at_ms: row.try_get("at_ms")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        subject: row.try_get("subject")?,
        detail: row.try_get("detail")?,
        prev_hash: hex::encode(row.try_get::<Vec<u8>, _>("prev_hash")?),
        hash: hex::encode(row.try_get::<Vec<u8>, _>("hash")?),
    })
}

/// What an audit search is filtered by (every field optional; an empty
/// string is no filter, as a web form sends it).
#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Only entries by this actor (a username, `platform` or `system`).
    pub actor: Option<String>,
    /// Only this action (`view`, `decide`, `login`, ...).
    pub action: Option<String>,
    /// Only entries on this subject (`report:42`, `user:alice`, ...).
    pub subject: Option<String>,
    /// At or after (Unix ms).
    pub since: Option<i64>,
    /// Before (Unix ms).
    pub until: Option<i64>,
    /// Only entries before this position (the previous page's `next_before`).
    pub before: Option<i64>,
    /// Most entries returned (default 100, at most `frankly_api::moderation::MAX_AUDIT`).
    pub limit: Option<i64>,
}

impl AuditFilter {
    /// The page size in effect.
    pub fn page_size(&self) -> i64 {
        self.limit.unwrap_or(100).clamp(1, frankly_api::moderation::MAX_AUDIT)
    }
}

/// The entries that pass `filter`, newest first, one page. Each text filter
/// is an exact match served by an index (schema 13).
pub async fn search(db: &Db, filter: &AuditFilter) -> Result<Vec<AuditEntry>, ServerError> {
    // An empty text is no filter, as a web form sends it.
    fn given(v: &Option<String>) -> Option<&str> {
        v.as_deref().filter(|v| !v.is_empty())
    }
    let mut f = Filters::default();
    f.text("actor =", given(&filter.actor));
    f.text("action =", given(&filter.action));
    f.text("subject =", given(&filter.subject));
    f.number("at_ms >=", filter.since);
    f.number("at_ms <", filter.until);
    f.number("seq <", filter.before);
    let select = "SELECT seq, at_ms, actor, action, subject, detail, prev_hash, hash FROM audit";
    f.fetch(db.reader(), select, "ORDER BY seq DESC", filter.page_size()).await?.iter().map(row_entry).collect()
}

/// The newest `limit` entries (at most `MAX_AUDIT`), newest first.
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<AuditEntry>, ServerError> {
    search(db, &AuditFilter { limit: Some(limit), ..AuditFilter::default() }).await
}

/// The outcome of checking the whole chain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChainCheck {
    /// Entries checked.
    pub entries: i64,
    /// The last entry's hash, hex (empty for an empty log).
    pub head: String,
}

/// Recomputes every entry's hash, in pages, and checks the links.
pub async fn verify(db: &Db) -> Result<ChainCheck, ServerError> {
    const PAGE: i64 = 1000;
    let mut prev = vec![0u8; 32];
    let mut expected_seq = 1i64;
    loop {
        let rows = sqlx::query(
            "SELECT seq, at_ms, actor, action, subject, detail, prev_hash, hash FROM audit WHERE seq >= $1 \
             ORDER BY seq LIMIT $2",
        )
        .bind(expected_seq)
        .bind(PAGE)
        .fetch_all(db.reader())
        .await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let seq: i64 = row.try_get("seq")?;
            if seq != expected_seq {
                return Err(ServerError::AuditChain(format!("entry {expected_seq} is missing (next is {seq})")));
            }
            let stored_prev: Vec<u8> = row.try_get("prev_hash")?;
            if stored_prev != prev {
                return Err(ServerError::AuditChain(format!(
                    "entry {seq} does not link to entry {}: the log was edited or entries were removed",
                    seq - 1
                )));
            }
            let hash = entry_hash(
                &prev,
                seq,
                row.try_get("at_ms")?,
                &row.try_get::<String, _>("actor")?,
                &row.try_get::<String, _>("action")?,
                &row.try_get::<String, _>("subject")?,
                &row.try_get::<String, _>("detail")?,
            );
            let stored: Vec<u8> = row.try_get("hash")?;
            if stored != hash {
                return Err(ServerError::AuditChain(format!("entry {seq} was altered: its hash does not match")));
            }
            prev = stored;
            expected_seq += 1;
        }
    }
    Ok(ChainCheck { entries: expected_seq - 1, head: if expected_seq > 1 { hex::encode(prev) } else { String::new() } })
}

/// A signed statement of the audit log's newest entry. The server writes
/// one to its checkpoint file (append-only, one JSON object a line) and to
/// its log whenever the log has grown, every 30 s; whoever keeps a copy can
/// later show that entries were removed from the end, which the chain alone
/// cannot (`frankly audit verify --checkpoints FILE`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The newest entry's position.
    pub seq: i64,
    /// Its hash, hex.
    pub head: String,
    /// When the checkpoint was made, Unix milliseconds.
    pub at_ms: i64,
    /// Ed25519 over `"frankly audit checkpoint v1\0" || u64be(seq) || head || u64be(at_ms)`, hex.
    pub signature: String,
}

const CHECKPOINT_DOMAIN: &[u8] = b"frankly audit checkpoint v1\0";
/// Largest checkpoint file `verify_checkpoints` reads.
pub const MAX_CHECKPOINT_FILE_BYTES: u64 = 256 << 20;

fn checkpoint_message(seq: i64, head: &[u8], at_ms: i64) -> Vec<u8> {
    let mut m = CHECKPOINT_DOMAIN.to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(head);
    m.extend_from_slice(&at_ms.to_be_bytes());
    m
}

/// Appends a checkpoint of the current head to `path` (created 0600) and
/// logs it, if the log grew past `*last_seq`.
pub(crate) async fn write_checkpoint(
    db: &Db,
    key: &ed25519_dalek::SigningKey,
    path: &std::path::Path,
    last_seq: &std::sync::atomic::AtomicI64,
) -> Result<Option<Checkpoint>, ServerError> {
    use ed25519_dalek::Signer;
    use std::io::Write;
    let Some(row) =
        sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetch_optional(db.reader()).await?
    else {
        return Ok(None);
    };
    let seq: i64 = row.try_get("seq")?;
    if seq <= last_seq.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(None);
    }
    let head: Vec<u8> = row.try_get("hash")?;
    let at_ms = crate::now_ms();
    let signature = key.sign(&checkpoint_message(seq, &head, at_ms));
    let checkpoint = Checkpoint { seq, head: hex::encode(&head), at_ms, signature: hex::encode(signature.to_bytes()) };
    let line = serde_json::to_string(&checkpoint).map_err(|e| ServerError::Internal(e.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let io = |e: std::io::Error| ServerError::Config(format!("cannot append to {}: {e}", path.display()));
    let mut file = options.open(path).map_err(io)?;
    file.write_all(format!("{line}\n").as_bytes()).and_then(|()| file.sync_data()).map_err(io)?;
    last_seq.store(seq, std::sync::atomic::Ordering::SeqCst);
    tracing::info!(seq, head = %checkpoint.head, signature = %checkpoint.signature, "audit checkpoint");
    Ok(Some(checkpoint))
}

/// What checking the log against checkpoints found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CheckpointCheck {
    /// The chain.
    pub chain: ChainCheck,
    /// Checkpoints read (all signed by the key).
    pub checkpoints: usize,
    /// The newest entry a checkpoint vouches for.
    pub latest: i64,
}

/// Verifies the chain, then every checkpoint's signature under `public`,
/// then that the log still holds the newest checkpointed entry with the
/// hash the checkpoint states (which, the chain being whole, vouches for
/// every entry before it). Removing the newest entries fails here.
pub async fn verify_checkpoints(
    db: &Db,
    checkpoints: &str,
    public: &ed25519_dalek::VerifyingKey,
) -> Result<CheckpointCheck, ServerError> {
    let chain = verify(db).await?;
    let mut newest: Option<Checkpoint> = None;
    let mut count = 0usize;
    for (n, line) in checkpoints.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = |why: String| ServerError::AuditChain(format!("checkpoint on line {}: {why}", n + 1));
        let cp: Checkpoint = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let mut head = [0u8; 32];
        hex::decode_to_slice(&cp.head, &mut head).map_err(|_| bad("head is not 64 hex digits".into()))?;
        let mut sig = [0u8; 64];
        hex::decode_to_slice(&cp.signature, &mut sig).map_err(|_| bad("signature is not 128 hex digits".into()))?;
        public
            .verify_strict(&checkpoint_message(cp.seq, &head, cp.at_ms), &ed25519_dalek::Signature::from_bytes(&sig))
            .map_err(|_| bad("not signed by this server's audit key".into()))?;
        count += 1;
        if newest.as_ref().is_none_or(|c| cp.seq > c.seq) {
            newest = Some(cp);
        }
    }
    let Some(newest) = newest else {
        return Ok(CheckpointCheck { chain, checkpoints: 0, latest: 0 });
    };
    if newest.seq > chain.entries {
        return Err(ServerError::AuditChain(format!(
            "the log ends at entry {}, but a checkpoint made at {} (Unix ms) vouches for entry {}: the newest entries were removed",
            chain.entries, newest.at_ms, newest.seq
        )));
    }
    let stored: Vec<u8> = sqlx::query("SELECT hash FROM audit WHERE seq = $1")
        .bind(newest.seq)
        .fetch_one(db.reader())
        .await?
        .try_get("hash")?;
    if hex::encode(stored) != newest.head {
        return Err(ServerError::AuditChain(format!(
            "entry {} is not the one its checkpoint vouches for: the log was rewritten",
            newest.seq
        )));
    }
    Ok(CheckpointCheck { chain, checkpoints: count, latest: newest.seq })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_bound() {
        let base = entry_hash(&[0; 32], 1, 5, "a", "b", "c", "d");
        assert_ne!(base, entry_hash(&[1; 32], 1, 5, "a", "b", "c", "d"));
        assert_ne!(base, entry_hash(&[0; 32], 2, 5, "a", "b", "c", "d"));
        assert_ne!(base, entry_hash(&[0; 32], 1, 6, "a", "b", "c", "d"));
        assert_ne!(base, entry_hash(&[0; 32], 1, 5, "ab", "", "c", "d"));
        assert_ne!(base, entry_hash(&[0; 32], 1, 5, "a", "b", "cd", ""));
    }
}
