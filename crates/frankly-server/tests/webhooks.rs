//! Signed webhooks: a receiver that checks every signature against the
//! server's published key and counts duplicates; retries with backoff
//! (duplicates only under one event id), subscriptions, every event kind,
//! dead letters listed and retried from the admin UI.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode, header};
use base64::Engine;
use common::franked::{conversation, seal};
use common::{Engine as Db, Harness};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use frankly_report::Reason;
use frankly_review::Role;
use frankly_server::webhooks::{self, Event};
use frankly_server::{Scope, WebhookEndpoint};
use serde_json::{Value, json};

/// A request's headers and body as sent.
type Raw = (Vec<(String, String)>, Vec<u8>);

/// What a receiver got: per request, the event id, type and whether the
/// signature verified.
#[derive(Default)]
struct Received {
    requests: Mutex<Vec<(String, String, bool)>>,
    /// Requests to refuse (500) before accepting.
    fail_first: AtomicUsize,
    /// Every request's headers and body as sent.
    raw: Mutex<Vec<Raw>>,
}

async fn receiver(key: VerifyingKey) -> (String, Arc<Received>) {
    let got = Arc::new(Received::default());
    let state = Arc::clone(&got);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let got = Arc::clone(&state);
            async move {
                let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let id = h(webhooks::ID_HEADER);
                let timestamp: i64 = h(webhooks::TIMESTAMP_HEADER).parse().unwrap_or(0);
                let signature = h(webhooks::SIGNATURE_HEADER);
                // The stated procedure: base64 after "ed25519=", over the domain,
                // id, timestamp and body, under the key the key id names.
                let verified = h(webhooks::KEY_ID_HEADER) == webhooks::key_id(&key)
                    && signature
                        .strip_prefix("ed25519=")
                        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                        .and_then(|b| Signature::from_slice(&b).ok())
                        .is_some_and(|s| key.verify(&webhooks::signed_message(&id, timestamp, &body), &s).is_ok());
                let pairs = headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
                    .collect();
                got.raw.lock().unwrap().push((pairs, body.to_vec()));
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                assert_eq!(v["id"], id.as_str(), "the body names the event id of its header");
                got.requests.lock().unwrap().push((id, v["type"].as_str().unwrap_or_default().to_string(), verified));
                if got.fail_first.load(Ordering::SeqCst) > 0 {
                    got.fail_first.fetch_sub(1, Ordering::SeqCst);
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

async fn published_key(h: &Harness) -> VerifyingKey {
    let (status, _, body) = h.get("/v1/webhook-keys", None).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_str(&body).unwrap();
    let hex_key = v["keys"][0]["public_key"].as_str().unwrap();
    let key = VerifyingKey::from_bytes(&hex::decode(hex_key).unwrap().try_into().unwrap()).unwrap();
    assert_eq!(v["keys"][0]["key_id"], webhooks::key_id(&key).as_str());
    let file =
        std::fs::read_to_string(h.state.config().data_dir.join(frankly_server::WEBHOOK_PUBLIC_KEY_FILE)).unwrap();
    assert_eq!(file.trim(), hex_key, "the public key file beside the secret");
    key
}

async fn file(h: &Harness, conv: &str) -> String {
    let now = u64::try_from(frankly_server::now_ms()).unwrap();
    let (id, envelope) =
        seal(conversation(&h.keyring(), conv, "mallory", "bob", 3, now), Reason::Spam, &h.server_key());
    assert_eq!(h.post_report(envelope).await.0, StatusCode::ACCEPTED);
    id
}

/// Rounds until nothing is due or `rounds` ran (backoff is 1 to 4 ms here).
async fn deliver(h: &Harness, rounds: usize) -> webhooks::Round {
    let mut total = webhooks::Round::default();
    for _ in 0..rounds {
        let r = h.state.deliver_webhooks().await.unwrap();
        total.fanned_out += r.fanned_out;
        total.delivered += r.delivered;
        total.retried += r.retried;
        total.dead += r.dead;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    total
}

async fn api(h: &Harness, key: &str, path: &str, body: Value) -> Value {
    let req = Request::post(path)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, _, bytes) = h.request(req).await;
    assert!(status.is_success(), "{path}: {status} {}", String::from_utf8_lossy(&bytes));
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_signed_retried_until_accepted_and_deduplicable() {
    // Two endpoints: one for everything (failing its first two requests),
    // one subscribed to decisions only; and one that is always down.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The key exists before the receivers start, so they can check signatures.
    let key = frankly_server::Secrets::load_or_create(&data).unwrap();
    drop(key);
    let public = std::fs::read_to_string(data.join(frankly_server::WEBHOOK_PUBLIC_KEY_FILE)).unwrap();
    let public = VerifyingKey::from_bytes(&hex::decode(public.trim()).unwrap().try_into().unwrap()).unwrap();
    let (all_url, all) = receiver(public).await;
    let (decisions_url, decisions) = receiver(public).await;
    let (down_url, down) = receiver(public).await;
    all.fail_first.store(2, Ordering::SeqCst);
    down.fail_first.store(usize::MAX, Ordering::SeqCst);
    let h = Harness::start(Db::Sqlite, |c| {
        c.data_dir = data.clone();
        c.webhooks = vec![
            WebhookEndpoint { url: all_url.clone(), events: vec![], format: Default::default() },
            WebhookEndpoint {
                url: decisions_url.clone(),
                events: vec!["report.decided".into(), "appeal.decided".into()],
                format: Default::default(),
            },
            WebhookEndpoint {
                url: down_url.clone(),
                events: vec!["report.created".into()],
                format: Default::default(),
            },
        ];
        c.webhook_backoff_ms = 1;
        c.webhook_max_backoff_ms = 4;
        c.webhook_max_attempts = 3;
    })
    .await
    .unwrap();
    assert_eq!(published_key(&h).await, public);

    // report.created, then report.decided, appeal.filed, appeal.decided.
    let report_id = file(&h, "c1").await;
    h.sign_in("mo", Role::Moderator).await;
    h.sign_in("ann", Role::Moderator).await;
    let mo = frankly_server::create_api_key(h.state.db(), "t", "mo", &[Scope::Review], Some("mo")).await.unwrap().1;
    let ann = frankly_server::create_api_key(h.state.db(), "t", "ann", &[Scope::Review], Some("ann")).await.unwrap().1;
    let claimed = api(&h, &mo, "/api/v1/queues/spam/claim", json!(null)).await;
    let id = claimed["report"].as_i64().unwrap();
    api(&h, &mo, &format!("/api/v1/reports/{id}/decision"), json!({"action": "dismiss", "ground": "terms"})).await;
    assert_eq!(h.appeal(&report_id, "mallory", "please").await, StatusCode::CREATED);
    let claimed = api(&h, &ann, "/api/v1/queues/appeals/claim", json!(null)).await;
    assert_eq!(claimed["report"].as_i64(), Some(id));
    api(&h, &ann, &format!("/api/v1/reports/{id}/decision"), json!({"action": "uphold", "ground": "terms"})).await;

    let round = deliver(&h, 12).await;
    assert_eq!(round.fanned_out, 4);
    // all: 4 accepted after 2 refusals; decisions: 2; down: 1, dead after 3 attempts.
    assert_eq!((round.delivered, round.dead), (6, 1), "{round:?}");
    let requests = all.requests.lock().unwrap().clone();
    assert!(requests.iter().all(|(_, _, verified)| *verified), "every signature verifies: {requests:?}");
    let mut kinds: Vec<&str> = requests.iter().map(|(_, k, _)| k.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds, ["appeal.decided", "appeal.filed", "report.created", "report.decided"]);
    assert_eq!(requests.len(), 6, "four events and the two refused requests again: {requests:?}");
    let mut per_id: std::collections::BTreeMap<&str, (usize, &str)> = Default::default();
    for (id, kind, _) in &requests {
        let e = per_id.entry(id.as_str()).or_insert((0, kind.as_str()));
        e.0 += 1;
        assert_eq!(e.1, kind, "one event id, one event");
    }
    assert_eq!(per_id.len(), 4, "duplicates only under one event id");
    assert_eq!(per_id.values().filter(|(n, _)| *n == 2).count(), 2, "{per_id:?}");
    let mut decided: Vec<String> = decisions.requests.lock().unwrap().iter().map(|(_, k, _)| k.clone()).collect();
    decided.sort();
    assert_eq!(decided, ["appeal.decided", "report.decided"], "subscribed to decisions only");
    assert_eq!(down.requests.lock().unwrap().len(), 3, "webhook_max_attempts");
    // Nothing is due any more: no request is sent again.
    assert_eq!(deliver(&h, 3).await, webhooks::Round::default());
    assert_eq!(all.requests.lock().unwrap().len(), 6);

    // The dead letter is listed for admins, and retried from there once the endpoint is back.
    let admin = h.sign_in("ada", Role::Admin).await;
    let (status, _, page) = h.get("/admin/webhooks", Some(&admin.cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(&down_url) && page.contains("report.created") && page.contains("the endpoint answered 500"),
        "{page}"
    );
    let moderator = h.sign_in_existing("mo").await;
    assert_eq!(h.get("/admin/webhooks", Some(&moderator.cookie)).await.0, StatusCode::FORBIDDEN);
    let delivery = page.split("/admin/webhooks/").nth(1).unwrap().split('/').next().unwrap().to_string();
    down.fail_first.store(0, Ordering::SeqCst);
    let (status, _, _) =
        h.post_form(&format!("/admin/webhooks/{delivery}/retry"), Some(&admin.cookie), &[("csrf", &admin.csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(deliver(&h, 2).await.delivered, 1);
    assert_eq!(down.requests.lock().unwrap().len(), 4);
    let (_, _, page) = h.get("/admin/webhooks", Some(&admin.cookie)).await;
    assert!(page.contains("None: every delivery"), "{page}");
    // The Python verification example of docs/server.md, run as written on a
    // real delivery: it returns the event id; a changed body or a changed
    // header raises.
    let (headers, body) = all.raw.lock().unwrap()[0].clone();
    let public_hex = hex::encode(public.as_bytes());
    python_verifies(&public_hex, &headers, &body, true);
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    python_verifies(&public_hex, &headers, &tampered, false);
    let mut other = headers.clone();
    other.iter_mut().find(|(k, _)| k == webhooks::ID_HEADER).unwrap().1.push('0');
    python_verifies(&public_hex, &other, &body, false);
}

/// Runs the Python `verify` of docs/server.md on a delivery.
fn python_verifies(public_hex: &str, headers: &[(String, String)], body: &[u8], ok: bool) {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/server.md")).unwrap();
    let start = doc.find("Verifying in Python").unwrap();
    let code = &doc[start..];
    let code = &code[code.find("```python\n").unwrap() + 10..];
    let code = &code[..code.find("```").unwrap()];
    let headers: serde_json::Map<String, Value> = headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let script = format!(
        "{code}\nimport json, sys\nprint(verify({public_hex:?}, json.loads(sys.argv[1]), bytes.fromhex(sys.argv[2])))\n"
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script, &Value::Object(headers.clone()).to_string(), &hex::encode(body)])
        .output();
    let out = match out {
        Ok(out) if !String::from_utf8_lossy(&out.stderr).contains("No module named 'cryptography'") => out,
        _ => {
            return common::missing(
                "python3 with cryptography (Debian python3-cryptography) for the documented verification",
            );
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    if ok {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(stdout.trim(), headers[webhooks::ID_HEADER].as_str().unwrap());
    } else {
        assert!(!out.status.success(), "a tampered delivery verified: {stdout}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("InvalidSignature"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A delivery still being retried when its endpoint leaves the
/// configuration is not sent again: it becomes a dead letter at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_to_an_endpoint_no_longer_configured_is_a_dead_letter() {
    let (url, got) = receiver(ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key()).await;
    got.fail_first.store(usize::MAX, Ordering::SeqCst);
    let h = Harness::start(Db::Sqlite, |c| {
        c.webhooks = vec![WebhookEndpoint { url: url.clone(), events: vec![], format: Default::default() }];
        c.webhook_backoff_ms = 1;
        c.webhook_max_backoff_ms = 1;
    })
    .await
    .unwrap();
    file(&h, "c1").await;
    assert_eq!(deliver(&h, 1).await.retried, 1);
    let without = frankly_server::Config { webhooks: Vec::new(), ..h.state.config().clone() };
    let other = frankly_server::AppState::open(without, Default::default()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let round = other.deliver_webhooks().await.unwrap();
    assert_eq!((round.dead, round.retried, round.delivered), (1, 0, 0));
    assert_eq!(got.requests.lock().unwrap().len(), 1, "not sent again");
    let admin = h.sign_in("ada", Role::Admin).await;
    let (_, _, page) = h.get("/admin/webhooks", Some(&admin.cookie)).await;
    assert!(page.contains("the endpoint is no longer configured"), "{page}");
}

#[test]
fn bad_webhook_configuration_is_refused_with_its_reason() {
    let bad = |w: WebhookEndpoint| {
        frankly_server::Config { webhooks: vec![w], ..frankly_server::Config::default() }
            .validate()
            .unwrap_err()
            .to_string()
    };
    assert!(
        bad(WebhookEndpoint { url: "ftp://x".into(), events: vec![], format: Default::default() })
            .contains("not an http(s) URL")
    );
    let e = bad(WebhookEndpoint {
        url: "https://x.example/h".into(),
        events: vec!["report.deleted".into()],
        format: Default::default(),
    });
    assert!(e.contains("unknown event \"report.deleted\""), "{e}");
    assert_eq!(Event::ALL.len(), 4);
}
