//! The moderation API (`/api/v1/`): what a trust-and-safety team's tools
//! read and send. Every call carries an API key with the `review` scope,
//! which acts for one moderator account and may do what that account's
//! role may (`frankly_review::Role::may`, the table the web UI uses too).

use frankly_review::{Action, DecisionInput, Ground, Queue, Stage, Status};

/// Most reports one `GET /api/v1/reports` returns.
pub const MAX_LIST: i64 = 500;

/// `GET /api/v1/queues`: one queue the key's role may see.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueueDepth {
    /// The queue.
    pub queue: Queue,
    /// Reports waiting.
    pub queued: i64,
    /// Reports being reviewed.
    pub claimed: i64,
}

/// A report in a list.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReportSummary {
    /// The server's id (what every other call takes).
    pub id: i64,
    /// The device's report id, hex.
    pub report_id: String,
    /// Its queue.
    pub queue: Queue,
    /// Its stage.
    pub stage: Stage,
    /// Its status.
    pub status: Status,
    /// Its priority (higher first).
    pub priority: i64,
    /// When it arrived (Unix ms).
    pub received_ms: i64,
    /// The reason the reporter chose.
    pub reason: String,
    /// The reporter's user id.
    pub reporter_id: String,
    /// The reported sender's user id.
    pub sender_id: String,
    /// Messages in the report.
    pub messages: i64,
    /// Messages whose franking verified.
    pub verified: i64,
    /// Whether the platform's order has no gap between the first and last message.
    pub order_complete: bool,
    /// Matches of its verified attachments against the server's banks.
    pub bank_matches: i64,
}

/// `GET /api/v1/reports`: one page, newest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReportList {
    /// The reports.
    pub reports: Vec<ReportSummary>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

/// `POST /api/v1/queues/{queue}/claim`: the report now held (the one the
/// account already held there, if any), or none when the queue is empty.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claimed {
    /// The report's id.
    pub report: Option<i64>,
}

/// A message's franking verdict.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "verdict")]
pub enum MessageVerdict {
    /// What the sender sent, delivered to the reporter.
    Verified,
    /// Delivered to the reporter, refused or not kept by its device: content unknown.
    Unopened,
    /// Failed the check named.
    Rejected {
        /// The failed check.
        reason: String,
    },
}

/// An attachment of a reported message.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttachmentDetail {
    /// Its id.
    pub id: i64,
    /// The type the sender declared (never trusted).
    pub declared_type: String,
    /// The type sniffed from its bytes, when a browser may show it inline.
    pub media_type: Option<String>,
    /// Size in bytes.
    pub size: i64,
    /// SHA-256, hex.
    pub sha256: String,
    /// Where its bytes are (`/api/v1/media/{id}`); absent once purged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A reported message, in the platform's order.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessageDetail {
    /// Its index in the report.
    pub index: usize,
    /// The sending user.
    pub sender_user: String,
    /// The sending device.
    pub sender_device: String,
    /// Whether the reporter sent it.
    pub by_reporter: bool,
    /// The platform's sequence number in the conversation.
    pub sequence: u64,
    /// The platform's time (Unix ms).
    pub timestamp_ms: u64,
    /// Whether this is the message reported.
    pub reported: bool,
    /// Its franking verdict.
    #[serde(flatten)]
    pub verdict: MessageVerdict,
    /// Its text, when it was opened and is a frankly message body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Its attachments.
    pub attachments: Vec<AttachmentDetail>,
}

/// A recorded decision.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DecisionDetail {
    /// Its id.
    pub id: i64,
    /// The appeal it answers.
    pub appeal: Option<i64>,
    /// The moderator's username.
    pub moderator: String,
    /// What.
    pub action: Action,
    /// The restriction imposed.
    pub restriction: String,
    /// Facts and circumstances.
    pub facts: String,
    /// Whether automated means were used.
    pub automated_detection: bool,
    /// The ground.
    pub ground: Ground,
    /// The law or clause.
    pub ground_reference: String,
    /// Redress.
    pub redress: String,
    /// When (Unix ms).
    pub decided_ms: i64,
}

/// An appeal.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppealDetail {
    /// Its id.
    pub id: i64,
    /// The decision appealed.
    pub decision: i64,
    /// Who appealed.
    pub appellant: String,
    /// Their statement.
    pub statement: String,
    /// When (Unix ms).
    pub filed_ms: i64,
}

/// `GET /api/v1/reports/{id}`: everything the review page shows.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReportDetail {
    /// The queue row.
    pub report: ReportSummary,
    /// The platform's order of the verified messages, or why they are not in order.
    pub order: String,
    /// The messages, oldest first.
    pub messages: Vec<MessageDetail>,
    /// The reporter's note.
    pub note: String,
    /// What the role may decide now (empty unless the account holds the claim).
    pub actions: Vec<Action>,
    /// Decisions, oldest first.
    pub decisions: Vec<DecisionDetail>,
    /// Appeals, oldest first.
    pub appeals: Vec<AppealDetail>,
    /// Moderators' comments, oldest first.
    pub comments: Vec<CommentDetail>,
    /// The reported sender's other reports the role may see, newest first.
    pub sender_history: Vec<SenderReport>,
    /// The reported sender's strikes.
    pub strikes: Strikes,
    /// When the retention policy purged the messages' bodies and the media
    /// (Unix ms); the verdicts, decisions, appeals and audit entries stay.
    pub purged_ms: Option<i64>,
    /// The legal hold that keeps the report from being purged.
    pub legal_hold: Option<LegalHold>,
}

/// A user's strikes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Strikes {
    /// Strikes counting now, over every queue.
    pub active: i64,
    /// The strikes from reports in queues the role may see, newest first
    /// (active, expired and lifted), at most 50.
    pub strikes: Vec<StrikeDetail>,
}

/// One strike.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StrikeDetail {
    /// Its id.
    pub id: i64,
    /// The report decided.
    pub report: i64,
    /// The decision that issued it.
    pub decision: i64,
    /// That decision's action.
    pub action: Action,
    /// When (Unix ms).
    pub issued_ms: i64,
    /// When it stops counting.
    pub expires_ms: i64,
    /// When a reversal on appeal lifted it.
    pub lifted_ms: Option<i64>,
    /// Whether it counts now.
    pub active: bool,
}

/// A legal hold on a report.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LegalHold {
    /// Since when (Unix ms).
    pub since_ms: i64,
    /// Who placed it.
    pub by: String,
    /// Why (a case or request reference).
    pub reason: String,
}

/// `PUT /api/v1/reports/{id}/legal-hold`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    /// Why (1 to 4000 characters): a case or request reference.
    pub reason: String,
}

/// `POST /api/v1/decisions`: one statement of reasons for many reports.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkDecision {
    /// The reports (1 to 1000), each queued or held by the account.
    pub reports: Vec<i64>,
    /// The decision for every one of them.
    pub decision: DecisionInput,
}

/// The outcome of a bulk decision, per report in the order given.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BulkDecided {
    /// The audit entry that records the bulk decision (each report's
    /// decision has its own entry too, naming this one).
    pub batch: i64,
    /// Per report.
    pub results: Vec<BulkItem>,
}

/// One report of a bulk decision.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BulkItem {
    /// The report.
    pub report: i64,
    /// The decision recorded, or `None` if this report was refused.
    pub decision: Option<i64>,
    /// Where the report is now, when decided.
    pub queue: Option<Queue>,
    /// Why it was refused (`already_decided`, `held_by_other`,
    /// `own_decision`, `forbidden`, `not_found`...); its neighbours are
    /// decided all the same.
    pub error: Option<crate::ErrorBody>,
}

/// Another report of the same sender.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SenderReport {
    /// Its id.
    pub id: i64,
    /// Its queue.
    pub queue: Queue,
    /// Its status.
    pub status: Status,
    /// Its reason.
    pub reason: String,
    /// When it arrived (Unix ms).
    pub received_ms: i64,
    /// Its latest decision's action, if decided.
    pub last_action: Option<Action>,
}

/// A moderator's comment on a report.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommentDetail {
    /// Its id.
    pub id: i64,
    /// The author's username.
    pub author: String,
    /// The text.
    pub body: String,
    /// When (Unix ms).
    pub created_ms: i64,
}

/// `POST /api/v1/reports/{id}/comments`: a comment (1 to 4000 characters; audited).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    /// The text.
    pub body: String,
}

/// The comment recorded.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommentRecorded {
    /// Its id.
    pub id: i64,
}

/// `POST /api/v1/reports/{id}/decision`: the decision recorded.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DecisionRecorded {
    /// The decision's id.
    pub decision: i64,
    /// Where the report is now.
    pub queue: Queue,
}

/// `GET /api/v1/reports/{id}/cybertipline`: a report referred to an
/// authority, as NCMEC's CyberTipline reporting web service takes it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CybertipExport {
    /// The `<report>` document for `/submit`.
    pub report_xml: String,
    /// The verified attachments to `/upload`, each then described by its
    /// `<fileDetails>` (`file_details_url`, with NCMEC's ids).
    pub files: Vec<CybertipFile>,
}

/// One file of a CyberTipline export.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CybertipFile {
    /// The attachment's id.
    pub attachment: i64,
    /// The message it belongs to (index in the report).
    pub message: usize,
    /// Its bytes (`GET`, audited).
    pub media_url: String,
    /// Size in bytes.
    pub size: i64,
    /// MD5, hex (compare with `/upload`'s `hash`).
    pub md5: String,
    /// SHA-1, hex.
    pub sha1: String,
    /// SHA-256, hex.
    pub sha256: String,
    /// PDQ of an image's first frame, hex.
    pub pdq: Option<String>,
    /// Whether a moderator fetched the file (the audit log's `view-media`).
    pub viewed_by_esp: bool,
    /// `GET` with `?report_id=&file_id=` (NCMEC's): the `<fileDetails>` document.
    pub file_details_url: String,
}

/// `POST /api/v1/reports/{id}/cybertipline/submit`: NCMEC's receipt.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CybertipSubmitted {
    /// NCMEC's report id (its `/finish` receipt is the notification of
    /// 18 U.S.C. 2258A(h)(1)).
    pub ncmec_report_id: i64,
    /// Each file uploaded, with NCMEC's file id.
    pub files: Vec<CybertipSent>,
}

/// One file NCMEC received.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CybertipSent {
    /// The attachment.
    pub attachment: i64,
    /// NCMEC's file id.
    pub file_id: String,
}

/// Most appeals one `GET /api/v1/appeals` returns.
pub const MAX_APPEALS: i64 = 500;

/// `GET /api/v1/appeals`: one page, newest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppealList {
    /// The appeals.
    pub appeals: Vec<AppealSummary>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

/// An appeal in a list, with the report it is about and its answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppealSummary {
    /// The appeal's id.
    pub id: i64,
    /// The report's server id (`GET /api/v1/reports/{id}`).
    pub report: i64,
    /// The device's report id, hex.
    pub report_id: String,
    /// The report's queue now.
    pub queue: Queue,
    /// The decision appealed.
    pub decision: i64,
    /// The action appealed.
    pub appealed_action: Action,
    /// Who appealed.
    pub appellant: String,
    /// Their statement.
    pub statement: String,
    /// When (Unix ms).
    pub filed_ms: i64,
    /// The decision that answered it (`uphold` or `reverse`); absent while open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<AppealAnswer>,
}

/// The decision on an appeal.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppealAnswer {
    /// The decision's id.
    pub decision: i64,
    /// `uphold` or `reverse`.
    pub action: Action,
    /// Who decided.
    pub moderator: String,
    /// When (Unix ms).
    pub decided_ms: i64,
}

/// Most audit entries one `GET /api/v1/audit` returns.
pub const MAX_AUDIT: i64 = 1000;

/// `GET /api/v1/audit`: one page of matching entries, newest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

/// One audit entry, with the hashes that chain it to the one before
/// (docs/server.md, "Audit log", states how to recompute them).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// Position, from 1.
    pub seq: i64,
    /// When, Unix milliseconds.
    pub at_ms: i64,
    /// Who: a username, `platform`, or `system`.
    pub actor: String,
    /// What, e.g. `view`, `claim`, `decide`, `login`.
    pub action: String,
    /// On what, e.g. `report:42` or `user:alice`.
    pub subject: String,
    /// Details (a decision's fields, a failure's reason).
    pub detail: String,
    /// The hash of the entry before, hex.
    pub prev_hash: String,
    /// This entry's hash, hex.
    pub hash: String,
}

/// `GET /api/v1/audit/verify`: the whole chain recomputed from entry 1.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditVerification {
    /// Whether every entry's hash and link checked out.
    pub intact: bool,
    /// Entries checked; 0 when the chain is broken (`problem` names the first bad entry).
    pub entries: i64,
    /// The last entry's hash, hex (empty for an empty or broken log).
    pub head: String,
    /// What is wrong, when it is not intact (e.g. "entry 7 was altered").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}
