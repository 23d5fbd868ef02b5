//! Coop beside frankly: verified reports forwarded to Coop's report intake
//! (a receiver checking Coop's required shape and `x-api-key`), and Coop's
//! action webhooks, signed by Python's `cryptography` exactly as Coop signs
//! them (RSASSA-PKCS1-v1_5, SHA-256, base64 `coop-signature`), taken as
//! decisions under the account's rules, once.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::review::{account, api_json, file};
use common::{Engine, Harness};
use frankly_report::Reason;
use frankly_review::{Action, Role};
use serde_json::{Value, json};

const PY: &str = r#"
import base64, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
cmd, d = sys.argv[1], sys.argv[2]
if cmd == "keygen":
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    open(d + "/coop.key", "wb").write(key.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    open(d + "/coop.pub", "w").write("-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der).decode() + "\n-----END PUBLIC KEY-----")
else:
    key = serialization.load_pem_private_key(open(d + "/coop.key", "rb").read(), password=None)
    print(base64.b64encode(key.sign(open(sys.argv[3], "rb").read(), padding.PKCS1v15(), hashes.SHA256())).decode())
"#;

fn python(args: &[&str]) -> Option<String> {
    match Command::new("python3").arg("-c").arg(PY).args(args).output() {
        Ok(out) if out.status.success() => Some(String::from_utf8(out.stdout).unwrap().trim().to_string()),
        other => {
            common::missing(&format!("python3 with cryptography (python3-cryptography): {other:?}"));
            None
        }
    }
}

fn sign(dir: &Path, body: &str) -> String {
    let file = dir.join("body.json");
    std::fs::write(&file, body).unwrap();
    python(&["sign", dir.to_str().unwrap(), file.to_str().unwrap()]).unwrap()
}

/// Coop's report intake: `x-api-key`, the fields its schema requires, 201.
async fn fake_coop() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let app = axum::Router::new()
        .route(
            "/api/v1/report",
            axum::routing::post(
                |axum::extract::State(s): axum::extract::State<Arc<Mutex<Vec<Value>>>>,
                 h: axum::http::HeaderMap,
                 body: String| async move {
                    if h.get("x-api-key").and_then(|v| v.to_str().ok()) != Some("coop-org-key") {
                        return (StatusCode::UNAUTHORIZED, "{}".to_string());
                    }
                    let v: Value = serde_json::from_str(&body).unwrap();
                    let ok = v["reporter"]["kind"] == "user"
                        && v["reporter"]["typeId"].is_string()
                        && v["reportedAt"].is_string()
                        && v["reportedItem"]["id"].is_string()
                        && v["reportedItem"]["typeId"].is_string()
                        && v["reportedItem"]["data"].is_object()
                        && !v["reportedForReason"].is_null();
                    if !ok {
                        return (StatusCode::BAD_REQUEST, "{}".to_string());
                    }
                    s.lock().unwrap().push(v);
                    (StatusCode::CREATED, json!({"reportId": "2b1e0000-0000-1000-8000-000000000001"}).to_string())
                },
            ),
        )
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v1/report", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn post_action(h: &Harness, body: &str, signature: Option<&str>) -> (StatusCode, Value) {
    let mut req = Request::post("/v1/coop/actions").header(header::CONTENT_TYPE, "application/json");
    if let Some(s) = signature {
        req = req.header("coop-signature", s);
    }
    let (status, _, bytes) = h.request(req.body(Body::from(body.to_string())).unwrap()).await;
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_reports_reach_coop_and_coop_actions_come_back_as_decisions() {
    let keys = tempfile::tempdir().unwrap();
    let Some(_) = python(&["keygen", keys.path().to_str().unwrap()]) else { return };
    let api_key = keys.path().join("coop.api-key");
    std::fs::write(&api_key, "coop-org-key\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&api_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (intake, received) = fake_coop().await;
    let coop = frankly_server::CoopConfig {
        api_key_file: Some(api_key),
        user_type_id: "tUser".into(),
        message_type_id: "tMessage".into(),
        verdict_type_id: "tVerdict".into(),
        policies: [("harassment".to_string(), "pol-harassment".to_string())].into(),
        public_key_file: Some(keys.path().join("coop.pub")),
        account: Some("coop-bot".into()),
        actions: [("act-remove".to_string(), Action::Remove), ("act-ignore".to_string(), Action::Dismiss)].into(),
    };
    let h = Harness::start(Engine::Sqlite, |c| {
        c.coop = Some(coop);
        c.webhooks = vec![frankly_server::WebhookEndpoint {
            url: intake,
            events: vec!["report.created".into()],
            format: frankly_server::EndpointFormat::Coop,
        }];
    })
    .await
    .unwrap();
    frankly_server::create_user(h.state.db(), "test", "coop-bot", "a long test password", Role::Moderator)
        .await
        .unwrap();
    let mo = account(&h, "mo", Role::Moderator).await;
    let report_id = file(&h, "c1", "mallory", Reason::Harassment, None).await;

    // Forwarded: the reported message, its thread, a verdict per message.
    for _ in 0..20 {
        h.state.deliver_webhooks().await.unwrap();
        if !received.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let sent = received.lock().unwrap()[0].clone();
    let item = sent["reportedItem"]["id"].as_str().unwrap().to_string();
    assert_eq!(item, format!("frankly:{report_id}:2"));
    assert_eq!(sent["reportedItem"]["data"]["text"], "message 2 from mallory");
    assert_eq!(sent["reportedItem"]["data"]["franking"], "verified");
    assert_eq!(sent["reportedForReason"]["policyId"], "pol-harassment");
    assert_eq!(sent["reportedItemThread"].as_array().unwrap().len(), 2);
    let verdicts = sent["additionalItems"].as_array().unwrap();
    assert_eq!(verdicts.len(), 3);
    assert!(verdicts.iter().all(|v| v["data"]["verdict"] == "verified"));

    // Coop's moderator removes it: a decision of coop-bot's, with its statement.
    let body =
        json!({"action": {"id": "act-remove"}, "actorEmail": "lead@example.org", "actorNote": "threat in message 3",
        "creator": {"id": "mallory", "typeId": "tUser"}, "custom": {}, "decisionReason": "Threats",
        "item": {"id": item, "typeId": "tMessage", "typeName": "Message"},
        "policies": [{"id": "pol-harassment", "name": "Harassment", "penalty": "HIGH"}], "rules": []})
        .to_string();
    let signature = sign(keys.path(), &body);
    let (status, answer) = post_action(&h, &body, Some(&signature)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["action"], "remove");
    let id = answer["report"].as_i64().unwrap();
    let detail: Value = api_json(&h, &mo.key, "GET", &format!("/api/v1/reports/{id}"), None).await;
    let decision = &detail["decisions"][0];
    assert_eq!((decision["moderator"].as_str(), decision["action"].as_str()), (Some("coop-bot"), Some("remove")));
    assert_eq!(decision["facts"], "Threats; threat in message 3; Coop action act-remove by lead@example.org");
    assert_eq!(decision["ground_reference"], "Coop policy Harassment (pol-harassment)");
    assert_eq!(detail["strikes"]["active"], 1);
    // The same callback again: the first outcome, no second decision.
    let (status, again) = post_action(&h, &body, Some(&signature)).await;
    assert_eq!((status, &again), (StatusCode::OK, &answer));
    let detail: Value = api_json(&h, &mo.key, "GET", &format!("/api/v1/reports/{id}"), None).await;
    assert_eq!(detail["decisions"].as_array().unwrap().len(), 1);
    let audit = frankly_server::audit::recent(h.state.db(), 100).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "coop-action" && e.actor == "coop-bot" && e.detail.contains("lead@example.org"))
    );

    // Refused: tampered, unsigned, signed by nobody we know, unmapped, not ours, decided already.
    let tampered = body.replace("act-remove", "act-ignore");
    assert_eq!(post_action(&h, &tampered, Some(&signature)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(post_action(&h, &body, None).await.0, StatusCode::UNAUTHORIZED);
    let unmapped = body.replace("act-remove", "act-ban");
    let (status, e) = post_action(&h, &unmapped, Some(&sign(keys.path(), &unmapped))).await;
    assert_eq!((status, e["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("unmapped_action")));
    let foreign = body.replace(&item, "post-991");
    let (status, e) = post_action(&h, &foreign, Some(&sign(keys.path(), &foreign))).await;
    assert_eq!((status, e["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("not_a_frankly_item")));
    let twice = body.replace("threat in message 3", "second look");
    let (status, e) = post_action(&h, &twice, Some(&sign(keys.path(), &twice))).await;
    assert_eq!((status, e["error"].as_str()), (StatusCode::CONFLICT, Some("already_decided")));
}

#[test]
fn coop_configuration_is_checked() {
    let coop_endpoint = frankly_server::WebhookEndpoint {
        url: "https://coop.example.org/api/v1/report".into(),
        events: vec!["report.created".into()],
        format: frankly_server::EndpointFormat::Coop,
    };
    let config = frankly_server::Config { webhooks: vec![coop_endpoint.clone()], ..Default::default() };
    assert!(config.validate().unwrap_err().to_string().contains("it needs [coop]"));
    let all_events = frankly_server::WebhookEndpoint { events: vec![], ..coop_endpoint };
    let config = frankly_server::Config { webhooks: vec![all_events], ..Default::default() };
    assert!(config.validate().is_err());
}

/// Coop's key is read once, at start: a file that is not a key stops the
/// server there, with an error naming the setting, not at the first webhook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coop_key_file_that_is_not_a_key_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("coop.pub");
    std::fs::write(&key, "-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n").unwrap();
    let config = frankly_server::Config {
        data_dir: dir.path().join("data"),
        coop: Some(frankly_server::CoopConfig {
            api_key_file: None,
            user_type_id: "tUser".into(),
            message_type_id: "tMessage".into(),
            verdict_type_id: "tVerdict".into(),
            policies: Default::default(),
            public_key_file: Some(key),
            account: Some("coop-bot".into()),
            actions: [("act-remove".to_string(), Action::Remove)].into(),
        }),
        ..frankly_server::Config::default()
    };
    let err = frankly_server::AppState::open(config, Default::default()).await.unwrap_err().to_string();
    assert!(err.contains("[coop] public_key_file"), "{err}");
}
