//! Helpers for the review side: moderation API calls with a review key,
//! reports filed in a conversation, accounts with a key and a web session.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use frankly_report::Reason;
use frankly_review::Role;
use frankly_server::Scope;
use serde_json::Value;

use super::franked::{conversation, seal, with_attachments};
use super::{Harness, Moderator};

pub async fn api(h: &Harness, key: &str, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(path).header(header::AUTHORIZATION, format!("Bearer {key}"));
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap();
    let (status, _, bytes) = h.request(req).await;
    (status, bytes)
}

pub async fn api_json<T: serde::de::DeserializeOwned>(
    h: &Harness,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> T {
    let (status, bytes) = api(h, key, method, path, body).await;
    assert!(status.is_success(), "{method} {path}: {status} {}", String::from_utf8_lossy(&bytes));
    serde_json::from_slice(&bytes).unwrap()
}

/// Files a report of `reason` in conversation `conv` (reporter bob, sender `sender`).
pub async fn file(h: &Harness, conv: &str, sender: &str, reason: Reason, attachment: Option<&[u8]>) -> String {
    let now = u64::try_from(frankly_server::now_ms()).unwrap();
    let mut msgs = conversation(&h.keyring(), conv, sender, "bob", 3, now);
    if let Some(bytes) = attachment {
        with_attachments(&h.keyring(), &mut msgs, &[("application/pdf", bytes)], now + 10);
    }
    let (id, envelope) = seal(msgs, reason, &h.server_key());
    assert_eq!(h.post_report(envelope).await.0, StatusCode::ACCEPTED);
    id
}

pub struct Account {
    pub role: Role,
    pub key: String,
    pub web: Moderator,
}

pub async fn account(h: &Harness, name: &str, role: Role) -> Account {
    let web = h.sign_in(name, role).await;
    let (_, key) =
        frankly_server::create_api_key(h.state.db(), "test", name, &[Scope::Review], Some(name)).await.unwrap();
    Account { role, key: key.to_string(), web }
}

pub fn web_get(path: &str, cookie: &str) -> Request<Body> {
    Request::get(path).header(header::COOKIE, cookie).body(Body::empty()).unwrap()
}

pub fn web_post(path: &str, m: &Moderator, form: &str) -> Request<Body> {
    Request::post(path)
        .header(header::COOKIE, &m.cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("csrf={}&{form}", m.csrf)))
        .unwrap()
}

/// The account `name` as the store's functions take it.
pub async fn user_of(h: &Harness, name: &str, role: Role) -> frankly_server::User {
    use sqlx::Row;
    let pool = sqlx::AnyPool::connect(&h.state.config().database_url()).await.unwrap();
    let id: i64 = sqlx::query("SELECT id FROM users WHERE username = $1")
        .bind(name)
        .fetch_one(&pool)
        .await
        .unwrap()
        .try_get("id")
        .unwrap();
    frankly_server::User { id, username: name.to_string(), role, reveal_media: false }
}

/// Claims the next report of `queue` with the account's key and decides it with `decision`; returns its id.
pub async fn claim_and_decide(h: &Harness, key: &str, queue: &str, decision: Value) -> i64 {
    let claimed: Value = api_json(h, key, "POST", &format!("/api/v1/queues/{queue}/claim"), None).await;
    let id = claimed["report"].as_i64().unwrap_or_else(|| panic!("{queue} is empty"));
    let _: Value = api_json(h, key, "POST", &format!("/api/v1/reports/{id}/decision"), Some(decision)).await;
    id
}
