//! The matching service's tables: banks, content, signals, API keys. SQL
//! only; the rules are `frankly_match`'s and the HTTP is `hma.rs`'s.

use frankly_bank::SignalType;
use frankly_match::{BankInfo, ChangeKind, ContentInfo, parse_signal};
use std::collections::BTreeSet;

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
    /// Changes so far (the version of its bundles).
    pub(crate) version: i64,
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
    /// Labels (sorted), carried in matches and into device bundles.
    pub(crate) labels: Vec<String>,
    pub(crate) signals: Vec<(SignalType, String)>,
}

fn bank_of(row: &sqlx::any::AnyRow) -> Result<BankRow, ServerError> {
    Ok(BankRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        matching_enabled_ratio: row.try_get("matching_enabled_ratio")?,
        negative: row.try_get::<i64, _>("negative")? != 0,
        version: row.try_get("version")?,
    })
}

fn signal_type(name: &str) -> Option<SignalType> {
    SignalType::ALL.into_iter().find(|s| s.name() == name)
}

/// Every bank, in creation order.
pub(crate) async fn banks(db: &Db) -> Result<Vec<BankRow>, ServerError> {
    let rows = sqlx::query("SELECT id, name, matching_enabled_ratio, negative, version FROM match_banks ORDER BY id")
        .fetch_all(db.reader())
        .await?;
    rows.iter().map(bank_of).collect()
}

/// The bank named `name`.
pub(crate) async fn bank(db: &Db, name: &str) -> Result<Option<BankRow>, ServerError> {
    let row =
        sqlx::query("SELECT id, name, matching_enabled_ratio, negative, version FROM match_banks WHERE name = $1")
            .bind(name)
            .fetch_optional(db.reader())
            .await?;
    row.as_ref().map(bank_of).transpose()
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// Takes `n` sequence numbers of the change log in `tx`, locking its head
/// row until `tx` ends, so that writers commit in sequence order and a
/// reader that has seen change N has seen every change before it; returns
/// the first. `n` = 0 only takes the lock.
async fn take_seqs(tx: &mut Tx<'_>, n: i64) -> Result<i64, ServerError> {
    let head: i64 = sqlx::query("UPDATE match_log_head SET seq = seq + $1 WHERE id = 1 RETURNING seq")
        .bind(n)
        .fetch_one(&mut **tx)
        .await?
        .try_get("seq")?;
    Ok(head - n + 1)
}

fn signals_json(signals: &[(SignalType, String)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> =
        signals.iter().map(|(s, t)| (s.name().to_owned(), serde_json::Value::String(t.clone()))).collect();
    serde_json::Value::Object(map).to_string()
}

/// Records change `seq` of bank `bank_id` (with the content's signals for
/// content changes), bumping the bank's version; returns the new version.
async fn record(
    tx: &mut Tx<'_>,
    seq: i64,
    bank_id: i64,
    content: Option<(i64, &[(SignalType, String)])>,
    kind: ChangeKind,
) -> Result<i64, ServerError> {
    let version: i64 = sqlx::query("UPDATE match_banks SET version = version + 1 WHERE id = $1 RETURNING version")
        .bind(bank_id)
        .fetch_one(&mut **tx)
        .await?
        .try_get("version")?;
    sqlx::query(
        "INSERT INTO match_changes (seq, bank_id, bank_version, content_id, kind, signals, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(seq)
    .bind(bank_id)
    .bind(version)
    .bind(content.map(|(id, _)| id))
    .bind(kind.name())
    .bind(content.map(|(_, signals)| signals_json(signals)))
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(version)
}

/// Creates a bank; `None` when the name is taken.
pub(crate) async fn create_bank(
    db: &Db,
    name: &str,
    ratio: f64,
    negative: bool,
) -> Result<Option<BankRow>, ServerError> {
    let now = now_ms();
    let mut tx = db.writer().begin().await?;
    let seq = take_seqs(&mut tx, 1).await?;
    let row = sqlx::query(
        "INSERT INTO match_banks (name, matching_enabled_ratio, negative, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO NOTHING RETURNING id",
    )
    .bind(name)
    .bind(ratio)
    .bind(i64::from(negative))
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let id: i64 = row.try_get("id")?;
    record(&mut tx, seq, id, None, ChangeKind::CreateBank).await?;
    tx.commit().await?;
    Ok(Some(BankRow { id, name: name.to_owned(), matching_enabled_ratio: ratio, negative, version: 1 }))
}

/// Renames a bank and sets its ratio; `false` when the new name is taken.
pub(crate) async fn update_bank(db: &Db, bank: &BankRow) -> Result<bool, ServerError> {
    let mut tx = db.writer().begin().await?;
    let seq = take_seqs(&mut tx, 1).await?;
    let taken = sqlx::query("SELECT id FROM match_banks WHERE name = $1 AND id <> $2")
        .bind(&bank.name)
        .bind(bank.id)
        .fetch_optional(&mut *tx)
        .await?;
    if taken.is_some() {
        return Ok(false);
    }
    sqlx::query("UPDATE match_banks SET name = $1, matching_enabled_ratio = $2, updated_ms = $3 WHERE id = $4")
        .bind(&bank.name)
        .bind(bank.matching_enabled_ratio)
        .bind(now_ms())
        .bind(bank.id)
        .execute(&mut *tx)
        .await?;
    record(&mut tx, seq, bank.id, None, ChangeKind::UpdateBank).await?;
    tx.commit().await?;
    Ok(true)
}

/// Deletes a bank with its content, signals and published bundles (one
/// transaction).
pub(crate) async fn delete_bank(db: &Db, id: i64) -> Result<(), ServerError> {
    let mut tx = db.writer().begin().await?;
    let seq = take_seqs(&mut tx, 1).await?;
    record(&mut tx, seq, id, None, ChangeKind::DeleteBank).await?;
    sqlx::query("DELETE FROM match_signals WHERE content_id IN (SELECT id FROM match_content WHERE bank_id = $1)")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM match_content WHERE bank_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM match_bundles WHERE bank_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM match_banks WHERE id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// What a new content carries besides its signals.
#[derive(Clone, Debug, Default)]
pub(crate) struct NewContent<'a> {
    pub(crate) note: Option<&'a str>,
    pub(crate) metadata: Option<&'a serde_json::Value>,
    /// Checked by [`frankly_match::check_labels`].
    pub(crate) labels: &'a [String],
}

async fn insert_content(
    tx: &mut Tx<'_>,
    seq: i64,
    bank_id: i64,
    signals: &[(SignalType, String)],
    new: &NewContent<'_>,
) -> Result<i64, ServerError> {
    let now = now_ms();
    let labels = (!new.labels.is_empty()).then(|| serde_json::Value::from(new.labels.to_vec()).to_string());
    let id: i64 = sqlx::query(
        "INSERT INTO match_content (bank_id, disable_until_ts, note, metadata, labels, created_ms, updated_ms) \
         VALUES ($1, 1, $2, $3, $4, $5, $5) RETURNING id",
    )
    .bind(bank_id)
    .bind(new.note)
    .bind(new.metadata.map(serde_json::Value::to_string))
    .bind(labels)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?
    .try_get("id")?;
    for (signal, text) in signals {
        sqlx::query("INSERT INTO match_signals (content_id, signal_type, signal) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(signal.name())
            .bind(text)
            .execute(&mut **tx)
            .await?;
    }
    record(tx, seq, bank_id, Some((id, signals)), ChangeKind::Add).await?;
    Ok(id)
}

/// Adds one content with its signals (one transaction); returns its id.
/// With `audit` (actor, subject), audited as `add-to-bank` in the same
/// transaction (a moderator banking a report's media).
pub(crate) async fn add_content(
    db: &Db,
    bank_id: i64,
    signals: &[(SignalType, String)],
    new: &NewContent<'_>,
    audit: Option<(&str, &str)>,
) -> Result<i64, ServerError> {
    let mut tx = db.writer().begin().await?;
    let seq = take_seqs(&mut tx, 1).await?;
    let id = insert_content(&mut tx, seq, bank_id, signals, new).await?;
    if let Some((actor, subject)) = audit {
        let detail = format!("content {id}: {}", signals_json(signals));
        crate::audit::append(&mut tx, db.backend(), actor, "add-to-bank", subject, &detail).await?;
    }
    tx.commit().await?;
    Ok(id)
}

/// Rows per transaction of [`import_signals`].
pub const IMPORT_BATCH: usize = 5_000;

/// Imports hashes into the bank named `bank` (created if missing), one
/// content each, [`IMPORT_BATCH`] per transaction, audited once as `actor`;
/// `labels` on every content. Returns (contents added, bank created).
pub async fn import_signals(
    db: &Db,
    actor: &str,
    bank_name: &str,
    signal: SignalType,
    hashes: &[String],
    labels: &[String],
) -> Result<(usize, bool), ServerError> {
    let refused = |m: String| ServerError::refused(axum::http::StatusCode::BAD_REQUEST, "invalid_import", m);
    let name = frankly_match::BankName::parse(bank_name).map_err(|e| refused(e.0))?;
    let labels = frankly_match::check_labels(labels).map_err(refused)?;
    if !crate::MATCH_SIGNAL_TYPES.iter().any(|(s, _)| *s == signal) {
        return Err(refused(format!("signal type {} is not served by the match API", signal.name())));
    }
    let mut normalised = Vec::with_capacity(hashes.len());
    for (i, text) in hashes.iter().enumerate() {
        let (_, text) = parse_signal(signal, text).map_err(|e| refused(format!("hash {}: {e}", i + 1)))?;
        normalised.push(text);
    }
    let (row, created) = match bank(db, name.as_str()).await? {
        Some(row) => (row, false),
        None => match create_bank(db, name.as_str(), 1.0, false).await? {
            Some(row) => (row, true),
            None => (bank(db, name.as_str()).await?.ok_or_else(|| refused("bank vanished".into()))?, false),
        },
    };
    let labels_text = (!labels.is_empty()).then(|| serde_json::Value::from(labels.clone()).to_string());
    for chunk in normalised.chunks(IMPORT_BATCH) {
        import_batch(db, row.id, signal, chunk, labels_text.as_deref()).await?;
    }
    let mut tx = db.writer().begin().await?;
    let detail = format!("{} {} hashes", normalised.len(), signal.name());
    crate::audit::append(&mut tx, db.backend(), actor, "import-signals", &format!("bank:{}", row.name), &detail)
        .await?;
    tx.commit().await?;
    Ok((normalised.len(), created))
}

/// Rows per multi-row INSERT of [`import_batch`] (7 parameters a row stay
/// far under SQLite's and PostgreSQL's parameter limits).
const INSERT_ROWS: usize = 500;

/// One transaction of [`import_signals`]: the same rows and log entries as
/// [`add_content`] once per hash, with the sequence numbers and the bank's
/// versions taken once for the batch and the signals and changes written
/// by multi-row INSERTs.
async fn import_batch(
    db: &Db,
    bank_id: i64,
    signal: SignalType,
    texts: &[String],
    labels: Option<&str>,
) -> Result<(), ServerError> {
    let n = texts.len() as i64;
    let now = now_ms();
    let mut tx = db.writer().begin().await?;
    let first_seq = take_seqs(&mut tx, n).await?;
    let last_version: i64 =
        sqlx::query("UPDATE match_banks SET version = version + $1 WHERE id = $2 RETURNING version")
            .bind(n)
            .bind(bank_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("version")?;
    let mut ids = Vec::with_capacity(texts.len());
    for _ in texts {
        let id: i64 = sqlx::query(
            "INSERT INTO match_content (bank_id, disable_until_ts, labels, created_ms, updated_ms) \
             VALUES ($1, 1, $2, $3, $3) RETURNING id",
        )
        .bind(bank_id)
        .bind(labels)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        ids.push(id);
    }
    let placeholders = |rows: usize, cols: usize| {
        (0..rows)
            .map(|r| format!("({})", (1..=cols).map(|c| format!("${}", r * cols + c)).collect::<Vec<_>>().join(", ")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (at, (id_part, text_part)) in ids.chunks(INSERT_ROWS).zip(texts.chunks(INSERT_ROWS)).enumerate() {
        let sql = format!(
            "INSERT INTO match_signals (content_id, signal_type, signal) VALUES {}",
            placeholders(id_part.len(), 3)
        );
        let mut insert = sqlx::query(&sql);
        for (id, text) in id_part.iter().zip(text_part) {
            insert = insert.bind(*id).bind(signal.name()).bind(text.as_str());
        }
        insert.execute(&mut *tx).await?;
        let sql = format!(
            "INSERT INTO match_changes (seq, bank_id, bank_version, content_id, kind, signals, created_ms) VALUES {}",
            placeholders(id_part.len(), 7)
        );
        let mut insert = sqlx::query(&sql);
        for (i, (id, text)) in id_part.iter().zip(text_part).enumerate() {
            let k = (at * INSERT_ROWS + i) as i64;
            insert = insert
                .bind(first_seq + k)
                .bind(bank_id)
                .bind(last_version - n + 1 + k)
                .bind(*id)
                .bind(ChangeKind::Add.name())
                .bind(signals_json(&[(signal, text.clone())]))
                .bind(now);
        }
        insert.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
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

fn labels_of(text: Option<String>) -> Vec<String> {
    text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

/// One content with its signals.
pub(crate) async fn content(db: &Db, id: i64) -> Result<Option<ContentRow>, ServerError> {
    let row =
        sqlx::query("SELECT id, bank_id, disable_until_ts, note, metadata, labels FROM match_content WHERE id = $1")
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
        labels: labels_of(row.try_get("labels")?),
        signals: signals_of(db, id).await?,
    }))
}

/// Sets a content's `disable_until_ts` and note, logged as the change it
/// is at Unix time `now` (a time in the future is logged again, as an
/// enable, once it has passed: [`log_due_enables`]).
pub(crate) async fn update_content(
    db: &Db,
    row: &ContentRow,
    disable_until_ts: i64,
    note: Option<&str>,
    now: i64,
) -> Result<(), ServerError> {
    let mut tx = db.writer().begin().await?;
    let seq = take_seqs(&mut tx, 1).await?;
    let old: Option<i64> = sqlx::query("SELECT disable_until_ts FROM match_content WHERE id = $1")
        .bind(row.id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get("disable_until_ts"))
        .transpose()?;
    let Some(old) = old else { return Ok(()) };
    let pending = i64::from(disable_until_ts > now);
    sqlx::query(
        "UPDATE match_content SET disable_until_ts = $1, note = $2, enable_pending = $3, updated_ms = $4 WHERE id = $5",
    )
    .bind(disable_until_ts)
    .bind(note)
    .bind(pending)
    .bind(now_ms())
    .bind(row.id)
    .execute(&mut *tx)
    .await?;
    let kind = ChangeKind::of_disable_change(old, disable_until_ts, now);
    record(&mut tx, seq, row.bank_id, Some((row.id, &row.signals)), kind).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a content and its signals; returns the rows deleted (0 or 1).
pub(crate) async fn delete_content(db: &Db, id: i64) -> Result<u64, ServerError> {
    let Some(row) = content(db, id).await? else { return Ok(0) };
    let mut tx = db.writer().begin().await?;
    let seq = take_seqs(&mut tx, 1).await?;
    sqlx::query("DELETE FROM match_signals WHERE content_id = $1").bind(id).execute(&mut *tx).await?;
    let n = sqlx::query("DELETE FROM match_content WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
    if n == 1 {
        record(&mut tx, seq, row.bank_id, Some((id, &row.signals)), ChangeKind::Delete).await?;
        tx.commit().await?;
    }
    Ok(n)
}

/// Most due enables logged per call of [`log_due_enables`].
const DUE_ENABLES_BATCH: i64 = 1_000;

/// Logs as enable changes the content whose `disable_until_ts` has passed
/// since it was set (so that bank versions, bundles and deltas follow time
/// as lookups do). Safe on several instances at once: the log head's lock
/// serialises them and each content is logged once. Returns how many.
pub(crate) async fn log_due_enables(db: &Db, now: i64) -> Result<usize, ServerError> {
    let due = "SELECT id, bank_id FROM match_content WHERE enable_pending = 1 AND disable_until_ts <= $1";
    if sqlx::query(due).bind(now).fetch_optional(db.reader()).await?.is_none() {
        return Ok(0);
    }
    let mut tx = db.writer().begin().await?;
    take_seqs(&mut tx, 0).await?;
    let rows =
        sqlx::query(&format!("{due} ORDER BY id LIMIT {DUE_ENABLES_BATCH}")).bind(now).fetch_all(&mut *tx).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let first = take_seqs(&mut tx, rows.len() as i64).await?;
    for (i, r) in rows.iter().enumerate() {
        let (id, bank_id): (i64, i64) = (r.try_get("id")?, r.try_get("bank_id")?);
        sqlx::query("UPDATE match_content SET enable_pending = 0 WHERE id = $1").bind(id).execute(&mut *tx).await?;
        let signals = sqlx::query("SELECT signal_type, signal FROM match_signals WHERE content_id = $1")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .filter_map(|s| {
                Some((signal_type(s.try_get::<String, _>("signal_type").ok()?.as_str())?, s.try_get("signal").ok()?))
            })
            .collect::<Vec<_>>();
        record(&mut tx, first + i as i64, bank_id, Some((id, &signals)), ChangeKind::Enable).await?;
    }
    tx.commit().await?;
    Ok(rows.len())
}

/// The change log's head: the newest change's sequence number.
pub(crate) async fn log_head(db: &Db) -> Result<i64, ServerError> {
    Ok(sqlx::query("SELECT seq FROM match_log_head WHERE id = 1").fetch_one(db.reader()).await?.try_get("seq")?)
}

/// One logged change, as followers replay it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) seq: i64,
    pub(crate) bank_id: i64,
    /// `None` for a change to the bank itself.
    pub(crate) content_id: Option<i64>,
}

/// Up to `limit` changes after `seq`, in order.
pub(crate) async fn changes_after(db: &Db, seq: i64, limit: i64) -> Result<Vec<Change>, ServerError> {
    let rows = sqlx::query(&format!(
        "SELECT seq, bank_id, content_id FROM match_changes WHERE seq > $1 ORDER BY seq LIMIT {limit}"
    ))
    .bind(seq)
    .fetch_all(db.reader())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Change { seq: r.try_get("seq")?, bank_id: r.try_get("bank_id")?, content_id: r.try_get("content_id")? })
        })
        .collect()
}

/// The content with these ids as the index holds it (ids gone are left
/// out).
pub(crate) async fn contents_by_id(db: &Db, ids: &[i64]) -> Result<Vec<ContentInfo>, ServerError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let rows =
            sqlx::query(&format!("SELECT id, bank_id, disable_until_ts FROM match_content WHERE id IN ({list})"))
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
        let rows = sqlx::query(&format!(
            "SELECT content_id, signal_type, signal FROM match_signals WHERE content_id IN ({list})"
        ))
        .fetch_all(db.reader())
        .await?;
        for row in rows {
            let id: i64 = row.try_get("content_id")?;
            let name: String = row.try_get("signal_type")?;
            let text: String = row.try_get("signal")?;
            let (Some(content), Some(signal)) = (by_id.get_mut(&id), signal_type(&name)) else { continue };
            if let Ok((words, _)) = parse_signal(signal, &text) {
                content.signals.push((signal, words));
            }
        }
        out.extend(by_id.into_values());
    }
    Ok(out)
}

/// Content ids read per query by [`all_content`].
const LOAD_PAGE: i64 = 100_000;

/// Every content with its signals, for loading the indexes at start, read
/// a range of ids at a time (10M rows never sit in memory as rows).
pub(crate) async fn all_content(db: &Db) -> Result<Vec<ContentInfo>, ServerError> {
    let max: Option<i64> =
        sqlx::query("SELECT MAX(id) AS m FROM match_content").fetch_one(db.reader()).await?.try_get("m")?;
    let Some(max) = max else { return Ok(Vec::new()) };
    let mut out: Vec<ContentInfo> = Vec::new();
    let mut after = 0;
    while after < max {
        let rows = sqlx::query(
            "SELECT c.id, c.bank_id, c.disable_until_ts, s.signal_type, s.signal FROM match_content c \
             LEFT JOIN match_signals s ON s.content_id = c.id WHERE c.id > $1 AND c.id <= $2 ORDER BY c.id",
        )
        .bind(after)
        .bind(after + LOAD_PAGE)
        .fetch_all(db.reader())
        .await?;
        for row in rows {
            let id: i64 = row.try_get("id")?;
            if out.last().is_none_or(|c| c.id != id) {
                out.push(ContentInfo {
                    id,
                    bank: row.try_get("bank_id")?,
                    disable_until_ts: row.try_get("disable_until_ts")?,
                    signals: Vec::new(),
                });
            }
            let (Some(name), Some(text)) =
                (row.try_get::<Option<String>, _>("signal_type")?, row.try_get::<Option<String>, _>("signal")?)
            else {
                continue;
            };
            if let (Some(signal), Some(content)) = (signal_type(&name), out.last_mut())
                && let Ok((words, _)) = parse_signal(signal, &text)
            {
                content.signals.push((signal, words));
            }
        }
        after += LOAD_PAGE;
    }
    Ok(out)
}

/// The content of a bank that a device bundle holds, with its `signal`
/// text and labels: what matches as logged (not disabled for good, not
/// waiting for its `disable_until_ts`), by id.
pub(crate) async fn shipped_content(
    db: &Db,
    bank_id: i64,
    signal: SignalType,
) -> Result<Vec<(i64, String, Vec<String>)>, ServerError> {
    let rows = sqlx::query(
        "SELECT c.id, c.labels, s.signal FROM match_content c JOIN match_signals s ON s.content_id = c.id \
         WHERE c.bank_id = $1 AND s.signal_type = $2 AND c.disable_until_ts <> 0 AND c.enable_pending = 0 \
         ORDER BY c.id",
    )
    .bind(bank_id)
    .bind(signal.name())
    .fetch_all(db.reader())
    .await?;
    rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("signal")?, labels_of(r.try_get("labels")?)))).collect()
}

/// The `signal` texts of the content changed in a bank after version
/// `from` up to `to`: the hashes a delta between them covers.
pub(crate) async fn changed_signals(
    db: &Db,
    bank_id: i64,
    signal: SignalType,
    from: i64,
    to: i64,
) -> Result<Vec<String>, ServerError> {
    let rows = sqlx::query(
        "SELECT signals FROM match_changes WHERE bank_id = $1 AND bank_version > $2 AND bank_version <= $3 \
         AND signals IS NOT NULL",
    )
    .bind(bank_id)
    .bind(from)
    .bind(to)
    .fetch_all(db.reader())
    .await?;
    let mut out = BTreeSet::new();
    for row in rows {
        let text: String = row.try_get("signals")?;
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&text)
            && let Some(serde_json::Value::String(hash)) = map.get(signal.name())
        {
            out.insert(hash.clone());
        }
    }
    Ok(out.into_iter().collect())
}

/// The bundle published for a bank and signal type (signed offline), with
/// its version.
pub(crate) async fn published_bundle(
    db: &Db,
    bank_id: i64,
    signal: SignalType,
) -> Result<Option<(i64, Vec<u8>)>, ServerError> {
    let row = sqlx::query("SELECT version, bundle FROM match_bundles WHERE bank_id = $1 AND signal_type = $2")
        .bind(bank_id)
        .bind(signal.name())
        .fetch_optional(db.reader())
        .await?;
    row.map(|r| Ok((r.try_get("version")?, r.try_get("bundle")?))).transpose()
}

/// Stores a published bundle, replacing the one before.
pub(crate) async fn publish_bundle(
    db: &Db,
    bank_id: i64,
    signal: SignalType,
    version: i64,
    bundle: &[u8],
) -> Result<(), ServerError> {
    sqlx::query(
        "INSERT INTO match_bundles (bank_id, signal_type, version, bundle, created_ms) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (bank_id, signal_type) DO UPDATE SET version = excluded.version, bundle = excluded.bundle, \
         created_ms = excluded.created_ms",
    )
    .bind(bank_id)
    .bind(signal.name())
    .bind(version)
    .bind(bundle.to_vec())
    .bind(now_ms())
    .execute(db.writer())
    .await?;
    Ok(())
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
    /// `/v1/banks`: fetch signed bank bundles and deltas (what devices do).
    Bundle,
    /// `/api/v1/`: the moderation API, acting for the key's moderator
    /// account with that account's role.
    Review,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 5] = [Scope::Hash, Scope::Match, Scope::Curate, Scope::Bundle, Scope::Review];
    /// The scopes of the match API and bank bundles (no account needed).
    pub const MATCH_API: [Scope; 4] = [Scope::Hash, Scope::Match, Scope::Curate, Scope::Bundle];

    /// Its name in `--scopes` and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Hash => "hash",
            Scope::Match => "match",
            Scope::Curate => "curate",
            Scope::Bundle => "bundle",
            Scope::Review => "review",
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
/// so a slow password hash would add nothing). A key with the `review`
/// scope acts for the moderator account `account` (required, and only for
/// that scope): it may do what the account's role may, while the account
/// is enabled.
pub async fn create_api_key(
    db: &Db,
    actor: &str,
    name: &str,
    scopes: &[Scope],
    account: Option<&str>,
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
            "an API key needs at least one scope (hash, match, curate, bundle)",
        ));
    }
    let invalid = |m: &str| ServerError::refused(axum::http::StatusCode::BAD_REQUEST, "invalid_key", m.to_string());
    let user_id: Option<i64> = match (scopes.contains(&Scope::Review), account) {
        (true, Some(account)) => Some(
            sqlx::query("SELECT id FROM users WHERE username IN ($1, $2) ORDER BY username = $1 DESC LIMIT 1")
                .bind(account)
                .bind(crate::auth::fold_username(account))
                .fetch_optional(db.reader())
                .await?
                .ok_or_else(|| invalid(&format!("no moderator account named {account:?}")))?
                .try_get("id")?,
        ),
        (true, None) => return Err(invalid("a review key acts for a moderator account: name it")),
        (false, Some(_)) => return Err(invalid("only a review key acts for a moderator account")),
        (false, None) => None,
    };
    let mut secret = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(secret.as_mut()).map_err(|e| ServerError::Internal(format!("no randomness: {e}")))?;
    let mut names: Vec<&str> = scopes.iter().map(|s| s.name()).collect();
    names.sort_unstable();
    names.dedup();
    let scopes = names.join(",");
    let mut tx = db.writer().begin().await?;
    let id: i64 = sqlx::query(
        "INSERT INTO api_keys (name, secret_sha256, scopes, created_ms, user_id) VALUES ($1, $2, $3, $4, $5) \
         RETURNING id",
    )
    .bind(name)
    .bind(Sha256::digest(secret.as_ref()).to_vec())
    .bind(&scopes)
    .bind(now_ms())
    .bind(user_id)
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

/// A presented key that verified.
#[derive(Clone, Debug)]
pub(crate) struct PresentedKey {
    /// Its id.
    pub(crate) id: i64,
    /// Its scopes.
    pub(crate) scopes: Vec<Scope>,
    /// The moderator account a review key acts for.
    pub(crate) user_id: Option<i64>,
}

/// A presented key, or `None` when it is malformed, unknown, revoked or
/// wrong (compared in constant time).
pub(crate) async fn presented_key(db: &Db, key: &str) -> Result<Option<PresentedKey>, ServerError> {
    use base64::Engine;
    let Some((id, secret)) = key.strip_prefix(KEY_PREFIX).and_then(|rest| rest.split_once('_')) else {
        return Ok(None);
    };
    let (Ok(id), Ok(secret)) = (id.parse::<i64>(), base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(secret))
    else {
        return Ok(None);
    };
    let secret = zeroize::Zeroizing::new(secret);
    let row = sqlx::query("SELECT secret_sha256, scopes, user_id FROM api_keys WHERE id = $1 AND revoked_ms IS NULL")
        .bind(id)
        .fetch_optional(db.reader())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let stored: Vec<u8> = row.try_get("secret_sha256")?;
    if !bool::from(Sha256::digest(secret.as_slice()).as_slice().ct_eq(&stored)) {
        return Ok(None);
    }
    let scopes: String = row.try_get("scopes")?;
    Ok(Some(PresentedKey {
        id,
        scopes: scopes.split(',').filter_map(Scope::parse).collect(),
        user_id: row.try_get("user_id")?,
    }))
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
