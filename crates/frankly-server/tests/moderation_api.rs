//! The moderation API (`/api/v1/`): review keys that act for an account,
//! the permission table run against the API and the web UI alike, list
//! filters and pages, claims, views with per-message verdicts and media by
//! id, decisions with their statement of reasons, release.

#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::review::{account, api, api_json, claim_and_decide, file, web_get, web_post};
use common::{Engine, Harness};
use frankly_api::moderation::{AppealList, AuditPage, AuditVerification, Claimed, ReportDetail, ReportList};
use frankly_report::Reason;
use frankly_review::{Operation, Queue, Role};
use frankly_server::Scope;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_permission_table_holds_on_the_api_and_the_web_ui_alike() {
    let h = Harness::start(Engine::Sqlite, |_| {}).await.unwrap();
    let accounts = [
        account(&h, "ada", Role::Admin).await,
        account(&h, "mo", Role::Moderator).await,
        account(&h, "cora", Role::ChildSafety).await,
    ];
    let (admin, moderator, cora) = (&accounts[0], &accounts[1], &accounts[2]);
    file(&h, "c1", "mallory", Reason::ChildSafety, None).await;
    file(&h, "c2", "mallory", Reason::Harassment, None).await;
    file(&h, "c3", "mallory", Reason::Harassment, None).await;
    let spam = file(&h, "c4", "spammer", Reason::Spam, None).await;
    // One harassment report escalated (to the admins), one spam report decided and appealed.
    let held: Claimed = api_json(&h, &moderator.key, "POST", "/api/v1/queues/harassment/claim", None).await;
    let escalate = json!({"action": "escalate", "ground": "terms"});
    let path = format!("/api/v1/reports/{}/decision", held.report.unwrap());
    let _: Value = api_json(&h, &moderator.key, "POST", &path, Some(escalate)).await;
    let held: Claimed = api_json(&h, &moderator.key, "POST", "/api/v1/queues/spam/claim", None).await;
    let path = format!("/api/v1/reports/{}/decision", held.report.unwrap());
    let _: Value =
        api_json(&h, &moderator.key, "POST", &path, Some(json!({"action": "dismiss", "ground": "terms"}))).await;
    assert_eq!(h.appeal(&spam, "spammer", "not spam").await, StatusCode::CREATED);

    // One report in each kind of queue: restricted, admins', general, appeals.
    let mut in_queue = Vec::new();
    for (queue, who) in
        [(Queue::ChildSafety, cora), (Queue::Escalated, admin), (Queue::Harassment, cora), (Queue::Appeals, cora)]
    {
        let list: ReportList = api_json(&h, &who.key, "GET", &format!("/api/v1/reports?queue={queue}"), None).await;
        assert_eq!(list.reports.len(), 1, "{queue}: {list:?}");
        in_queue.push((queue, list.reports[0].id));
    }

    for a in &accounts {
        for (queue, id) in &in_queue {
            let may = a.role.may(Operation::See(*queue));
            let expect = if may { StatusCode::OK } else { StatusCode::FORBIDDEN };
            let (api_view, _) = api(&h, &a.key, "GET", &format!("/api/v1/reports/{id}"), None).await;
            let (web_view, _, _) = h.request(web_get(&format!("/reports/{id}"), &a.web.cookie)).await;
            assert_eq!((api_view, web_view), (expect, expect), "{:?} viewing {queue}", a.role);
            let (api_list, _) = api(&h, &a.key, "GET", &format!("/api/v1/reports?queue={queue}"), None).await;
            assert_eq!(api_list, expect, "{:?} listing {queue}", a.role);
            let (api_appeals, _) = api(&h, &a.key, "GET", &format!("/api/v1/appeals?queue={queue}"), None).await;
            assert_eq!(api_appeals, expect, "{:?} listing the appeals of {queue}", a.role);
            // Claims: the API answers the report; the UI redirects to it.
            let (api_claim, body) = api(&h, &a.key, "POST", &format!("/api/v1/queues/{queue}/claim"), None).await;
            let (web_claim, headers, _) = h.request(web_post(&format!("/queues/{queue}/claim"), &a.web, "")).await;
            if may {
                assert_eq!(api_claim, StatusCode::OK, "{:?} claiming {queue}", a.role);
                let claimed: Claimed = serde_json::from_slice(&body).unwrap();
                if let Some(report) = claimed.report {
                    assert_eq!(web_claim, StatusCode::SEE_OTHER);
                    assert_eq!(common::location(&headers), format!("/reports/{report}"), "the same claim on both");
                    // Referral to an authority: offered and accepted for child-safety only.
                    let detail: ReportDetail =
                        api_json(&h, &a.key, "GET", &format!("/api/v1/reports/{report}"), None).await;
                    let refer = a.role.may(Operation::Decide(*queue, frankly_review::Action::ReportAuthority));
                    let offered = detail.actions.contains(&frankly_review::Action::ReportAuthority);
                    assert_eq!(offered, refer && *queue != Queue::Appeals, "{:?} on {queue}", a.role);
                    let (_, _, page) = h.get(&format!("/reports/{report}"), Some(&a.web.cookie)).await;
                    assert_eq!(
                        page.contains("<option value=\"report-authority\">"),
                        offered,
                        "{:?} on {queue}",
                        a.role
                    );
                    let (released, _) =
                        api(&h, &a.key, "POST", &format!("/api/v1/reports/{report}/release"), None).await;
                    assert_eq!(released, StatusCode::NO_CONTENT);
                }
            } else {
                assert_eq!(
                    (api_claim, web_claim),
                    (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN),
                    "{:?} claiming {queue}",
                    a.role
                );
            }
        }
        // Administration: the UI's admin pages, and legal holds on both.
        let admin = a.role.may(Operation::Administer);
        let expect = if admin { StatusCode::OK } else { StatusCode::FORBIDDEN };
        assert_eq!(h.request(web_get("/admin/users", &a.web.cookie)).await.0, expect, "{:?}", a.role);
        let (api_audit, _) = api(&h, &a.key, "GET", "/api/v1/audit?actor=mo", None).await;
        let (api_verify, _) = api(&h, &a.key, "GET", "/api/v1/audit/verify", None).await;
        let (web_audit, _, _) = h.request(web_get("/admin/audit?actor=mo", &a.web.cookie)).await;
        assert_eq!(
            (api_audit, api_verify, web_audit),
            (expect, expect, expect),
            "{:?} searching the audit log",
            a.role
        );
        let (_, appealed) = in_queue[3];
        let hold = format!("/api/v1/reports/{appealed}/legal-hold");
        let (api_hold, _) = api(&h, &a.key, "PUT", &hold, Some(json!({"reason": "case 7"}))).await;
        let (api_lift, _) = api(&h, &a.key, "DELETE", &hold, None).await;
        let web_hold = format!("/reports/{appealed}/legal-hold");
        let (web_place, _, _) = h.request(web_post(&web_hold, &a.web, "reason=case+8")).await;
        let (web_lift, _, _) = h.request(web_post(&web_hold, &a.web, "lift=1")).await;
        let expect = if admin {
            (StatusCode::NO_CONTENT, StatusCode::NO_CONTENT, StatusCode::SEE_OTHER, StatusCode::SEE_OTHER)
        } else {
            (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN, StatusCode::FORBIDDEN, StatusCode::FORBIDDEN)
        };
        assert_eq!((api_hold, api_lift, web_place, web_lift), expect, "{:?} placing a legal hold", a.role);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_keys_filters_views_media_and_decisions() {
    let h = Harness::start(Engine::Sqlite, |_| {}).await.unwrap();
    let mo = account(&h, "mo", Role::Moderator).await;
    let pdf: &[u8] = b"%PDF-1.7 a document";
    file(&h, "c1", "mallory", Reason::Harassment, Some(pdf)).await;
    file(&h, "c2", "mallory", Reason::Harassment, None).await;
    file(&h, "c3", "eve", Reason::Violence, None).await;

    // Keys: none, wrong, another scope, a disabled account.
    assert_eq!(api(&h, "", "GET", "/api/v1/queues", None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(api(&h, "frk_1_AAAA", "GET", "/api/v1/queues", None).await.0, StatusCode::UNAUTHORIZED);
    let (_, matcher) =
        frankly_server::create_api_key(h.state.db(), "t", "matcher", &[Scope::Match], None).await.unwrap();
    assert_eq!(api(&h, &matcher, "GET", "/api/v1/queues", None).await.0, StatusCode::FORBIDDEN);
    let refused = frankly_server::create_api_key(h.state.db(), "t", "r", &[Scope::Review], None).await.unwrap_err();
    assert!(refused.to_string().contains("acts for a moderator account"), "{refused}");
    let refused =
        frankly_server::create_api_key(h.state.db(), "t", "r", &[Scope::Review], Some("nobody")).await.unwrap_err();
    assert!(refused.to_string().contains("no moderator account named \"nobody\""), "{refused}");

    // Queues and filters.
    let queues: Vec<Value> = api_json(&h, &mo.key, "GET", "/api/v1/queues", None).await;
    let names: Vec<&str> = queues.iter().map(|q| q["queue"].as_str().unwrap()).collect();
    assert!(!names.contains(&"child-safety") && !names.contains(&"escalated") && names.contains(&"harassment"));
    let harassment = queues.iter().find(|q| q["queue"] == "harassment").unwrap();
    assert_eq!(harassment["queued"], 2);
    let by = |q: &str| format!("/api/v1/reports?{q}");
    let all: ReportList = api_json(&h, &mo.key, "GET", &by(""), None).await;
    assert_eq!(all.reports.len(), 3);
    assert!(all.reports.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let eve: ReportList = api_json(&h, &mo.key, "GET", &by("sender=eve"), None).await;
    assert_eq!(eve.reports.iter().map(|r| r.queue).collect::<Vec<_>>(), [Queue::Violence]);
    let page1: ReportList = api_json(&h, &mo.key, "GET", &by("limit=2"), None).await;
    let before = page1.next_before.unwrap();
    let page2: ReportList = api_json(&h, &mo.key, "GET", &by(&format!("limit=2&before={before}")), None).await;
    assert_eq!((page1.reports.len(), page2.reports.len(), page2.next_before), (2, 1, None));
    let none: ReportList = api_json(&h, &mo.key, "GET", &by("bank_match=true"), None).await;
    assert!(none.reports.is_empty());
    let later: ReportList =
        api_json(&h, &mo.key, "GET", &by(&format!("since={}", frankly_server::now_ms() + 60_000)), None).await;
    assert!(later.reports.is_empty());
    let (status, body) = api(&h, &mo.key, "GET", &by("status=lost"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&body));
    let (status, _) = api(&h, &mo.key, "GET", &by("queue=child-safety"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api(&h, &mo.key, "POST", "/api/v1/queues/nope/claim", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Claim, view with verdicts and the attachment by id, decide.
    let claimed: Claimed = api_json(&h, &mo.key, "POST", "/api/v1/queues/harassment/claim", None).await;
    let id = claimed.report.unwrap();
    let detail: ReportDetail = api_json(&h, &mo.key, "GET", &format!("/api/v1/reports/{id}"), None).await;
    assert_eq!(detail.messages.len(), 3);
    assert!(detail.messages.iter().all(|m| m.verdict == frankly_api::moderation::MessageVerdict::Verified));
    assert!(detail.messages[2].reported && !detail.messages[1].reported);
    assert_eq!((detail.messages[2].sender_user.as_str(), detail.messages[1].by_reporter), ("mallory", true));
    assert_eq!(detail.messages[0].text.as_deref(), Some("message 0 from mallory"));
    assert!(detail.order.starts_with("sequence"), "{}", detail.order);
    assert!(detail.actions.contains(&frankly_review::Action::Remove));
    let attachment = detail.messages.iter().flat_map(|m| &m.attachments).next().unwrap();
    assert_eq!((attachment.declared_type.as_str(), attachment.media_type.as_deref()), ("application/pdf", None));
    let (status, _, bytes) = h
        .request(
            Request::get(attachment.url.as_deref().unwrap())
                .header(header::AUTHORIZATION, format!("Bearer {}", mo.key))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!((status, bytes.as_slice()), (StatusCode::OK, pdf));
    let decision = format!("/api/v1/reports/{id}/decision");
    let (status, body) =
        api(&h, &mo.key, "POST", &decision, Some(json!({"action": "remove", "ground": "terms"}))).await;
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, error["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_decision")), "{error}");
    let (status, _) = api(&h, &mo.key, "POST", &decision, Some(json!({"action": "remove", "ground": "nope"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let remove = json!({"action": "remove", "ground": "terms", "facts": "threats in message 1", "ground_reference": "Terms 4.2"});
    let recorded: Value = api_json(&h, &mo.key, "POST", &decision, Some(remove.clone())).await;
    assert_eq!(recorded["queue"], "harassment");
    let (status, _) = api(&h, &mo.key, "POST", &decision, Some(remove)).await;
    assert_eq!(status, StatusCode::CONFLICT, "decided: no longer held");
    let detail: ReportDetail = api_json(&h, &mo.key, "GET", &format!("/api/v1/reports/{id}"), None).await;
    assert_eq!(detail.decisions.len(), 1);
    assert_eq!(
        (detail.decisions[0].moderator.as_str(), detail.decisions[0].restriction.as_str()),
        ("mo", "removal of content")
    );
    assert!(detail.actions.is_empty());

    // The reported user's other reports: mallory's other report, decided, and
    // not eve's; on the page too.
    let history: Vec<(i64, Option<frankly_review::Action>)> =
        detail.sender_history.iter().map(|r| (r.id, r.last_action)).collect();
    assert_eq!(history.len(), 1, "{history:?}");
    let other = history[0].0;
    assert_ne!(other, id);
    let theirs: ReportDetail = api_json(&h, &mo.key, "GET", &format!("/api/v1/reports/{other}"), None).await;
    assert_eq!(
        theirs.sender_history.iter().map(|r| (r.id, r.last_action)).collect::<Vec<_>>(),
        [(id, Some(frankly_review::Action::Remove))],
        "the decided report, with its decision"
    );
    let (_, _, page) = h.get(&format!("/reports/{other}"), Some(&mo.web.cookie)).await;
    assert!(
        page.contains(&format!("<a href=\"/reports/{id}\">Report {id}</a>")) && page.contains("decided: remove"),
        "{page}"
    );

    // Comments: through the API and the web UI, shown on both, audited; refused
    // when empty, too long, or on a report the role may not see.
    let (status, body) = api(
        &h,
        &mo.key,
        "POST",
        &format!("/api/v1/reports/{id}/comments"),
        Some(json!({"body": "  see the threat in message 2  "})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (status, body) =
        api(&h, &mo.key, "POST", &format!("/api/v1/reports/{id}/comments"), Some(json!({"body": " "}))).await;
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, error["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_comment")));
    let long = json!({"body": "x".repeat(frankly_review::MAX_COMMENT_CHARS + 1)});
    assert_eq!(
        api(&h, &mo.key, "POST", &format!("/api/v1/reports/{id}/comments"), Some(long)).await.0,
        StatusCode::BAD_REQUEST
    );
    let (status, headers, _) =
        h.request(web_post(&format!("/reports/{id}/comments"), &mo.web, "body=second+look%3A+agreed")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(common::location(&headers).starts_with(&format!("/reports/{id}#comment-")));
    let detail: ReportDetail = api_json(&h, &mo.key, "GET", &format!("/api/v1/reports/{id}"), None).await;
    let comments: Vec<(&str, &str)> = detail.comments.iter().map(|c| (c.author.as_str(), c.body.as_str())).collect();
    assert_eq!(comments, [("mo", "see the threat in message 2"), ("mo", "second look: agreed")]);
    let (_, _, page) = h.get(&format!("/reports/{id}"), Some(&mo.web.cookie)).await;
    assert!(page.contains("see the threat in message 2") && page.contains("second look: agreed"), "{page}");
    let cs = file(&h, "c9", "mallory", Reason::ChildSafety, None).await;
    let cs_row: i64 = {
        use sqlx::Row;
        let pool = sqlx::AnyPool::connect(&h.state.config().database_url()).await.unwrap();
        let r = sqlx::query("SELECT id FROM reports WHERE report_id = $1").bind(&cs).fetch_one(&pool).await.unwrap();
        pool.close().await;
        r.get("id")
    };
    let (status, _) =
        api(&h, &mo.key, "POST", &format!("/api/v1/reports/{cs_row}/comments"), Some(json!({"body": "hi"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The audit log names the account the key acts for.
    let audit = frankly_server::audit::verify(h.state.db()).await.unwrap();
    assert!(audit.entries >= 4);
    use sqlx::Row;
    let pool = sqlx::AnyPool::connect(&h.state.config().database_url()).await.unwrap();
    let actions: Vec<String> = sqlx::query("SELECT action FROM audit WHERE actor = 'mo' ORDER BY seq")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("action"))
        .collect();
    for a in ["claim", "view", "view-media", "decide", "comment"] {
        assert!(actions.iter().any(|x| x == a), "{a} audited as mo: {actions:?}");
    }

    // Disabling the account stops its keys at once.
    let users = sqlx::query("SELECT id FROM users WHERE username = 'mo'").fetch_one(&pool).await.unwrap();
    let mo_id: i64 = users.get("id");
    sqlx::query("UPDATE users SET disabled = 1 WHERE id = $1").bind(mo_id).execute(&pool).await.unwrap();
    pool.close().await;
    assert_eq!(api(&h, &mo.key, "GET", "/api/v1/queues", None).await.0, StatusCode::UNAUTHORIZED);
}

/// The OpenAPI document is generated from the routed handlers: it lists
/// exactly the API's operations, each one served (a call without a key is
/// refused 401, not 404) and each requiring the review key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_exactly_the_served_operations() {
    let h = Harness::start(Engine::Sqlite, |_| {}).await.unwrap();
    let (status, headers, body) = h.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert_eq!(op["security"], json!([{"review_key": []}]), "{method} {path}");
            assert!(op["responses"]["401"].is_object() && op["responses"]["403"].is_object(), "{method} {path}");
            operations.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    operations.sort();
    assert_eq!(
        operations,
        [
            "DELETE /api/v1/reports/{id}/legal-hold",
            "GET /api/v1/appeals",
            "GET /api/v1/audit",
            "GET /api/v1/audit/verify",
            "GET /api/v1/media/{id}",
            "GET /api/v1/queues",
            "GET /api/v1/reports",
            "GET /api/v1/reports/{id}",
            "GET /api/v1/reports/{id}/cybertipline",
            "GET /api/v1/reports/{id}/cybertipline/files/{attachment}",
            "POST /api/v1/decisions",
            "POST /api/v1/queues/{queue}/claim",
            "POST /api/v1/reports/{id}/comments",
            "POST /api/v1/reports/{id}/cybertipline/submit",
            "POST /api/v1/reports/{id}/decision",
            "POST /api/v1/reports/{id}/release",
            "PUT /api/v1/reports/{id}/legal-hold",
        ]
    );
    for op in &operations {
        let (method, path) = op.split_once(' ').unwrap();
        let path = path.replace("{id}", "1").replace("{queue}", "spam").replace("{attachment}", "1");
        let req = Request::builder().method(method).uri(&path).body(Body::empty()).unwrap();
        assert_eq!(h.request(req).await.0, StatusCode::UNAUTHORIZED, "{op}");
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "ReportDetail",
        "MessageDetail",
        "DecisionInput",
        "Action",
        "Queue",
        "ErrorBody",
        "ReportList",
        "BulkDecision",
        "BulkDecided",
        "Strikes",
        "LegalHold",
        "CybertipExport",
        "AppealList",
        "AuditPage",
        "AuditVerification",
    ] {
        assert!(schemas.contains_key(name), "{name} missing from {:?}", schemas.keys().collect::<Vec<_>>());
    }
    assert_eq!(doc["components"]["securitySchemes"]["review_key"]["scheme"], "bearer");
    // The list's filters are its query parameters.
    let params: Vec<&str> = doc["paths"]["/api/v1/reports"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["status", "queue", "sender", "since", "until", "bank_match", "before", "limit"]);
}

/// Appeals are listed with the decision appealed and its answer, filtered
/// and paged, within the queues the role may see; the audit log is searched
/// by actor, action, subject and time, paged by position, and its chain
/// checked, by administrators only, on the API and the web UI alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appeals_and_the_audit_log_are_searchable() {
    let h = Harness::start(Engine::Sqlite, |_| {}).await.unwrap();
    let ada = account(&h, "ada", Role::Admin).await;
    let mo = account(&h, "mo", Role::Moderator).await;
    let max = account(&h, "max", Role::Moderator).await;
    let cora = account(&h, "cora", Role::ChildSafety).await;
    let first = file(&h, "c1", "spammer", Reason::Spam, None).await;
    let second = file(&h, "c2", "troll", Reason::Spam, None).await;
    let child = file(&h, "c3", "mallory", Reason::ChildSafety, None).await;
    let dismiss = json!({"action": "dismiss", "ground": "terms"});
    let decided = [
        claim_and_decide(&h, &mo.key, "spam", dismiss.clone()).await,
        claim_and_decide(&h, &mo.key, "spam", dismiss.clone()).await,
    ];
    claim_and_decide(&h, &cora.key, "child-safety", dismiss.clone()).await;
    assert_eq!(h.appeal(&first, "bob", "it was spam").await, StatusCode::CREATED);
    assert_eq!(h.appeal(&second, "troll", "not spam").await, StatusCode::CREATED);
    assert_eq!(h.appeal(&child, "bob", "look again").await, StatusCode::CREATED);
    // max answers one (mo decided both, so cannot).
    let upheld = claim_and_decide(&h, &max.key, "appeals", json!({"action": "uphold", "ground": "terms"})).await;
    assert!(decided.contains(&upheld));

    // mo sees the two spam appeals, newest first, not the child-safety one.
    let all: AppealList = api_json(&h, &mo.key, "GET", "/api/v1/appeals", None).await;
    assert_eq!(all.appeals.len(), 2, "{all:?}");
    assert!(all.appeals[0].id > all.appeals[1].id);
    assert!(all.next_before.is_none());
    for a in &all.appeals {
        assert_eq!((a.queue, a.appealed_action), (Queue::Appeals, frankly_review::Action::Dismiss));
        assert!(decided.contains(&a.report));
        assert_eq!(a.answer.is_some(), a.report == upheld, "{a:?}");
    }
    let open: AppealList = api_json(&h, &mo.key, "GET", "/api/v1/appeals?status=open", None).await;
    assert_eq!(open.appeals.len(), 1);
    assert_ne!(open.appeals[0].report, upheld);
    let answered: AppealList = api_json(&h, &mo.key, "GET", "/api/v1/appeals?status=decided", None).await;
    let answer = answered.appeals[0].answer.as_ref().unwrap();
    assert_eq!((answer.action, answer.moderator.as_str()), (frankly_review::Action::Uphold, "max"));
    let by_troll: AppealList = api_json(&h, &mo.key, "GET", "/api/v1/appeals?appellant=troll", None).await;
    assert_eq!(by_troll.appeals.len(), 1);
    assert_eq!((by_troll.appeals[0].appellant.as_str(), by_troll.appeals[0].statement.as_str()), ("troll", "not spam"));
    let page: AppealList = api_json(&h, &mo.key, "GET", "/api/v1/appeals?limit=1", None).await;
    assert_eq!(page.appeals[0].id, all.appeals[0].id);
    let before = page.next_before.unwrap();
    let page: AppealList =
        api_json(&h, &mo.key, "GET", &format!("/api/v1/appeals?limit=1&before={before}"), None).await;
    assert_eq!(page.appeals[0].id, all.appeals[1].id);
    let future = frankly_server::now_ms() + 60_000;
    let none: AppealList = api_json(&h, &mo.key, "GET", &format!("/api/v1/appeals?since={future}"), None).await;
    assert!(none.appeals.is_empty());
    // The child-safety appeal stays in its queue, seen by its role only.
    let cs: AppealList = api_json(&h, &cora.key, "GET", "/api/v1/appeals?queue=child-safety", None).await;
    assert_eq!((cs.appeals.len(), cs.appeals[0].queue), (1, Queue::ChildSafety));
    assert_eq!(api(&h, &mo.key, "GET", "/api/v1/appeals?queue=child-safety", None).await.0, StatusCode::FORBIDDEN);
    let (status, body) = api(&h, &mo.key, "GET", "/api/v1/appeals?colour=red", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("colour"), "{}", String::from_utf8_lossy(&body));

    // The audit log: by actor, by subject and action, paged, in time.
    let by_max: AuditPage = api_json(&h, &ada.key, "GET", "/api/v1/audit?actor=max", None).await;
    assert!(!by_max.entries.is_empty());
    assert!(by_max.entries.iter().all(|e| e.actor == "max"), "{by_max:?}");
    assert!(by_max.entries.windows(2).all(|w| w[0].seq > w[1].seq));
    let path = format!("/api/v1/audit?subject=report:{upheld}&action=decide");
    let decides: AuditPage = api_json(&h, &ada.key, "GET", &path, None).await;
    let actors: Vec<&str> = decides.entries.iter().map(|e| e.actor.as_str()).collect();
    assert_eq!(actors, ["max", "mo"]);
    let everything = frankly_server::audit::recent(h.state.db(), 1000).await.unwrap();
    let mut paged = Vec::new();
    let mut path = "/api/v1/audit?limit=7".to_string();
    loop {
        let page: AuditPage = api_json(&h, &ada.key, "GET", &path, None).await;
        paged.extend(page.entries);
        match page.next_before {
            Some(before) => path = format!("/api/v1/audit?limit=7&before={before}"),
            None => break,
        }
    }
    // Pages read since the first add no entries (reading the log is not audited).
    assert_eq!(paged, everything);
    let since = everything[2].at_ms;
    let recent: AuditPage = api_json(&h, &ada.key, "GET", &format!("/api/v1/audit?since={since}"), None).await;
    assert!(recent.entries.iter().all(|e| e.at_ms >= since) && recent.entries.len() >= 3);
    let verified: AuditVerification = api_json(&h, &ada.key, "GET", "/api/v1/audit/verify", None).await;
    assert_eq!(
        verified,
        AuditVerification { intact: true, entries: everything[0].seq, head: everything[0].hash.clone(), problem: None }
    );
    assert_eq!(api(&h, &ada.key, "GET", "/api/v1/audit?limit=x", None).await.0, StatusCode::BAD_REQUEST);
    // The web UI's search is the same one.
    let (status, _, page) = h.request(web_get("/admin/audit?actor=max&action=&subject=", &ada.web.cookie)).await;
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("<td>max</td>") && !page.contains("<td>mo</td>"), "{page}");
}

/// Claims and decisions from many moderators at once share commits (on
/// SQLite, `Db::write`'s group commit) but not outcomes: every claim gets
/// its own report, every decision on a held report is recorded once, every
/// decision on another moderator's report is refused alone, and the audit
/// chain holds; on both engines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_and_decisions_share_commits_not_outcomes() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let Some(h) = Harness::start(engine, |_| {}).await else { continue };
        const MODERATORS: usize = 12;
        let mut keys = Vec::new();
        for i in 0..MODERATORS {
            keys.push(account(&h, &format!("m{i}"), Role::Moderator).await.key);
        }
        for i in 0..2 * MODERATORS {
            file(&h, &format!("c{i}"), &format!("s{i}"), Reason::Spam, None).await;
        }
        let h = std::sync::Arc::new(h);
        let mut claims = tokio::task::JoinSet::new();
        for (i, key) in keys.iter().enumerate() {
            let (h, key) = (std::sync::Arc::clone(&h), key.clone());
            claims.spawn(async move {
                let c: Claimed = api_json(&h, &key, "POST", "/api/v1/queues/spam/claim", None).await;
                (i, c.report.unwrap())
            });
        }
        let mut held = vec![0i64; MODERATORS];
        while let Some(done) = claims.join_next().await {
            let (i, report) = done.unwrap();
            held[i] = report;
        }
        let mut distinct = held.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), MODERATORS, "{engine:?}: one report each: {held:?}");

        // Each decides its own report and tries its neighbour's, all at once.
        let mut decisions = tokio::task::JoinSet::new();
        for (i, key) in keys.iter().enumerate() {
            for (target, own) in [(held[i], true), (held[(i + 1) % MODERATORS], false)] {
                let (h, key) = (std::sync::Arc::clone(&h), key.clone());
                decisions.spawn(async move {
                    let body = json!({"action": "dismiss", "ground": "terms"});
                    let path = format!("/api/v1/reports/{target}/decision");
                    let (status, body) = api(&h, &key, "POST", &path, Some(body)).await;
                    (own, status, serde_json::from_slice::<Value>(&body).unwrap())
                });
            }
        }
        let (mut recorded, mut refused) = (0, 0);
        while let Some(done) = decisions.join_next().await {
            let (own, status, body) = done.unwrap();
            if own {
                assert_eq!(status, StatusCode::OK, "{engine:?}: {body}");
                recorded += 1;
            } else {
                // Refused either way: held by its moderator, or decided already.
                assert_eq!(status, StatusCode::CONFLICT, "{engine:?}: {body}");
                refused += 1;
            }
        }
        assert_eq!((recorded, refused), (MODERATORS, MODERATORS));
        let pool = sqlx::AnyPool::connect(&h.state.config().database_url()).await.unwrap();
        let per_report: Vec<i64> = sqlx::query("SELECT COUNT(*) AS n FROM decisions GROUP BY report ORDER BY report")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| sqlx::Row::get::<i64, _>(r, "n"))
            .collect();
        assert_eq!(per_report, vec![1; MODERATORS], "{engine:?}");
        let events: i64 = sqlx::Row::get(
            &sqlx::query("SELECT COUNT(*) AS n FROM webhook_events WHERE kind = 'report.decided'")
                .fetch_one(&pool)
                .await
                .unwrap(),
            "n",
        );
        assert_eq!(events, MODERATORS as i64);
        pool.close().await;
        let entries = frankly_server::audit::recent(h.state.db(), 1000).await.unwrap();
        let claims = entries.iter().filter(|e| e.action == "claim").count();
        let decides = entries.iter().filter(|e| e.action == "decide").count();
        assert_eq!((claims, decides), (MODERATORS, MODERATORS), "{engine:?}");
        assert_eq!(frankly_server::audit::verify(h.state.db()).await.unwrap().entries, entries[0].seq);
    }
}
