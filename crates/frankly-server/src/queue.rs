//! The review queue: claims with leases, decisions with the EU Digital
//! Services Act's statement-of-reasons fields, escalation and appeals.
//!
//! A claim sets `claimed_by` and a lease in one `UPDATE` of the best queued
//! report (highest priority, then oldest). On PostgreSQL the candidate row is
//! locked with `FOR UPDATE SKIP LOCKED`, so instances claiming at the same
//! moment take different reports and never wait on each other; on SQLite the
//! single writer serialises claims. An expired lease returns the report to
//! its queue. A moderator who decided a report never gets its appeal.

use axum::http::StatusCode;
use sqlx::Row;

use crate::ServerError;
use crate::audit;
use crate::auth::{Role, User};
use crate::db::{Backend, Db};
use crate::intake::StoredReport;

/// The child-safety queue (child-safety specialists only).
pub const CHILD_SAFETY_QUEUE: &str = "child-safety";
/// Escalated reports from the general queues (admins).
pub const ESCALATED_QUEUE: &str = "escalated";
/// Appeals against decisions in the general queues.
pub const APPEALS_QUEUE: &str = "appeals";
/// Every queue, in the order the dashboard shows them.
pub const QUEUES: &[&str] = &[
    CHILD_SAFETY_QUEUE,
    ESCALATED_QUEUE,
    "self-harm",
    "violence",
    "non-consensual-imagery",
    "harassment",
    "other",
    "spam",
    APPEALS_QUEUE,
];

/// Where a report is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// First review.
    Review,
    /// Escalated to a senior reviewer.
    Escalated,
    /// Appealed.
    Appeal,
}

impl Stage {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Review => "review",
            Stage::Escalated => "escalated",
            Stage::Appeal => "appeal",
        }
    }
}

/// What a moderator decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// No violation.
    Dismiss,
    /// Remove the content.
    Remove,
    /// Warn the sender.
    Warn,
    /// Suspend the sender's account.
    Suspend,
    /// Hand to a senior reviewer.
    Escalate,
    /// Refer to a child-safety authority (e.g. NCMEC's CyberTipline).
    ReportAuthority,
    /// On appeal: the decision stands.
    Uphold,
    /// On appeal: the decision is reversed.
    Reverse,
}

impl Action {
    /// Every action.
    pub const ALL: &'static [Action] = &[
        Action::Dismiss,
        Action::Remove,
        Action::Warn,
        Action::Suspend,
        Action::Escalate,
        Action::ReportAuthority,
        Action::Uphold,
        Action::Reverse,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Dismiss => "dismiss",
            Action::Remove => "remove",
            Action::Warn => "warn",
            Action::Suspend => "suspend",
            Action::Escalate => "escalate",
            Action::ReportAuthority => "report-authority",
            Action::Uphold => "uphold",
            Action::Reverse => "reverse",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(text: &str) -> Option<Action> {
        Action::ALL.iter().copied().find(|a| a.as_str() == text)
    }

    /// The DSA restriction this action imposes by default.
    pub fn default_restriction(self) -> &'static str {
        match self {
            Action::Remove => "removal of content",
            Action::Suspend => "suspension of the account",
            Action::ReportAuthority => "removal of content; referral to a child-safety authority",
            Action::Warn => "none (warning to the user)",
            Action::Dismiss | Action::Escalate | Action::Uphold | Action::Reverse => "none",
        }
    }

    /// Whether it restricts the user and so needs a full statement of reasons.
    pub fn restricts(self) -> bool {
        matches!(self, Action::Remove | Action::Suspend | Action::ReportAuthority | Action::Warn)
    }
}

/// The grounds of a decision (DSA Article 17(3)(d) and (e)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ground {
    /// Illegal content: the law is named in `ground_reference`.
    Legal,
    /// Incompatible with the terms of service: the clause is named.
    Terms,
}

/// A decision as submitted.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct DecisionInput {
    /// What.
    pub action: Action,
    /// Type of restriction imposed (DSA Art. 17(3)(a)); defaults from the action.
    pub restriction: Option<String>,
    /// Facts and circumstances relied on (Art. 17(3)(b)).
    pub facts: String,
    /// Whether automated means detected or decided (Art. 17(3)(c)).
    pub automated_detection: bool,
    /// Legal or terms-of-service ground (Art. 17(3)(d), (e)).
    pub ground: Ground,
    /// The law or the terms clause.
    pub ground_reference: String,
    /// Redress available to the user (Art. 17(3)(f)).
    pub redress: Option<String>,
}

impl DecisionInput {
    /// A dismissal: no restriction, so no statement of reasons is needed.
    pub fn dismiss() -> DecisionInput {
        DecisionInput {
            action: Action::Dismiss,
            restriction: None,
            facts: String::new(),
            automated_detection: false,
            ground: Ground::Terms,
            ground_reference: String::new(),
            redress: None,
        }
    }
}

/// The redress text when none is given.
pub const DEFAULT_REDRESS: &str = "You can appeal this decision through the in-app complaint system within six months; \
     you may also use a certified out-of-court dispute settlement body or go to court.";
/// Longest free-text field of a decision.
pub const MAX_DECISION_TEXT: usize = 8192;

/// A report's queue row.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReportRow {
    /// Database id.
    pub id: i64,
    /// The device's report id.
    pub report_id: String,
    /// Queue.
    pub queue: String,
    /// Stage name.
    pub stage: String,
    /// Priority.
    pub priority: i64,
    /// `queued`, `claimed` or `decided`.
    pub status: String,
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
}

const ROW_COLUMNS: &str = "id, report_id, queue, stage, priority, status, claimed_by, lease_until_ms, received_ms, \
     reason, reporter_id, sender_id, messages, verified, chain_ok, server_matches";

fn row(r: &sqlx::any::AnyRow) -> Result<ReportRow, ServerError> {
    Ok(ReportRow {
        id: r.try_get("id")?,
        report_id: r.try_get("report_id")?,
        queue: r.try_get("queue")?,
        stage: r.try_get("stage")?,
        priority: r.try_get("priority")?,
        status: r.try_get("status")?,
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
    })
}

fn forbidden() -> ServerError {
    ServerError::refused(StatusCode::FORBIDDEN, "forbidden", "your role does not give access to this")
}

fn not_found() -> ServerError {
    ServerError::refused(StatusCode::NOT_FOUND, "not_found", "no such report")
}

/// Queued and claimed counts per queue.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Depth {
    /// Queue name.
    pub queue: String,
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
    let mut out: Vec<Depth> = QUEUES.iter().map(|q| Depth { queue: (*q).to_string(), ..Depth::default() }).collect();
    for r in rows {
        let queue: String = r.try_get("queue")?;
        let status: String = r.try_get("status")?;
        let n: i64 = r.try_get("n")?;
        if let Some(d) = out.iter_mut().find(|d| d.queue == queue) {
            if status == "queued" {
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
    Ok(sqlx::query(
        "UPDATE reports SET status = 'queued', claimed_by = NULL, claimed_ms = NULL, lease_until_ms = NULL \
         WHERE status = 'claimed' AND lease_until_ms < $1",
    )
    .bind(now)
    .execute(db.writer())
    .await?
    .rows_affected())
}

/// Claims the next report of `queue` for `user`, or returns the one the user
/// already holds there. `None` when the queue is empty.
pub async fn claim(db: &Db, user: &User, queue: &str, lease_ms: i64) -> Result<Option<i64>, ServerError> {
    if !QUEUES.contains(&queue) {
        return Err(ServerError::refused(StatusCode::NOT_FOUND, "no_queue", format!("no queue named {queue:?}")));
    }
    if !user.role.can_see(queue) {
        return Err(forbidden());
    }
    let now = crate::now_ms();
    expire_leases(db, now).await?;
    let held = sqlx::query(
        "SELECT id FROM reports WHERE status = 'claimed' AND claimed_by = $1 AND queue = $2 ORDER BY id LIMIT 1",
    )
    .bind(user.id)
    .bind(queue)
    .fetch_optional(db.writer())
    .await?;
    if let Some(r) = held {
        return Ok(Some(r.try_get("id")?));
    }
    let lock = match db.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE reports SET status = 'claimed', claimed_by = $1, claimed_ms = $2, lease_until_ms = $3 \
         WHERE id = (SELECT r.id FROM reports r WHERE r.status = 'queued' AND r.queue = $4 \
         AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.report = r.id AND d.moderator = $1) \
         ORDER BY r.priority DESC, r.id LIMIT 1 {lock}) AND status = 'queued' RETURNING id"
    );
    let mut tx = db.writer().begin().await?;
    let claimed = sqlx::query(&sql)
        .bind(user.id)
        .bind(now)
        .bind(now.saturating_add(lease_ms))
        .bind(queue)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(r) = claimed else {
        tx.rollback().await?;
        return Ok(None);
    };
    let id: i64 = r.try_get("id")?;
    audit::append(&mut tx, db.backend(), &user.username, "claim", &format!("report:{id}"), queue).await?;
    tx.commit().await?;
    Ok(Some(id))
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
        return Err(ServerError::refused(StatusCode::CONFLICT, "not_claimed", "you do not hold this report"));
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
    /// The stored report.
    pub stored: StoredReport,
    /// Earlier decisions, oldest first.
    pub decisions: Vec<DecisionRow>,
    /// Appeals, oldest first.
    pub appeals: Vec<AppealRow>,
}

/// A recorded decision.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DecisionRow {
    /// Id.
    pub id: i64,
    /// The appeal it answers.
    pub appeal: Option<i64>,
    /// Moderator's username.
    pub moderator: String,
    /// Action name.
    pub action: String,
    /// Restriction.
    pub restriction: String,
    /// Facts and circumstances.
    pub facts: String,
    /// Automated detection used.
    pub automated: bool,
    /// `legal` or `terms`.
    pub ground: String,
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
        .ok_or_else(not_found)?;
    let report_row = row(&r)?;
    if !user.role.can_see(&report_row.queue) {
        audit::record(db, &user.username, "view-denied", &format!("report:{id}"), &report_row.queue).await?;
        return Err(forbidden());
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
            action: d.try_get("action")?,
            restriction: d.try_get("restriction")?,
            facts: d.try_get("facts")?,
            automated: d.try_get::<i64, _>("automated")? != 0,
            ground: d.try_get("ground")?,
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
    audit::record(db, &user.username, "view", &format!("report:{id}"), &report_row.queue).await?;
    Ok(ReportView { row: report_row, stored, decisions, appeals })
}

/// The outcome of a decision.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Decided {
    /// The decision's id.
    pub decision: i64,
    /// Milliseconds from intake to this decision.
    pub latency_ms: i64,
    /// Where the report went (for an escalation).
    pub queue: String,
}

fn check_text(field: &str, value: &str) -> Result<(), ServerError> {
    if value.len() > MAX_DECISION_TEXT {
        return Err(ServerError::refused(
            StatusCode::BAD_REQUEST,
            "invalid_decision",
            format!("{field} is {} bytes (limit {MAX_DECISION_TEXT})", value.len()),
        ));
    }
    Ok(())
}

/// Records `user`'s decision on a report they hold, with the audit entry, in
/// one transaction.
pub async fn decide(db: &Db, user: &User, id: i64, input: &DecisionInput) -> Result<Decided, ServerError> {
    let invalid = |m: &str| Err(ServerError::refused(StatusCode::BAD_REQUEST, "invalid_decision", m.to_string()));
    let restriction = input.restriction.clone().filter(|r| !r.trim().is_empty());
    let restriction = restriction.unwrap_or_else(|| input.action.default_restriction().to_string());
    let redress = input.redress.clone().filter(|r| !r.trim().is_empty()).unwrap_or_else(|| DEFAULT_REDRESS.into());
    for (field, value) in [
        ("facts", &input.facts),
        ("ground_reference", &input.ground_reference),
        ("restriction", &restriction),
        ("redress", &redress),
    ] {
        check_text(field, value)?;
    }
    if input.action.restricts() && (input.facts.trim().is_empty() || input.ground_reference.trim().is_empty()) {
        return invalid(
            "a restricting decision needs the facts and circumstances and the legal or terms ground it relies on",
        );
    }
    if input.action == Action::ReportAuthority && user.role != Role::ChildSafety {
        return Err(forbidden());
    }
    let now = crate::now_ms();
    let mut tx = db.writer().begin().await?;
    let r =
        sqlx::query("SELECT queue, stage, status, claimed_by, lease_until_ms, received_ms FROM reports WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(not_found)?;
    let queue: String = r.try_get("queue")?;
    if !user.role.can_see(&queue) {
        return Err(forbidden());
    }
    let status: String = r.try_get("status")?;
    let holder: Option<i64> = r.try_get("claimed_by")?;
    let lease: Option<i64> = r.try_get("lease_until_ms")?;
    if status != "claimed" || holder != Some(user.id) || lease.is_none_or(|l| l < now) {
        return Err(ServerError::refused(
            StatusCode::CONFLICT,
            "not_claimed",
            "you do not hold this report (never claimed, or the lease expired): claim it again",
        ));
    }
    let stage: String = r.try_get("stage")?;
    let on_appeal = stage == Stage::Appeal.as_str();
    if on_appeal != matches!(input.action, Action::Uphold | Action::Reverse) {
        return invalid(if on_appeal {
            "an appeal is decided with uphold or reverse"
        } else {
            "uphold and reverse decide appeals only"
        });
    }
    let appeal: Option<i64> = if on_appeal {
        sqlx::query("SELECT id FROM appeals WHERE report = $1 ORDER BY id DESC LIMIT 1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|a| a.try_get("id"))
            .transpose()?
    } else {
        None
    };
    let decision: i64 = sqlx::query(
        "INSERT INTO decisions (report, appeal, moderator, action, restriction, facts, automated, ground, \
         ground_reference, redress, decided_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(id)
    .bind(appeal)
    .bind(user.id)
    .bind(input.action.as_str())
    .bind(&restriction)
    .bind(&input.facts)
    .bind(i64::from(input.automated_detection))
    .bind(match input.ground {
        Ground::Legal => "legal",
        Ground::Terms => "terms",
    })
    .bind(&input.ground_reference)
    .bind(&redress)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    let mut new_queue = queue.clone();
    if input.action == Action::Escalate {
        // Restricted reports stay in their restricted queue; others go to admins.
        if queue != CHILD_SAFETY_QUEUE {
            new_queue = ESCALATED_QUEUE.to_string();
        }
        sqlx::query(
            "UPDATE reports SET status = 'queued', queue = $1, stage = $2, priority = priority + 1000, \
             claimed_by = NULL, claimed_ms = NULL, lease_until_ms = NULL WHERE id = $3",
        )
        .bind(&new_queue)
        .bind(Stage::Escalated.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query("UPDATE reports SET status = 'decided', claimed_by = NULL, lease_until_ms = NULL WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    let detail = serde_json::json!({
        "decision": decision,
        "action": input.action.as_str(),
        "restriction": restriction,
        "automated_detection": input.automated_detection,
        "ground": input.ground,
        "ground_reference": input.ground_reference,
    })
    .to_string();
    audit::append(&mut tx, db.backend(), &user.username, "decide", &format!("report:{id}"), &detail).await?;
    tx.commit().await?;
    let received: i64 = r.try_get("received_ms")?;
    Ok(Decided { decision, latency_ms: now - received, queue: new_queue })
}

/// An appeal as the platform submits it.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppealInput {
    /// The device's report id.
    pub report_id: String,
    /// Who appeals (the reported user or the reporter).
    pub appellant: String,
    /// Their statement.
    pub statement: String,
}

/// Files an appeal against the latest decision on a report: the report
/// returns to review, in the appeals queue (or stays in the child-safety
/// queue), and the moderators who decided it cannot claim it.
pub async fn appeal(db: &Db, input: &AppealInput) -> Result<i64, ServerError> {
    check_text("statement", &input.statement)?;
    if input.appellant.is_empty() || input.appellant.len() > frankly_franking::MAX_ID_BYTES {
        return Err(ServerError::refused(StatusCode::BAD_REQUEST, "invalid_appeal", "appellant must be a user id"));
    }
    let mut tx = db.writer().begin().await?;
    let r = sqlx::query("SELECT id, queue, status FROM reports WHERE report_id = $1")
        .bind(&input.report_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(not_found)?;
    let id: i64 = r.try_get("id")?;
    let queue: String = r.try_get("queue")?;
    let status: String = r.try_get("status")?;
    if status != "decided" {
        return Err(ServerError::refused(StatusCode::CONFLICT, "not_decided", "only a decided report can be appealed"));
    }
    let decision: i64 = sqlx::query("SELECT id FROM decisions WHERE report = $1 ORDER BY id DESC LIMIT 1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(not_found)?
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
    let new_queue = if queue == CHILD_SAFETY_QUEUE { CHILD_SAFETY_QUEUE } else { APPEALS_QUEUE };
    sqlx::query("UPDATE reports SET status = 'queued', queue = $1, stage = $2 WHERE id = $3")
        .bind(new_queue)
        .bind(Stage::Appeal.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::append(&mut tx, db.backend(), "platform", "appeal", &format!("report:{id}"), &format!("appeal:{appeal}"))
        .await?;
    tx.commit().await?;
    Ok(appeal)
}

/// Reports a user may see, newest first, for the history list.
pub async fn recent(db: &Db, user: &User, limit: i64) -> Result<Vec<ReportRow>, ServerError> {
    let visible: Vec<&str> = QUEUES.iter().copied().filter(|q| user.role.can_see(q)).collect();
    let params: Vec<String> = (0..visible.len()).map(|i| format!("${}", i + 2)).collect();
    let sql =
        format!("SELECT {ROW_COLUMNS} FROM reports WHERE queue IN ({}) ORDER BY id DESC LIMIT $1", params.join(", "));
    let mut query = sqlx::query(&sql).bind(limit);
    for q in visible {
        query = query.bind(q);
    }
    query.fetch_all(db.reader()).await?.iter().map(row).collect()
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

/// An attachment's plaintext, for a user whose role sees the report's
/// queue; the fetch is audited.
pub async fn media(db: &Db, user: &User, id: i64, message: usize, attachment: usize) -> Result<Vec<u8>, ServerError> {
    Ok(media_of_report(db, user, id, message, attachment, "").await?.0)
}

/// [`media`] with the stored report it belongs to; `what` is appended to the
/// audit entry's detail (for example `strip`).
pub async fn media_of_report(
    db: &Db,
    user: &User,
    id: i64,
    message: usize,
    attachment: usize,
    what: &str,
) -> Result<(Vec<u8>, StoredReport), ServerError> {
    let r = sqlx::query("SELECT queue, content FROM reports WHERE id = $1")
        .bind(id)
        .fetch_optional(db.reader())
        .await?
        .ok_or_else(not_found)?;
    let queue: String = r.try_get("queue")?;
    if !user.role.can_see(&queue) {
        audit::record(db, &user.username, "media-denied", &format!("report:{id}"), &queue).await?;
        return Err(forbidden());
    }
    let stored = stored_report(id, &r.try_get::<Vec<u8>, _>("content")?)?;
    let bytes = stored
        .report
        .messages
        .get(message)
        .and_then(|m| m.opening.as_ref())
        .and_then(|o| o.attachments.get(attachment))
        .map(|a| a.plaintext.clone())
        .ok_or_else(|| ServerError::refused(StatusCode::NOT_FOUND, "not_found", "no such attachment"))?;
    let detail =
        if what.is_empty() { format!("{message}/{attachment}") } else { format!("{message}/{attachment} {what}") };
    audit::record(db, &user.username, "view-media", &format!("report:{id}"), &detail).await?;
    Ok((bytes, stored))
}

/// Parses a stored report. Reports stored by franking v1 (schema 1) stay
/// in the database and the audit log, but this build does not show them.
fn stored_report(id: i64, content: &[u8]) -> Result<StoredReport, ServerError> {
    serde_json::from_slice(content).map_err(|e| {
        ServerError::refused(
            StatusCode::GONE,
            "unreadable",
            format!("report {id} cannot be shown by this build (stored by franking v1, or damaged: {e})"),
        )
    })
}
