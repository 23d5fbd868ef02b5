//! A device's HTTP connection to `frankly serve`: the relay, the key
//! endpoint and report intake, with a log of every request it made (what
//! left the device, to the byte), which the privacy ledger reads.

use std::sync::Mutex;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::DemoError;

/// Largest response body read from the server.
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// One request a device made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// `POST /v1/messages`, ...
    pub method: String,
    /// The path.
    pub path: String,
    /// Bytes of the request body.
    pub sent_bytes: usize,
    /// Bytes of the response body.
    pub received_bytes: usize,
    /// The status.
    pub status: u16,
}

/// An HTTP client for one server, bearing one token.
#[derive(Debug)]
pub struct Relay {
    base: String,
    token: Option<String>,
    client: Client<HttpConnector, Full<Bytes>>,
    log: Mutex<Vec<Exchange>>,
}

impl Relay {
    /// The bearer token it sends, if any.
    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str, token: Option<&str>) -> Relay {
        Relay {
            base: base.trim_end_matches('/').to_owned(),
            token: token.map(str::to_owned),
            client: Client::builder(TokioExecutor::new()).build_http(),
            log: Mutex::new(Vec::new()),
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Every request made so far.
    pub fn log(&self) -> Vec<Exchange> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Sends a request and reads the answer (bounded).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), DemoError> {
        let sent_bytes = body.len();
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, content_type);
        if let Some(token) = &self.token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = builder.body(Full::new(Bytes::from(body))).map_err(|e| DemoError::Http(e.to_string()))?;
        let response =
            self.client.request(request).await.map_err(|e| DemoError::Http(format!("{method} {path}: {e}")))?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| DemoError::Http(format!("{method} {path}: reading the answer: {e}")))?
            .to_bytes();
        if let Ok(mut log) = self.log.lock() {
            log.push(Exchange {
                method: method.to_string(),
                path: path.split('?').next().unwrap_or(path).to_owned(),
                sent_bytes,
                received_bytes: bytes.len(),
                status: status.as_u16(),
            });
        }
        Ok((status, bytes))
    }

    /// Sends JSON (or nothing, for a GET) and reads JSON; a refusal becomes
    /// [`DemoError::Refused`] with the server's code and message.
    pub async fn json<T: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&T>,
    ) -> Result<R, DemoError> {
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| DemoError::Http(e.to_string()))?,
            None => Vec::new(),
        };
        let (status, answer) = self.request(method, path, "application/json", bytes).await?;
        ok_json(status, &answer)
    }

    /// Posts a sealed report envelope (with this client's token, if any).
    pub async fn post_report(&self, envelope: Vec<u8>) -> Result<frankly_api::Received, DemoError> {
        let (status, answer) = self.request(Method::POST, "/v1/reports", "application/octet-stream", envelope).await?;
        ok_json(status, &answer)
    }
}

fn ok_json<R: DeserializeOwned>(status: StatusCode, answer: &[u8]) -> Result<R, DemoError> {
    if status.is_success() {
        let answer = if answer.is_empty() { b"null".as_slice() } else { answer };
        return serde_json::from_slice(answer).map_err(|e| DemoError::Http(format!("unexpected answer: {e}")));
    }
    match serde_json::from_slice::<frankly_api::ErrorBody>(answer) {
        Ok(e) => Err(DemoError::Refused {
            status: status.as_u16(),
            code: e.error,
            message: e.message,
            message_index: e.message_index,
        }),
        Err(_) => Err(DemoError::Refused {
            status: status.as_u16(),
            code: "http".into(),
            message: String::from_utf8_lossy(answer).chars().take(200).collect(),
            message_index: None,
        }),
    }
}
