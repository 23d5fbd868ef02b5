//! What happens after a decision: strikes against the reported user, bulk
//! decisions, and how long a decided report's body and media are kept.

use crate::{Action, Decision, DecisionInput, Queue, ReportState, ReviewError, Role, Status};

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// Days a strike counts against a user unless configured otherwise.
pub const DEFAULT_STRIKE_DAYS: u32 = 365;

/// Most reports one bulk decision may decide.
pub const MAX_BULK_DECISION: usize = 1000;

/// Least number of days the body and media of a report referred to an
/// authority are kept, whatever the retention rules say: US law (18 U.S.C.
/// § 2258A(h), as amended by the REPORT Act of 2024) has a provider that
/// reports to NCMEC's CyberTipline preserve the report's contents for one
/// year.
pub const AUTHORITY_PRESERVATION_DAYS: u32 = 365;

impl Action {
    /// Whether the decision counts a strike against the reported user: the
    /// restricting actions (a warning included). A reversal on appeal lifts
    /// the strike of the decision appealed; an upheld one keeps it.
    pub fn strikes(self) -> bool {
        self.restricts()
    }
}

/// What a decision does to the reported user's strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrikeEffect {
    /// Nothing.
    None,
    /// A strike, counting until `expires_ms` (Unix ms).
    Issue {
        /// When it stops counting.
        expires_ms: i64,
    },
    /// The strikes issued by the decision the appeal was against are lifted.
    LiftAppealed,
}

/// The effect of a decision with `action` made at `decided_ms`, with
/// strikes lasting `strike_days`.
pub fn strike_effect(action: Action, decided_ms: i64, strike_days: u32) -> StrikeEffect {
    match action {
        Action::Reverse => StrikeEffect::LiftAppealed,
        a if a.strikes() => {
            StrikeEffect::Issue { expires_ms: decided_ms.saturating_add(i64::from(strike_days) * DAY_MS) }
        }
        _ => StrikeEffect::None,
    }
}

/// A strike as stored, for the count of active ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrikeState {
    /// When it stops counting.
    pub expires_ms: i64,
    /// When an appeal lifted it.
    pub lifted_ms: Option<i64>,
}

impl StrikeState {
    /// Whether it counts at `now`.
    pub fn active(&self, now: i64) -> bool {
        self.lifted_ms.is_none() && self.expires_ms > now
    }
}

impl DecisionInput {
    /// Checks one report of a bulk decision by `role` (user `user`) at
    /// `now`: the same rules as [`check`](Self::check), except that the
    /// report need not be claimed first. It may be queued (the bulk decision
    /// claims it) or held by `user`, not held by someone else with a live
    /// lease; and, as with claims, a user never decides a report they
    /// decided before (`decided_before`). The statement is checked once for
    /// the whole batch with [`check_statement`](Self::check_statement).
    pub fn check_in_bulk(
        &self,
        role: Role,
        user: i64,
        state: &ReportState,
        decided_before: bool,
        now: i64,
    ) -> Result<Decision, ReviewError> {
        let live = state.lease_until_ms.is_some_and(|l| l >= now);
        let takeable = match state.status {
            Status::Decided => return Err(ReviewError::AlreadyDecided),
            Status::Queued => true,
            Status::Claimed => state.claimed_by == Some(user) || !live,
        };
        if !takeable {
            return Err(ReviewError::HeldByOther);
        }
        if decided_before {
            return Err(ReviewError::OwnDecision);
        }
        let claimed =
            ReportState { status: Status::Claimed, claimed_by: Some(user), lease_until_ms: Some(now), ..*state };
        self.check(role, user, &claimed, now)
    }
}

/// Checks the size of a bulk decision.
pub fn check_bulk_size(reports: usize) -> Result<(), ReviewError> {
    if reports == 0 || reports > MAX_BULK_DECISION {
        return Err(ReviewError::BulkSize { reports });
    }
    Ok(())
}

/// Checks the reason given for a legal hold (1 to
/// [`MAX_COMMENT_CHARS`](crate::MAX_COMMENT_CHARS) characters, trimmed).
pub fn check_hold_reason(reason: &str) -> Result<&str, ReviewError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > crate::MAX_COMMENT_CHARS {
        return Err(ReviewError::BadHold);
    }
    Ok(reason)
}

/// One retention rule: the decided reports of `queue` (any, if `None`)
/// whose latest decision is `action` (any, if `None`) lose their body and
/// media `days` after that decision.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// The queue the report is in when decided.
    #[serde(default)]
    pub queue: Option<Queue>,
    /// The latest decision's action.
    #[serde(default)]
    pub action: Option<Action>,
    /// Days from that decision to the purge (at least 1).
    pub days: u32,
}

/// The retention rules, first match wins; a decided report no rule matches
/// is kept. Reports not decided (queued, claimed, under appeal) and reports
/// under legal hold are never purged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    rules: Vec<RetentionRule>,
}

impl Retention {
    /// Checks the rules: each keeps at least one day.
    pub fn new(rules: Vec<RetentionRule>) -> Result<Retention, ReviewError> {
        if let Some(i) = rules.iter().position(|r| r.days == 0) {
            return Err(ReviewError::BadRetention { rule: i });
        }
        Ok(Retention { rules })
    }

    /// Whether any rule purges anything.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules.
    pub fn rules(&self) -> &[RetentionRule] {
        &self.rules
    }

    /// Days a report of `queue` whose latest decision is `action` is kept
    /// after it, or `None` to keep it. A referral to an authority is kept at
    /// least [`AUTHORITY_PRESERVATION_DAYS`].
    pub fn days(&self, queue: Queue, action: Action) -> Option<u32> {
        let rule =
            self.rules.iter().find(|r| r.queue.is_none_or(|q| q == queue) && r.action.is_none_or(|a| a == action))?;
        Some(if action == Action::ReportAuthority { rule.days.max(AUTHORITY_PRESERVATION_DAYS) } else { rule.days })
    }

    /// The fewest days any rule keeps a report: nothing decided later than
    /// `now` minus this is due, which bounds the store's search.
    pub fn shortest(&self) -> Option<u32> {
        self.rules.iter().map(|r| r.days).min()
    }

    /// Whether a decided report is due for purging at `now`.
    pub fn due(&self, report: &RetainedReport, now: i64) -> bool {
        if report.status != Status::Decided || report.legal_hold {
            return false;
        }
        self.days(report.queue, report.action)
            .is_some_and(|d| report.decided_ms.saturating_add(i64::from(d) * DAY_MS) <= now)
    }
}

/// What retention needs to know of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetainedReport {
    /// Its queue.
    pub queue: Queue,
    /// Its status (only a decided one can be due: under appeal, a report
    /// is queued again).
    pub status: Status,
    /// Its latest decision's action.
    pub action: Action,
    /// When that decision was made.
    pub decided_ms: i64,
    /// Whether it is under legal hold.
    pub legal_hold: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Stage;

    fn remove() -> DecisionInput {
        DecisionInput {
            action: Action::Remove,
            facts: "spam links in messages 1 to 4".into(),
            ground_reference: "terms 3.1".into(),
            ..DecisionInput::dismiss()
        }
    }

    #[test]
    fn strikes_from_restricting_decisions_expire_and_reversals_lift_them() {
        for a in Action::ALL {
            let effect = strike_effect(a, 1000, 30);
            match a {
                Action::Remove | Action::Warn | Action::Suspend | Action::ReportAuthority => {
                    assert_eq!(effect, StrikeEffect::Issue { expires_ms: 1000 + 30 * DAY_MS }, "{a}")
                }
                Action::Reverse => assert_eq!(effect, StrikeEffect::LiftAppealed),
                _ => assert_eq!(effect, StrikeEffect::None, "{a}"),
            }
        }
        let s = StrikeState { expires_ms: 5000, lifted_ms: None };
        assert!(s.active(4999) && !s.active(5000));
        assert!(!StrikeState { lifted_ms: Some(10), ..s }.active(0));
    }

    #[test]
    fn a_bulk_decision_takes_queued_reports_and_keeps_every_other_rule() {
        let queued = ReportState {
            queue: Queue::Spam,
            stage: Stage::Review,
            status: Status::Queued,
            claimed_by: None,
            lease_until_ms: None,
        };
        assert!(remove().check_in_bulk(Role::Moderator, 7, &queued, false, 100).is_ok());
        let mine = ReportState { status: Status::Claimed, claimed_by: Some(7), lease_until_ms: Some(50), ..queued };
        assert!(remove().check_in_bulk(Role::Moderator, 7, &mine, false, 100).is_ok());
        let theirs = ReportState { claimed_by: Some(8), lease_until_ms: Some(500), ..mine };
        assert_eq!(remove().check_in_bulk(Role::Moderator, 7, &theirs, false, 100), Err(ReviewError::HeldByOther));
        // An expired lease is anyone's.
        assert!(remove().check_in_bulk(Role::Moderator, 7, &theirs, false, 501).is_ok());
        let decided = ReportState { status: Status::Decided, ..queued };
        assert_eq!(remove().check_in_bulk(Role::Moderator, 7, &decided, false, 0), Err(ReviewError::AlreadyDecided));
        assert_eq!(remove().check_in_bulk(Role::Moderator, 7, &queued, true, 0), Err(ReviewError::OwnDecision));
        // The table and the stage rules are the single decision's.
        let cs = ReportState { queue: Queue::ChildSafety, ..queued };
        assert_eq!(remove().check_in_bulk(Role::Moderator, 7, &cs, false, 0), Err(ReviewError::Forbidden));
        let appeal = ReportState { queue: Queue::Appeals, stage: Stage::Appeal, ..queued };
        assert_eq!(remove().check_in_bulk(Role::Moderator, 7, &appeal, false, 0), Err(ReviewError::AppealNeedsVerdict));
        assert_eq!(check_bulk_size(0).unwrap_err().code(), "invalid_bulk");
        assert_eq!(check_hold_reason("  subpoena 2026-114 "), Ok("subpoena 2026-114"));
        assert_eq!(check_hold_reason(" "), Err(ReviewError::BadHold));
        assert!(check_bulk_size(MAX_BULK_DECISION).is_ok());
        assert!(check_bulk_size(MAX_BULK_DECISION + 1).is_err());
    }

    #[test]
    fn retention_first_match_wins_with_the_authority_floor() {
        let rules: Vec<RetentionRule> = serde_json::from_str(
            r#"[{"queue": "spam", "action": "dismiss", "days": 7},
                {"queue": "spam", "days": 30},
                {"action": "report-authority", "days": 30},
                {"days": 180}]"#,
        )
        .unwrap();
        let r = Retention::new(rules).unwrap();
        assert_eq!(r.days(Queue::Spam, Action::Dismiss), Some(7));
        assert_eq!(r.days(Queue::Spam, Action::Remove), Some(30));
        assert_eq!(r.days(Queue::ChildSafety, Action::ReportAuthority), Some(AUTHORITY_PRESERVATION_DAYS));
        assert_eq!(r.days(Queue::Harassment, Action::Warn), Some(180));
        assert_eq!(r.shortest(), Some(7));
        assert_eq!(Retention::default().days(Queue::Spam, Action::Dismiss), None);
        let zero = vec![RetentionRule { queue: None, action: None, days: 0 }];
        assert_eq!(Retention::new(zero).unwrap_err().code(), "invalid_retention");

        let report = RetainedReport {
            queue: Queue::Spam,
            status: Status::Decided,
            action: Action::Dismiss,
            decided_ms: 1000,
            legal_hold: false,
        };
        assert!(!r.due(&report, 1000 + 7 * DAY_MS - 1));
        assert!(r.due(&report, 1000 + 7 * DAY_MS));
        assert!(!r.due(&RetainedReport { legal_hold: true, ..report }, i64::MAX));
        assert!(!r.due(&RetainedReport { status: Status::Queued, ..report }, i64::MAX));
    }
}
