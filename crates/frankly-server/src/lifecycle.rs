//! After a decision: the reported user's strikes, legal holds, and the
//! retention purge of decided reports' bodies and media. The rules are
//! `frankly_review`'s ([`strike_effect`], [`Retention`]); this module stores
//! what they decide.

use frankly_api::moderation::{StrikeDetail, Strikes};
use frankly_review::{
    Action, DAY_MS, Operation, Queue, RetainedReport, Retention, ReviewError, StrikeEffect, strike_effect,
};
use sqlx::{Any, Row, Transaction};

use crate::ServerError;
use crate::audit;
use crate::auth::User;
use crate::db::Db;
use crate::intake::StoredReport;
use crate::queue::{ReportRow, column};

/// Most strikes listed with a report.
pub const MAX_STRIKES_LISTED: i64 = 50;

/// Reports purged in one transaction.
pub const PURGE_BATCH: i64 = 200;

/// Issues or lifts the strike a decision makes, inside its transaction;
/// returns the new strike's expiry, if it issued one.
pub(crate) async fn apply_strike(
    tx: &mut Transaction<'_, Any>,
    report: &ReportRow,
    action: Action,
    decision: i64,
    now: i64,
    strike_days: u32,
) -> Result<Option<i64>, ServerError> {
    match strike_effect(action, now, strike_days) {
        StrikeEffect::None => Ok(None),
        StrikeEffect::Issue { expires_ms } => {
            sqlx::query(
                "INSERT INTO strikes (subject, report, decision, action, issued_ms, expires_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&report.sender_id)
            .bind(report.id)
            .bind(decision)
            .bind(action.name())
            .bind(now)
            .bind(expires_ms)
            .execute(&mut **tx)
            .await?;
            Ok(Some(expires_ms))
        }
        StrikeEffect::LiftAppealed => {
            sqlx::query("UPDATE strikes SET lifted_ms = $1, lifted_by = $2 WHERE report = $3 AND lifted_ms IS NULL")
                .bind(now)
                .bind(decision)
                .bind(report.id)
                .execute(&mut **tx)
                .await?;
            Ok(None)
        }
    }
}

/// The strikes counting against `subject` at `now`, over every queue.
pub(crate) async fn active_strikes<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    subject: &str,
    now: i64,
) -> Result<i64, ServerError> {
    Ok(sqlx::query("SELECT COUNT(*) AS n FROM strikes WHERE subject = $1 AND lifted_ms IS NULL AND expires_ms > $2")
        .bind(subject)
        .bind(now)
        .fetch_one(executor)
        .await?
        .try_get("n")?)
}

/// `subject`'s strikes as `user` may see them: the active count over every
/// queue, and the strikes from reports in queues the role may see, newest
/// first (at most [`MAX_STRIKES_LISTED`]).
pub async fn strikes_of(db: &Db, user: &User, subject: &str, now: i64) -> Result<Strikes, ServerError> {
    let active = active_strikes(db.reader(), subject, now).await?;
    let rows = sqlx::query(
        "SELECT s.id, s.report, s.decision, s.action, s.issued_ms, s.expires_ms, s.lifted_ms, r.queue \
         FROM strikes s JOIN reports r ON r.id = s.report WHERE s.subject = $1 ORDER BY s.id DESC",
    )
    .bind(subject)
    .fetch_all(db.reader())
    .await?;
    let mut strikes = Vec::new();
    for r in &rows {
        let queue: Queue = column(r, "queue")?;
        if !user.role.may(Operation::See(queue)) {
            continue;
        }
        let state =
            frankly_review::StrikeState { expires_ms: r.try_get("expires_ms")?, lifted_ms: r.try_get("lifted_ms")? };
        strikes.push(StrikeDetail {
            id: r.try_get("id")?,
            report: r.try_get("report")?,
            decision: r.try_get("decision")?,
            action: column(r, "action")?,
            issued_ms: r.try_get("issued_ms")?,
            expires_ms: state.expires_ms,
            lifted_ms: state.lifted_ms,
            active: state.active(now),
        });
        if i64::try_from(strikes.len()).unwrap_or(i64::MAX) >= MAX_STRIKES_LISTED {
            break;
        }
    }
    Ok(Strikes { active, strikes })
}

/// Places (`Some(reason)`) or lifts (`None`) a legal hold on report `id`:
/// an administrator's operation, audited. A held report is never purged.
pub async fn set_legal_hold(db: &Db, user: &User, id: i64, reason: Option<&str>) -> Result<(), ServerError> {
    if !user.role.may(Operation::Administer) {
        return Err(ReviewError::Forbidden.into());
    }
    let reason = reason.map(frankly_review::check_hold_reason).transpose()?;
    let mut tx = db.writer().begin().await?;
    let exists = sqlx::query("SELECT id FROM reports WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
    if exists.is_none() {
        return Err(ReviewError::NotFound("report").into());
    }
    let now = crate::now_ms();
    match reason {
        Some(reason) => {
            sqlx::query(
                "UPDATE reports SET legal_hold_ms = COALESCE(legal_hold_ms, $1), legal_hold_by = $2, \
                 legal_hold_reason = $3 WHERE id = $4",
            )
            .bind(now)
            .bind(&user.username)
            .bind(reason)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            audit::append(&mut tx, db.backend(), &user.username, "legal-hold", &format!("report:{id}"), reason).await?;
        }
        None => {
            sqlx::query(
                "UPDATE reports SET legal_hold_ms = NULL, legal_hold_by = NULL, legal_hold_reason = NULL WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            audit::append(&mut tx, db.backend(), &user.username, "legal-hold-lifted", &format!("report:{id}"), "")
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Purges, as of `now` (Unix ms; the caller's clock), the bodies and media
/// of every decided report the retention rules say are due: the messages'
/// openings (text, attachment keys), the reporter's note and the local
/// evidence leave the stored report, and the attachments' bytes are
/// deleted. The queue row, the verdicts, the order, the bank matches, the
/// attachments' sizes and digests, the decisions, appeals, comments,
/// strikes and audit entries stay. Each purge has an audit entry. Returns
/// how many reports were purged.
pub async fn purge(db: &Db, retention: &Retention, now: i64) -> Result<u64, ServerError> {
    let Some(shortest) = retention.shortest() else { return Ok(0) };
    let newest = now.saturating_sub(i64::from(shortest) * DAY_MS);
    let mut after = 0i64;
    let mut purged = 0u64;
    loop {
        let candidates = sqlx::query(
            "SELECT r.id, r.queue, r.status, r.content, d.action, d.decided_ms FROM reports r \
             JOIN decisions d ON d.id = (SELECT MAX(d2.id) FROM decisions d2 WHERE d2.report = r.id) \
             WHERE r.status = 'decided' AND r.purged_ms IS NULL AND r.legal_hold_ms IS NULL \
             AND d.decided_ms <= $1 AND r.id > $2 ORDER BY r.id LIMIT $3",
        )
        .bind(newest)
        .bind(after)
        .bind(PURGE_BATCH)
        .fetch_all(db.reader())
        .await?;
        let Some(last) = candidates.last() else { break };
        after = last.try_get("id")?;
        let mut tx = db.writer().begin().await?;
        for c in &candidates {
            let id: i64 = c.try_get("id")?;
            let queue: Queue = column(c, "queue")?;
            let action: Action = column(c, "action")?;
            let state = RetainedReport {
                queue,
                status: column(c, "status")?,
                action,
                decided_ms: c.try_get("decided_ms")?,
                legal_hold: false,
            };
            if !retention.due(&state, now) {
                continue;
            }
            let content = emptied(id, &c.try_get::<Vec<u8>, _>("content")?)?;
            // The row is read again under the writer: a hold placed or an
            // appeal filed since the candidates were read wins.
            let n = sqlx::query(
                "UPDATE reports SET content = $1, purged_ms = $2 WHERE id = $3 AND status = 'decided' \
                 AND legal_hold_ms IS NULL AND purged_ms IS NULL",
            )
            .bind(content)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                continue;
            }
            sqlx::query("UPDATE report_attachments SET bytes = NULL WHERE report = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let days = retention.days(queue, action).unwrap_or_default();
            let detail = format!("{queue} {action} after {days} days");
            audit::append(&mut tx, db.backend(), "retention", "purge", &format!("report:{id}"), &detail).await?;
            purged += 1;
        }
        tx.commit().await?;
    }
    if purged > 0 {
        tracing::info!(reports = purged, "retention purged report bodies and media");
    }
    Ok(purged)
}

/// A stored report without its bodies: every opening, the note and the
/// evidence removed. A report this build cannot read (franking v1) is
/// replaced by an empty JSON object, which the review pages show as
/// unreadable, as they did before.
fn emptied(id: i64, content: &[u8]) -> Result<Vec<u8>, ServerError> {
    let Ok(mut stored) = serde_json::from_slice::<StoredReport>(content) else {
        tracing::warn!(report = id, "purging a report this build cannot read: its content is replaced whole");
        return Ok(b"{}".to_vec());
    };
    for m in &mut stored.report.messages {
        m.opening = None;
    }
    stored.report.note.clear();
    stored.report.evidence.clear();
    serde_json::to_vec(&stored).map_err(|e| ServerError::Internal(format!("report {id}: {e}")))
}
