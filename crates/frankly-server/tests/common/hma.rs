//! A client of the HMA-compatible match API on a [`Harness`].

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use frankly_server::Scope;
use serde_json::{Value, json};

use super::{Engine, Harness};

/// A server with the match API on and a key with every scope.
pub struct Hma {
    pub h: Harness,
    pub key: String,
}

impl Hma {
    pub async fn start(engine: Engine) -> Option<Hma> {
        Self::start_with(engine, |_| {}).await
    }

    /// [`Hma::start`] with `tweak` applied to the config too.
    pub async fn start_with(engine: Engine, tweak: impl FnOnce(&mut frankly_server::Config)) -> Option<Hma> {
        let h = Harness::start(engine, |c| {
            c.match_api = true;
            tweak(c);
        })
        .await?;
        let (_, key) =
            frankly_server::create_api_key(h.state.db(), "tests", "tests", &Scope::MATCH_API, None).await.unwrap();
        Some(Hma { h, key: key.to_string() })
    }

    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            req = req.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let req = match body {
            Some(body) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())),
            None => req.body(Body::empty()),
        };
        let (status, headers, bytes) = self.h.request(req.unwrap()).await;
        let value = if headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
        {
            serde_json::from_slice(&bytes).unwrap()
        } else {
            Value::String(String::from_utf8_lossy(&bytes).into_owned())
        };
        (status, value)
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_with(method, path, Some(&self.key), body).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// HMA's `create_bank` helper.
    pub async fn create_bank(&self, name: &str) {
        let (status, body) = self.post("/c/banks", json!({ "name": name })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body, json!({ "matching_enabled_ratio": 1.0, "name": name }));
    }

    /// Banks a PDQ hash; returns its content id.
    pub async fn add_pdq(&self, bank: &str, pdq: &str) -> i64 {
        let (status, body) = self.post(&format!("/c/bank/{bank}/signal"), json!({ "pdq": pdq })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["signals"], json!({ "pdq": pdq }));
        body["id"].as_i64().unwrap()
    }
}
