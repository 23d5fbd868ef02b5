//! After a decision, on SQLite and PostgreSQL: strikes that count, expire
//! (with a clock) and are lifted by a reversal on appeal; bulk decisions of
//! up to 1000 reports with one statement of reasons, each report audited
//! and refused on its own; retention that purges bodies and media on time
//! (with a clock) and never under legal hold.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use axum::http::StatusCode;
use common::review::{account, api, api_json, claim_and_decide, file, user_of, web_get, web_post};
use common::{Engine, Harness};
use frankly_api::moderation::{BulkDecided, ReportDetail};
use frankly_report::Reason;
use frankly_review::{DAY_MS, Queue, Retention, RetentionRule, Role};
use frankly_server::lifecycle;
use serde_json::{Value, json};
use sqlx::Row;

fn remove() -> Value {
    json!({"action": "remove", "facts": "threats in messages 1 to 3", "ground": "terms", "ground_reference": "terms 4.2"})
}

fn warn() -> Value {
    json!({"action": "warn", "facts": "insults in message 2", "ground": "terms", "ground_reference": "terms 4.1"})
}

async fn detail(h: &Harness, key: &str, id: i64) -> ReportDetail {
    api_json(h, key, "GET", &format!("/api/v1/reports/{id}"), None).await
}

async fn pool(h: &Harness) -> sqlx::AnyPool {
    sqlx::AnyPool::connect(&h.state.config().database_url()).await.unwrap()
}

/// The first column of every row `sql` selects.
async fn ids(h: &Harness, sql: &str) -> Vec<i64> {
    sqlx::query(sql).fetch_all(&pool(h).await).await.unwrap().iter().map(|r| r.get::<i64, _>(0)).collect()
}

/// The `data` of every stored webhook event of `kind`, oldest first.
async fn events(h: &Harness, kind: &str) -> Vec<Value> {
    sqlx::query("SELECT body FROM webhook_events WHERE kind = $1 ORDER BY id")
        .bind(kind)
        .fetch_all(&pool(h).await)
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.try_get::<Vec<u8>, _>("body").unwrap()).unwrap()["data"].clone())
        .collect()
}

async fn strikes_count_expire_and_are_lifted_on_appeal(h: Harness) {
    let mo = account(&h, "mo", Role::Moderator).await;
    let mia = account(&h, "mia", Role::Moderator).await;
    let removed_id = file(&h, "c1", "mallory", Reason::Harassment, None).await;
    file(&h, "c2", "mallory", Reason::Harassment, None).await;
    file(&h, "c3", "mallory", Reason::Spam, None).await;
    file(&h, "c4", "eve", Reason::Harassment, None).await;

    let removed = claim_and_decide(&h, &mo.key, "harassment", remove()).await;
    let d = detail(&h, &mo.key, removed).await;
    assert_eq!(d.strikes.active, 1);
    let strike = &d.strikes.strikes[0];
    assert_eq!((strike.report, strike.action, strike.active), (removed, frankly_review::Action::Remove, true));
    assert_eq!(strike.expires_ms - strike.issued_ms, 365 * DAY_MS, "the default strike_days");
    let warned = claim_and_decide(&h, &mo.key, "harassment", warn()).await;
    claim_and_decide(&h, &mo.key, "spam", json!({"action": "dismiss", "ground": "terms"})).await;
    assert_eq!(detail(&h, &mo.key, warned).await.strikes.active, 2, "a dismissal strikes nothing");
    // Every strike is the reported user's: eve's report shows none of mallory's.
    let eve = claim_and_decide(&h, &mo.key, "harassment", json!({"action": "escalate", "ground": "terms"})).await;
    let admin = account(&h, "ada", Role::Admin).await;
    assert_eq!(detail(&h, &admin.key, eve).await.strikes, Default::default());
    // The webhook carries the count the platform acts on.
    let decided = events(&h, "report.decided").await;
    let counts: Vec<(i64, i64)> =
        decided.iter().map(|e| (e["report"].as_i64().unwrap(), e["active_strikes"].as_i64().unwrap())).collect();
    assert_eq!(&counts[..2], [(removed, 1), (warned, 2)]);
    assert!(decided[0]["strike"].as_i64().is_some() && decided[2]["strike"].is_null());

    // The page shows them.
    let (_, _, page) = h.get(&format!("/reports/{warned}"), Some(&mo.web.cookie)).await;
    assert!(page.contains("2 active against mallory"), "{page}");
    assert!(page.contains(&format!("<a href=\"/reports/{removed}\">Report {removed}</a> · remove")), "{page}");

    // With a clock: both count the day before they expire, neither after.
    let user = user_of(&h, "mo", Role::Moderator).await;
    let issued = strike.issued_ms;
    let at = |ms| lifecycle::strikes_of(h.state.db(), &user, "mallory", ms);
    assert_eq!(at(issued + 364 * DAY_MS).await.unwrap().active, 2);
    let later = at(issued + 366 * DAY_MS).await.unwrap();
    assert_eq!((later.active, later.strikes.iter().filter(|s| s.active).count()), (0, 0));
    assert_eq!(later.strikes.len(), 2, "expired strikes stay listed");

    // A reversal on appeal lifts the strike; an upheld decision keeps its own.
    assert_eq!(h.appeal(&removed_id, "mallory", "it was a quote").await, StatusCode::CREATED);
    let reversed = claim_and_decide(&h, &mia.key, "appeals", json!({"action": "reverse", "ground": "terms"})).await;
    assert_eq!(reversed, removed);
    let d = detail(&h, &mia.key, removed).await;
    assert_eq!(d.strikes.active, 1);
    let lifted = d.strikes.strikes.iter().find(|s| s.report == removed).unwrap();
    assert!(lifted.lifted_ms.is_some() && !lifted.active);
    assert_eq!(events(&h, "appeal.decided").await[0]["active_strikes"], 1);
}

async fn claim(h: &Harness, key: &str) -> i64 {
    let c: Value = api_json(h, key, "POST", "/api/v1/queues/spam/claim", None).await;
    c["report"].as_i64().unwrap()
}

async fn bulk_decisions_decide_each_report_on_its_own(h: Harness) {
    let mo = account(&h, "mo", Role::Moderator).await;
    let tess = account(&h, "tess", Role::Moderator).await;
    let mut spam = Vec::new();
    for i in 0..6 {
        file(&h, &format!("s{i}"), "spammer", Reason::Spam, None).await;
    }
    file(&h, "cs", "someone", Reason::ChildSafety, None).await;
    let ids = ids(&h, "SELECT id FROM reports ORDER BY id").await;
    spam.extend_from_slice(&ids[..6]);
    let child_safety = ids[6];
    // One held by tess, one held by mo, one decided by mo already.
    let by_tess = claim(&h, &tess.key).await;
    let dismissed = claim_and_decide(&h, &mo.key, "spam", json!({"action": "dismiss", "ground": "terms"})).await;
    let by_mo = claim(&h, &mo.key).await;
    let queued: Vec<i64> = spam.iter().copied().filter(|id| ![by_tess, dismissed, by_mo].contains(id)).collect();
    assert_eq!(queued.len(), 3);

    // Whole-request refusals decide nothing.
    let bulk = |reports: Vec<i64>, decision: Value| json!({"reports": reports, "decision": decision});
    let (status, body) = api(&h, &mo.key, "POST", "/api/v1/decisions", Some(bulk(vec![], remove()))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["error"], "invalid_bulk");
    let (status, _) = api(&h, &mo.key, "POST", "/api/v1/decisions", Some(bulk((1..=1001).collect(), remove()))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let no_facts = json!({"action": "remove", "ground": "terms"});
    let (status, body) = api(&h, &mo.key, "POST", "/api/v1/decisions", Some(bulk(queued.clone(), no_facts))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["error"], "invalid_decision");
    assert_eq!(events(&h, "report.decided").await.len(), 1, "only the single dismissal so far");

    let mut reports = queued.clone();
    reports.extend([by_mo, by_tess, dismissed, 999_999, child_safety, queued[0]]);
    let done: BulkDecided =
        api_json(&h, &mo.key, "POST", "/api/v1/decisions", Some(bulk(reports.clone(), remove()))).await;
    let outcome: Vec<(i64, &str)> =
        done.results.iter().map(|r| (r.report, r.error.as_ref().map_or("decided", |e| e.error.as_str()))).collect();
    let expect: Vec<(i64, &str)> = queued
        .iter()
        .map(|id| (*id, "decided"))
        .chain([
            (by_mo, "decided"),
            (by_tess, "held_by_other"),
            (dismissed, "already_decided"),
            (999_999, "not_found"),
            (child_safety, "forbidden"),
            (queued[0], "already_decided"),
        ])
        .collect();
    assert_eq!(outcome, expect);
    assert!(
        done.results.iter().filter(|r| r.error.is_none()).all(|r| r.decision.is_some() && r.queue == Some(Queue::Spam))
    );

    // Each decided report: its decision, strike, webhook and audit entry naming the batch.
    let decided: Vec<i64> = expect.iter().filter(|(_, o)| *o == "decided").map(|(id, _)| *id).collect();
    for id in &decided {
        let d = detail(&h, &mo.key, *id).await;
        assert_eq!(d.report.status, frankly_review::Status::Decided);
        assert_eq!(d.decisions.last().unwrap().facts, "threats in messages 1 to 3");
    }
    assert_eq!(detail(&h, &mo.key, by_tess).await.report.status, frankly_review::Status::Claimed);
    assert_eq!(detail(&h, &mo.key, queued[0]).await.strikes.active, 4);
    let hooks: Vec<i64> =
        events(&h, "report.decided").await[1..].iter().map(|e| e["report"].as_i64().unwrap()).collect();
    assert_eq!(hooks, decided);
    let audit = frankly_server::audit::recent(h.state.db(), 1000).await.unwrap();
    let batch = audit.iter().find(|e| e.action == "bulk-decide").unwrap();
    assert_eq!(batch.seq, done.batch);
    assert_eq!((batch.actor.as_str(), batch.subject.as_str()), ("mo", "user:mo"));
    let per_report: Vec<String> = audit
        .iter()
        .filter(|e| {
            e.action == "decide" && serde_json::from_str::<Value>(&e.detail).unwrap()["bulk"] == json!(done.batch)
        })
        .map(|e| e.subject.clone())
        .collect();
    let mut want: Vec<String> = decided.iter().map(|id| format!("report:{id}")).collect();
    want.reverse();
    assert_eq!(per_report, want, "one entry per decided report, newest first");
    assert_eq!(frankly_server::audit::verify(h.state.db()).await.unwrap().entries, audit.len() as i64);

    // On appeal: the moderator who decided is refused, another decides.
    let appealed = sqlx::query("SELECT report_id FROM reports WHERE id = $1")
        .bind(dismissed)
        .fetch_one(&pool(&h).await)
        .await
        .unwrap()
        .try_get::<String, _>("report_id")
        .unwrap();
    assert_eq!(h.appeal(&appealed, "spammer", "not spam").await, StatusCode::CREATED);
    let uphold = bulk(vec![dismissed], json!({"action": "uphold", "ground": "terms"}));
    let done: BulkDecided = api_json(&h, &mo.key, "POST", "/api/v1/decisions", Some(uphold.clone())).await;
    assert_eq!(done.results[0].error.as_ref().unwrap().error, "own_decision");
    let done: BulkDecided = api_json(&h, &tess.key, "POST", "/api/v1/decisions", Some(uphold)).await;
    assert!(done.results[0].error.is_none(), "{:?}", done.results);
}

async fn bulk_decides_a_thousand_reports(h: Harness) {
    let mo = account(&h, "mo", Role::Moderator).await;
    let keyring = h.keyring();
    let key = h.server_key();
    let now = u64::try_from(frankly_server::now_ms()).unwrap();
    for i in 0..1000 {
        // A reporter per report: each may file 30 a minute.
        let reporter = format!("r{i}");
        let msgs =
            common::franked::conversation(&keyring, &format!("k{i}"), &format!("s{}", i % 10), &reporter, 1, now);
        let (_, envelope) = common::franked::seal(msgs, Reason::Spam, &key);
        assert_eq!(h.post_report(envelope).await.0, StatusCode::ACCEPTED);
    }
    let ids = ids(&h, "SELECT id FROM reports ORDER BY id").await;
    assert_eq!(ids.len(), 1000);
    let done: BulkDecided =
        api_json(&h, &mo.key, "POST", "/api/v1/decisions", Some(json!({"reports": ids, "decision": remove()}))).await;
    assert!(done.results.iter().all(|r| r.error.is_none()));
    assert_eq!(events(&h, "report.decided").await.len(), 1000);
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM strikes").fetch_one(&pool(&h).await).await.unwrap().get("n");
    assert_eq!(n, 1000);
}

const PURGED: &str = "SELECT id FROM reports WHERE purged_ms IS NOT NULL ORDER BY id";

async fn retention_purges_bodies_and_media_on_time_and_never_under_hold(h: Harness) {
    let mo = account(&h, "mo", Role::Moderator).await;
    let cora = account(&h, "cora", Role::ChildSafety).await;
    let ada = account(&h, "ada", Role::Admin).await;
    let pdf: &[u8] = b"%PDF-1.7 the reported document";
    file(&h, "s1", "spammer", Reason::Spam, Some(pdf)).await;
    file(&h, "s2", "spammer", Reason::Spam, None).await;
    let appealed_id = file(&h, "s3", "spammer", Reason::Spam, None).await;
    file(&h, "h1", "mallory", Reason::Harassment, Some(pdf)).await;
    file(&h, "h2", "mallory", Reason::Harassment, None).await;
    file(&h, "h3", "mallory", Reason::Harassment, None).await;
    file(&h, "c1", "someone", Reason::ChildSafety, None).await;
    let dismiss = json!({"action": "dismiss", "ground": "terms"});
    let s1 = claim_and_decide(&h, &mo.key, "spam", dismiss.clone()).await;
    let s2 = claim_and_decide(&h, &mo.key, "spam", remove()).await;
    let s3 = claim_and_decide(&h, &mo.key, "spam", dismiss).await;
    assert_eq!(h.appeal(&appealed_id, "spammer", "please look again").await, StatusCode::CREATED);
    let h1 = claim_and_decide(&h, &mo.key, "harassment", warn()).await;
    let h2 = claim_and_decide(&h, &mo.key, "harassment", warn()).await;
    let refer = json!({"action": "report-authority", "facts": "apparent CSAM in message 2", "ground": "legal",
        "ground_reference": "18 U.S.C. 2258A"});
    let c1 = claim_and_decide(&h, &cora.key, "child-safety", refer).await;
    let queued = ids(&h, "SELECT id FROM reports WHERE status = 'queued' AND queue = 'harassment'").await[0];

    // Legal holds: administrators only, with a reason.
    let hold = format!("/api/v1/reports/{h2}/legal-hold");
    assert_eq!(api(&h, &mo.key, "PUT", &hold, Some(json!({"reason": "x"}))).await.0, StatusCode::FORBIDDEN);
    let (status, body) = api(&h, &ada.key, "PUT", &hold, Some(json!({"reason": "  "}))).await;
    assert_eq!(
        (status, serde_json::from_slice::<Value>(&body).unwrap()["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_hold"))
    );
    let missing = "/api/v1/reports/999999/legal-hold";
    assert_eq!(api(&h, &ada.key, "PUT", missing, Some(json!({"reason": "x"}))).await.0, StatusCode::NOT_FOUND);
    let reason = json!({"reason": "preservation request 2026-114"});
    assert_eq!(api(&h, &ada.key, "PUT", &hold, Some(reason)).await.0, StatusCode::NO_CONTENT);
    let held = detail(&h, &mo.key, h2).await.legal_hold.unwrap();
    assert_eq!((held.by.as_str(), held.reason.as_str()), ("ada", "preservation request 2026-114"));

    let rules: Vec<RetentionRule> = serde_json::from_value(json!([
        {"queue": "spam", "action": "dismiss", "days": 7},
        {"days": 30}
    ]))
    .unwrap();
    let retention = Retention::new(rules).unwrap();
    let db = h.state.db();
    let now = frankly_server::now_ms();
    assert_eq!(lifecycle::purge(db, &retention, now + 7 * DAY_MS - 60_000).await.unwrap(), 0);
    assert_eq!(lifecycle::purge(db, &retention, now + 7 * DAY_MS + 60_000).await.unwrap(), 1);
    assert_eq!(ids(&h, PURGED).await, [s1], "the spam dismissal after 7 days; the appealed one is under review");
    assert_eq!(lifecycle::purge(db, &retention, now + 30 * DAY_MS + 60_000).await.unwrap(), 2);
    assert_eq!(ids(&h, PURGED).await, [s1, s2, h1], "not the held one, nor the referral, nor the queued one");
    assert_eq!(lifecycle::purge(db, &retention, now + 30 * DAY_MS + 60_000).await.unwrap(), 0, "once");
    assert_eq!(lifecycle::purge(db, &retention, now + 365 * DAY_MS + 60_000).await.unwrap(), 1);
    assert_eq!(ids(&h, PURGED).await, [s1, s2, h1, c1], "a referral is kept a year (18 U.S.C. 2258A(h))");
    assert_eq!(api(&h, &ada.key, "DELETE", &hold, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(lifecycle::purge(db, &retention, now + 365 * DAY_MS + 60_000).await.unwrap(), 1);
    let mut all = vec![s1, s2, h1, h2, c1];
    all.sort_unstable();
    assert_eq!(ids(&h, PURGED).await, all);
    assert!(!all.contains(&s3) && !all.contains(&queued));

    // What a purged report still shows: verdicts, digests, decisions; no text, no bytes.
    let d = detail(&h, &mo.key, h1).await;
    assert!(d.purged_ms.is_some());
    assert!(
        d.messages.iter().all(|m| m.text.is_none() && m.verdict == frankly_api::moderation::MessageVerdict::Verified)
    );
    let a = d.messages.iter().flat_map(|m| m.attachments.iter()).next().unwrap();
    assert_eq!((a.size, a.url.as_ref()), (pdf.len() as i64, None));
    assert_eq!(a.sha256, hex::encode(<sha2::Sha256 as sha2::Digest>::digest(pdf)));
    let (status, body) = api(&h, &mo.key, "GET", &format!("/api/v1/media/{}", a.id), None).await;
    assert_eq!(
        (status, serde_json::from_slice::<Value>(&body).unwrap()["error"].as_str()),
        (StatusCode::GONE, Some("purged"))
    );
    assert_eq!(d.decisions.len(), 1);
    assert_eq!(d.note, "");
    let (_, _, page) = h.get(&format!("/reports/{h1}"), Some(&mo.web.cookie)).await;
    assert!(page.contains("were purged under the retention policy on"), "{page}");
    assert!(page.contains("[purged under the retention policy]") && page.contains(": purged</span>"), "{page}");
    assert_eq!(h.get(&format!("/reports/{h1}/media/2/0"), Some(&mo.web.cookie)).await.0, StatusCode::GONE);
    // The unpurged reports keep their bytes.
    let kept = detail(&h, &mo.key, queued).await;
    assert!(kept.purged_ms.is_none() && kept.messages.iter().all(|m| m.text.is_some()));

    // Each purge and each hold is audited; the chain verifies.
    let audit = frankly_server::audit::recent(db, 1000).await.unwrap();
    let purges: Vec<&str> = audit.iter().filter(|e| e.action == "purge").map(|e| e.subject.as_str()).collect();
    assert_eq!(purges.len(), 5);
    assert!(audit.iter().all(|e| e.action != "purge" || e.actor == "retention"));
    let holds: Vec<&str> =
        audit.iter().filter(|e| e.action.starts_with("legal-hold")).map(|e| e.action.as_str()).collect();
    assert_eq!(holds, ["legal-hold-lifted", "legal-hold"]);
    frankly_server::audit::verify(db).await.unwrap();
}

on_both!(
    strikes_count_expire_and_are_lifted_on_appeal,
    bulk_decisions_decide_each_report_on_its_own,
    bulk_decides_a_thousand_reports,
    retention_purges_bodies_and_media_on_time_and_never_under_hold,
);

#[test]
fn retention_and_strike_configuration_is_checked() {
    let config: frankly_server::Config = toml::from_str(
        "strike_days = 90\n[[retention]]\nqueue = \"spam\"\naction = \"dismiss\"\ndays = 7\n[[retention]]\ndays = 180\n",
    )
    .unwrap();
    config.validate().unwrap();
    assert_eq!(config.retention().days(Queue::Spam, frankly_review::Action::Dismiss), Some(7));
    assert_eq!(config.retention().days(Queue::Violence, frankly_review::Action::Remove), Some(180));
    let zero = frankly_server::Config {
        retention: vec![RetentionRule { queue: None, action: None, days: 0 }],
        ..config.clone()
    };
    assert!(zero.validate().unwrap_err().to_string().contains("retention rule 0: days must be at least 1"));
    let no_strikes = frankly_server::Config { strike_days: 0, ..config };
    assert!(no_strikes.validate().unwrap_err().to_string().contains("strike_days must be positive"));
    let unknown = toml::from_str::<frankly_server::Config>("[[retention]]\nqueue = \"nope\"\ndays = 1\n");
    assert!(unknown.unwrap_err().to_string().contains("nope"));
}

/// The web UI's bulk decision is the API's: the queued reports listed with
/// a checkbox each, the ticked ones decided with one statement of reasons,
/// each outcome shown; a form that breaks a rule decides nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_decisions_from_the_web_ui() {
    use frankly_review::Status;
    let h = Harness::start(Engine::Sqlite, |_| {}).await.unwrap();
    let mo = account(&h, "mo", Role::Moderator).await;
    let tess = account(&h, "tess", Role::Moderator).await;
    for i in 0..4 {
        file(&h, &format!("s{i}"), "spammer", Reason::Spam, None).await;
    }
    let all = ids(&h, "SELECT id FROM reports ORDER BY id").await;
    let by_tess = claim(&h, &tess.key).await;
    let queued: Vec<i64> = all.iter().copied().filter(|id| *id != by_tess).collect();
    let tick = |id: i64| format!("name=\"report-{id}\"");

    let (status, _, page) = h.request(web_get("/queues/spam/bulk", &mo.web.cookie)).await;
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8(page).unwrap();
    for id in &all {
        assert_eq!(page.contains(&tick(*id)), *id != by_tess, "report {id} listed only while queued");
    }
    assert!(page.contains("<option value=\"remove\">") && !page.contains("<option value=\"uphold\">"));
    let (_, _, dashboard) = h.request(web_get("/", &mo.web.cookie)).await;
    assert!(String::from_utf8(dashboard).unwrap().contains("href=\"/queues/spam/bulk\""));

    // Refused whole: a statement that breaks a rule, an unknown field, nothing ticked, a foreign queue.
    let rule = format!("action=remove&ground=terms&report-{}=on", queued[0]);
    assert_eq!(h.request(web_post("/queues/spam/bulk", &mo.web, &rule)).await.0, StatusCode::BAD_REQUEST);
    let unknown = format!("action=dismiss&ground=terms&colour=red&report-{}=on", queued[0]);
    assert_eq!(h.request(web_post("/queues/spam/bulk", &mo.web, &unknown)).await.0, StatusCode::BAD_REQUEST);
    let none = "action=dismiss&ground=terms";
    assert_eq!(h.request(web_post("/queues/spam/bulk", &mo.web, none)).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(h.request(web_get("/queues/child-safety/bulk", &mo.web.cookie)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(detail(&h, &mo.key, queued[0]).await.report.status, Status::Queued);

    let form = format!(
        "action=remove&facts=threats+in+messages+1+to+3&ground=terms&ground_reference=terms+4.2\
         &report-{}=on&report-{}=on&report-{by_tess}=on",
        queued[0], queued[1]
    );
    let (status, _, page) = h.request(web_post("/queues/spam/bulk", &mo.web, &form)).await;
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8(page).unwrap();
    for id in &queued[..2] {
        assert!(page.contains(&format!("Report {id}</a>: decided (spam)")), "{page}");
        assert!(!page.contains(&tick(*id)));
    }
    assert!(page.contains(&format!("Report {by_tess}</a>: not decided:")), "{page}");
    assert!(page.contains(&tick(queued[2])));
    for (id, want) in [
        (queued[0], Status::Decided),
        (queued[1], Status::Decided),
        (queued[2], Status::Queued),
        (by_tess, Status::Claimed),
    ] {
        assert_eq!(detail(&h, &mo.key, id).await.report.status, want, "report {id}");
    }
    assert_eq!(detail(&h, &mo.key, queued[0]).await.decisions[0].facts, "threats in messages 1 to 3");
    let audit = frankly_server::audit::recent(h.state.db(), 1000).await.unwrap();
    let batches: Vec<&str> = audit.iter().filter(|e| e.action == "bulk-decide").map(|e| e.actor.as_str()).collect();
    assert_eq!(batches, ["mo"]);
    assert_eq!(events(&h, "report.decided").await.len(), 2);
}
