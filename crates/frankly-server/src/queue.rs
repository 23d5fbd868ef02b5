//! The review queue: claims with leases, decisions with the EU Digital
//! Services Act's statement-of-reasons fields, escalation and appeals.
//!
//! A claim sets `claimed_by` and a lease in one `UPDATE` of the best queued
//! report (highest priority, then oldest). On PostgreSQL the candidate row is
//! locked with `FOR UPDATE SKIP LOCKED`, so instances claiming at the same
//! moment take different reports and never wait on each other; on SQLite the
//! single writer serialises claims. An expired lease returns the report to
//! its queue. A moderator who decided a report never gets its appeal.
//!
//! The rules (who may, what a decision needs, where a report goes) are
//! `frankly_review`'s; this module loads and stores what they decide.

use frankly_api::AppealInput;
use frankly_api::moderation::{AppealAnswer, AppealSummary, CommentDetail, SenderReport};
use frankly_review::{
    Decision, DecisionInput, ESCALATION_PRIORITY, Next, Operation, Queue, ReportState, ReviewError, Stage, Status,
};
use sqlx::{Any, Row, Transaction};

use crate::ServerError;
use crate::audit;
use crate::auth::User;
use crate::db::{Backend, Db, Filters};
use crate::intake::StoredReport;
use crate::webhooks::{self, Event};

/// A report's queue row.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReportRow {
    /// Database id.
    pub id: i64,
    /// The device's report id.
    pub report_id: String,
    /// Queue.
    pub queue: Queue,
    /// Stage.
    pub stage: Stage,
    /// Priority.
    pub priority: i64,
    /// Status.
    pub status: Status,
    /// Who holds it.
    pub claimed_by: Option<i64>,
    /// Lease end.
    pub lease_until_ms: Option<i64>,
    /// When it arrived.
    pub received_ms: i64,
    /// Reason name.
    pub reason: String,
    /// Reporter.
    pub reporter_id: String,
    /// Reported sender.
    pub sender_id: String,
    /// Messages in the report.
    pub messages: i64,
    /// Messages that verified.
    pub verified: i64,
    /// Context chain unbroken.
    pub chain_ok: bool,
    /// Server bank matches.
    pub server_matches: i64,
    /// When retention purged its bodies and media.
    pub purged_ms: Option<i64>,
    /// The legal hold keeping it, if any.
    pub legal_hold: Option<frankly_api::moderation::LegalHold>,
}

impl ReportRow {
    /// Where it stands, as the review rules see it.
    pub fn state(&self) -> ReportState {
        ReportState {
            queue: self.queue,
            stage: self.stage,
            status: self.status,
            claimed_by: self.claimed_by,
            lease_until_ms: self.lease_until_ms,
        }
    }
}

const ROW_COLUMNS: &str = "id, report_id, queue, stage, priority, status, claimed_by, lease_until_ms, received_ms, \
     reason, reporter_id, sender_id, messages, verified, chain_ok, server_matches, purged_ms, legal_hold_ms, \
     legal_hold_by, legal_hold_reason";

/// A stored name parsed back (queue, stage, status, action, ground); a name
/// this build does not know is a damaged database, not a client's error.
pub(crate) fn column<T: std::str::FromStr<Err = ReviewError>>(
    r: &sqlx::any::AnyRow,
    column: &str,
) -> Result<T, ServerError> {
    let text: String = r.try_get(column)?;
    text.parse().map_err(|e: ReviewError| ServerError::Internal(format!("column {column}: stored {e}")))
}

fn row(r: &sqlx::any::AnyRow) -> Result<ReportRow, ServerError> {
    Ok(ReportRow {
        id: r.try_get("id")?,
        report_id: r.try_get("report_id")?,
        queue: column(r, "queue")?,
        stage: column(r, "stage")?,
        priority: r.try_get("priority")?,
        status: column(r, "status")?,
        claimed_by: r.try_get("claimed_by")?,
        lease_until_ms: r.try_get("lease_until_ms")?,
        received_ms: r.try_get("received_ms")?,
        reason: r.try_get("reason")?,
        reporter_id: r.try_get("reporter_id")?,
        sender_id: r.try_get("sender_id")?,
        messages: r.try_get("messages")?,
        verified: r.try_get("verified")?,
        chain_ok: r.try_get::<i64, _>("chain_ok")? != 0,
        server_matches: r.try_get("server_matches")?,
        purged_ms: r.try_get("purged_ms")?,
        legal_hold: match r.try_get::<Option<i64>, _>("legal_hold_ms")? {
            Some(since_ms) => Some(frankly_api::moderation::LegalHold {
                since_ms,
                by: r.try_get::<Option<String>, _>("legal_hold_by")?.unwrap_or_default(),
                reason: r.try_get::<Option<String>, _>("legal_hold_reason")?.unwrap_or_default(),
            }),
            None => None,
        },
    })
}

/// Queued and claimed counts per queue.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Depth {
    /// Queue.
    pub queue: Queue,
    /// Waiting.
    pub queued: i64,
    /// Being reviewed.
    pub claimed: i64,
}

/// Depth of every queue (all of them; callers filter by role).
pub async fn depths(db: &Db) -> Result<Vec<Depth>, ServerError> {
    let rows = sqlx::query(
        "SELECT queue, status, COUNT(*) AS n FROM reports WHERE status IN ('queued', 'claimed') GROUP BY queue, status",
    )
    .fetch_all(db.reader())
    .await?;
    let mut out: Vec<Depth> = Queue::ALL.iter().map(|q| Depth { queue: *q, queued: 0, claimed: 0 }).collect();
    for r in rows {
        let queue: Queue = column(&r, "queue")?;
        let status: Status = column(&r, "status")?;
        let n: i64 = r.try_get("n")?;
        if let Some(d) = out.iter_mut().find(|d| d.queue == queue) {
            if status == Status::Queued {
                d.queued = n;
            } else {
                d.claimed = n;
            }
        }
    }
    Ok(out)
}

/// Returns expired leases to their queues.
pub async fn expire_leases(db: &Db, now: i64) -> Result<u64, ServerError> {
    Ok(sqlx::query(EXPIRE_LEASES).bind(now).execute(db.writer()).await?.rows_affected())
}

const EXPIRE_LEASES: &str = "UPDATE reports SET status = 'queued', claimed_by = NULL, claimed_ms = NULL, \
     lease_until_ms = NULL WHERE status = 'claimed' AND lease_until_ms < $1";

/// Claims the next report of `queue` for `user`, or returns the one the user
/// already holds there. `None` when the queue is empty.
pub async fn claim(db: &Db, user: &User, queue: Queue, lease_ms: i64) -> Result<Option<i64>, ServerError> {
    if !user.role.may(Operation::See(queue)) {
        return Err(ReviewError::Forbidden.into());
    }
    let backend = db.backend();
    // On SQLite the expiry, the lookup of a report already held and the
    // claim share one transaction (and its group commit); on PostgreSQL the
    // expiry commits on its own first, so a claim holds no lock on other
    // moderators' rows.
    if backend == Backend::Postgres {
        expire_leases(db, crate::now_ms()).await?;
    }
    let (user_id, username) = (user.id, user.username.clone());
    db.write(move |tx| {
        Box::pin(async move {
            let now = crate::now_ms();
            if backend == Backend::Sqlite {
                sqlx::query(EXPIRE_LEASES).bind(now).execute(&mut **tx).await?;
            }
            let held = sqlx::query(
                "SELECT id FROM reports WHERE status = 'claimed' AND claimed_by = $1 AND queue = $2 ORDER BY id LIMIT 1",
            )
            .bind(user_id)
            .bind(queue.name())
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(r) = held {
                return Ok(Some(r.try_get("id")?));
            }
            let lock = match backend {
                Backend::Postgres => "FOR UPDATE SKIP LOCKED",
                Backend::Sqlite => "",
            };
            let sql = format!(
                "UPDATE reports SET status = 'claimed', claimed_by = $1, claimed_ms = $2, lease_until_ms = $3 \
                 WHERE id = (SELECT r.id FROM reports r WHERE r.status = 'queued' AND r.queue = $4 \
                 AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.report = r.id AND d.moderator = $1) \
                 ORDER BY r.priority DESC, r.id LIMIT 1 {lock}) AND status = 'queued' RETURNING id"
            );
            let claimed = sqlx::query(&sql)
                .bind(user_id)
                .bind(now)
                .bind(now.saturating_add(lease_ms))
                .bind(queue.name())
                .fetch_optional(&mut **tx)
                .await?;
            let Some(r) = claimed else { return Ok(None) };
            let id: i64 = r.try_get("id")?;
            audit::append(tx, backend, &username, "claim", &format!("report:{id}"), queue.name()).await?;
            Ok(Some(id))
        })
    })
    .await
}

/// Gives a claimed report back to its queue.
pub async fn release(db: &Db, user: &User, id: i64) -> Result<(), ServerError> {
    let mut tx = db.writer().begin().await?;
    let n = sqlx::query(
        "UPDATE reports SET status = 'queued', claimed_by = NULL, claimed_ms = NULL, lease_until_ms = NULL \
         WHERE id = $1 AND status = 'claimed' AND claimed_by = $2",
    )
    .bind(id)
    .bind(user.id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(ReviewError::NotClaimed.into());
    }
    audit::append(&mut tx, db.backend(), &user.username, "release", &format!("report:{id}"), "").await?;
    tx.commit().await?;
    Ok(())
}

/// A report with everything the review page shows.
#[derive(Clone, Debug)]
pub struct ReportView {
    /// The queue row.
    pub row: ReportRow,
    /// The stored report (its attachments' plaintexts are empty).
    pub stored: StoredReport,
    /// Its attachments, without their bytes, in report order.
    pub attachments: Vec<crate::AttachmentMeta>,
    /// Earlier decisions, oldest first.
    pub decisions: Vec<DecisionRow>,
    /// Appeals, oldest first.
    pub appeals: Vec<AppealRow>,
    /// Moderators' comments, oldest first.
    pub comments: Vec<CommentDetail>,
    /// The reported sender's other reports the role may see, newest first
    /// (at most [`MAX_SENDER_HISTORY`]).
    pub sender_history: Vec<SenderReport>,
    /// The reported sender's strikes.
    pub strikes: frankly_api::moderation::Strikes,
}

/// Most earlier reports of a sender shown with a report.
pub const MAX_SENDER_HISTORY: i64 = 50;

/// A recorded decision.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DecisionRow {
    /// Id.
    pub id: i64,
    /// The appeal it answers.
    pub appeal: Option<i64>,
    /// Moderator's username.
    pub moderator: String,
    /// Action.
    pub action: frankly_review::Action,
    /// Restriction.
    pub restriction: String,
    /// Facts and circumstances.
    pub facts: String,
    /// Automated detection used.
    pub automated: bool,
    /// Legal or terms.
    pub ground: frankly_review::Ground,
    /// The law or clause.
    pub ground_reference: String,
    /// Redress.
    pub redress: String,
    /// When.
    pub decided_ms: i64,
}

/// An appeal.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AppealRow {
    /// Id.
    pub id: i64,
    /// The decision appealed.
    pub decision: i64,
    /// Who appealed.
    pub appellant: String,
    /// Their statement.
    pub statement: String,
    /// When.
    pub filed_ms: i64,
}

/// Loads a report for `user`, refusing queues the role cannot see, and
/// records the view in the audit log.
pub async fn view(db: &Db, user: &User, id: i64) -> Result<ReportView, ServerError> {
    let r = sqlx::query(&format!("SELECT {ROW_COLUMNS}, content FROM reports WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.reader())
        .await?
        .ok_or(ReviewError::NotFound("report"))?;
    let report_row = row(&r)?;
    if !user.role.may(Operation::See(report_row.queue)) {
        audit::record(db, &user.username, "view-denied", &format!("report:{id}"), report_row.queue.name()).await?;
        return Err(ReviewError::Forbidden.into());
    }
    let stored = stored_report(id, &r.try_get::<Vec<u8>, _>("content")?)?;
    let decisions = sqlx::query(
        "SELECT d.id, d.appeal, u.username, d.action, d.restriction, d.facts, d.automated, d.ground, \
         d.ground_reference, d.redress, d.decided_ms FROM decisions d JOIN users u ON u.id = d.moderator \
         WHERE d.report = $1 ORDER BY d.id",
    )
    .bind(id)
    .fetch_all(db.reader())
    .await?
    .iter()
    .map(|d| {
        Ok(DecisionRow {
            id: d.try_get("id")?,
            appeal: d.try_get("appeal")?,
            moderator: d.try_get("username")?,
            action: column(d, "action")?,
            restriction: d.try_get("restriction")?,
            facts: d.try_get("facts")?,
            automated: d.try_get::<i64, _>("automated")? != 0,
            ground: column(d, "ground")?,
            ground_reference: d.try_get("ground_reference")?,
            redress: d.try_get("redress")?,
            decided_ms: d.try_get("decided_ms")?,
        })
    })
    .collect::<Result<Vec<_>, ServerError>>()?;
    let appeals =
        sqlx::query("SELECT id, decision, appellant, statement, filed_ms FROM appeals WHERE report = $1 ORDER BY id")
            .bind(id)
            .fetch_all(db.reader())
            .await?
            .iter()
            .map(|a| {
                Ok(AppealRow {
                    id: a.try_get("id")?,
                    decision: a.try_get("decision")?,
                    appellant: a.try_get("appellant")?,
                    statement: a.try_get("statement")?,
                    filed_ms: a.try_get("filed_ms")?,
                })
            })
            .collect::<Result<Vec<_>, ServerError>>()?;
    let attachments = crate::attachments::of_report(db, id).await?;
    let comments = sqlx::query(
        "SELECT c.id, u.username, c.body, c.created_ms FROM report_comments c JOIN users u ON u.id = c.author \
         WHERE c.report = $1 ORDER BY c.id",
    )
    .bind(id)
    .fetch_all(db.reader())
    .await?
    .iter()
    .map(|c| {
        Ok(CommentDetail {
            id: c.try_get("id")?,
            author: c.try_get("username")?,
            body: c.try_get("body")?,
            created_ms: c.try_get("created_ms")?,
        })
    })
    .collect::<Result<Vec<_>, ServerError>>()?;
    let sender_history = sender_history(db, user, &report_row.sender_id, id).await?;
    let strikes = crate::lifecycle::strikes_of(db, user, &report_row.sender_id, crate::now_ms()).await?;
    audit::record(db, &user.username, "view", &format!("report:{id}"), report_row.queue.name()).await?;
    Ok(ReportView { row: report_row, stored, attachments, decisions, appeals, comments, sender_history, strikes })
}

/// The outcome of a decision.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Decided {
    /// The decision's id.
    pub decision: i64,
    /// Milliseconds from intake to this decision.
    pub latency_ms: i64,
    /// Where the report went (its own queue unless escalated).
    pub queue: Queue,
}

/// Records `user`'s decision on a report they hold, with the audit entry, in
/// one transaction. The rules are [`DecisionInput::check`]'s; a restricting
/// decision counts a strike against the reported user for `strike_days`.
pub async fn decide(
    db: &Db,
    user: &User,
    id: i64,
    input: &DecisionInput,
    strike_days: u32,
) -> Result<Decided, ServerError> {
    let (user, input, backend) = (user.clone(), input.clone(), db.backend());
    db.write(move |tx| {
        Box::pin(async move {
            let now = crate::now_ms();
            let report = locked_row(tx, backend, id).await?.ok_or(ReviewError::NotFound("report"))?;
            let decision = input.check(user.role, user.id, &report.state(), now)?;
            let mut log = audit::Appender::default();
            record_decision(tx, backend, &mut log, &user, &report, &decision, now, strike_days, None).await
        })
    })
    .await
}

/// The queue row of report `id`, locked for the transaction on PostgreSQL.
async fn locked_row(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    id: i64,
) -> Result<Option<ReportRow>, ServerError> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    sqlx::query(&format!("SELECT {ROW_COLUMNS} FROM reports WHERE id = $1{lock}"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .as_ref()
        .map(row)
        .transpose()
}

/// Stores a checked decision on `report` inside `tx`: the decision row,
/// where the report goes, the strike it issues or lifts, the audit entry
/// (naming the bulk decision's entry, if any) and the webhook event.
#[allow(clippy::too_many_arguments)] // One transaction's worth of context, each distinct.
async fn record_decision(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    log: &mut audit::Appender,
    user: &User,
    report: &ReportRow,
    decision: &Decision,
    now: i64,
    strike_days: u32,
    bulk: Option<i64>,
) -> Result<Decided, ServerError> {
    let id = report.id;
    let appeal: Option<i64> = if report.stage == Stage::Appeal {
        sqlx::query("SELECT id FROM appeals WHERE report = $1 ORDER BY id DESC LIMIT 1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .map(|a| a.try_get("id"))
            .transpose()?
    } else {
        None
    };
    let decision_id: i64 = sqlx::query(
        "INSERT INTO decisions (report, appeal, moderator, action, restriction, facts, automated, ground, \
         ground_reference, redress, decided_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(id)
    .bind(appeal)
    .bind(user.id)
    .bind(decision.action.name())
    .bind(&decision.restriction)
    .bind(&decision.facts)
    .bind(i64::from(decision.automated_detection))
    .bind(decision.ground.name())
    .bind(&decision.ground_reference)
    .bind(&decision.redress)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?
    .try_get("id")?;
    let queue = match decision.next {
        Next::Escalated { queue } => {
            sqlx::query(
                "UPDATE reports SET status = 'queued', queue = $1, stage = $2, priority = priority + $3, \
                 claimed_by = NULL, claimed_ms = NULL, lease_until_ms = NULL WHERE id = $4",
            )
            .bind(queue.name())
            .bind(Stage::Escalated.name())
            .bind(ESCALATION_PRIORITY)
            .bind(id)
            .execute(&mut **tx)
            .await?;
            queue
        }
        Next::Decided => {
            sqlx::query(
                "UPDATE reports SET status = 'decided', claimed_by = NULL, lease_until_ms = NULL WHERE id = $1",
            )
            .bind(id)
            .execute(&mut **tx)
            .await?;
            report.queue
        }
    };
    let strike = crate::lifecycle::apply_strike(tx, report, decision.action, decision_id, now, strike_days).await?;
    let active_strikes = crate::lifecycle::active_strikes(&mut **tx, &report.sender_id, now).await?;
    let detail = serde_json::json!({
        "decision": decision_id,
        "action": decision.action,
        "restriction": decision.restriction,
        "automated_detection": decision.automated_detection,
        "ground": decision.ground,
        "ground_reference": decision.ground_reference,
        "strike": strike,
        "bulk": bulk,
    })
    .to_string();
    log.append(tx, backend, &user.username, "decide", &format!("report:{id}"), &detail).await?;
    let event = if appeal.is_some() { Event::AppealDecided } else { Event::ReportDecided };
    let decided = serde_json::json!({
        "report": id,
        "report_id": report.report_id,
        "decision": decision_id,
        "appeal": appeal,
        "action": decision.action,
        "restriction": decision.restriction,
        "automated_detection": decision.automated_detection,
        "ground": decision.ground,
        "ground_reference": decision.ground_reference,
        "moderator": user.username,
        "queue": queue,
        "sender_id": report.sender_id,
        "strike": strike,
        "active_strikes": active_strikes,
    });
    webhooks::record(tx, event, &format!("report:{id}"), decided).await?;
    Ok(Decided { decision: decision_id, latency_ms: now - report.received_ms, queue })
}

/// Decides up to [`frankly_review::MAX_BULK_DECISION`] reports with one
/// statement of reasons, in one transaction: each report is checked on its
/// own before anything of it is written, so a refused report writes nothing
/// and leaves its neighbours decided. The bulk decision has an audit entry, and each
/// report's decision its own, naming it. Returns that entry's position and
/// each report's outcome, in the order given.
pub async fn decide_bulk(
    db: &Db,
    user: &User,
    reports: &[i64],
    input: &DecisionInput,
    strike_days: u32,
) -> Result<(i64, Vec<(i64, Result<Decided, ReviewError>)>), ServerError> {
    frankly_review::check_bulk_size(reports.len())?;
    let summary = serde_json::json!({
        "reports": reports.len(),
        "action": input.action,
        "ground": input.ground,
        "ground_reference": input.ground_reference,
    })
    .to_string();
    decide_batch(db, user, reports, input, strike_days, "bulk-decide", &summary).await
}

/// [`decide_bulk`]'s work with the batch's own audit entry (`action`,
/// `detail`): bulk decisions, and the decisions Coop's action webhooks
/// carry.
pub(crate) async fn decide_batch(
    db: &Db,
    user: &User,
    reports: &[i64],
    input: &DecisionInput,
    strike_days: u32,
    action: &str,
    detail: &str,
) -> Result<(i64, Vec<(i64, Result<Decided, ReviewError>)>), ServerError> {
    input.check_statement()?;
    let now = crate::now_ms();
    let backend = db.backend();
    let mut tx = db.writer().begin().await?;
    // One head read for the whole batch: a bulk decision of 1000 reports
    // appends 1001 entries.
    let mut log = audit::Appender::default();
    let batch =
        log.append(&mut tx, backend, &user.username, action, &format!("user:{}", user.username), detail).await?;
    let mut results = Vec::with_capacity(reports.len());
    for &id in reports {
        // A refusal is found before the report's first write, so it needs
        // no savepoint; a database error fails the whole batch.
        let outcome = match bulk_report(&mut tx, backend, user.id, id).await? {
            None => Err(ReviewError::NotFound("report")),
            Some((report, _)) if !user.role.may(Operation::See(report.queue)) => Err(ReviewError::Forbidden),
            Some((report, decided_before)) => {
                match input.check_in_bulk(user.role, user.id, &report.state(), decided_before, now) {
                    Ok(decision) => Ok(record_decision(
                        &mut tx,
                        backend,
                        &mut log,
                        user,
                        &report,
                        &decision,
                        now,
                        strike_days,
                        Some(batch),
                    )
                    .await?),
                    Err(refused) => Err(refused),
                }
            }
        };
        results.push((id, outcome));
    }
    tx.commit().await?;
    Ok((batch, results))
}

/// A report of a bulk decision, locked on PostgreSQL, and whether `moderator`
/// decided it before, in one query.
async fn bulk_report(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    moderator: i64,
    id: i64,
) -> Result<Option<(ReportRow, bool)>, ServerError> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let found = sqlx::query(&format!(
        "SELECT {ROW_COLUMNS}, (SELECT COUNT(*) FROM decisions d WHERE d.report = reports.id AND d.moderator = $2) \
         AS mine FROM reports WHERE id = $1{lock}"
    ))
    .bind(id)
    .bind(moderator)
    .fetch_optional(&mut **tx)
    .await?;
    found.map(|r| Ok((row(&r)?, r.try_get::<i64, _>("mine")? > 0))).transpose()
}

/// Files an appeal against the latest decision on a report: the report
/// returns to review, in the appeals queue (or stays in the child-safety
/// queue), and the moderators who decided it cannot claim it. The rules
/// are `frankly_review::check_appeal`'s.
pub async fn appeal(db: &Db, input: &AppealInput) -> Result<i64, ServerError> {
    let mut tx = db.writer().begin().await?;
    let r = sqlx::query(&format!("SELECT {ROW_COLUMNS} FROM reports WHERE report_id = $1"))
        .bind(&input.report_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ReviewError::NotFound("report"))?;
    let report = row(&r)?;
    let new_queue = frankly_review::check_appeal(&input.appellant, &input.statement, &report.state())?;
    let id = report.id;
    let decision: i64 = sqlx::query("SELECT id FROM decisions WHERE report = $1 ORDER BY id DESC LIMIT 1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ReviewError::NotFound("decision"))?
        .try_get("id")?;
    let appeal: i64 = sqlx::query(
        "INSERT INTO appeals (report, decision, appellant, statement, filed_ms) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(id)
    .bind(decision)
    .bind(&input.appellant)
    .bind(&input.statement)
    .bind(crate::now_ms())
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    sqlx::query("UPDATE reports SET status = 'queued', queue = $1, stage = $2 WHERE id = $3")
        .bind(new_queue.name())
        .bind(Stage::Appeal.name())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::append(&mut tx, db.backend(), "platform", "appeal", &format!("report:{id}"), &format!("appeal:{appeal}"))
        .await?;
    let filed = serde_json::json!({
        "report": id,
        "report_id": report.report_id,
        "appeal": appeal,
        "decision": decision,
        "appellant": input.appellant,
        "queue": new_queue,
    });
    webhooks::record(&mut tx, Event::AppealFiled, &format!("report:{id}"), filed).await?;
    tx.commit().await?;
    Ok(appeal)
}

/// The other reports of `sender` in queues `user`'s role may see, newest
/// first, each with its latest decision's action.
async fn sender_history(db: &Db, user: &User, sender: &str, except: i64) -> Result<Vec<SenderReport>, ServerError> {
    let mut f = Filters::default();
    f.one_of("r.queue", visible_queues(user, None)?.iter().map(|q| q.name()));
    f.text("r.sender_id =", Some(sender));
    f.number("r.id <>", Some(except));
    let select = "SELECT r.id, r.queue, r.status, r.reason, r.received_ms, \
         (SELECT d.action FROM decisions d WHERE d.report = r.id ORDER BY d.id DESC LIMIT 1) AS last_action \
         FROM reports r";
    f.fetch(db.reader(), select, "ORDER BY r.id DESC", MAX_SENDER_HISTORY)
        .await?
        .iter()
        .map(|r| {
            let last: Option<String> = r.try_get("last_action")?;
            Ok(SenderReport {
                id: r.try_get("id")?,
                queue: column(r, "queue")?,
                status: column(r, "status")?,
                reason: r.try_get("reason")?,
                received_ms: r.try_get("received_ms")?,
                last_action: last
                    .map(|a| a.parse().map_err(|e: ReviewError| ServerError::Internal(format!("stored {e}"))))
                    .transpose()?,
            })
        })
        .collect()
}

/// Adds `user`'s comment to report `id` (a role that sees its queue), with
/// its audit entry, in one transaction; returns the comment's id.
pub async fn comment(db: &Db, user: &User, id: i64, body: &str) -> Result<i64, ServerError> {
    let body = frankly_review::check_comment(body)?;
    let mut tx = db.writer().begin().await?;
    let r = sqlx::query("SELECT queue FROM reports WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ReviewError::NotFound("report"))?;
    let queue: Queue = column(&r, "queue")?;
    if !user.role.may(Operation::See(queue)) {
        return Err(ReviewError::Forbidden.into());
    }
    let comment: i64 = sqlx::query(
        "INSERT INTO report_comments (report, author, body, created_ms) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(id)
    .bind(user.id)
    .bind(body)
    .bind(crate::now_ms())
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    audit::append(
        &mut tx,
        db.backend(),
        &user.username,
        "comment",
        &format!("report:{id}"),
        &format!("comment:{comment}"),
    )
    .await?;
    tx.commit().await?;
    Ok(comment)
}

/// Reports a user may see, newest first, for the history list.
pub async fn recent(db: &Db, user: &User, limit: i64) -> Result<Vec<ReportRow>, ServerError> {
    let mut f = Filters::default();
    f.one_of("queue", visible_queues(user, None)?.iter().map(|q| q.name()));
    let select = format!("SELECT {ROW_COLUMNS} FROM reports");
    f.fetch(db.reader(), &select, "ORDER BY id DESC", limit).await?.iter().map(row).collect()
}

/// What a report list is filtered by (every field optional).
#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListFilter {
    /// Only this status.
    pub status: Option<Status>,
    /// Only this queue (it must be one the role may see).
    pub queue: Option<Queue>,
    /// Only reports of this sender.
    pub sender: Option<String>,
    /// Received at or after (Unix ms).
    pub since: Option<i64>,
    /// Received before (Unix ms).
    pub until: Option<i64>,
    /// Only reports whose verified attachments matched (true) or did not
    /// match (false) a server bank.
    pub bank_match: Option<bool>,
    /// Only ids below this (the previous page's `next_before`).
    pub before: Option<i64>,
    /// Most reports returned (default 100, at most `frankly_api::moderation::MAX_LIST`).
    pub limit: Option<i64>,
}

impl ListFilter {
    /// The page size in effect.
    pub fn page_size(&self) -> i64 {
        self.limit.unwrap_or(100).clamp(1, frankly_api::moderation::MAX_LIST)
    }
}

/// The queues a list covers: `only`, if the role may see it (refused, not
/// silently emptied, if not), or every queue the role may see.
fn visible_queues(user: &User, only: Option<Queue>) -> Result<Vec<Queue>, ServerError> {
    match only {
        Some(q) if !user.role.may(Operation::See(q)) => Err(ReviewError::Forbidden.into()),
        Some(q) => Ok(vec![q]),
        None => Ok(Queue::ALL.iter().copied().filter(|q| user.role.may(Operation::See(*q))).collect()),
    }
}

/// Reports `user` may see that pass `filter`, newest first; a queue the
/// role may not see is refused, not silently emptied.
pub async fn list(db: &Db, user: &User, filter: &ListFilter) -> Result<Vec<ReportRow>, ServerError> {
    let visible = visible_queues(user, filter.queue)?;
    let mut f = Filters::default();
    f.one_of("queue", visible.iter().map(|q| q.name()));
    f.text("status =", filter.status.map(|s| s.name()));
    f.text("sender_id =", filter.sender.as_deref());
    f.number("received_ms >=", filter.since);
    f.number("received_ms <", filter.until);
    f.number("id <", filter.before);
    match filter.bank_match {
        Some(true) => f.clause("server_matches > 0"),
        Some(false) => f.clause("server_matches = 0"),
        None => {}
    }
    let select = format!("SELECT {ROW_COLUMNS} FROM reports");
    f.fetch(db.reader(), &select, "ORDER BY id DESC", filter.page_size()).await?.iter().map(row).collect()
}

/// Whether an appeal has been answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AppealStatus {
    /// Filed, not yet upheld or reversed.
    Open,
    /// Upheld or reversed.
    Decided,
}

/// What an appeal list is filtered by (every field optional).
#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AppealFilter {
    /// Only open or only decided appeals.
    pub status: Option<AppealStatus>,
    /// Only appeals whose report is in this queue now (one the role may see).
    pub queue: Option<Queue>,
    /// Only appeals by this appellant.
    pub appellant: Option<String>,
    /// Filed at or after (Unix ms).
    pub since: Option<i64>,
    /// Filed before (Unix ms).
    pub until: Option<i64>,
    /// Only ids below this (the previous page's `next_before`).
    pub before: Option<i64>,
    /// Most appeals returned (default 100, at most `frankly_api::moderation::MAX_APPEALS`).
    pub limit: Option<i64>,
}

impl AppealFilter {
    /// The page size in effect.
    pub fn page_size(&self) -> i64 {
        self.limit.unwrap_or(100).clamp(1, frankly_api::moderation::MAX_APPEALS)
    }
}

/// Appeals on reports in queues `user` may see that pass `filter`, newest
/// first, each with the decision appealed and its answer; a queue the role
/// may not see is refused, as in [`list`].
pub async fn appeals(db: &Db, user: &User, filter: &AppealFilter) -> Result<Vec<AppealSummary>, ServerError> {
    let visible = visible_queues(user, filter.queue)?;
    // The answer is the decision naming the appeal with an appeal action
    // (an escalation on the way names it too, and is not an answer).
    const SELECT: &str = "SELECT a.id, a.report, r.report_id, r.queue, a.decision, p.action AS appealed, \
         a.appellant, a.statement, a.filed_ms, d.id AS answer, d.action AS answer_action, u.username AS answer_by, \
         d.decided_ms AS answer_ms FROM appeals a JOIN reports r ON r.id = a.report \
         JOIN decisions p ON p.id = a.decision \
         LEFT JOIN decisions d ON d.appeal = a.id AND d.action IN ('uphold', 'reverse') \
         LEFT JOIN users u ON u.id = d.moderator";
    let mut f = Filters::default();
    f.one_of("r.queue", visible.iter().map(|q| q.name()));
    f.text("a.appellant =", filter.appellant.as_deref());
    f.number("a.filed_ms >=", filter.since);
    f.number("a.filed_ms <", filter.until);
    f.number("a.id <", filter.before);
    match filter.status {
        Some(AppealStatus::Open) => f.clause("d.id IS NULL"),
        Some(AppealStatus::Decided) => f.clause("d.id IS NOT NULL"),
        None => {}
    }
    f.fetch(db.reader(), SELECT, "ORDER BY a.id DESC", filter.page_size())
        .await?
        .iter()
        .map(|r| {
            let answer = match r.try_get::<Option<i64>, _>("answer")? {
                Some(decision) => Some(AppealAnswer {
                    decision,
                    action: column(r, "answer_action")?,
                    moderator: r.try_get("answer_by")?,
                    decided_ms: r.try_get("answer_ms")?,
                }),
                None => None,
            };
            Ok(AppealSummary {
                id: r.try_get("id")?,
                report: r.try_get("report")?,
                report_id: r.try_get("report_id")?,
                queue: column(r, "queue")?,
                decision: r.try_get("decision")?,
                appealed_action: column(r, "appealed")?,
                appellant: r.try_get("appellant")?,
                statement: r.try_get("statement")?,
                filed_ms: r.try_get("filed_ms")?,
                answer,
            })
        })
        .collect()
}

/// The reports `user` holds now.
pub async fn held(db: &Db, user: &User) -> Result<Vec<ReportRow>, ServerError> {
    let rows = sqlx::query(&format!(
        "SELECT {ROW_COLUMNS} FROM reports WHERE status = 'claimed' AND claimed_by = $1 ORDER BY id"
    ))
    .bind(user.id)
    .fetch_all(db.reader())
    .await?;
    rows.iter().map(row).collect()
}

/// An attachment's plaintext and its sniffed inline media type, for a user
/// whose role sees the report's queue; the fetch is audited.
pub async fn media(
    db: &Db,
    user: &User,
    id: i64,
    message: usize,
    attachment: usize,
) -> Result<(Vec<u8>, Option<String>), ServerError> {
    let (bytes, meta, _) = media_of_report(db, user, id, message, attachment, "").await?;
    Ok((bytes, meta.media_type))
}

/// [`media`] with the attachment's row and the stored report it belongs to;
/// `what` is appended to the audit entry's detail (for example `strip`).
pub async fn media_of_report(
    db: &Db,
    user: &User,
    id: i64,
    message: usize,
    attachment: usize,
    what: &str,
) -> Result<(Vec<u8>, crate::AttachmentMeta, StoredReport), ServerError> {
    let r = sqlx::query("SELECT queue, content FROM reports WHERE id = $1")
        .bind(id)
        .fetch_optional(db.reader())
        .await?
        .ok_or(ReviewError::NotFound("report"))?;
    let queue: Queue = column(&r, "queue")?;
    if !user.role.may(Operation::See(queue)) {
        audit::record(db, &user.username, "media-denied", &format!("report:{id}"), queue.name()).await?;
        return Err(ReviewError::Forbidden.into());
    }
    let stored = stored_report(id, &r.try_get::<Vec<u8>, _>("content")?)?;
    let (meta, bytes) =
        crate::attachments::fetch(db, id, message, attachment).await?.ok_or(ReviewError::NotFound("attachment"))?;
    let bytes = bytes.ok_or(ReviewError::Purged)?;
    let detail =
        if what.is_empty() { format!("{message}/{attachment}") } else { format!("{message}/{attachment} {what}") };
    audit::record(db, &user.username, "view-media", &format!("report:{id}"), &detail).await?;
    Ok((bytes, meta, stored))
}

/// An attachment's plaintext and its row, by the attachment's id, for a
/// user whose role sees its report's queue; the fetch is audited.
pub async fn media_by_id(
    db: &Db,
    user: &User,
    attachment: i64,
) -> Result<(Vec<u8>, crate::AttachmentMeta), ServerError> {
    let r =
        sqlx::query("SELECT r.id, r.queue FROM report_attachments a JOIN reports r ON r.id = a.report WHERE a.id = $1")
            .bind(attachment)
            .fetch_optional(db.reader())
            .await?
            .ok_or(ReviewError::NotFound("attachment"))?;
    let id: i64 = r.try_get("id")?;
    let queue: Queue = column(&r, "queue")?;
    if !user.role.may(Operation::See(queue)) {
        audit::record(db, &user.username, "media-denied", &format!("report:{id}"), queue.name()).await?;
        return Err(ReviewError::Forbidden.into());
    }
    let (meta, bytes) =
        crate::attachments::fetch_by_id(db, attachment).await?.ok_or(ReviewError::NotFound("attachment"))?;
    let bytes = bytes.ok_or(ReviewError::Purged)?;
    audit::record(
        db,
        &user.username,
        "view-media",
        &format!("report:{id}"),
        &format!("{}/{}", meta.message, meta.attachment),
    )
    .await?;
    Ok((bytes, meta))
}

/// Parses a stored report. Reports stored by franking v1 (schema 1) stay
/// in the database and the audit log, but this build does not show them.
pub(crate) fn stored_report(id: i64, content: &[u8]) -> Result<StoredReport, ServerError> {
    serde_json::from_slice(content).map_err(|e| {
        ReviewError::Unreadable { report: id, why: format!("stored by franking v1, or damaged: {e}") }.into()
    })
}
