//! The JSON API: health, metrics, public keys, tagging, the relay, report
//! intake and appeals.

use std::num::NonZeroU32;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use frankly_franking::{
    Commitment, DeliveryContext, DeviceKey, Party, PlatformTag, check_id as franking_id, mac_delivery, tag,
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sqlx::Row;

use frankly_api::{
    AckRequest, ConversationRequest, Delivered, DeviceRequest, DeviceResponse, FrankRequest, Franked, MAX_COPIES,
    MAX_FETCH, MAX_MEMBERS, MAX_RELAY_BYTES, MemberRequest, PublicKeys, Received, SendRequest, SendResponse,
};

use crate::error::AppError;
use crate::{AppState, ServerError};

/// Per-key rate limiters.
#[derive(Debug)]
pub(crate) struct Limits {
    /// Reports per authenticated reporter device, checked before any decryption.
    pub(crate) reporters: DefaultKeyedRateLimiter<String>,
}

impl Limits {
    pub(crate) fn new(config: &crate::Config) -> Limits {
        let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Limits { reporters: RateLimiter::keyed(per_minute(config.reports_per_reporter_per_minute)) }
    }

    /// Drops state for keys idle long enough to be back at full quota, so
    /// memory follows the active keys only.
    pub(crate) fn forget_idle(&self) {
        self.reporters.retain_recent();
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/keys", get(keys))
        .route("/v1/webhook-keys", get(webhook_keys))
        .route("/v1/frank", post(frank))
        .route("/v1/devices", post(register_device))
        .route("/v1/conversations", post(create_conversation))
        .route("/v1/conversations/members", post(add_member))
        .route("/v1/conversations/devices", get(member_devices))
        .route("/v1/messages", post(send_message).get(fetch_messages))
        .route("/v1/messages/ack", post(ack_messages))
        .route("/v1/appeals", post(file_appeal))
        .route("/v1/reports", post(post_report))
}

/// The platform's credential, checked from the headers before the body is
/// read (an extractor that runs before any body extractor).
pub(crate) struct Platform;

impl FromRequestParts<AppState> for Platform {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        require_platform(state, &parts.headers)?;
        Ok(Platform)
    }
}

/// The device a bearer token belongs to, checked before the body is read.
pub(crate) struct Device(pub(crate) Party);

impl FromRequestParts<AppState> for Device {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        Ok(Device(device(state, &parts.headers).await?))
    }
}

/// A JSON body: read through the guard (limit, deadline, budget), then
/// parsed. Every request type refuses unknown fields. Errors are the API's
/// JSON: 400 `invalid` naming what is wrong, 413 `too_large`, 408 `timeout`,
/// 503 `busy`.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, AppError> {
        let bytes = Body::from_request(req, state).await?.0;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| AppError(bad_request("invalid", format!("request body: {e}"))))
    }
}

/// A raw body, read through the guard, with the guard's errors as JSON.
pub(crate) struct Body(pub(crate) Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = AppError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, AppError> {
        Bytes::from_request(req, state).await.map(Body).map_err(|e| {
            AppError(match crate::guard::BodyError::find(&e) {
                Some(b) => b.refusal(),
                None => bad_request("invalid", format!("request body: {e}")),
            })
        })
    }
}

async fn healthz(State(state): State<AppState>) -> Result<&'static str, AppError> {
    sqlx::query("SELECT 1").execute(state.db().reader()).await.map_err(ServerError::from)?;
    Ok("ok\n")
}

async fn metrics(State(state): State<AppState>) -> Result<Response, AppError> {
    let text = state.metrics().render(state.db()).await?;
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response())
}

async fn keys(State(state): State<AppState>) -> Result<Json<PublicKeys>, AppError> {
    let keyring = state.report_keys().keyring();
    let (id, key) = keyring.current().ok_or_else(|| ServerError::Internal("no report key".into()))?;
    Ok(Json(PublicKeys { report_key_id: id, report_public_key: hex::encode(key.public().to_bytes()) }))
}

/// `GET /v1/webhook-keys`: the keys webhooks are signed with, by key id.
async fn webhook_keys(State(state): State<AppState>) -> Json<serde_json::Value> {
    let public = state.secrets().webhook_key().verifying_key();
    Json(serde_json::json!({"keys": [{
        "key_id": crate::webhooks::key_id(&public),
        "algorithm": "ed25519",
        "public_key": hex::encode(public.as_bytes()),
    }]}))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

fn unauthorized(what: &str) -> ServerError {
    ServerError::refused(StatusCode::UNAUTHORIZED, "unauthorized", format!("{what} token missing or wrong"))
}

fn require_platform(state: &AppState, headers: &HeaderMap) -> Result<(), ServerError> {
    let given = bearer(headers).ok_or_else(|| unauthorized("platform"))?;
    if state.secrets().is_platform_token(given) { Ok(()) } else { Err(unauthorized("platform")) }
}

/// The device a bearer token belongs to. The token is looked up by its
/// SHA-256 hash (the server keeps no token), so the comparison leaks nothing.
pub(crate) async fn device(state: &AppState, headers: &HeaderMap) -> Result<Party, ServerError> {
    let token = bearer(headers).ok_or_else(|| unauthorized("device"))?;
    let row = sqlx::query("SELECT user_id, device_id FROM devices WHERE token_hash = $1")
        .bind(crate::auth::device_token_hash(token))
        .fetch_optional(state.db().reader())
        .await?
        .ok_or_else(|| unauthorized("device"))?;
    Ok(Party { user_id: row.try_get("user_id")?, device_id: row.try_get("device_id")? })
}

fn bad_request(code: &'static str, message: impl Into<String>) -> ServerError {
    ServerError::refused(StatusCode::BAD_REQUEST, code, message)
}

/// Identifiers follow franking's rule (1 to 256 bytes of UTF-8, no control
/// characters), so nothing stored can hold a NUL.
fn check_id(field: &'static str, value: &str) -> Result<(), ServerError> {
    franking_id(field, value).map_err(|e| bad_request("invalid", e.to_string()))
}

fn device_key(state: &AppState, device: &Party) -> Result<DeviceKey, ServerError> {
    state.secrets().device_key(device).map_err(|e| bad_request("invalid", e.to_string()))
}

fn tag_copy(
    state: &AppState,
    keyring: &frankly_franking::Keyring,
    commitment: &Commitment,
    delivery: &DeliveryContext,
) -> Result<Franked, ServerError> {
    let t = tag(keyring, commitment, delivery).map_err(|e| bad_request("tag", e.to_string()))?;
    let mac = mac_delivery(&device_key(state, &delivery.recipient)?, &t, commitment, delivery)
        .map_err(|e| bad_request("tag", e.to_string()))?;
    Ok(Franked { tag: t, delivery_mac: hex::encode(mac) })
}

async fn frank(
    State(state): State<AppState>,
    _: Platform,
    ApiJson(req): ApiJson<FrankRequest>,
) -> Result<Json<Franked>, AppError> {
    let loaded = state.platform_keys().for_tagging(state.db(), crate::now_ms()).await?;
    let out = tag_copy(&state, loaded.keyring(), &req.commitment, &req.delivery)?;
    state.metrics().tags.inc();
    Ok(Json(out))
}

async fn register_device(
    State(state): State<AppState>,
    _: Platform,
    ApiJson(req): ApiJson<DeviceRequest>,
) -> Result<Json<DeviceResponse>, AppError> {
    check_id("user_id", &req.user_id)?;
    check_id("device_id", &req.device_id)?;
    let token = crate::auth::new_token()?;
    let party = Party::new(&req.user_id, &req.device_id);
    let key = device_key(&state, &party)?;
    let inserted = sqlx::query(
        "INSERT INTO devices (token_hash, user_id, device_id, created_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id, device_id) DO NOTHING",
    )
    .bind(crate::auth::device_token_hash(&token))
    .bind(&req.user_id)
    .bind(&req.device_id)
    .bind(crate::now_ms())
    .execute(state.db().writer())
    .await
    .map_err(ServerError::from)?
    .rows_affected();
    if inserted == 0 {
        return Err(ServerError::refused(
            StatusCode::CONFLICT,
            "exists",
            format!("device {party} is already registered"),
        )
        .into());
    }
    Ok(Json(DeviceResponse { token: token.to_string(), device_key: hex::encode(key.as_bytes()) }))
}

async fn create_conversation(
    State(state): State<AppState>,
    _: Platform,
    ApiJson(req): ApiJson<ConversationRequest>,
) -> Result<StatusCode, AppError> {
    check_id("conversation_id", &req.conversation_id)?;
    if req.members.is_empty() || req.members.len() > MAX_MEMBERS {
        return Err(bad_request("invalid", format!("1 to {MAX_MEMBERS} members")).into());
    }
    for m in &req.members {
        check_id("member", m)?;
    }
    let now = crate::now_ms();
    let mut tx = state.db().writer().begin().await.map_err(ServerError::from)?;
    let created = sqlx::query(
        "INSERT INTO conversations (conversation_id, last_sequence, created_ms) VALUES ($1, 0, $2) \
         ON CONFLICT (conversation_id) DO NOTHING",
    )
    .bind(&req.conversation_id)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(ServerError::from)?
    .rows_affected();
    if created == 0 {
        return Err(ServerError::refused(
            StatusCode::CONFLICT,
            "exists",
            format!("conversation {} exists", req.conversation_id),
        )
        .into());
    }
    for m in &req.members {
        sqlx::query(
            "INSERT INTO members (conversation_id, user_id, joined_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(&req.conversation_id)
        .bind(m)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(ServerError::from)?;
    }
    tx.commit().await.map_err(ServerError::from)?;
    Ok(StatusCode::CREATED)
}

async fn add_member(
    State(state): State<AppState>,
    _: Platform,
    ApiJson(req): ApiJson<MemberRequest>,
) -> Result<StatusCode, AppError> {
    check_id("conversation_id", &req.conversation_id)?;
    check_id("user_id", &req.user_id)?;
    let exists = sqlx::query("SELECT 1 AS one FROM conversations WHERE conversation_id = $1")
        .bind(&req.conversation_id)
        .fetch_optional(state.db().writer())
        .await
        .map_err(ServerError::from)?;
    if exists.is_none() {
        return Err(not_found(&req.conversation_id).into());
    }
    sqlx::query("INSERT INTO members (conversation_id, user_id, joined_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(&req.conversation_id)
        .bind(&req.user_id)
        .bind(crate::now_ms())
        .execute(state.db().writer())
        .await
        .map_err(ServerError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

fn not_found(conversation: &str) -> ServerError {
    ServerError::refused(StatusCode::NOT_FOUND, "no_conversation", format!("no conversation {conversation:?}"))
}

/// The devices of a conversation's members, in order.
async fn devices_of(
    conversation: &str,
    exec: impl sqlx::Executor<'_, Database = sqlx::Any>,
) -> Result<Vec<Party>, ServerError> {
    let rows = sqlx::query(
        "SELECT d.user_id, d.device_id FROM members m JOIN devices d ON d.user_id = m.user_id \
         WHERE m.conversation_id = $1 ORDER BY d.user_id, d.device_id",
    )
    .bind(conversation)
    .fetch_all(exec)
    .await?;
    rows.iter().map(|r| Ok(Party { user_id: r.try_get("user_id")?, device_id: r.try_get("device_id")? })).collect()
}

async fn is_member(
    conversation: &str,
    user: &str,
    exec: impl sqlx::Executor<'_, Database = sqlx::Any>,
) -> Result<bool, ServerError> {
    Ok(sqlx::query("SELECT 1 AS one FROM members WHERE conversation_id = $1 AND user_id = $2")
        .bind(conversation)
        .bind(user)
        .fetch_optional(exec)
        .await?
        .is_some())
}

#[derive(Debug, serde::Deserialize)]
struct ConversationQuery {
    conversation_id: String,
}

/// `GET /v1/conversations/devices?conversation_id=`: the member devices a
/// member must encrypt each message for.
async fn member_devices(
    State(state): State<AppState>,
    Device(me): Device,
    Query(q): Query<ConversationQuery>,
) -> Result<Json<Vec<Party>>, AppError> {
    check_id("conversation_id", &q.conversation_id)?;
    if !is_member(&q.conversation_id, &me.user_id, state.db().reader()).await? {
        return Err(forbidden(&me, &q.conversation_id).into());
    }
    Ok(Json(devices_of(&q.conversation_id, state.db().reader()).await?))
}

fn forbidden(me: &Party, conversation: &str) -> ServerError {
    ServerError::refused(
        StatusCode::FORBIDDEN,
        "not_a_member",
        format!("{} is not a member of {conversation:?}", me.user_id),
    )
}

async fn send_message(
    State(state): State<AppState>,
    Device(sender): Device,
    ApiJson(req): ApiJson<SendRequest>,
) -> Result<Json<SendResponse>, AppError> {
    check_id("conversation_id", &req.conversation_id)?;
    if req.copies.len() > MAX_COPIES {
        return Err(bad_request("invalid", format!("at most {MAX_COPIES} copies")).into());
    }
    let mut copies = Vec::with_capacity(req.copies.len());
    for (i, c) in req.copies.iter().enumerate() {
        c.recipient.check().map_err(|e| bad_request("invalid", format!("copy {i}: {e}")))?;
        let ct = B64.decode(&c.ciphertext).map_err(|e| bad_request("invalid", format!("copy {i} ciphertext: {e}")))?;
        copies.push((c.recipient.clone(), ct));
    }
    let attachments: Vec<Vec<u8>> = req
        .attachments
        .iter()
        .enumerate()
        .map(|(i, a)| B64.decode(a).map_err(|e| bad_request("invalid", format!("attachment {i}: {e}"))))
        .collect::<Result<_, _>>()?;
    let size = copies.iter().map(|(_, c)| c.len()).max().unwrap_or(0) + attachments.iter().map(Vec::len).sum::<usize>();
    if size > MAX_RELAY_BYTES {
        return Err(ServerError::refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("message is {size} bytes (limit {MAX_RELAY_BYTES})"),
        )
        .into());
    }
    // Attachments are stored once per message (relay_attachments), not once
    // per copy, so what the relay stores is bounded by the request itself
    // (MAX_SEND_REQUEST_BYTES) however many devices the message fans out to.
    let attachments_blob = if req.attachments.is_empty() {
        None
    } else {
        Some(serde_json::to_vec(&req.attachments).map_err(|e| ServerError::Internal(e.to_string()))?)
    };
    let timestamp_ms = crate::now_ms();
    let loaded = state.platform_keys().for_tagging(state.db(), timestamp_ms).await?;
    let server_message_id = hex::encode(crate::secrets::random32()?.get(..16).unwrap_or_default());
    let mut tx = state.db().writer().begin().await.map_err(ServerError::from)?;
    // Membership, the copies, and the next sequence number, in one transaction.
    if !is_member(&req.conversation_id, &sender.user_id, &mut *tx).await? {
        let exists = sqlx::query("SELECT 1 AS one FROM conversations WHERE conversation_id = $1")
            .bind(&req.conversation_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(ServerError::from)?;
        return Err(if exists.is_some() {
            forbidden(&sender, &req.conversation_id)
        } else {
            not_found(&req.conversation_id)
        }
        .into());
    }
    let mut expected: Vec<Party> =
        devices_of(&req.conversation_id, &mut *tx).await?.into_iter().filter(|d| *d != sender).collect();
    expected.sort();
    let mut given: Vec<Party> = copies.iter().map(|(p, _)| p.clone()).collect();
    given.sort();
    if given != expected {
        let missing: Vec<String> = expected.iter().filter(|d| !given.contains(d)).map(ToString::to_string).collect();
        let extra: Vec<String> = given.iter().filter(|d| !expected.contains(d)).map(ToString::to_string).collect();
        return Err(bad_request(
            "copies",
            format!(
                "one copy per member device other than the sender's is needed; missing [{}], not members or repeated [{}]",
                missing.join(", "),
                extra.join(", ")
            ),
        )
        .into());
    }
    let sequence: i64 = sqlx::query(
        "UPDATE conversations SET last_sequence = last_sequence + 1 WHERE conversation_id = $1 RETURNING last_sequence",
    )
    .bind(&req.conversation_id)
    .fetch_one(&mut *tx)
    .await
    .and_then(|r| r.try_get("last_sequence"))
    .map_err(ServerError::from)?;
    let delivery_to = |recipient: &Party| DeliveryContext {
        conversation_id: req.conversation_id.clone(),
        sequence: u64::try_from(sequence).unwrap_or(0),
        sender: sender.clone(),
        recipient: recipient.clone(),
        timestamp_ms: u64::try_from(timestamp_ms).unwrap_or(0),
        server_message_id: server_message_id.clone(),
    };
    if let Some(blob) = &attachments_blob {
        sqlx::query("INSERT INTO relay_attachments (server_message_id, attachments) VALUES ($1, $2)")
            .bind(&server_message_id)
            .bind(blob.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(ServerError::from)?;
    }
    for (recipient, ciphertext) in &copies {
        let waiting: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM messages WHERE recipient_user = $1 AND recipient_device = $2")
                .bind(&recipient.user_id)
                .bind(&recipient.device_id)
                .fetch_one(&mut *tx)
                .await
                .and_then(|row| row.try_get("n"))
                .map_err(ServerError::from)?;
        if waiting >= state.config().relay_mailbox_limit {
            return Err(ServerError::refused(
                StatusCode::TOO_MANY_REQUESTS,
                "mailbox_full",
                format!("{recipient}'s mailbox holds {waiting} undelivered messages"),
            )
            .into());
        }
        let delivery = delivery_to(recipient);
        let franked = tag_copy(&state, loaded.keyring(), &req.commitment, &delivery)?;
        let mac = hex::decode(&franked.delivery_mac).map_err(|e| ServerError::Internal(e.to_string()))?;
        sqlx::query(
            "INSERT INTO messages (recipient_user, recipient_device, conversation, sequence, server_message_id, \
             sender_user, sender_device, timestamp_ms, ciphertext, attachments, commitment, key_id, mac, delivery_mac) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&recipient.user_id)
        .bind(&recipient.device_id)
        .bind(&req.conversation_id)
        .bind(sequence)
        .bind(&server_message_id)
        .bind(&sender.user_id)
        .bind(&sender.device_id)
        .bind(timestamp_ms)
        .bind(ciphertext.as_slice())
        .bind(&b""[..])
        .bind(req.commitment.0.to_vec())
        .bind(i64::from(franked.tag.key_id))
        .bind(franked.tag.mac.to_vec())
        .bind(mac)
        .execute(&mut *tx)
        .await
        .map_err(ServerError::from)?;
    }
    let own = delivery_to(&sender);
    let franked = tag_copy(&state, loaded.keyring(), &req.commitment, &own)?;
    tx.commit().await.map_err(ServerError::from)?;
    state.metrics().relayed.inc();
    state.metrics().tags.inc_by(u64::try_from(copies.len() + 1).unwrap_or(0));
    Ok(Json(SendResponse { delivery: own, franked }))
}

/// `GET /v1/messages?after=ID`.
#[derive(Debug, serde::Deserialize)]
struct FetchQuery {
    #[serde(default)]
    after: i64,
    limit: Option<i64>,
}

fn array32(bytes: &[u8], what: &str) -> Result<[u8; 32], ServerError> {
    bytes.try_into().map_err(|_| ServerError::Internal(format!("stored {what} is not 32 bytes")))
}

async fn fetch_messages(
    State(state): State<AppState>,
    Device(me): Device,
    Query(q): Query<FetchQuery>,
) -> Result<Json<Vec<Delivered>>, AppError> {
    let limit = q.limit.unwrap_or(MAX_FETCH).clamp(1, MAX_FETCH);
    let rows = sqlx::query(
        "SELECT m.id, m.conversation, m.sequence, m.server_message_id, m.sender_user, m.sender_device, \
         m.timestamp_ms, m.ciphertext, m.attachments, a.attachments AS shared_attachments, m.commitment, m.key_id, \
         m.mac, m.delivery_mac FROM messages m \
         LEFT JOIN relay_attachments a ON a.server_message_id = m.server_message_id \
         WHERE m.recipient_user = $1 AND m.recipient_device = $2 AND m.id > $3 ORDER BY m.id LIMIT $4",
    )
    .bind(&me.user_id)
    .bind(&me.device_id)
    .bind(q.after)
    .bind(limit)
    .fetch_all(state.db().reader())
    .await
    .map_err(ServerError::from)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let get_bytes = |c: &str| r.try_get::<Vec<u8>, _>(c).map_err(ServerError::from);
        // Shared (schema 3), or in the row itself (copies stored before), or none.
        let shared: Option<Vec<u8>> = r.try_get("shared_attachments").map_err(ServerError::from)?;
        let own = get_bytes("attachments")?;
        let attachments: Vec<String> = match shared.as_deref().or((!own.is_empty()).then_some(own.as_slice())) {
            Some(blob) => serde_json::from_slice(blob).map_err(|e| ServerError::Internal(e.to_string()))?,
            None => Vec::new(),
        };
        let key_id: i64 = r.try_get("key_id").map_err(ServerError::from)?;
        out.push(Delivered {
            id: r.try_get("id").map_err(ServerError::from)?,
            delivery: DeliveryContext {
                conversation_id: r.try_get("conversation").map_err(ServerError::from)?,
                sequence: u64::try_from(r.try_get::<i64, _>("sequence").map_err(ServerError::from)?).unwrap_or(0),
                sender: Party {
                    user_id: r.try_get("sender_user").map_err(ServerError::from)?,
                    device_id: r.try_get("sender_device").map_err(ServerError::from)?,
                },
                recipient: me.clone(),
                timestamp_ms: u64::try_from(r.try_get::<i64, _>("timestamp_ms").map_err(ServerError::from)?)
                    .unwrap_or(0),
                server_message_id: r.try_get("server_message_id").map_err(ServerError::from)?,
            },
            commitment: Commitment(array32(&get_bytes("commitment")?, "commitment")?),
            franked: Franked {
                tag: PlatformTag {
                    key_id: u32::try_from(key_id).unwrap_or(0),
                    mac: array32(&get_bytes("mac")?, "tag")?,
                },
                delivery_mac: hex::encode(get_bytes("delivery_mac")?),
            },
            ciphertext: B64.encode(get_bytes("ciphertext")?),
            attachments,
        });
    }
    Ok(Json(out))
}

async fn ack_messages(
    State(state): State<AppState>,
    Device(me): Device,
    ApiJson(req): ApiJson<AckRequest>,
) -> Result<StatusCode, AppError> {
    let mut tx = state.db().writer().begin().await.map_err(ServerError::from)?;
    let acked: Vec<String> = sqlx::query(
        "DELETE FROM messages WHERE recipient_user = $1 AND recipient_device = $2 AND id <= $3 \
         RETURNING server_message_id",
    )
    .bind(&me.user_id)
    .bind(&me.device_id)
    .bind(req.up_to)
    .fetch_all(&mut *tx)
    .await
    .map_err(ServerError::from)?
    .iter()
    .map(|r| r.try_get("server_message_id"))
    .collect::<Result<_, _>>()
    .map_err(ServerError::from)?;
    // An attachment goes when its message's last copy does.
    for id in std::collections::BTreeSet::from_iter(acked) {
        sqlx::query(
            "DELETE FROM relay_attachments WHERE server_message_id = $1 \
             AND NOT EXISTS (SELECT 1 FROM messages WHERE server_message_id = $1)",
        )
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(ServerError::from)?;
    }
    tx.commit().await.map_err(ServerError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn post_report(State(state): State<AppState>, req: axum::extract::Request) -> Response {
    let m = state.metrics();
    m.reports_received.inc();
    match intake(&state, req).await {
        Ok(received) => (StatusCode::ACCEPTED, Json(received)).into_response(),
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

async fn intake(state: &AppState, req: axum::extract::Request) -> Result<Received, ServerError> {
    // Authenticate and rate-limit from the headers, before the body is read
    // (so only a registered device can hold a share of the body budget) and
    // before any decryption.
    let reporter = device(state, req.headers()).await?;
    // Ids hold no control characters, so this key names one device only
    // ("a/b" + "c" and "a" + "b/c" differ).
    if state.inner.limits.reporters.check_key(&format!("{}\u{1f}{}", reporter.user_id, reporter.device_id)).is_err() {
        return Err(ServerError::refused(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "device {reporter} sent more than {} reports in a minute; retry later",
                state.config().reports_per_reporter_per_minute
            ),
        ));
    }
    let body = Body::from_request(req, state).await.map_err(|e| e.0)?.0;
    let verifier = state.clone();
    let keyring = state.platform_keys().keyring();
    let report_keys = state.report_keys().keyring();
    let now = u64::try_from(crate::now_ms()).unwrap_or(0);
    let who = reporter.clone();
    // At most `intake_concurrency` reports are opened at once, so the
    // blocking pool and memory stay bounded however many devices post.
    let slot = crate::guard::slot(&state.inner.intake_slots, "too many reports are being opened").await?;
    let max_pixels = state.config().max_decode_pixels;
    let outcome = tokio::task::spawn_blocking(move || {
        let outcome =
            crate::intake::verify(&body, &report_keys, &keyring, &who, now, &verifier.inner.banks, max_pixels);
        drop(slot);
        outcome
    })
    .await
    .map_err(|e| ServerError::Internal(e.to_string()))??;
    match outcome {
        crate::intake::Outcome::Ready(ready) => {
            let received = state.inner.intake.submit(*ready).await?;
            state.metrics().reports_accepted.inc();
            Ok(received)
        }
        crate::intake::Outcome::Unverified { report_id } => {
            state.metrics().reports_unverified.inc();
            Ok(Received { report_id, status: "received".into() })
        }
    }
}

async fn file_appeal(
    State(state): State<AppState>,
    _: Platform,
    ApiJson(req): ApiJson<frankly_api::AppealInput>,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    let id = crate::queue::appeal(state.db(), &req).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "appeal": id }))))
}
