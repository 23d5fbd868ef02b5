//! ROOST's Coop beside frankly: frankly takes reports in and verifies them,
//! Coop reviews them.
//!
//! - **Forwarding**: a webhook endpoint with `format = "coop"` gets each
//!   `report.created` as Coop's report intake body (`frankly_coop`), built
//!   from the stored report at delivery, with the org's `x-api-key`; it
//!   rides the webhook deliverer (at least once, backoff, dead letters).
//! - **Action webhooks**: `POST /v1/coop/actions` takes Coop's signed
//!   action callbacks as the platform would. The `coop-signature` is
//!   verified against Coop's public key before the body is parsed; the
//!   item must be a message frankly forwarded, the action one mapped in
//!   `[coop.actions]`; the decision is recorded as the configured account's,
//!   under the same rules as any decision of that account, audited, and
//!   the same body twice is answered with the first outcome.

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::http::StatusCode;
use frankly_review::{Action, DecisionInput, Ground, ReviewError};
use sqlx::Row;

use crate::{ServerError, StoredVerdict};

/// `[coop]`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CoopConfig {
    /// A file (mode 0600) holding the Coop org's API key, sent as `x-api-key`.
    pub api_key_file: Option<PathBuf>,
    /// Coop's USER item type id (reporters, senders).
    pub user_type_id: String,
    /// Coop's CONTENT item type id for messages (fields `text`, `sender`,
    /// `createdAt`, `conversation`, `sequence`, `franking`).
    pub message_type_id: String,
    /// Coop's CONTENT item type id for frankly's verdicts (fields
    /// `message`, `verdict`, `detail`, `createdAt`).
    pub verdict_type_id: String,
    /// frankly reason name to Coop policy id (`reportedForReason.policyId`).
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
    /// Coop's webhook signing key (its PEM, from Settings, API Keys):
    /// without it, `/v1/coop/actions` is not served.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// The frankly account Coop's actions are recorded as (its role's
    /// rules apply, as to a person's decisions).
    #[serde(default)]
    pub account: Option<String>,
    /// Coop action id to frankly action (`remove`, `warn`, `suspend`,
    /// `dismiss`...).
    #[serde(default)]
    pub actions: BTreeMap<String, Action>,
}

fn read_small(path: &std::path::Path, what: &str) -> Result<Vec<u8>, ServerError> {
    let bad = |m: String| ServerError::Config(format!("{what} {}: {m}", path.display()));
    let len = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?.len();
    if len > frankly_coop::MAX_KEY_BYTES as u64 {
        return Err(bad(format!("{len} bytes (limit {})", frankly_coop::MAX_KEY_BYTES)));
    }
    std::fs::read(path).map_err(|e| bad(e.to_string()))
}

/// The org's API key, from its 0600 file.
pub(crate) fn api_key(config: &CoopConfig) -> Result<zeroize::Zeroizing<String>, ServerError> {
    let path =
        config.api_key_file.as_ref().ok_or_else(|| ServerError::Config("[coop] api_key_file is not set".into()))?;
    crate::secrets::check_private(path)?;
    let bytes = zeroize::Zeroizing::new(read_small(path, "[coop] api_key_file")?);
    let text =
        std::str::from_utf8(&bytes).map_err(|_| ServerError::Config("[coop] api_key_file is not text".into()))?;
    Ok(zeroize::Zeroizing::new(text.trim().to_string()))
}

/// Coop's public key (`AppState::open` reads it once).
pub(crate) fn public_key(config: &CoopConfig) -> Result<Option<frankly_coop::CoopKey>, ServerError> {
    let Some(path) = &config.public_key_file else { return Ok(None) };
    let bytes = read_small(path, "[coop] public_key_file")?;
    frankly_coop::CoopKey::parse(&bytes)
        .map(Some)
        .map_err(|e| ServerError::Config(format!("[coop] public_key_file: {e}")))
}

/// Coop's report intake body for the report a `report.created` event
/// names (its body as stored).
pub(crate) async fn intake_body(db: &crate::Db, event: &[u8], config: &CoopConfig) -> Result<Vec<u8>, String> {
    let event: serde_json::Value = serde_json::from_slice(event).map_err(|e| format!("event: {e}"))?;
    let id = event["data"]["report"].as_i64().ok_or("the event names no report")?;
    let row = sqlx::query("SELECT content, received_ms FROM reports WHERE id = $1")
        .bind(id)
        .fetch_optional(db.reader())
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("report {id} is gone"))?;
    let content: Vec<u8> = row.try_get("content").map_err(|e| e.to_string())?;
    let received_ms: i64 = row.try_get("received_ms").map_err(|e| e.to_string())?;
    let stored = crate::queue::stored_report(id, &content).map_err(|e| e.to_string())?;
    let attachments = crate::attachments::of_report(db, id).await.map_err(|e| e.to_string())?;
    let report = &stored.report;
    let messages = report
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let body = m.opening.as_ref().and_then(|o| frankly_franking::Body::decode(&o.body).ok());
            let (verdict, mut detail) = match stored.verdicts.get(i) {
                Some(StoredVerdict::Verified) => ("verified", "the sender's commitment opens to this text and these attachments, and the platform's tag binds it to sender, recipient, conversation, sequence and time".to_string()),
                Some(StoredVerdict::Unopened) => ("unopened", "delivered (the platform's tag verifies), refused on the reporter's device: content unknown".to_string()),
                Some(StoredVerdict::Rejected(why)) => ("rejected", format!("not verified: {why}")),
                None => ("rejected", "no verdict stored".to_string()),
            };
            for a in attachments.iter().filter(|a| a.message == i) {
                detail.push_str(&format!("; attachment {} ({} bytes, SHA-256 {})", a.attachment, a.size, a.sha256));
            }
            frankly_coop::Message {
                sender: m.delivery.sender.user_id.clone(),
                conversation: m.delivery.conversation_id.clone(),
                sequence: m.delivery.sequence,
                timestamp_ms: i64::try_from(m.delivery.timestamp_ms).unwrap_or(i64::MAX),
                text: body.map(|b| b.text),
                verdict: verdict.to_string(),
                detail,
            }
        })
        .collect();
    let verified = frankly_coop::VerifiedReport {
        report_id: hex::encode(report.report_id),
        reporter: report.reporter.user_id.clone(),
        received_ms,
        reason: report.reason.name().to_string(),
        note: report.note.clone(),
        messages,
        reported: usize::from(report.reported),
        order: stored.order_summary(),
    };
    let types = frankly_coop::CoopTypes {
        user: config.user_type_id.clone(),
        message: config.message_type_id.clone(),
        verdict: config.verdict_type_id.clone(),
    };
    let policy = config.policies.get(report.reason.name()).map(String::as_str);
    serde_json::to_vec(&frankly_coop::coop_report(&verified, &types, policy)).map_err(|e| e.to_string())
}

/// The decision a Coop action stands for: its mapped action, with the
/// statement of reasons from what Coop sends.
fn decision_of(action: &frankly_coop::CoopAction, mapped: Action) -> DecisionInput {
    let actor = action.actor_email.as_deref().unwrap_or("a Coop rule");
    let mut facts: Vec<String> = Vec::new();
    facts.extend(action.decision_reason.iter().cloned());
    facts.extend(action.actor_note.iter().cloned());
    facts.push(format!("Coop action {} by {actor}", action.action.id));
    let policies: Vec<String> = action.policies.iter().map(|p| format!("Coop policy {} ({})", p.name, p.id)).collect();
    DecisionInput {
        action: mapped,
        restriction: None,
        facts: facts.join("; "),
        automated_detection: !action.rules.is_empty(),
        ground: Ground::Terms,
        ground_reference: if policies.is_empty() {
            format!("Coop action {}", action.action.id)
        } else {
            policies.join(", ")
        },
        redress: None,
    }
}

fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> ServerError {
    ServerError::refused(status, code, message)
}

/// Takes one signed action webhook: verifies, maps, records; returns
/// `(report, decision)`.
pub(crate) async fn take_action(
    state: &crate::AppState,
    key: &frankly_coop::CoopKey,
    body: &[u8],
    signature: Option<&str>,
) -> Result<serde_json::Value, ServerError> {
    use frankly_coop::CoopError;
    let action = frankly_coop::verify_action(key, body, signature).map_err(|e| match e {
        CoopError::BadBody(_) => refused(StatusCode::BAD_REQUEST, "invalid", e.to_string()),
        _ => refused(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()),
    })?;
    let Some(config) = state.config().coop.as_ref() else {
        return Err(refused(StatusCode::NOT_FOUND, "not_found", "Coop is not configured"));
    };
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body));
    let db = state.db();
    if let Some(seen) = sqlx::query("SELECT outcome FROM coop_actions WHERE body_sha256 = $1")
        .bind(&digest)
        .fetch_optional(db.reader())
        .await?
    {
        let outcome: String = seen.try_get("outcome")?;
        return serde_json::from_str(&outcome).map_err(|e| ServerError::Internal(e.to_string()));
    }
    let (report_id, _) = frankly_coop::parse_message_id(&action.item.id).ok_or_else(|| {
        refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_a_frankly_item",
            format!("item {:?} was not forwarded by frankly", action.item.id),
        )
    })?;
    let mapped = *config.actions.get(&action.action.id).ok_or_else(|| {
        refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unmapped_action",
            format!("Coop action {:?} is not in [coop.actions]", action.action.id),
        )
    })?;
    let account = config.account.as_deref().unwrap_or_default();
    let user = crate::auth::account_by_name(db, account)
        .await?
        .ok_or_else(|| ServerError::Config(format!("[coop] account {account:?} is not an enabled account")))?;
    let id: i64 = sqlx::query("SELECT id FROM reports WHERE report_id = $1")
        .bind(report_id)
        .fetch_optional(db.reader())
        .await?
        .ok_or(ReviewError::NotFound("report"))?
        .try_get("id")?;
    let input = decision_of(&action, mapped);
    let summary = serde_json::json!({
        "coop_action": action.action.id,
        "actor": action.actor_email,
        "item": action.item.id,
        "body_sha256": digest,
    })
    .to_string();
    let (_, mut outcomes) =
        crate::queue::decide_batch(db, &user, &[id], &input, state.config().strike_days, "coop-action", &summary)
            .await?;
    let (_, outcome) = outcomes.pop().ok_or_else(|| ServerError::Internal("no outcome".into()))?;
    let decided = outcome.map_err(ServerError::from)?;
    state.metrics().decided(mapped.name(), decided.latency_ms);
    let answer = serde_json::json!({"report": id, "decision": decided.decision, "action": mapped});
    sqlx::query(
        "INSERT INTO coop_actions (body_sha256, report, decision, outcome, received_ms) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&digest)
    .bind(id)
    .bind(decided.decision)
    .bind(answer.to_string())
    .bind(crate::now_ms())
    .execute(db.writer())
    .await?;
    Ok(answer)
}

/// `POST /v1/coop/actions`, served when `[coop] public_key_file` is set.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    axum::Router::new().route("/v1/coop/actions", axum::routing::post(action_webhook))
}

async fn action_webhook(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    headers: axum::http::HeaderMap,
    crate::api::Body(body): crate::api::Body,
) -> Result<axum::Json<serde_json::Value>, crate::AppError> {
    let key =
        state.inner.coop_key.as_ref().ok_or_else(|| refused(StatusCode::NOT_FOUND, "not_found", "no Coop key"))?;
    let signature = headers.get("coop-signature").and_then(|v| v.to_str().ok());
    Ok(axum::Json(take_action(&state, key, &body, signature).await?))
}
