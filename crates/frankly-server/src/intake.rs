//! Report intake: open and verify a sealed report, match its verified
//! attachments against the server's banks, rate-limit its reporter, and
//! commit it durably before answering.
//!
//! Verification runs on the blocking pool. Commits go through one writer
//! task that gathers the reports waiting at that moment into one
//! transaction (group commit): a report is acknowledged only after the
//! transaction that holds it has committed, and one fsync covers many
//! reports. Replays are refused by the database's unique `report_id`, so a
//! replay is caught across restarts and across instances.

use std::sync::Arc;

use axum::http::StatusCode;
use frankly_franking::{FrankingError, Keyring, Ordering, Party};
use frankly_report::{Reason, ReplayGuard, ReportError, ReportKeyring, Verdict, VerifiedReport, verify_report};
use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

use crate::ServerError;
use crate::db::Db;
use crate::matching::{ServerBanks, ServerMatch, StoredVideo, match_attachments};
use frankly_api::Received;

/// What the server stores for a report: the report as sealed, the verdict
/// on each message, the platform's order of those that verified, and the
/// server's own evidence.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct StoredReport {
    /// The report as the device sealed it, except that its attachments'
    /// plaintexts are empty: they are stored once, as bytes, beside it
    /// (`report_attachments`, see [`AttachmentMeta`](crate::AttachmentMeta)).
    pub report: frankly_report::Report,
    /// Per message, in report order.
    pub verdicts: Vec<StoredVerdict>,
    /// The order of the messages whose tags verified (first and last
    /// sequence number, every omission between), or why they are not in order.
    pub order: Result<Ordering, String>,
    /// Matches of verified attachments against the server's banks.
    pub server_matches: Vec<ServerMatch>,
    /// The verified video attachments as the server hashed them (reports
    /// stored before video support have none).
    #[serde(default)]
    pub videos: Vec<StoredVideo>,
}

impl StoredReport {
    /// The platform's order of the verified messages, for people: the
    /// sequence range and what is omitted in it, or why they are not in order.
    pub fn order_summary(&self) -> String {
        match &self.order {
            Ok(o) if o.is_complete() => format!("sequence {} to {}, nothing omitted between", o.first, o.last),
            Ok(o) => format!(
                "sequence {} to {}; {} message(s) omitted between, in {} place(s)",
                o.first,
                o.last,
                o.gaps.iter().map(|g| g.missing).sum::<u64>(),
                o.gaps.len()
            ),
            Err(why) => format!("not in the platform's order: {why}"),
        }
    }
}

/// One message's verdict, as stored and shown.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoredVerdict {
    /// What the sender sent, delivered to the reporter.
    Verified,
    /// Delivered to the reporter (the tag verifies), but refused or not
    /// kept by the device: content unknown.
    Unopened,
    /// Failed the check named.
    Rejected(String),
}

/// The open report id the database decides about.
struct Deferred;

impl ReplayGuard for Deferred {
    fn first_time(&mut self, _id: &[u8; 16]) -> bool {
        // The unique index on reports.report_id decides, inside the commit.
        true
    }
}

/// The failed check, for people.
pub(crate) fn check_name(e: &FrankingError) -> String {
    e.to_string()
}

fn refusal(e: ReportError) -> ServerError {
    use StatusCode as S;
    let (status, code) = match &e {
        ReportError::NotAnEnvelope => (S::BAD_REQUEST, "not_an_envelope"),
        ReportError::UnsupportedVersion(_) => (S::BAD_REQUEST, "unsupported_version"),
        ReportError::UnknownReportKey(_) => (S::BAD_REQUEST, "unknown_report_key"),
        ReportError::TooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "too_large"),
        ReportError::Decrypt => (S::BAD_REQUEST, "decrypt"),
        ReportError::Malformed(_) => (S::BAD_REQUEST, "malformed"),
        ReportError::ReporterMismatch { .. } => (S::BAD_REQUEST, "reporter_mismatch"),
        _ => (S::BAD_REQUEST, "invalid"),
    };
    ServerError::Refused { status, code, message: e.to_string(), message_index: None }
}

/// What verification leads to.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Verified: commit it.
    Ready(Box<Ready>),
    /// The reported message did not verify. Answered exactly like a
    /// verified report (no oracle), counted, and not queued.
    Unverified {
        /// The report's id, hex.
        report_id: String,
    },
}

/// A verified report ready to be committed.
#[derive(Debug)]
pub(crate) struct Ready {
    report_id: String,
    reporter: Party,
    reported_commitment: String,
    reason: Reason,
    sender_id: String,
    conversation_id: String,
    queue: frankly_review::Queue,
    priority: i64,
    messages: i64,
    verified: i64,
    order_complete: bool,
    server_matches: i64,
    content: Vec<u8>,
    attachments: Vec<crate::attachments::NewAttachment>,
}

/// Opens, verifies and prepares a report submitted by the authenticated
/// device `reporter` (CPU only; run it on the blocking pool). Errors are
/// refusals of the envelope itself, which say nothing about the messages.
pub(crate) fn verify(
    envelope: &[u8],
    keys: &ReportKeyring,
    keyring: &Keyring,
    reporter: &Party,
    now_ms: u64,
    banks: &ServerBanks,
    max_decode_pixels: u64,
) -> Result<Outcome, ServerError> {
    let (key_id, report) = keys.open(envelope, now_ms).map_err(refusal)?;
    let report_id = report.id_hex();
    match verify_report(report, key_id, keyring, reporter, now_ms, &mut Deferred) {
        Ok(verified) => Ok(Outcome::Ready(Box::new(prepare(verified, banks, max_decode_pixels)?))),
        Err(ReportError::ReportedMessage { .. } | ReportError::ReportedUnopened(_)) => {
            tracing::info!(reporter = %reporter, "a report whose reported message does not verify was not queued");
            Ok(Outcome::Unverified { report_id })
        }
        Err(e) => Err(refusal(e)),
    }
}

fn prepare(verified: VerifiedReport, banks: &ServerBanks, max_decode_pixels: u64) -> Result<Ready, ServerError> {
    let report = verified.report();
    let reported = verified.reported();
    let verdicts: Vec<StoredVerdict> = verified
        .verdicts()
        .iter()
        .map(|v| match v {
            Verdict::Verified => StoredVerdict::Verified,
            Verdict::Unopened => StoredVerdict::Unopened,
            Verdict::Rejected(e) => StoredVerdict::Rejected(check_name(e)),
        })
        .collect();
    let order = verified.order().clone().map_err(|e| check_name(&e));
    let evidence = match_attachments(&verified, banks, max_decode_pixels);
    let server_matches = evidence.matches;
    let (queue, priority) =
        frankly_review::route_new_report(report.reason, server_matches.iter().map(|m| m.labels.as_slice()));
    let verified_count = verdicts.iter().filter(|v| **v == StoredVerdict::Verified).count();
    let order_complete = order.as_ref().is_ok_and(Ordering::is_complete);
    let mut stored = StoredReport { report: report.clone(), verdicts, order, server_matches, videos: evidence.videos };
    let attachments = crate::attachments::take(&mut stored);
    let content = serde_json::to_vec(&stored).map_err(|e| ServerError::Internal(e.to_string()))?;
    Ok(Ready {
        report_id: report.id_hex(),
        reporter: report.reporter.clone(),
        reported_commitment: hex::encode(reported.commitment.0),
        reason: report.reason,
        sender_id: reported.delivery.sender.user_id.clone(),
        conversation_id: reported.delivery.conversation_id.clone(),
        queue,
        priority,
        messages: i64::try_from(report.messages.len()).unwrap_or(i64::MAX),
        verified: i64::try_from(verified_count).unwrap_or(i64::MAX),
        order_complete,
        server_matches: i64::try_from(stored.server_matches.len()).unwrap_or(i64::MAX),
        content,
        attachments,
    })
}

struct Pending {
    ready: Ready,
    ack: oneshot::Sender<Result<Received, ServerError>>,
}

/// The handle of the intake writer.
#[derive(Clone, Debug)]
pub(crate) struct Intake {
    tx: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("report_id", &self.ready.report_id).finish()
    }
}

impl Intake {
    /// Starts the writer task.
    pub(crate) fn start(db: Db, batch: usize, queue: usize, metrics: Arc<crate::metrics::Metrics>) -> Intake {
        let (tx, mut rx) = mpsc::channel::<Pending>(queue);
        tokio::spawn(async move {
            let mut pending = Vec::with_capacity(batch);
            while rx.recv_many(&mut pending, batch).await > 0 {
                let outcome = commit_batch(&db, &pending).await;
                match outcome {
                    Ok(results) => {
                        metrics.intake_batches.inc();
                        for (p, r) in pending.drain(..).zip(results) {
                            let _ = p.ack.send(r);
                        }
                    }
                    Err(e) => {
                        // One bad report must not fail its neighbours: the
                        // batch rolled back, so commit each on its own and
                        // answer only the one that fails with its error.
                        tracing::warn!(error = %e, reports = pending.len(), "intake batch failed; committing one by one");
                        for p in pending.drain(..) {
                            let one = commit_batch(&db, std::slice::from_ref(&p)).await;
                            let answer = match one {
                                Ok(mut results) => results
                                    .pop()
                                    .unwrap_or_else(|| Err(ServerError::Internal("commit returned no result".into()))),
                                Err(e) => {
                                    tracing::error!(error = %e, report_id = %p.ready.report_id, "report commit failed");
                                    Err(ServerError::Internal(format!("commit failed: {e}")))
                                }
                            };
                            let _ = p.ack.send(answer);
                        }
                    }
                }
            }
        });
        Intake { tx }
    }

    /// Commits a verified report; returns after the commit.
    pub(crate) async fn submit(&self, ready: Ready) -> Result<Received, ServerError> {
        let (ack, done) = oneshot::channel();
        self.tx.try_send(Pending { ready, ack }).map_err(|_| {
            ServerError::refused(StatusCode::SERVICE_UNAVAILABLE, "busy", "intake queue is full; retry shortly")
        })?;
        done.await.map_err(|_| ServerError::Internal("intake writer stopped".into()))?
    }
}

/// Writes a batch in one transaction. A report of a message this device
/// already reported, or a replayed envelope, is answered like the first and
/// not stored again. A sender's other queued reports rise once per distinct
/// reporter, not per report.
async fn commit_batch(db: &Db, batch: &[Pending]) -> Result<Vec<Result<Received, ServerError>>, ServerError> {
    let now = crate::now_ms();
    let mut tx = db.writer().begin().await?;
    let mut out = Vec::with_capacity(batch.len());
    for p in batch {
        let r = &p.ready;
        let received = Received { report_id: r.report_id.clone(), status: "received".into() };
        let inserted = sqlx::query(
            "INSERT INTO reports (report_id, received_ms, reporter_id, reporter_device, reported_commitment, \
             franking_version, reason, sender_id, conversation_id, queue, stage, priority, status, messages, verified, \
             chain_ok, server_matches, content) \
             VALUES ($1, $2, $3, $4, $5, 2, $6, $7, $8, $9, $10, $11, 'queued', $12, $13, $14, $15, $16) \
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(&r.report_id)
        .bind(now)
        .bind(&r.reporter.user_id)
        .bind(&r.reporter.device_id)
        .bind(&r.reported_commitment)
        .bind(r.reason.name())
        .bind(&r.sender_id)
        .bind(&r.conversation_id)
        .bind(r.queue.name())
        .bind(frankly_review::Stage::Review.name())
        .bind(r.priority)
        .bind(r.messages)
        .bind(r.verified)
        .bind(i64::from(r.order_complete))
        .bind(r.server_matches)
        .bind(r.content.as_slice())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = inserted else {
            out.push(Ok(received));
            continue;
        };
        let id: i64 = row.try_get("id")?;
        crate::attachments::insert(&mut tx, id, &r.attachments).await?;
        let created = serde_json::json!({
            "report": id,
            "report_id": r.report_id,
            "queue": r.queue,
            "reason": r.reason.name(),
            "sender_id": r.sender_id,
            "reporter_id": r.reporter.user_id,
            "messages": r.messages,
            "verified": r.verified,
            "order_complete": r.order_complete,
            "bank_matches": r.server_matches,
        });
        crate::webhooks::record(&mut tx, crate::webhooks::Event::ReportCreated, &format!("report:{id}"), created)
            .await?;
        let new_reporter =
            sqlx::query("INSERT INTO sender_reporters (sender_id, reporter_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(&r.sender_id)
                .bind(&r.reporter.user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        let count: i64 = if new_reporter {
            sqlx::query(
                "INSERT INTO senders (sender_id, reports) VALUES ($1, 1) ON CONFLICT (sender_id) \
                 DO UPDATE SET reports = senders.reports + 1 RETURNING reports",
            )
            .bind(&r.sender_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("reports")?
        } else {
            sqlx::query("SELECT reports FROM senders WHERE sender_id = $1")
                .bind(&r.sender_id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.try_get("reports"))
                .transpose()?
                .unwrap_or(1)
        };
        if count > 1 {
            let priority = frankly_review::sender_priority(r.priority, count);
            sqlx::query("UPDATE reports SET priority = $1 WHERE id = $2")
                .bind(priority)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            // Open reports of the same sender in the same queue rise with it,
            // so they are reviewed together.
            sqlx::query(
                "UPDATE reports SET priority = $1 WHERE sender_id = $2 AND queue = $3 AND status = 'queued' \
                 AND priority < $1",
            )
            .bind(priority)
            .bind(&r.sender_id)
            .bind(r.queue.name())
            .execute(&mut *tx)
            .await?;
        }
        out.push(Ok(received));
    }
    tx.commit().await?;
    Ok(out)
}
