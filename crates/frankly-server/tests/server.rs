//! The server's behaviour through its HTTP interface, on SQLite and on
//! PostgreSQL (each test runs on both; PostgreSQL is skipped with a notice
//! when its binaries are absent).

#![allow(clippy::unwrap_used, clippy::print_stderr)]

#[macro_use]
mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::franked::{conversation, device, seal, with_image};
use common::{Engine, Harness, location};
use frankly_franking::{Commitment, DeviceKey, Party, verify_delivery, verify_tag};
use frankly_report::Reason;
use frankly_review::{Queue, Role};

const T0: u64 = 0;

fn now_ms() -> u64 {
    u64::try_from(frankly_server::now_ms()).unwrap()
}

on_both!(
    honest_report_is_verified_queued_and_counted,
    replays_and_re_reports_are_answered_alike_and_stored_once,
    invalid_reports_are_refused_without_an_oracle,
    a_report_needs_a_device_credential_before_anything_is_opened,
    context_failures_are_kept_with_their_verdict,
    child_safety_reports_go_to_their_own_queue_and_repeat_senders_rise,
    claims_never_double_assign_and_leases_expire,
    decisions_need_a_lease_and_a_statement_of_reasons,
    appeals_return_to_review_by_another_moderator,
    authorization_is_checked_on_every_route,
    every_form_needs_its_csrf_token,
    audit_log_is_append_only_and_verifies,
    relay_tags_each_copy_for_members_only,
    tagging_needs_the_platform_token,
    health_and_metrics,
);

async fn report(h: &Harness, reporter: &str, reason: Reason, context: usize) -> (String, Vec<u8>) {
    let msgs = conversation(&h.keyring(), "conv-1", "mallory", reporter, context + 1, now_ms());
    seal(msgs, reason, &h.server_key())
}

async fn queued(h: &Harness) -> usize {
    h.stored().await.len()
}

async fn honest_report_is_verified_queued_and_counted(h: Harness) {
    let (id, envelope) = report(&h, "bob", Reason::Harassment, 5).await;
    let (status, body) = h.post_report(envelope).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body, serde_json::json!({ "report_id": id, "status": "received" }));
    let stored = h.stored().await;
    assert_eq!(stored.len(), 1);
    let (_, queue, _, content) = &stored[0];
    assert_eq!(queue, "harassment");
    assert!(content.verdicts.iter().all(|v| *v == frankly_server::StoredVerdict::Verified));
    let order = content.order.as_ref().unwrap();
    assert_eq!((order.first, order.last, order.is_complete()), (1, 6, true));
    assert_eq!(content.report.reporter, device("bob"));
    let (_, _, metrics) = h.get("/metrics", None).await;
    assert!(metrics.contains("frankly_reports_accepted_total 1"), "{metrics}");
    assert!(metrics.contains("frankly_queue_depth{queue=\"harassment\",status=\"queued\"} 1"), "{metrics}");
}

/// Issue 15, failure 5: one message could be re-reported without limit.
async fn replays_and_re_reports_are_answered_alike_and_stored_once(h: Harness) {
    let msgs = conversation(&h.keyring(), "conv-1", "mallory", "bob", 2, now_ms());
    let (id, envelope) = seal(msgs.clone(), Reason::Spam, &h.server_key());
    let (status, first) = h.post_report(envelope.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(h.post_report(envelope.clone()).await, (StatusCode::ACCEPTED, first), "the same answer again");
    // A fresh report (new id) of the same message by the same device.
    let (other_id, again) = seal(msgs, Reason::Harassment, &h.server_key());
    assert_ne!(id, other_id);
    assert_eq!(h.post_report(again).await.0, StatusCode::ACCEPTED);
    // A second instance on the same database (or the same one restarted)
    // dedups too: the database remembers, not the process.
    let second = frankly_server::app(h.another_instance().await);
    let token = h.token(&device("bob")).await;
    let req = Request::post("/v1/reports").header(header::AUTHORIZATION, format!("Bearer {token}"));
    let answer = tower::ServiceExt::oneshot(second, req.body(Body::from(envelope)).unwrap()).await.unwrap();
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    assert_eq!(queued(&h).await, 1, "one message, one reporter, one report");
}

/// Issue 15, failure 6: the server answered per message "verified" or the
/// failed check, to anyone. Now: a credential first, and one answer for
/// every report it opens.
async fn invalid_reports_are_refused_without_an_oracle(h: Harness) {
    let (status, body) = h.post_report(b"not an envelope".to_vec()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("not_an_envelope")));
    let other = frankly_report::ServerKeyPair::generate().unwrap();
    let msgs = conversation(&h.keyring(), "c", "mallory", "bob", 2, now_ms());
    let (_, envelope) = seal(msgs, Reason::Spam, &(1, other.public().clone()));
    let token = h.token(&device("bob")).await;
    let (status, body) = h.post_report_with(Some(&token), envelope).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("decrypt")));

    // Genuine openings and three kinds of forgery get byte-identical answers
    // (but for the report id); only the genuine one is queued.
    let genuine = conversation(&h.keyring(), "c", "mallory", "bob", 3, now_ms());
    let mut edited = conversation(&h.keyring(), "c", "mallory", "bob", 3, now_ms());
    edited[2].opening.as_mut().unwrap().body =
        frankly_franking::Body { text: "worse".into(), attachments: vec![] }.encode().unwrap();
    let mut foreign = frankly_franking::Keyring::new();
    let w = frankly_franking::KeyWindow { tag_from_ms: 0, tag_until_ms: u64::MAX - 1, verify_until_ms: u64::MAX };
    foreign.insert(frankly_franking::PlatformKey::new(77, [7; 32], w).unwrap());
    let unknown_key = conversation(&foreign, "c", "mallory", "bob", 1, now_ms());
    let mut moved = conversation(&h.keyring(), "c", "mallory", "bob", 1, now_ms());
    moved[0].delivery.timestamp_ms = T0 + 5;
    let mut answers = Vec::new();
    for msgs in [genuine, edited, unknown_key, moved] {
        let (id, envelope) = seal(msgs, Reason::Harassment, &h.server_key());
        let (status, body) = h.post_report(envelope).await;
        answers.push((status, body.to_string().replace(&id, "ID")));
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(queued(&h).await, 1);
    let (_, _, metrics) = h.get("/metrics", None).await;
    assert!(metrics.contains("frankly_reports_unverified_total 3"), "{metrics}");
}

/// An outsider holding leaked openings (bob's copies) learns nothing: no
/// credential, 401 before any decryption; their own credential, copies
/// addressed to another device, the same answer as anyone's.
async fn a_report_needs_a_device_credential_before_anything_is_opened(h: Harness) {
    let leaked = conversation(&h.keyring(), "c", "mallory", "bob", 2, now_ms());
    let (_, envelope) = seal(leaked.clone(), Reason::Harassment, &h.server_key());
    for token in [None, Some("00"), Some("not a token")] {
        let (status, body) = h.post_report_with(token, envelope.clone()).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    }
    let (_, _, metrics) = h.get("/metrics", None).await;
    assert!(!metrics.contains("frankly_reports_unverified_total 1"), "nothing was opened");
    // eve seals bob's leaked copies as her own report.
    let eve = Party::new("eve", "phone");
    let report = frankly_report::Report::new(&eve, Reason::Other, "", leaked, 1).unwrap();
    let (kid, key) = h.server_key();
    let envelope = frankly_report::seal_report(&report, kid, &key).unwrap();
    let token = h.token(&eve).await;
    let (status, body) = h.post_report_with(Some(&token), envelope).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::ACCEPTED, Some("received")));
    assert_eq!(queued(&h).await, 0);
}

async fn context_failures_are_kept_with_their_verdict(h: Harness) {
    let mut msgs = conversation(&h.keyring(), "c", "mallory", "bob", 6, now_ms());
    // A context message edited by the reporter: the report is accepted (the
    // reported message verifies) but that message is marked.
    msgs[2].opening.as_mut().unwrap().body =
        frankly_franking::Body { text: "edited".into(), attachments: vec![] }.encode().unwrap();
    // And a dropped context message shows as an omission.
    msgs.remove(3);
    let (_, envelope) = seal(msgs, Reason::Harassment, &h.server_key());
    let (status, body) = h.post_report(envelope).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let stored = h.stored().await;
    let content = &stored[0].3;
    assert!(
        matches!(&content.verdicts[2], frankly_server::StoredVerdict::Rejected(why) if why.contains("commitment does not match"))
    );
    assert_eq!(content.verdicts[4], frankly_server::StoredVerdict::Verified);
    let gaps = &content.order.as_ref().unwrap().gaps;
    assert_eq!(gaps, &[frankly_franking::Gap { after: 2, before: 5, missing: 2 }]);
    // The review page shows both sides in order, the reporter's own
    // messages marked, the failed one, and where the omission is.
    let m = h.sign_in("mo", Role::Moderator).await;
    let url = claim(&h, &m, "harassment").await;
    let (status, _, page) = h.get(&url, Some(&m.cookie)).await;
    assert_eq!(status, StatusCode::OK);
    let at = |needle: &str| page.find(needle).unwrap_or_else(|| panic!("{needle:?} not on the page:\n{page}"));
    assert!(at("sequence 1") < at("sequence 2") && at("sequence 2") < at("2 message(s) omitted here"));
    assert!(at("2 message(s) omitted here") < at("sequence 5") && at("sequence 5") < at("sequence 6"));
    assert!(page.contains("<strong>bob/phone</strong> <span class=\"tag\">the reporter</span>"), "{page}");
    assert!(page.contains("not verified: commitment does not match"), "{page}");
    assert!(page.contains("sequence 1 to 6; 2 message(s) omitted between, in 1 place(s)"), "{page}");
}

/// Issue 15, failure 5: each report raised the sender's other reports; now
/// only a new reporter does.
async fn child_safety_reports_go_to_their_own_queue_and_repeat_senders_rise(h: Harness) {
    let (_, envelope) = report(&h, "bob", Reason::ChildSafety, 0).await;
    assert_eq!(h.post_report(envelope).await.0, StatusCode::ACCEPTED);
    let stored = h.stored().await;
    assert_eq!((stored[0].1.as_str(), stored[0].2), ("child-safety", 1000));
    let mut priorities = Vec::new();
    for reporter in ["carol", "dave", "erin"] {
        let (_, envelope) = report(&h, reporter, Reason::Spam, 0).await;
        h.post_report(envelope).await;
        priorities.push(h.stored().await.last().unwrap().2);
    }
    // bob reports three more of mallory's messages: no further rise.
    for seq in 2..5u64 {
        let mut msgs = conversation(&h.keyring(), &format!("conv-{seq}"), "mallory", "bob", 1, now_ms());
        msgs[0].delivery.sequence = seq;
        let m = &msgs[0];
        let fresh = common::franked::franked(
            &h.keyring(),
            &m.delivery.conversation_id,
            &device("mallory"),
            &device("bob"),
            b"spam".to_vec(),
            seq,
            now_ms(),
        );
        let (_, envelope) = seal(vec![fresh], Reason::Spam, &h.server_key());
        h.post_report(envelope).await;
    }
    // mallory was reported before (child safety), so each new reporter's
    // spam report rises (and the queued ones rise with it); bob's further
    // reports count once: nothing rises past 250.
    assert_eq!(priorities, [150, 200, 250]);
    let after: Vec<i64> = h.stored().await.iter().skip(1).map(|r| r.2).collect();
    assert_eq!(after.len(), 6);
    assert!(after.iter().all(|p| *p == 250), "{after:?}");
}

async fn claims_never_double_assign_and_leases_expire(h: Harness) {
    let (_, envelope) = report(&h, "bob", Reason::Harassment, 0).await;
    assert_eq!(h.post_report(envelope).await.0, StatusCode::ACCEPTED);
    let a = h.sign_in("ann", Role::Moderator).await;
    let b = h.sign_in("ben", Role::Moderator).await;
    let (status, headers, _) = h.post_form("/queues/harassment/claim", Some(&a.cookie), &[("csrf", &a.csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let report_url = location(&headers);
    assert!(report_url.starts_with("/reports/"), "{report_url}");
    let (_, headers, _) = h.post_form("/queues/harassment/claim", Some(&b.cookie), &[("csrf", &b.csrf)]).await;
    assert_eq!(location(&headers), "/?notice=empty", "ben must not get ann's report");
    // Ann claiming again gets the report she holds.
    let (_, headers, _) = h.post_form("/queues/harassment/claim", Some(&a.cookie), &[("csrf", &a.csrf)]).await;
    assert_eq!(location(&headers), report_url);

    // A lease that expires returns the job: a server with 1-second leases.
    let short = Harness::start(engine_of(&h), |c| c.lease_seconds = 1).await.unwrap();
    let (_, envelope) = report(&short, "bob", Reason::Harassment, 0).await;
    assert_eq!(short.post_report(envelope).await.0, StatusCode::ACCEPTED);
    let a = short.sign_in("ann", Role::Moderator).await;
    let b = short.sign_in("ben", Role::Moderator).await;
    let (_, first, _) = short.post_form("/queues/harassment/claim", Some(&a.cookie), &[("csrf", &a.csrf)]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, second, _) = short.post_form("/queues/harassment/claim", Some(&b.cookie), &[("csrf", &b.csrf)]).await;
    assert_eq!(location(&first), location(&second), "the expired lease returned the report to ben");
    // Ann's lease is gone: her decision is refused.
    let id = location(&first).rsplit('/').next().unwrap().to_string();
    let (status, _, page) =
        short.post_form(&format!("/reports/{id}/decide"), Some(&a.cookie), &decision(&a.csrf, "dismiss")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
}

fn engine_of(h: &Harness) -> Engine {
    if h.state.db().backend() == frankly_server::Backend::Postgres { Engine::Postgres } else { Engine::Sqlite }
}

fn decision<'a>(csrf: &'a str, action: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("action", action),
        ("facts", "Repeated insults in messages 3 to 5, verified by franking."),
        ("ground", "terms"),
        ("ground_reference", "Community guidelines 4.2 (harassment)"),
        ("automated_detection", "on"),
    ]
}

async fn claim(h: &Harness, m: &common::Moderator, queue: &str) -> String {
    let (_, headers, _) = h.post_form(&format!("/queues/{queue}/claim"), Some(&m.cookie), &[("csrf", &m.csrf)]).await;
    location(&headers)
}

async fn decisions_need_a_lease_and_a_statement_of_reasons(h: Harness) {
    let (_, envelope) = report(&h, "bob", Reason::Harassment, 2).await;
    h.post_report(envelope).await;
    let a = h.sign_in("ann", Role::Moderator).await;
    let b = h.sign_in("ben", Role::Moderator).await;
    let url = claim(&h, &a, "harassment").await;
    // Ben does not hold it.
    let (status, _, _) = h.post_form(&format!("{url}/decide"), Some(&b.cookie), &decision(&b.csrf, "remove")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // A removal without facts or ground is refused.
    let (status, _, page) = h
        .post_form(
            &format!("{url}/decide"),
            Some(&a.cookie),
            &[("csrf", &a.csrf), ("action", "remove"), ("ground", "terms")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("facts and circumstances"), "{page}");
    // Only child-safety specialists refer to an authority.
    let (status, _, _) =
        h.post_form(&format!("{url}/decide"), Some(&a.cookie), &decision(&a.csrf, "report-authority")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A full decision is recorded with its DSA fields.
    let (status, headers, _) =
        h.post_form(&format!("{url}/decide"), Some(&a.cookie), &decision(&a.csrf, "remove")).await;
    assert_eq!((status, location(&headers).as_str()), (StatusCode::SEE_OTHER, "/?notice=decided"));
    let (_, _, page) = h.get(&url, Some(&a.cookie)).await;
    assert!(page.contains("ann decided remove (removal of content); ground: terms Community guidelines 4.2"), "{page}");
    let (_, _, metrics) = h.get("/metrics", None).await;
    assert!(metrics.contains("frankly_decisions_total{action=\"remove\"} 1"), "{metrics}");
    assert!(metrics.contains("frankly_decision_latency_seconds_count 1"), "{metrics}");
}

async fn appeals_return_to_review_by_another_moderator(h: Harness) {
    let (report_id, envelope) = report(&h, "bob", Reason::Harassment, 0).await;
    h.post_report(envelope).await;
    let a = h.sign_in("ann", Role::Moderator).await;
    let b = h.sign_in("ben", Role::Moderator).await;
    let url = claim(&h, &a, "harassment").await;
    h.post_form(&format!("{url}/decide"), Some(&a.cookie), &decision(&a.csrf, "suspend")).await;
    let appeal = serde_json::json!({"report_id": report_id, "appellant": "mallory", "statement": "It was a joke between friends."});
    let (status, _, body) = h
        .request(
            Request::post("/v1/appeals")
                .header(header::AUTHORIZATION, format!("Bearer {}", h.platform_token()))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(appeal.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    assert_eq!(claim(&h, &a, "appeals").await, "/?notice=empty", "ann decided it: she cannot judge the appeal");
    let url_b = claim(&h, &b, "appeals").await;
    assert_eq!(url_b, url);
    let (status, _, _) = h.post_form(&format!("{url}/decide"), Some(&b.cookie), &decision(&b.csrf, "remove")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "appeals are decided with uphold or reverse");
    let (status, _, _) = h.post_form(&format!("{url}/decide"), Some(&b.cookie), &decision(&b.csrf, "reverse")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = h.get(&url, Some(&b.cookie)).await;
    assert!(page.contains("mallory appealed: It was a joke between friends."), "{page}");
    assert!(page.contains("ben decided reverse"), "{page}");
}

async fn authorization_is_checked_on_every_route(h: Harness) {
    let mut msgs = conversation(&h.keyring(), "c", "mallory", "bob", 2, now_ms());
    with_image(&h.keyring(), &mut msgs, &common::photo(), now_ms());
    let (_, envelope) = seal(msgs, Reason::ChildSafety, &h.server_key());
    assert_eq!(h.post_report(envelope).await.0, StatusCode::ACCEPTED);
    let (_, envelope) = report(&h, "bob", Reason::Harassment, 0).await;
    h.post_report(envelope).await;
    let cs = h.sign_in("cass", Role::ChildSafety).await;
    let m = h.sign_in("mo", Role::Moderator).await;
    let admin = h.sign_in("ada", Role::Admin).await;
    let cs_url = claim(&h, &cs, "child-safety").await;
    assert!(cs_url.starts_with("/reports/"));
    let media = format!("{cs_url}/media/1/0");
    let (status, headers, _) = h.get(&media, Some(&cs.cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "image/jpeg");
    for who in [&m, &admin] {
        assert_eq!(h.get(&cs_url, Some(&who.cookie)).await.0, StatusCode::FORBIDDEN, "report page");
        assert_eq!(h.get(&media, Some(&who.cookie)).await.0, StatusCode::FORBIDDEN, "media");
        let (status, _, _) = h.post_form("/queues/child-safety/claim", Some(&who.cookie), &[("csrf", &who.csrf)]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "claim");
        let (status, _, _) =
            h.post_form(&format!("{cs_url}/decide"), Some(&who.cookie), &decision(&who.csrf, "dismiss")).await;
        assert_ne!(status, StatusCode::SEE_OTHER, "decide");
        let (_, _, dashboard) = h.get("/", Some(&who.cookie)).await;
        assert!(!dashboard.contains("/queues/child-safety/claim"), "the queue is not even listed");
    }
    for page in ["/admin/users", "/admin/audit"] {
        assert_eq!(h.get(page, Some(&m.cookie)).await.0, StatusCode::FORBIDDEN, "{page}");
        assert_eq!(h.get(page, Some(&cs.cookie)).await.0, StatusCode::FORBIDDEN, "{page}");
        assert_eq!(h.get(page, Some(&admin.cookie)).await.0, StatusCode::OK, "{page}");
    }
    let (status, _, _) = h
        .post_form(
            "/admin/users",
            Some(&m.cookie),
            &[("csrf", &m.csrf), ("username", "eve"), ("password", "0123456789abc"), ("role", "admin")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        h.post_form("/admin/users/1/disable", Some(&m.cookie), &[("csrf", &m.csrf)]).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(h.get("/admin/users", Some(&m.cookie)).await.0, StatusCode::FORBIDDEN);
    // Escalations from general queues go to admins only.
    let url = claim(&h, &m, "harassment").await;
    h.post_form(&format!("{url}/decide"), Some(&m.cookie), &decision(&m.csrf, "escalate")).await;
    assert_eq!(h.get(&url, Some(&m.cookie)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(claim(&h, &admin, "escalated").await, url);
    // Without a session every page sends to sign-in.
    for page in ["/", &cs_url, &media, "/admin/users", "/admin/audit"] {
        let (status, headers, _) = h.get(page, None).await;
        assert_eq!((status, location(&headers).as_str()), (StatusCode::SEE_OTHER, "/login"), "{page}");
    }
    let (status, _, _) = h.get("/", Some("frankly_session=0000")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

async fn every_form_needs_its_csrf_token(h: Harness) {
    let (_, envelope) = report(&h, "bob", Reason::Harassment, 0).await;
    h.post_report(envelope).await;
    let admin = h.sign_in("ada", Role::Admin).await;
    let url = claim(&h, &admin, "harassment").await;
    let forms = [
        "/logout".to_string(),
        "/prefs".to_string(),
        "/queues/harassment/claim".to_string(),
        format!("{url}/decide"),
        format!("{url}/release"),
        "/admin/users".to_string(),
        "/admin/users/1/disable".to_string(),
    ];
    for form in &forms {
        for token in ["", "0000"] {
            let mut fields = decision(token, "dismiss");
            fields.extend([("username", "eve"), ("password", "a long enough password"), ("role", "admin")]);
            let (status, _, _) = h.post_form(form, Some(&admin.cookie), &fields).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{form} with csrf {token:?}");
        }
    }
    // The sign-in form needs its double-submit cookie.
    let (status, _, _) =
        h.post_form("/login", None, &[("csrf", "x"), ("username", "ada"), ("password", "a long test password")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Cookies are HttpOnly and SameSite=Strict.
    let (_, headers, _) = h.get("/login", None).await;
    let set = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && !set.contains("Secure"), "{set}");
    let secure = Harness::start(engine_of(&h), |c| c.secure_cookies = true).await.unwrap();
    let (_, headers, _) = secure.get("/login", None).await;
    assert!(headers[header::SET_COOKIE].to_str().unwrap().contains("; Secure"));
}

async fn audit_log_is_append_only_and_verifies(h: Harness) {
    let (_, envelope) = report(&h, "bob", Reason::Harassment, 0).await;
    h.post_report(envelope).await;
    let a = h.sign_in("ann", Role::Moderator).await;
    let url = claim(&h, &a, "harassment").await;
    h.get(&url, Some(&a.cookie)).await;
    h.post_form(&format!("{url}/decide"), Some(&a.cookie), &decision(&a.csrf, "warn")).await;
    let entries = frankly_server::audit::recent(h.state.db(), 100).await.unwrap();
    let actions: Vec<&str> = entries.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["create-user", "login", "claim", "view", "decide"]);
    let check = frankly_server::audit::verify(h.state.db()).await.unwrap();
    assert_eq!(check.entries, 5);

    let pool = sqlx::AnyPool::connect(&h.state.config().database_url()).await.unwrap();
    let edit = sqlx::query("UPDATE audit SET actor = 'someone else' WHERE seq = 3").execute(&pool).await;
    assert!(edit.unwrap_err().to_string().contains("append-only"));
    assert!(sqlx::query("DELETE FROM audit WHERE seq = 3").execute(&pool).await.is_err());
    // Going around the triggers is found by the chain.
    match h.state.db().backend() {
        frankly_server::Backend::Sqlite => {
            sqlx::query("DROP TRIGGER audit_no_update").execute(&pool).await.unwrap();
        }
        frankly_server::Backend::Postgres => {
            sqlx::query("ALTER TABLE audit DISABLE TRIGGER audit_no_change").execute(&pool).await.unwrap();
        }
    }
    sqlx::query("UPDATE audit SET actor = 'someone else' WHERE seq = 3").execute(&pool).await.unwrap();
    let err = frankly_server::audit::verify(h.state.db()).await.unwrap_err();
    assert_eq!(err.to_string(), "audit log does not verify: entry 3 was altered: its hash does not match");
}

async fn post_json(h: &Harness, path: &str, auth: &str, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
    let (status, _, answer) = h
        .request(
            Request::post(path)
                .header(header::AUTHORIZATION, format!("Bearer {auth}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await;
    (status, serde_json::from_slice(&answer).unwrap_or(serde_json::Value::Null))
}

async fn get_json(h: &Harness, path: &str, auth: &str) -> (StatusCode, serde_json::Value) {
    let (status, _, answer) = h
        .request(
            Request::get(path).header(header::AUTHORIZATION, format!("Bearer {auth}")).body(Body::empty()).unwrap(),
        )
        .await;
    (status, serde_json::from_slice(&answer).unwrap_or(serde_json::Value::Null))
}

/// Issue 15, failure 5: the relay tagged any conversation and recipients
/// the sender named. Now it tags only for members, one copy per member
/// device, each tag bound to its recipient, and numbers messages.
async fn relay_tags_each_copy_for_members_only(h: Harness) {
    let platform = h.platform_token();
    let mut devices = std::collections::HashMap::new();
    for (user, dev) in [("alice", "phone"), ("bob", "phone"), ("bob", "laptop"), ("mallory", "phone")] {
        let (status, v) =
            post_json(&h, "/v1/devices", &platform, serde_json::json!({"user_id": user, "device_id": dev})).await;
        assert_eq!(status, StatusCode::OK);
        devices.insert(
            format!("{user}/{dev}"),
            (v["token"].as_str().unwrap().to_owned(), v["device_key"].as_str().unwrap().to_owned()),
        );
    }
    let (status, _) =
        post_json(&h, "/v1/devices", &platform, serde_json::json!({"user_id": "bob", "device_id": "phone"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "a device registers once");
    let (status, _) = post_json(
        &h,
        "/v1/conversations",
        &platform,
        serde_json::json!({"conversation_id": "c1", "members": ["alice", "bob"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let alice = &devices["alice/phone"].0;
    let (status, listed) = get_json(&h, "/v1/conversations/devices?conversation_id=c1", alice).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    let commitment = Commitment([9; 32]);
    let copy = |user: &str, dev: &str| serde_json::json!({"recipient": {"user_id": user, "device_id": dev}, "ciphertext": "aGVsbG8="});
    let send = |copies: Vec<serde_json::Value>, conv: &str| {
        serde_json::json!({
            "conversation_id": conv, "copies": copies, "attachments": ["AAEC"], "commitment": hex::encode(commitment.0),
        })
    };
    // A missing copy (bob's laptop), a non-member's copy, a stranger sender, an unknown conversation.
    let (status, body) = post_json(&h, "/v1/messages", alice, send(vec![copy("bob", "phone")], "c1")).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("copies")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("bob/laptop"), "{body}");
    let (status, _) = post_json(
        &h,
        "/v1/messages",
        alice,
        send(vec![copy("bob", "phone"), copy("bob", "laptop"), copy("mallory", "phone")], "c1"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) =
        post_json(&h, "/v1/messages", &devices["mallory/phone"].0, send(vec![copy("alice", "phone")], "c1")).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("not_a_member")));
    let (status, _) = post_json(&h, "/v1/messages", alice, send(vec![], "nowhere")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Issue 16, failure 2: a NUL in an id is a clear 400, not a 500.
    let (status, body) = post_json(&h, "/v1/messages", alice, send(vec![], "c1\u{0}")).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid")), "{body}");
    // The honest send: numbered 1, then 2.
    for expected in [1u64, 2] {
        let (status, own) =
            post_json(&h, "/v1/messages", alice, send(vec![copy("bob", "phone"), copy("bob", "laptop")], "c1")).await;
        assert_eq!(status, StatusCode::OK, "{own}");
        let d: frankly_franking::DeliveryContext = serde_json::from_value(own["delivery"].clone()).unwrap();
        assert_eq!(
            (d.sequence, &d.sender, &d.recipient),
            (expected, &Party::new("alice", "phone"), &Party::new("alice", "phone"))
        );
    }
    let master_key = |name: &str| DeviceKey::from_bytes(hex::decode(&devices[name].1).unwrap().try_into().unwrap());
    for name in ["bob/phone", "bob/laptop"] {
        let (status, delivered) = get_json(&h, "/v1/messages?after=0", &devices[name].0).await;
        assert_eq!(status, StatusCode::OK);
        let delivered = delivered.as_array().unwrap();
        assert_eq!(delivered.len(), 2, "{name}");
        for (i, copy) in delivered.iter().enumerate() {
            let delivery: frankly_franking::DeliveryContext = serde_json::from_value(copy["delivery"].clone()).unwrap();
            assert_eq!(delivery.recipient.to_string(), name);
            assert_eq!(delivery.sequence, i as u64 + 1);
            let tag: frankly_franking::PlatformTag = serde_json::from_value(copy["franked"]["tag"].clone()).unwrap();
            verify_tag(&h.keyring(), &tag, &commitment, &delivery, now_ms()).unwrap();
            let mac: [u8; 32] =
                hex::decode(copy["franked"]["delivery_mac"].as_str().unwrap()).unwrap().try_into().unwrap();
            verify_delivery(&master_key(name), &tag, &commitment, &delivery, &mac).unwrap();
            // A relay that altered the sender is caught by the MAC; the other device's key does not verify it.
            let mut altered = delivery.clone();
            altered.sender = Party::new("carol", "phone");
            assert!(verify_delivery(&master_key(name), &tag, &commitment, &altered, &mac).is_err());
            let other = if name == "bob/phone" { "bob/laptop" } else { "bob/phone" };
            assert!(verify_delivery(&master_key(other), &tag, &commitment, &delivery, &mac).is_err());
        }
    }
    // A late joiner sees from the next message on.
    let (status, _) = post_json(
        &h,
        "/v1/conversations/members",
        &platform,
        serde_json::json!({"conversation_id": "c1", "user_id": "mallory"}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let all = vec![copy("bob", "phone"), copy("bob", "laptop"), copy("mallory", "phone")];
    let (status, own) = post_json(&h, "/v1/messages", alice, send(all, "c1")).await;
    assert_eq!((status, own["delivery"]["sequence"].as_u64()), (StatusCode::OK, Some(3)));
    let (_, got) = get_json(&h, "/v1/messages?after=0", &devices["mallory/phone"].0).await;
    assert_eq!(got.as_array().unwrap().len(), 1);
    // alice cannot read bob's mailbox with her token; nobody can without one.
    let (_, mine) = get_json(&h, "/v1/messages?after=0", alice).await;
    assert_eq!(mine, serde_json::json!([]));
    let (status, _, _) = h.request(Request::get("/v1/messages").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Acknowledged messages are deleted, per device.
    let bob_phone = &devices["bob/phone"].0;
    let (status, _) = post_json(&h, "/v1/messages/ack", bob_phone, serde_json::json!({"up_to": i64::MAX})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(get_json(&h, "/v1/messages", bob_phone).await.1, serde_json::json!([]));
    assert_eq!(get_json(&h, "/v1/messages", &devices["bob/laptop"].0).await.1.as_array().unwrap().len(), 3);
}

async fn tagging_needs_the_platform_token(h: Harness) {
    let req = serde_json::json!({
        "commitment": hex::encode([1u8; 32]),
        "delivery": {"conversation_id": "c", "sequence": 1, "sender": {"user_id": "alice", "device_id": "p"},
                     "recipient": {"user_id": "bob", "device_id": "p"}, "timestamp_ms": now_ms(), "server_message_id": "s1"},
    });
    let post = |auth: Option<String>| {
        let mut r = Request::post("/v1/frank").header(header::CONTENT_TYPE, "application/json");
        if let Some(a) = auth {
            r = r.header(header::AUTHORIZATION, a);
        }
        r.body(Body::from(req.to_string())).unwrap()
    };
    assert_eq!(h.request(post(None)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(h.request(post(Some("Bearer 00".into()))).await.0, StatusCode::UNAUTHORIZED);
    let (status, _, body) = h.request(post(Some(format!("Bearer {}", h.platform_token())))).await;
    assert_eq!(status, StatusCode::OK);
    let out: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let tag: frankly_franking::PlatformTag = serde_json::from_value(out["tag"].clone()).unwrap();
    let delivery: frankly_franking::DeliveryContext = serde_json::from_value(req["delivery"].clone()).unwrap();
    verify_tag(&h.keyring(), &tag, &Commitment([1; 32]), &delivery, now_ms()).unwrap();
}

async fn health_and_metrics(h: Harness) {
    let (status, _, body) = h.get("/healthz", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));
    let (_, envelope) = report(&h, "bob", Reason::Spam, 0).await;
    h.post_report(envelope.clone()).await;
    h.post_report(envelope).await;
    h.post_report(b"junk".to_vec()).await;
    let (_, headers, metrics) = h.get("/metrics", None).await;
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/openmetrics-text"));
    for line in [
        "frankly_reports_received_total 3",
        "frankly_reports_accepted_total 2",
        "frankly_reports_refused_total{reason=\"not_an_envelope\"} 1",
        "frankly_queue_depth{queue=\"spam\",status=\"queued\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reporters_are_rate_limited() {
    let h = Harness::start(Engine::Sqlite, |c| c.reports_per_reporter_per_minute = 2).await.unwrap();
    for expected in [StatusCode::ACCEPTED, StatusCode::ACCEPTED, StatusCode::TOO_MANY_REQUESTS] {
        let (_, envelope) = report(&h, "bob", Reason::Spam, 0).await;
        let (status, body) = h.post_report(envelope).await;
        assert_eq!(status, expected, "{body}");
    }
    let (_, envelope) = report(&h, "carol", Reason::Spam, 0).await;
    assert_eq!(h.post_report(envelope).await.0, StatusCode::ACCEPTED, "other reporters are not affected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_on_port_zero() {
    let h = Harness::start(Engine::Sqlite, |_| {}).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(frankly_server::serve(h.state.clone(), listener, async {
        let _ = stopped.await;
    }));
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok\n"), "{response}");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// Several instances claiming from one PostgreSQL database at once never
/// hand the same report to two moderators (`FOR UPDATE SKIP LOCKED`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_on_postgres_never_double_assign() {
    let Some(h) = Harness::start(Engine::Postgres, |_| {}).await else { return };
    const REPORTS: usize = 120;
    for i in 0..REPORTS {
        let (_, envelope) = report(&h, &format!("reporter{i}"), Reason::Harassment, 0).await;
        assert_eq!(h.post_report(envelope).await.0, StatusCode::ACCEPTED);
    }
    let instances = [h.state.clone(), h.another_instance().await, h.another_instance().await];
    let mut moderators = Vec::new();
    for i in 0..12 {
        let name = format!("mod{i}");
        let id = frankly_server::create_user(h.state.db(), "test", &name, "a long test password", Role::Moderator)
            .await
            .unwrap();
        moderators.push((id, name));
    }
    let mut tasks = Vec::new();
    for (i, (id, name)) in moderators.into_iter().enumerate() {
        let state = instances[i % instances.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                // Each claim, then decide, as a moderator working through the queue.
                let user =
                    frankly_server::User { id, username: name.clone(), role: Role::Moderator, reveal_media: false };
                let Some(report) =
                    frankly_server::queue::claim(state.db(), &user, Queue::Harassment, 60_000).await.unwrap()
                else {
                    break got;
                };
                let input = frankly_review::DecisionInput::dismiss();
                frankly_server::queue::decide(state.db(), &user, report, &input, state.config().strike_days)
                    .await
                    .unwrap();
                got.push(report);
            }
        }));
    }
    let mut all: Vec<i64> = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let claimed = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), claimed, "a report was assigned twice");
    assert_eq!(claimed, REPORTS);
}
