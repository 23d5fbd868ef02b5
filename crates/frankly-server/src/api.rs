//! The JSON API: health, metrics, public keys, tagging, the relay, report
//! intake and appeals.

use std::num::NonZeroU32;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use frankly_franking::{Commitment, DeliveryContext, MAX_ID_BYTES, PlatformTag, sign_delivery, tag};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sqlx::Row;
use subtle::ConstantTimeEq;

use crate::error::AppError;
use crate::{AppState, ServerError};

/// Largest relayed message (ciphertext plus attachments), in bytes.
pub const MAX_RELAY_BYTES: usize = 16 << 20;
/// Most recipients of one relayed message.
pub const MAX_RECIPIENTS: usize = 256;
/// Most messages returned by one `GET /v1/messages`.
pub const MAX_FETCH: i64 = 100;

/// Per-key rate limiters.
#[derive(Debug)]
pub(crate) struct Limits {
    reporters: DefaultKeyedRateLimiter<String>,
    logins: DefaultKeyedRateLimiter<String>,
}

/// Login attempts per username per minute.
const LOGINS_PER_MINUTE: u32 = 10;

impl Limits {
    pub(crate) fn new(config: &crate::Config) -> Limits {
        let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Limits {
            reporters: RateLimiter::keyed(per_minute(config.reports_per_reporter_per_minute)),
            logins: RateLimiter::keyed(per_minute(LOGINS_PER_MINUTE)),
        }
    }

    /// Drops state for keys idle long enough to be back at full quota, so
    /// memory follows the active keys only.
    pub(crate) fn forget_idle(&self) {
        self.reporters.retain_recent();
        self.logins.retain_recent();
    }

    pub(crate) fn login_allowed(&self, username: &str) -> bool {
        self.logins.check_key(&username.to_owned()).is_ok()
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/keys", get(keys))
        .route("/v1/frank", post(frank))
        .route("/v1/devices", post(register_device))
        .route("/v1/messages", post(send_message).get(fetch_messages))
        .route("/v1/messages/ack", post(ack_messages))
        .route("/v1/appeals", post(file_appeal))
        .route("/v1/reports", post(post_report).layer(DefaultBodyLimit::max(frankly_report::MAX_ENVELOPE_BYTES)))
        .layer(DefaultBodyLimit::max(MAX_RELAY_BYTES * 2))
}

async fn healthz(State(state): State<AppState>) -> Result<&'static str, AppError> {
    sqlx::query("SELECT 1").execute(state.db().reader()).await.map_err(ServerError::from)?;
    Ok("ok\n")
}

async fn metrics(State(state): State<AppState>) -> Result<Response, AppError> {
    let text = state.metrics().render(state.db()).await?;
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response())
}

/// The public keys devices are configured with.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct PublicKeys {
    /// X25519 key that reports are sealed to, hex.
    pub report_public_key: String,
    /// Ed25519 key that signs delivery contexts, hex.
    pub delivery_public_key: String,
}

async fn keys(State(state): State<AppState>) -> Json<PublicKeys> {
    let s = state.secrets();
    Json(PublicKeys {
        report_public_key: hex::encode(s.report_key.public().to_bytes()),
        delivery_public_key: hex::encode(s.delivery_key.verifying_key().to_bytes()),
    })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

fn unauthorized(what: &str) -> ServerError {
    ServerError::refused(StatusCode::UNAUTHORIZED, "unauthorized", format!("{what} token missing or wrong"))
}

fn require_platform(state: &AppState, headers: &HeaderMap) -> Result<(), ServerError> {
    let given = bearer(headers).ok_or_else(|| unauthorized("platform"))?;
    if bool::from(given.as_bytes().ct_eq(state.secrets().platform_token.as_bytes())) {
        Ok(())
    } else {
        Err(unauthorized("platform"))
    }
}

async fn device_user(state: &AppState, headers: &HeaderMap) -> Result<String, ServerError> {
    let token = bearer(headers).ok_or_else(|| unauthorized("device"))?;
    let row = sqlx::query("SELECT user_id FROM devices WHERE token_hash = $1")
        .bind(crate::auth::device_token_hash(token))
        .fetch_optional(state.db().reader())
        .await?
        .ok_or_else(|| unauthorized("device"))?;
    Ok(row.try_get("user_id")?)
}

fn bad_request(code: &'static str, message: impl Into<String>) -> ServerError {
    ServerError::refused(StatusCode::BAD_REQUEST, code, message)
}

fn check_id(field: &str, value: &str) -> Result<(), ServerError> {
    if value.is_empty() || value.len() > MAX_ID_BYTES {
        return Err(bad_request("invalid", format!("{field} must be 1 to {MAX_ID_BYTES} bytes")));
    }
    Ok(())
}

/// `POST /v1/frank`: a commitment and its delivery context.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct FrankRequest {
    /// The commitment, hex.
    pub commitment: Commitment,
    /// What the delivery service binds.
    pub delivery: DeliveryContext,
}

/// The platform tag and the delivery signature.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct FrankResponse {
    /// The tag with its key id.
    pub tag: PlatformTag,
    /// Ed25519 over the tag and delivery context, hex.
    pub delivery_signature: String,
}

async fn tag_now(
    state: &AppState,
    commitment: &Commitment,
    delivery: &DeliveryContext,
) -> Result<FrankResponse, ServerError> {
    let loaded = state.platform_keys().for_tagging(state.db(), crate::now_ms()).await?;
    let t = tag(loaded.keyring(), commitment, delivery).map_err(|e| bad_request("tag", e.to_string()))?;
    let signature =
        sign_delivery(&state.secrets().delivery_key, &t, delivery).map_err(|e| bad_request("tag", e.to_string()))?;
    Ok(FrankResponse { tag: t, delivery_signature: hex::encode(signature) })
}

async fn frank(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<FrankRequest>,
) -> Result<Json<FrankResponse>, AppError> {
    require_platform(&state, &headers)?;
    let out = tag_now(&state, &req.commitment, &req.delivery).await?;
    state.metrics().tags.inc();
    Ok(Json(out))
}

/// `POST /v1/devices`: the platform registers a device for a user.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct DeviceRequest {
    /// The user the device belongs to (the authenticated sender id).
    pub user_id: String,
}

/// A device's bearer token.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct DeviceResponse {
    /// The token, hex; the server keeps only its hash.
    pub token: String,
}

async fn register_device(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<DeviceRequest>,
) -> Result<Json<DeviceResponse>, AppError> {
    require_platform(&state, &headers)?;
    check_id("user_id", &req.user_id)?;
    let token = crate::auth::new_token()?;
    sqlx::query("INSERT INTO devices (token_hash, user_id, created_ms) VALUES ($1, $2, $3)")
        .bind(crate::auth::device_token_hash(&token))
        .bind(&req.user_id)
        .bind(crate::now_ms())
        .execute(state.db().writer())
        .await
        .map_err(ServerError::from)?;
    Ok(Json(DeviceResponse { token: token.to_string() }))
}

/// `POST /v1/messages`: an E2EE message for the relay.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SendRequest {
    /// The conversation.
    pub conversation_id: String,
    /// Who gets it.
    pub recipients: Vec<String>,
    /// The E2EE ciphertext, base64.
    pub ciphertext: String,
    /// Separately encrypted attachments, base64.
    #[serde(default)]
    pub attachments: Vec<String>,
    /// The franking commitment, hex.
    pub commitment: Commitment,
}

/// What the relay bound and tagged.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SendResponse {
    /// The delivery context (sender as authenticated, time, server id).
    pub delivery: DeliveryContext,
    /// Tag and signature.
    pub franked: FrankResponse,
}

async fn send_message(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<SendRequest>,
) -> Result<Json<SendResponse>, AppError> {
    let sender = device_user(&state, &headers).await?;
    check_id("conversation_id", &req.conversation_id)?;
    if req.recipients.is_empty() || req.recipients.len() > MAX_RECIPIENTS {
        return Err(bad_request("invalid", format!("1 to {MAX_RECIPIENTS} recipients")).into());
    }
    for r in &req.recipients {
        check_id("recipient", r)?;
    }
    let ciphertext = B64.decode(&req.ciphertext).map_err(|e| bad_request("invalid", format!("ciphertext: {e}")))?;
    let attachments: Vec<Vec<u8>> = req
        .attachments
        .iter()
        .enumerate()
        .map(|(i, a)| B64.decode(a).map_err(|e| bad_request("invalid", format!("attachment {i}: {e}"))))
        .collect::<Result<_, _>>()?;
    let size = ciphertext.len() + attachments.iter().map(Vec::len).sum::<usize>();
    if size > MAX_RELAY_BYTES {
        return Err(ServerError::refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("message is {size} bytes (limit {MAX_RELAY_BYTES})"),
        )
        .into());
    }
    let attachments_blob = serde_json::to_vec(&req.attachments).map_err(|e| ServerError::Internal(e.to_string()))?;
    let timestamp_ms = crate::now_ms();
    let delivery = DeliveryContext {
        sender_id: sender,
        conversation_id: req.conversation_id.clone(),
        timestamp_ms: u64::try_from(timestamp_ms).unwrap_or(0),
        server_message_id: hex::encode(crate::secrets::random32()?.get(..16).unwrap_or_default()),
    };
    let franked = tag_now(&state, &req.commitment, &delivery).await?;
    let signature = hex::decode(&franked.delivery_signature).map_err(|e| ServerError::Internal(e.to_string()))?;
    let mut tx = state.db().writer().begin().await.map_err(ServerError::from)?;
    for r in &req.recipients {
        let waiting: i64 = sqlx::query("SELECT COUNT(*) AS n FROM messages WHERE recipient = $1")
            .bind(r)
            .fetch_one(&mut *tx)
            .await
            .and_then(|row| row.try_get("n"))
            .map_err(ServerError::from)?;
        if waiting >= state.config().relay_mailbox_limit {
            return Err(ServerError::refused(
                StatusCode::TOO_MANY_REQUESTS,
                "mailbox_full",
                format!("{r}'s mailbox holds {waiting} undelivered messages"),
            )
            .into());
        }
        sqlx::query(
            "INSERT INTO messages (recipient, server_message_id, sender, conversation, timestamp_ms, ciphertext, \
             attachments, commitment, key_id, mac, signature) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(r)
        .bind(&delivery.server_message_id)
        .bind(&delivery.sender_id)
        .bind(&delivery.conversation_id)
        .bind(timestamp_ms)
        .bind(ciphertext.as_slice())
        .bind(attachments_blob.as_slice())
        .bind(req.commitment.0.to_vec())
        .bind(i64::from(franked.tag.key_id))
        .bind(franked.tag.mac.to_vec())
        .bind(signature.as_slice())
        .execute(&mut *tx)
        .await
        .map_err(ServerError::from)?;
    }
    tx.commit().await.map_err(ServerError::from)?;
    state.metrics().relayed.inc();
    Ok(Json(SendResponse { delivery, franked }))
}

/// `GET /v1/messages?after=ID`.
#[derive(Debug, serde::Deserialize)]
struct FetchQuery {
    #[serde(default)]
    after: i64,
    limit: Option<i64>,
}

/// One delivered message.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Delivered {
    /// The relay's sequence number for this recipient (use as `after`).
    pub id: i64,
    /// The delivery context.
    pub delivery: DeliveryContext,
    /// The commitment.
    pub commitment: Commitment,
    /// Tag and signature.
    pub franked: FrankResponse,
    /// Ciphertext, base64.
    pub ciphertext: String,
    /// Attachments, base64.
    pub attachments: Vec<String>,
}

fn array32(bytes: &[u8], what: &str) -> Result<[u8; 32], ServerError> {
    bytes.try_into().map_err(|_| ServerError::Internal(format!("stored {what} is not 32 bytes")))
}

async fn fetch_messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<FetchQuery>,
) -> Result<Json<Vec<Delivered>>, AppError> {
    let user = device_user(&state, &headers).await?;
    let limit = q.limit.unwrap_or(MAX_FETCH).clamp(1, MAX_FETCH);
    let rows = sqlx::query(
        "SELECT id, server_message_id, sender, conversation, timestamp_ms, ciphertext, attachments, commitment, \
         key_id, mac, signature FROM messages WHERE recipient = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(&user)
    .bind(q.after)
    .bind(limit)
    .fetch_all(state.db().reader())
    .await
    .map_err(ServerError::from)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let attachments: Vec<String> =
            serde_json::from_slice(&r.try_get::<Vec<u8>, _>("attachments").map_err(ServerError::from)?)
                .map_err(|e| ServerError::Internal(e.to_string()))?;
        let key_id: i64 = r.try_get("key_id").map_err(ServerError::from)?;
        out.push(Delivered {
            id: r.try_get("id").map_err(ServerError::from)?,
            delivery: DeliveryContext {
                sender_id: r.try_get("sender").map_err(ServerError::from)?,
                conversation_id: r.try_get("conversation").map_err(ServerError::from)?,
                timestamp_ms: u64::try_from(r.try_get::<i64, _>("timestamp_ms").map_err(ServerError::from)?)
                    .unwrap_or(0),
                server_message_id: r.try_get("server_message_id").map_err(ServerError::from)?,
            },
            commitment: Commitment(array32(
                &r.try_get::<Vec<u8>, _>("commitment").map_err(ServerError::from)?,
                "commitment",
            )?),
            franked: FrankResponse {
                tag: PlatformTag {
                    key_id: u32::try_from(key_id).unwrap_or(0),
                    mac: array32(&r.try_get::<Vec<u8>, _>("mac").map_err(ServerError::from)?, "tag")?,
                },
                delivery_signature: hex::encode(r.try_get::<Vec<u8>, _>("signature").map_err(ServerError::from)?),
            },
            ciphertext: B64.encode(r.try_get::<Vec<u8>, _>("ciphertext").map_err(ServerError::from)?),
            attachments,
        });
    }
    Ok(Json(out))
}

/// `POST /v1/messages/ack`: drop delivered messages up to an id.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct AckRequest {
    /// The last id the device has stored.
    pub up_to: i64,
}

async fn ack_messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<AckRequest>,
) -> Result<StatusCode, AppError> {
    let user = device_user(&state, &headers).await?;
    sqlx::query("DELETE FROM messages WHERE recipient = $1 AND id <= $2")
        .bind(&user)
        .bind(req.up_to)
        .execute(state.db().writer())
        .await
        .map_err(ServerError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn post_report(State(state): State<AppState>, body: Bytes) -> Response {
    let m = state.metrics();
    m.reports_received.inc();
    match intake(&state, body).await {
        Ok(accepted) => {
            m.reports_accepted.inc();
            let failed = accepted.messages.iter().filter(|s| *s != "verified").count();
            m.verification_failures.inc_by(u64::try_from(failed).unwrap_or(0));
            (StatusCode::CREATED, Json(accepted)).into_response()
        }
        Err(e) => {
            if let ServerError::Refused { code, .. } = &e {
                m.refused(code);
            } else {
                m.refused("internal");
            }
            AppError(e).into_response()
        }
    }
}

async fn intake(state: &AppState, body: Bytes) -> Result<crate::Accepted, ServerError> {
    let verifier = state.clone();
    let keyring = state.platform_keys().keyring();
    let ready = tokio::task::spawn_blocking(move || {
        crate::intake::verify(&body, &verifier.secrets().report_key, &keyring, verifier.inner.matcher.as_ref())
    })
    .await
    .map_err(|e| ServerError::Internal(e.to_string()))??;
    if state.inner.limits.reporters.check_key(&ready.reporter_id().to_owned()).is_err() {
        return Err(ServerError::refused(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "reporter {} sent more than {} reports in a minute; retry later",
                ready.reporter_id(),
                state.config().reports_per_reporter_per_minute
            ),
        ));
    }
    state.inner.intake.submit(ready).await
}

async fn file_appeal(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<crate::AppealInput>,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    require_platform(&state, &headers)?;
    let id = crate::queue::appeal(state.db(), &req).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "appeal": id }))))
}
