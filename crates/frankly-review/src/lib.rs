//! frankly's moderation domain: the rules of review, with no HTTP and no SQL.
//!
//! - [`Queue`], [`Stage`] and [`Status`] name where a report is; the store
//!   keeps their [`name`](Queue::name)s and parses them back.
//! - [`Role`] and [`Operation`]: [`Role::may`] is the one permission table.
//!   The web UI, the moderation API and the store's operations all ask it,
//!   and [`permission_table`] lists it for tests and documentation.
//! - [`DecisionInput::check`] applies the rules of a decision (the EU Digital
//!   Services Act's statement of reasons, who may refer to an authority,
//!   what decides an appeal, the claim that must be held) and returns the
//!   [`Decision`] to record and where the report goes next.
//! - After a decision: [`strike_effect`] on the
//!   reported user, [`DecisionInput::check_in_bulk`] for bulk decisions, and
//!   [`Retention`] of decided reports' bodies and media.
//! - [`ReviewError`] says why, with a stable [`code`](ReviewError::code) and
//!   a [`kind`](ReviewError::kind) the HTTP layer maps to a status.

use std::fmt;
use std::str::FromStr;

use frankly_report::Reason;

mod lifecycle;

pub use lifecycle::{
    AUTHORITY_PRESERVATION_DAYS, DAY_MS, DEFAULT_STRIKE_DAYS, MAX_BULK_DECISION, RetainedReport, Retention,
    RetentionRule, StrikeEffect, StrikeState, check_bulk_size, check_hold_reason, strike_effect,
};

/// A review queue.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Queue {
    /// Child sexual abuse material: child-safety specialists only, including
    /// its escalations and appeals.
    ChildSafety,
    /// Escalated reports from the general queues (admins).
    Escalated,
    /// Self-harm.
    SelfHarm,
    /// Violence.
    Violence,
    /// Non-consensual intimate imagery.
    NonConsensualImagery,
    /// Harassment.
    Harassment,
    /// Anything else.
    Other,
    /// Spam.
    Spam,
    /// Appeals against decisions in the general queues.
    Appeals,
}

impl Queue {
    /// Every queue, in the order the dashboard shows them.
    pub const ALL: [Queue; 9] = [
        Queue::ChildSafety,
        Queue::Escalated,
        Queue::SelfHarm,
        Queue::Violence,
        Queue::NonConsensualImagery,
        Queue::Harassment,
        Queue::Other,
        Queue::Spam,
        Queue::Appeals,
    ];

    /// The stored and shown name (a reason's queue has the reason's name).
    pub fn name(self) -> &'static str {
        match self {
            Queue::ChildSafety => Reason::ChildSafety.name(),
            Queue::Escalated => "escalated",
            Queue::SelfHarm => Reason::SelfHarm.name(),
            Queue::Violence => Reason::Violence.name(),
            Queue::NonConsensualImagery => Reason::NonConsensualImagery.name(),
            Queue::Harassment => Reason::Harassment.name(),
            Queue::Other => Reason::Other.name(),
            Queue::Spam => Reason::Spam.name(),
            Queue::Appeals => "appeals",
        }
    }

    /// Where a new report of `reason` is queued.
    pub fn of_reason(reason: Reason) -> Queue {
        match reason {
            Reason::ChildSafety => Queue::ChildSafety,
            Reason::SelfHarm => Queue::SelfHarm,
            Reason::Violence => Queue::Violence,
            Reason::NonConsensualImagery => Queue::NonConsensualImagery,
            Reason::Harassment => Queue::Harassment,
            Reason::Other => Queue::Other,
            Reason::Spam => Queue::Spam,
        }
    }

    /// Where an escalation from this queue goes: restricted reports stay in
    /// their restricted queue, the others go to the admins.
    pub fn escalated(self) -> Queue {
        if self == Queue::ChildSafety { Queue::ChildSafety } else { Queue::Escalated }
    }

    /// Where an appeal against a decision made in this queue goes.
    pub fn appealed(self) -> Queue {
        if self == Queue::ChildSafety { Queue::ChildSafety } else { Queue::Appeals }
    }
}

/// The priority a new report of `reason` starts with: child safety first,
/// then imminent harm.
pub fn base_priority(reason: Reason) -> i64 {
    match reason {
        Reason::ChildSafety => 1000,
        Reason::SelfHarm => 600,
        Reason::Violence | Reason::NonConsensualImagery => 500,
        Reason::Harassment => 300,
        Reason::Other => 200,
        Reason::Spam => 100,
    }
}

/// Added to a new report's priority when the server's banks match one of its
/// verified attachments.
pub const BANK_MATCH_PRIORITY: i64 = 2000;
/// Added per earlier distinct reporter of the same sender, up to
/// [`MAX_SENDER_BOOST`].
pub const SENDER_REPORT_PRIORITY: i64 = 50;
/// Most priority from repeated reports of one sender.
pub const MAX_SENDER_BOOST: i64 = 500;

/// Where a new verified report goes and its priority: the reason's queue at
/// its [`base_priority`], plus [`BANK_MATCH_PRIORITY`] when a server bank
/// matched (`matches` holds each match's labels); a label naming child
/// safety (`csam`, or containing `child`) sends it to the child-safety queue
/// whatever the reporter chose.
pub fn route_new_report<'a>(reason: Reason, matches: impl IntoIterator<Item = &'a [String]>) -> (Queue, i64) {
    let mut priority = base_priority(reason);
    let mut queue = Queue::of_reason(reason);
    let mut matched = false;
    for labels in matches {
        matched = true;
        if labels.iter().any(|l| l.contains("child") || l == "csam") {
            queue = Queue::ChildSafety;
        }
    }
    if matched {
        priority += BANK_MATCH_PRIORITY;
    }
    (queue, priority)
}

/// A report's priority when its sender has been reported by
/// `distinct_reporters` reporters (counting this one).
pub fn sender_priority(priority: i64, distinct_reporters: i64) -> i64 {
    priority.saturating_add(
        (distinct_reporters.saturating_sub(1).max(0).saturating_mul(SENDER_REPORT_PRIORITY)).min(MAX_SENDER_BOOST),
    )
}

/// Added to a report's priority when it is escalated, so escalations are
/// claimed before first reviews.
pub const ESCALATION_PRIORITY: i64 = 1000;

/// Where a report is in its life.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// First review.
    Review,
    /// Escalated to a senior reviewer.
    Escalated,
    /// Appealed.
    Appeal,
}

impl Stage {
    /// Every stage.
    pub const ALL: [Stage; 3] = [Stage::Review, Stage::Escalated, Stage::Appeal];

    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Review => "review",
            Stage::Escalated => "escalated",
            Stage::Appeal => "appeal",
        }
    }
}

/// Whether a report waits, is being reviewed, or is decided.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// In its queue.
    Queued,
    /// Held by a moderator under a lease.
    Claimed,
    /// Decided (an appeal queues it again).
    Decided,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 3] = [Status::Queued, Status::Claimed, Status::Decided];

    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Claimed => "claimed",
            Status::Decided => "decided",
        }
    }
}

/// What a moderator account may do.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Manages accounts, API tokens and webhooks, reads the audit log,
    /// reviews escalations and the general queues; does not see the
    /// child-safety queue.
    Admin,
    /// Reviews the general queues and appeals.
    Moderator,
    /// Trained for child sexual abuse material: alone sees the child-safety
    /// queue (including its escalations and appeals), and alone may refer a
    /// report to a child-safety authority; also reviews the general queues.
    ChildSafety,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Moderator, Role::ChildSafety];

    /// The stored and typed name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Moderator => "moderator",
            Role::ChildSafety => "child-safety",
        }
    }

    /// Whether this role may see (list, claim, view, fetch media of,
    /// release, comment on) the reports in `queue`.
    pub fn can_see(self, queue: Queue) -> bool {
        match queue {
            Queue::ChildSafety => self == Role::ChildSafety,
            Queue::Escalated => self == Role::Admin,
            _ => true,
        }
    }

    /// Whether this role may manage accounts, API tokens and webhooks, and
    /// read the audit log.
    pub fn is_admin(self) -> bool {
        self == Role::Admin
    }

    /// The permission table: whether this role may perform `op`.
    pub fn may(self, op: Operation) -> bool {
        match op {
            Operation::See(queue) => self.can_see(queue),
            Operation::Decide(queue, action) => {
                self.can_see(queue) && (action != Action::ReportAuthority || self == Role::ChildSafety)
            }
            Operation::Administer => self.is_admin(),
        }
    }

    /// The actions this role may take on a report in `queue` at `stage`, in
    /// the order a form lists them (what [`DecisionInput::check`] accepts).
    pub fn actions(self, queue: Queue, stage: Stage) -> Vec<Action> {
        Action::ALL
            .iter()
            .copied()
            .filter(|a| a.decides_appeal() == (stage == Stage::Appeal))
            .filter(|a| self.may(Operation::Decide(queue, *a)))
            .collect()
    }
}

/// Something a user asks to do, as the permission table sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// List, claim, view, fetch media of, release or comment on the reports
    /// of a queue.
    See(Queue),
    /// Decide a report of a queue with an action.
    Decide(Queue, Action),
    /// Accounts, API tokens, webhooks and their dead letters, the audit log.
    Administer,
}

/// Every operation with every role's answer, in a fixed order: the table
/// [`Role::may`] implements, for tests that run it against each interface
/// and for the documentation.
pub fn permission_table() -> Vec<(Role, Operation, bool)> {
    let mut ops: Vec<Operation> = Queue::ALL.iter().map(|q| Operation::See(*q)).collect();
    for q in Queue::ALL {
        ops.extend(Action::ALL.iter().map(|a| Operation::Decide(q, *a)));
    }
    ops.push(Operation::Administer);
    Role::ALL.iter().flat_map(|r| ops.iter().map(move |op| (*r, *op, r.may(*op)))).collect()
}

/// What a moderator decides.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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
    pub const ALL: [Action; 8] = [
        Action::Dismiss,
        Action::Remove,
        Action::Warn,
        Action::Suspend,
        Action::Escalate,
        Action::ReportAuthority,
        Action::Uphold,
        Action::Reverse,
    ];

    /// The stored and submitted name.
    pub fn name(self) -> &'static str {
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

    /// Whether it decides an appeal (and only an appeal).
    pub fn decides_appeal(self) -> bool {
        matches!(self, Action::Uphold | Action::Reverse)
    }
}

/// The grounds of a decision (DSA Article 17(3)(d) and (e)).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ground {
    /// Illegal content: the law is named in `ground_reference`.
    Legal,
    /// Incompatible with the terms of service: the clause is named.
    Terms,
}

impl Ground {
    /// Both grounds.
    pub const ALL: [Ground; 2] = [Ground::Legal, Ground::Terms];

    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            Ground::Legal => "legal",
            Ground::Terms => "terms",
        }
    }
}

macro_rules! named {
    ($($t:ident: $what:literal),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $t {
            type Err = ReviewError;

            fn from_str(text: &str) -> Result<$t, ReviewError> {
                $t::ALL
                    .iter()
                    .copied()
                    .find(|v| v.name() == text)
                    .ok_or_else(|| ReviewError::Unknown { what: $what, name: text.chars().take(64).collect() })
            }
        }
    )*};
}

named!(Queue: "queue", Stage: "stage", Status: "status", Role: "role", Action: "action", Ground: "ground");

/// The redress text when none is given.
pub const DEFAULT_REDRESS: &str = "You can appeal this decision through the in-app complaint system within six months; \
     you may also use a certified out-of-court dispute settlement body or go to court.";
/// Longest free-text field of a decision or an appeal, in bytes.
pub const MAX_DECISION_TEXT: usize = 8192;

/// Longest comment on a report, in characters.
pub const MAX_COMMENT_CHARS: usize = 4000;

/// Checks a moderator's comment on a report: 1 to [`MAX_COMMENT_CHARS`]
/// characters, not only white space, returned trimmed.
pub fn check_comment(body: &str) -> Result<&str, ReviewError> {
    let body = body.trim();
    let chars = body.chars().count();
    if chars == 0 || chars > MAX_COMMENT_CHARS {
        return Err(ReviewError::BadComment { chars });
    }
    Ok(body)
}

/// A decision as submitted (through the web form or the API).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
pub struct DecisionInput {
    /// What.
    pub action: Action,
    /// Type of restriction imposed (DSA Art. 17(3)(a)); defaults from the action.
    #[serde(default)]
    pub restriction: Option<String>,
    /// Facts and circumstances relied on (Art. 17(3)(b)).
    #[serde(default)]
    pub facts: String,
    /// Whether automated means detected or decided (Art. 17(3)(c)).
    #[serde(default)]
    pub automated_detection: bool,
    /// Legal or terms-of-service ground (Art. 17(3)(d), (e)).
    pub ground: Ground,
    /// The law or the terms clause.
    #[serde(default)]
    pub ground_reference: String,
    /// Redress available to the user (Art. 17(3)(f)); defaults to [`DEFAULT_REDRESS`].
    #[serde(default)]
    pub redress: Option<String>,
}

/// Where a report stands, as the rules need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportState {
    /// Its queue.
    pub queue: Queue,
    /// Its stage.
    pub stage: Stage,
    /// Its status.
    pub status: Status,
    /// The user holding its claim.
    pub claimed_by: Option<i64>,
    /// When the claim's lease ends (Unix ms).
    pub lease_until_ms: Option<i64>,
}

impl ReportState {
    /// Whether `user` holds the claim at `now` (Unix ms).
    pub fn held_by(&self, user: i64, now: i64) -> bool {
        self.status == Status::Claimed && self.claimed_by == Some(user) && self.lease_until_ms.is_some_and(|l| l >= now)
    }
}

/// A checked decision with its defaults filled in: what the store records.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
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
    /// Where the report goes.
    pub next: Next,
}

/// Where a decided report goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "to")]
pub enum Next {
    /// Decided: out of the queues (until an appeal).
    Decided,
    /// Escalated: queued again in `queue` at stage escalated, with
    /// [`ESCALATION_PRIORITY`] added.
    Escalated {
        /// The queue it goes to.
        queue: Queue,
    },
}

fn check_text(field: &'static str, value: &str) -> Result<(), ReviewError> {
    if value.len() > MAX_DECISION_TEXT {
        return Err(ReviewError::TooLong { field, bytes: value.len() });
    }
    Ok(())
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

    /// Checks what the decision says on its own: the text limits and a
    /// restricting decision's statement of reasons. [`check`](Self::check)
    /// includes this; a bulk decision checks it once before any report.
    pub fn check_statement(&self) -> Result<(), ReviewError> {
        for (field, value) in [
            ("facts", Some(&self.facts)),
            ("ground_reference", Some(&self.ground_reference)),
            ("restriction", self.restriction.as_ref()),
            ("redress", self.redress.as_ref()),
        ] {
            check_text(field, value.map_or("", String::as_str))?;
        }
        if self.action.restricts() && (self.facts.trim().is_empty() || self.ground_reference.trim().is_empty()) {
            return Err(ReviewError::NoStatementOfReasons);
        }
        Ok(())
    }

    /// Checks the decision of `role` (user `user`) on a report in `state` at
    /// `now`: the statement, the permission table, the claim, and that an
    /// appeal is decided by uphold or reverse and nothing else is. Returns
    /// the decision to record.
    pub fn check(&self, role: Role, user: i64, state: &ReportState, now: i64) -> Result<Decision, ReviewError> {
        self.check_statement()?;
        if !role.may(Operation::Decide(state.queue, self.action)) {
            return Err(ReviewError::Forbidden);
        }
        if !state.held_by(user, now) {
            return Err(ReviewError::NotClaimed);
        }
        let on_appeal = state.stage == Stage::Appeal;
        if on_appeal != self.action.decides_appeal() {
            return Err(if on_appeal { ReviewError::AppealNeedsVerdict } else { ReviewError::NotAnAppeal });
        }
        let given = |o: &Option<String>| o.as_ref().filter(|t| !t.trim().is_empty()).cloned();
        Ok(Decision {
            action: self.action,
            restriction: given(&self.restriction).unwrap_or_else(|| self.action.default_restriction().to_string()),
            facts: self.facts.clone(),
            automated_detection: self.automated_detection,
            ground: self.ground,
            ground_reference: self.ground_reference.clone(),
            redress: given(&self.redress).unwrap_or_else(|| DEFAULT_REDRESS.to_string()),
            next: if self.action == Action::Escalate {
                Next::Escalated { queue: state.queue.escalated() }
            } else {
                Next::Decided
            },
        })
    }
}

/// Checks an appeal's statement and appellant, and that the report can be
/// appealed (it is decided); returns the queue it goes to.
pub fn check_appeal(appellant: &str, statement: &str, state: &ReportState) -> Result<Queue, ReviewError> {
    check_text("statement", statement)?;
    if frankly_franking::check_id("appellant", appellant).is_err() {
        return Err(ReviewError::BadAppellant);
    }
    if state.status != Status::Decided {
        return Err(ReviewError::NotDecided);
    }
    Ok(state.queue.appealed())
}

/// What kind of failure an error is, for the HTTP layer's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is wrong (400).
    Invalid,
    /// The role does not allow it (403).
    Forbidden,
    /// No such thing (404).
    NotFound,
    /// The report is not in a state that allows it (409).
    Conflict,
    /// The report exists but cannot be shown (410).
    Gone,
}

/// Why a review operation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReviewError {
    /// A name that is not a queue, stage, status, role, action or ground.
    #[error("no {what} named {name:?}")]
    Unknown {
        /// Which kind of name.
        what: &'static str,
        /// The name given (at most 64 characters of it).
        name: String,
    },
    /// The role does not allow it.
    #[error("your role does not give access to this")]
    Forbidden,
    /// No such report (or attachment, comment...).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The user does not hold the report's claim.
    #[error("you do not hold this report (never claimed, or the lease expired): claim it again")]
    NotClaimed,
    /// Only a decided report can be appealed.
    #[error("only a decided report can be appealed")]
    NotDecided,
    /// A free-text field is too long.
    #[error("{field} is {bytes} bytes (limit {MAX_DECISION_TEXT})")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        bytes: usize,
    },
    /// A restricting decision without its facts or ground.
    #[error("a restricting decision needs the facts and circumstances and the legal or terms ground it relies on")]
    NoStatementOfReasons,
    /// An appeal decided by something other than uphold or reverse.
    #[error("an appeal is decided with uphold or reverse")]
    AppealNeedsVerdict,
    /// Uphold or reverse outside an appeal.
    #[error("uphold and reverse decide appeals only")]
    NotAnAppeal,
    /// The appellant is not a user id.
    #[error("appellant must be a user id (1 to 256 bytes, no control characters)")]
    BadAppellant,
    /// A comment that is empty or too long.
    #[error("a comment is 1 to {MAX_COMMENT_CHARS} characters (this one is {chars})")]
    BadComment {
        /// Its length, trimmed.
        chars: usize,
    },
    /// The media were purged by the retention policy (the decision and the
    /// audit entry stay).
    #[error("this attachment was purged under the retention policy")]
    Purged,
    /// A report that is decided already (a bulk decision skips it).
    #[error("the report is decided already")]
    AlreadyDecided,
    /// A report another user holds with a live lease.
    #[error("another moderator holds this report")]
    HeldByOther,
    /// The user decided this report before (at an earlier stage).
    #[error("you decided this report before: another moderator decides it now")]
    OwnDecision,
    /// A bulk decision on no reports or on too many.
    #[error("a bulk decision covers 1 to {MAX_BULK_DECISION} reports (this one {reports})")]
    BulkSize {
        /// How many were given.
        reports: usize,
    },
    /// A retention rule that keeps nothing.
    #[error("retention rule {rule}: days must be at least 1")]
    BadRetention {
        /// Its position, from 0.
        rule: usize,
    },
    /// A CyberTipline export of a report no one referred to an authority.
    #[error("only a report decided report-authority is exported to the CyberTipline")]
    NotReferred,
    /// A legal hold without its reason, or with a reason that is too long.
    #[error("a legal hold needs a reason of 1 to {MAX_COMMENT_CHARS} characters")]
    BadHold,
    /// A stored report this build cannot read.
    #[error("report {report} cannot be shown by this build ({why})")]
    Unreadable {
        /// Its id.
        report: i64,
        /// Why.
        why: String,
    },
}

impl ReviewError {
    /// The kind, for the HTTP status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ReviewError::Forbidden => ErrorKind::Forbidden,
            ReviewError::NotFound(_) => ErrorKind::NotFound,
            ReviewError::Unknown { what: "queue", .. } => ErrorKind::NotFound,
            ReviewError::NotClaimed
            | ReviewError::NotDecided
            | ReviewError::AlreadyDecided
            | ReviewError::HeldByOther
            | ReviewError::OwnDecision
            | ReviewError::NotReferred => ErrorKind::Conflict,
            ReviewError::Unreadable { .. } | ReviewError::Purged => ErrorKind::Gone,
            _ => ErrorKind::Invalid,
        }
    }

    /// A stable code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            ReviewError::Unknown { what: "queue", .. } => "no_queue",
            ReviewError::Unknown { .. } => "unknown_name",
            ReviewError::Forbidden => "forbidden",
            ReviewError::NotFound(_) => "not_found",
            ReviewError::NotClaimed => "not_claimed",
            ReviewError::NotDecided => "not_decided",
            ReviewError::BadAppellant => "invalid_appeal",
            ReviewError::Unreadable { .. } => "unreadable",
            ReviewError::Purged => "purged",
            ReviewError::BadComment { .. } => "invalid_comment",
            ReviewError::TooLong { field: "statement", .. } => "invalid_appeal",
            ReviewError::AlreadyDecided => "already_decided",
            ReviewError::HeldByOther => "held_by_other",
            ReviewError::OwnDecision => "own_decision",
            ReviewError::BulkSize { .. } => "invalid_bulk",
            ReviewError::BadRetention { .. } => "invalid_retention",
            ReviewError::BadHold => "invalid_hold",
            ReviewError::NotReferred => "not_referred",
            _ => "invalid_decision",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(queue: Queue, stage: Stage) -> ReportState {
        ReportState { queue, stage, status: Status::Claimed, claimed_by: Some(7), lease_until_ms: Some(1000) }
    }

    fn remove() -> DecisionInput {
        DecisionInput {
            action: Action::Remove,
            facts: "threats in messages 2 and 3".into(),
            ground_reference: "terms 4.2".into(),
            ..DecisionInput::dismiss()
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for q in Queue::ALL {
            assert_eq!(q.name().parse::<Queue>(), Ok(q));
            assert_eq!(serde_json::to_string(&q).unwrap(), format!("\"{}\"", q.name()));
        }
        for a in Action::ALL {
            assert_eq!(a.name().parse::<Action>(), Ok(a));
            assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{}\"", a.name()));
        }
        for r in Role::ALL {
            assert_eq!(r.name().parse::<Role>(), Ok(r));
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{}\"", r.name()));
        }
        for s in Stage::ALL {
            assert_eq!(s.name().parse::<Stage>(), Ok(s));
        }
        for s in Status::ALL {
            assert_eq!(s.name().parse::<Status>(), Ok(s));
        }
        let e = "nope".parse::<Queue>().unwrap_err();
        assert_eq!((e.kind(), e.code()), (ErrorKind::NotFound, "no_queue"));
        // A long name is cut to 64 characters in the message.
        assert_eq!(
            "x".repeat(1000).parse::<Action>().unwrap_err().to_string(),
            format!("no action named {:?}", "x".repeat(64))
        );
        // Every reason has its own queue, named like the reason.
        for r in Reason::ALL {
            assert_eq!(Queue::of_reason(r).name(), r.name());
        }
    }

    #[test]
    fn the_permission_table() {
        use Operation::*;
        let table = permission_table();
        assert_eq!(table.len(), 3 * (9 + 9 * 8 + 1));
        let may = |r: Role, op: Operation| table.iter().find(|(tr, top, _)| *tr == r && *top == op).unwrap().2;
        assert!(may(Role::ChildSafety, See(Queue::ChildSafety)));
        assert!(!may(Role::Admin, See(Queue::ChildSafety)));
        assert!(!may(Role::Moderator, See(Queue::ChildSafety)));
        assert!(may(Role::Admin, See(Queue::Escalated)));
        assert!(!may(Role::ChildSafety, See(Queue::Escalated)));
        assert!(may(Role::Moderator, See(Queue::Appeals)));
        assert!(may(Role::ChildSafety, Decide(Queue::Harassment, Action::ReportAuthority)));
        assert!(!may(Role::Moderator, Decide(Queue::Harassment, Action::ReportAuthority)));
        assert!(!may(Role::Admin, Decide(Queue::Escalated, Action::ReportAuthority)));
        assert!(!may(Role::Admin, Decide(Queue::ChildSafety, Action::Dismiss)));
        assert!(may(Role::Admin, Administer));
        assert!(!may(Role::ChildSafety, Administer));
        assert_eq!(Role::Moderator.actions(Queue::Spam, Stage::Appeal), [Action::Uphold, Action::Reverse]);
        assert_eq!(Role::ChildSafety.actions(Queue::ChildSafety, Stage::Review).len(), 6);
        assert_eq!(Role::Moderator.actions(Queue::Spam, Stage::Review).len(), 5);
        assert!(Role::Moderator.actions(Queue::ChildSafety, Stage::Review).is_empty());
    }

    #[test]
    fn a_decision_needs_its_statement_its_claim_and_the_right_stage() {
        let state = claimed(Queue::Harassment, Stage::Review);
        let d = remove().check(Role::Moderator, 7, &state, 999).unwrap();
        assert_eq!((d.restriction.as_str(), d.redress.as_str()), ("removal of content", DEFAULT_REDRESS));
        assert_eq!(d.next, Next::Decided);
        // Dismissal needs no statement; escalation routes.
        let e = DecisionInput { action: Action::Escalate, ..DecisionInput::dismiss() };
        assert_eq!(e.check(Role::Moderator, 7, &state, 999).unwrap().next, Next::Escalated { queue: Queue::Escalated });
        let cs = claimed(Queue::ChildSafety, Stage::Review);
        assert_eq!(e.check(Role::ChildSafety, 7, &cs, 0).unwrap().next, Next::Escalated { queue: Queue::ChildSafety });
        let no_facts = DecisionInput { facts: " ".into(), ..remove() };
        assert_eq!(no_facts.check(Role::Moderator, 7, &state, 0), Err(ReviewError::NoStatementOfReasons));
        let long = DecisionInput { redress: Some("x".repeat(MAX_DECISION_TEXT + 1)), ..remove() };
        assert_eq!(long.check(Role::Moderator, 7, &state, 0).unwrap_err().code(), "invalid_decision");
        // Someone else's claim, an expired lease, a queued report.
        assert_eq!(remove().check(Role::Moderator, 8, &state, 0), Err(ReviewError::NotClaimed));
        assert_eq!(remove().check(Role::Moderator, 7, &state, 1001), Err(ReviewError::NotClaimed));
        let queued = ReportState { status: Status::Queued, ..state };
        assert_eq!(remove().check(Role::Moderator, 7, &queued, 0), Err(ReviewError::NotClaimed));
        // Appeals: uphold or reverse, and only there.
        let appeal = claimed(Queue::Appeals, Stage::Appeal);
        assert_eq!(remove().check(Role::Moderator, 7, &appeal, 0), Err(ReviewError::AppealNeedsVerdict));
        let uphold = DecisionInput { action: Action::Uphold, ..DecisionInput::dismiss() };
        assert!(uphold.check(Role::Moderator, 7, &appeal, 0).is_ok());
        assert_eq!(uphold.check(Role::Moderator, 7, &state, 0), Err(ReviewError::NotAnAppeal));
        // Referral to an authority: child-safety specialists only.
        let refer = DecisionInput { action: Action::ReportAuthority, ..remove() };
        assert_eq!(refer.check(Role::Moderator, 7, &state, 0), Err(ReviewError::Forbidden));
        assert!(refer.check(Role::ChildSafety, 7, &state, 0).is_ok());
    }

    #[test]
    fn routing_and_priority_of_new_reports() {
        assert_eq!(route_new_report(Reason::Spam, []), (Queue::Spam, 100));
        let labels = [vec!["nudity".to_string()], vec!["csam".to_string()]];
        let matched = labels.iter().map(Vec::as_slice);
        assert_eq!(route_new_report(Reason::Spam, matched), (Queue::ChildSafety, 100 + BANK_MATCH_PRIORITY));
        let other = [vec!["terror".to_string()]];
        assert_eq!(route_new_report(Reason::Violence, other.iter().map(Vec::as_slice)), (Queue::Violence, 2500));
        assert_eq!(sender_priority(300, 1), 300);
        assert_eq!(sender_priority(300, 3), 400);
        assert_eq!(sender_priority(300, 1_000_000), 300 + MAX_SENDER_BOOST);
    }

    #[test]
    fn comments() {
        assert_eq!(check_comment("  see message 2 \n"), Ok("see message 2"));
        assert_eq!(check_comment(" \n\t"), Err(ReviewError::BadComment { chars: 0 }));
        let long = "é".repeat(MAX_COMMENT_CHARS + 1);
        assert_eq!(check_comment(&long).unwrap_err().code(), "invalid_comment");
        assert!(check_comment(&long[..MAX_COMMENT_CHARS * 2]).is_ok(), "counted in characters, not bytes");
    }

    #[test]
    fn appeals() {
        let decided = ReportState { status: Status::Decided, ..claimed(Queue::Spam, Stage::Review) };
        assert_eq!(check_appeal("bob", "I was joking", &decided), Ok(Queue::Appeals));
        let cs = ReportState { queue: Queue::ChildSafety, ..decided };
        assert_eq!(check_appeal("bob", "", &cs), Ok(Queue::ChildSafety));
        assert_eq!(check_appeal("", "", &decided), Err(ReviewError::BadAppellant));
        assert_eq!(check_appeal("bob\n", "", &decided), Err(ReviewError::BadAppellant));
        let queued = ReportState { status: Status::Queued, ..decided };
        assert_eq!(check_appeal("bob", "", &queued).unwrap_err().kind(), ErrorKind::Conflict);
        let long = "x".repeat(MAX_DECISION_TEXT + 1);
        assert_eq!(check_appeal("bob", &long, &decided).unwrap_err().code(), "invalid_appeal");
    }
}
