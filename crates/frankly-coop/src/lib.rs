//! ROOST's Coop, from the platform side: frankly verifies reports and Coop
//! reviews them.
//!
//! - [`CoopReport`] is the body of Coop's report intake
//!   (`POST /api/v1/report`, `x-api-key`), built by [`coop_report`] from a
//!   verified report: the reported message as `reportedItem`, the rest of
//!   the conversation as `reportedItemThread`, and frankly's verdict on each
//!   message as an item of its own in `additionalItems`.
//! - [`CoopAction`] is the body of Coop's action webhooks, which Coop signs
//!   with RSASSA-PKCS1-v1_5 over SHA-256 of the exact body bytes and sends
//!   base64 in `coop-signature`; [`verify_action`] checks the signature
//!   before it parses anything.
//!
//! The shapes are read from Coop's source and documentation
//! (roostorg/coop: `server/routes/reporting/ReportingRoutes.ts`,
//! `server/rule_engine/ActionPublisher.ts`,
//! `server/services/networkingService`, `docs/api/`).

use base64::Engine;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;

/// Who reported (`reporter`): Coop only takes users.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoopReporter {
    /// Always `"user"`.
    pub kind: String,
    /// The USER item type's id in Coop.
    pub type_id: String,
    /// The user's id.
    pub id: String,
}

/// An item as Coop's intake takes it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoopItem {
    /// The item's id.
    pub id: String,
    /// Its item type's id in Coop.
    pub type_id: String,
    /// Its fields, as the item type declares them.
    pub data: serde_json::Value,
}

/// An item named by id and type.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoopItemRef {
    /// Its id.
    pub id: String,
    /// Its item type's id.
    pub type_id: String,
}

/// Why it was reported.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoopReason {
    /// A Coop policy id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    /// The reporter's reason, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Sends the job to Coop's NCMEC queue.
    pub csam: bool,
}

/// `POST /api/v1/report`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoopReport {
    /// The reporter.
    pub reporter: CoopReporter,
    /// When (ISO 8601).
    pub reported_at: String,
    /// Why (left out rather than null: Coop's schema refuses null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_for_reason: Option<CoopReason>,
    /// The reported message.
    pub reported_item: CoopItem,
    /// The conversation around it, oldest first (CONTENT items).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reported_item_thread: Vec<CoopItem>,
    /// Which thread items are reported.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reported_items_in_thread: Vec<CoopItemRef>,
    /// frankly's verdict on each message.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_items: Vec<CoopItem>,
}

/// Coop's item type ids for what frankly sends (config `[coop]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoopTypes {
    /// A USER type (reporters, senders).
    pub user: String,
    /// A CONTENT type for messages, with fields `text` (STRING),
    /// `sender` (RELATED_ITEM, role creatorId), `createdAt` (DATETIME),
    /// `conversation` (STRING), `sequence` (NUMBER), `franking` (STRING).
    pub message: String,
    /// A CONTENT type for verdicts, with fields `message` (STRING),
    /// `verdict` (STRING), `detail` (STRING), `createdAt` (DATETIME).
    pub verdict: String,
}

/// One message of a verified report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its sender's user id.
    pub sender: String,
    /// The conversation.
    pub conversation: String,
    /// The platform's sequence number.
    pub sequence: u64,
    /// The platform's timestamp (Unix ms).
    pub timestamp_ms: i64,
    /// Its text, if the report carries it.
    pub text: Option<String>,
    /// frankly's verdict: `verified`, `unopened` or `rejected`.
    pub verdict: String,
    /// What the verdict rests on, in words (the failed check, attachments' digests).
    pub detail: String,
}

/// A verified report as frankly stored it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedReport {
    /// The device's report id (hex).
    pub report_id: String,
    /// The reporter's user id.
    pub reporter: String,
    /// When the server received it (Unix ms).
    pub received_ms: i64,
    /// frankly's reason name (`harassment`, `child-safety`...).
    pub reason: String,
    /// The reporter's note.
    pub note: String,
    /// The messages, in the platform's order.
    pub messages: Vec<Message>,
    /// Index of the reported message.
    pub reported: usize,
    /// The platform's order of the verified messages, in words.
    pub order: String,
}

/// Unix milliseconds as ISO 8601 UTC with milliseconds, as Coop's
/// `DATETIME` fields and `reportedAt` take it.
pub fn iso(ms: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

/// The id frankly gives message `index` of report `report_id` in Coop:
/// what Coop's action webhooks name as their `item.id`.
pub fn message_id(report_id: &str, index: usize) -> String {
    format!("frankly:{report_id}:{index}")
}

/// The report and message index an item id of [`message_id`] names.
pub fn parse_message_id(id: &str) -> Option<(&str, usize)> {
    let rest = id.strip_prefix("frankly:")?;
    let (report, index) = rest.rsplit_once(':')?;
    Some((report, index.parse().ok()?))
}

/// Coop's report intake body for `report`.
pub fn coop_report(report: &VerifiedReport, types: &CoopTypes, policy: Option<&str>) -> CoopReport {
    let item = |i: usize, m: &Message| CoopItem {
        id: message_id(&report.report_id, i),
        type_id: types.message.clone(),
        data: serde_json::json!({
            "text": m.text.clone().unwrap_or_default(),
            "sender": {"id": m.sender, "typeId": types.user},
            "createdAt": iso(m.timestamp_ms),
            "conversation": m.conversation,
            "sequence": m.sequence,
            "franking": m.verdict,
        }),
    };
    let reported = report.reported.min(report.messages.len().saturating_sub(1));
    let thread: Vec<CoopItem> =
        report.messages.iter().enumerate().filter(|(i, _)| *i != reported).map(|(i, m)| item(i, m)).collect();
    let verdicts = report
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| CoopItem {
            id: format!("{}:verdict", message_id(&report.report_id, i)),
            type_id: types.verdict.clone(),
            data: serde_json::json!({
                "message": message_id(&report.report_id, i),
                "verdict": m.verdict,
                "detail": if i == reported { format!("{} (the reported message); order: {}", m.detail, report.order) } else { m.detail.clone() },
                "createdAt": iso(report.received_ms),
            }),
        })
        .collect();
    let words =
        if report.note.is_empty() { report.reason.clone() } else { format!("{}: {}", report.reason, report.note) };
    CoopReport {
        reporter: CoopReporter { kind: "user".into(), type_id: types.user.clone(), id: report.reporter.clone() },
        reported_at: iso(report.received_ms),
        reported_for_reason: Some(CoopReason {
            policy_id: policy.map(str::to_string),
            reason: Some(words),
            csam: report.reason == "child-safety",
        }),
        reported_item: report.messages.get(reported).map(|m| item(reported, m)).unwrap_or_else(|| CoopItem {
            id: message_id(&report.report_id, 0),
            type_id: types.message.clone(),
            data: serde_json::json!({}),
        }),
        reported_item_thread: thread,
        reported_items_in_thread: Vec::new(),
        additional_items: verdicts,
    }
}

/// Coop's webhook `item`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionItem {
    /// The item's id.
    pub id: String,
    /// Its type's id.
    pub type_id: String,
    /// Its type's name.
    #[serde(default)]
    pub type_name: String,
}

/// A policy the action was taken under.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActionPolicy {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// NONE, LOW, MEDIUM, HIGH or SEVERE.
    #[serde(default)]
    pub penalty: String,
}

/// A rule that triggered the action.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActionRule {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// The action's id.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActionRef {
    /// Its id (Coop sends no name).
    pub id: String,
}

/// The body of Coop's action webhook.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoopAction {
    /// The item acted on.
    pub item: ActionItem,
    /// The policies.
    #[serde(default)]
    pub policies: Vec<ActionPolicy>,
    /// The rules (empty for a moderator's decision).
    #[serde(default)]
    pub rules: Vec<ActionRule>,
    /// The action.
    pub action: ActionRef,
    /// The action's own parameters.
    #[serde(default)]
    pub custom: serde_json::Map<String, serde_json::Value>,
    /// The moderator, for a moderator's decision.
    #[serde(default)]
    pub actor_email: Option<String>,
    /// The moderator's note.
    #[serde(default)]
    pub actor_note: Option<String>,
    /// The item's author.
    #[serde(default)]
    pub creator: Option<CoopItemRef>,
    /// The decision's reason.
    #[serde(default)]
    pub decision_reason: Option<String>,
    /// The author's strikes in Coop after this action.
    #[serde(default)]
    pub user_strike_count: Option<i64>,
}

/// Why a webhook was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoopError {
    /// Coop's public key cannot be read.
    #[error("Coop's public key: {0}")]
    BadKey(String),
    /// No `coop-signature` (Coop sends a webhook unsigned when its signing fails).
    #[error("no coop-signature header")]
    Unsigned,
    /// The signature does not verify.
    #[error("the coop-signature does not verify")]
    BadSignature,
    /// The body is not Coop's action shape.
    #[error("not a Coop action webhook: {0}")]
    BadBody(String),
}

/// Coop's webhook signing key: the PEM Coop shows (SPKI, its base64 on one
/// line, which strict PEM readers refuse: so the armour is stripped and the
/// DER decoded), or the DER itself.
pub struct CoopKey(rsa::pkcs1v15::VerifyingKey<sha2::Sha256>);

impl std::fmt::Debug for CoopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CoopKey(RSA public key)")
    }
}

/// Most bytes of a key file read.
pub const MAX_KEY_BYTES: usize = 16 * 1024;

impl CoopKey {
    /// Reads a PEM (`-----BEGIN PUBLIC KEY-----`, any line length) or DER key.
    pub fn parse(bytes: &[u8]) -> Result<CoopKey, CoopError> {
        if bytes.len() > MAX_KEY_BYTES {
            return Err(CoopError::BadKey(format!("{} bytes (limit {MAX_KEY_BYTES})", bytes.len())));
        }
        let der = match std::str::from_utf8(bytes) {
            Ok(text) if text.contains("-----BEGIN PUBLIC KEY-----") => {
                let body: String = text
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .flat_map(|l| l.chars())
                    .filter(|c| !c.is_whitespace())
                    .collect();
                base64::engine::general_purpose::STANDARD.decode(body).map_err(|e| CoopError::BadKey(e.to_string()))?
            }
            _ => bytes.to_vec(),
        };
        let key = rsa::PublicKey::from_public_key_der(&der).map_err(|e| CoopError::BadKey(e.to_string()))?;
        Ok(CoopKey(rsa::pkcs1v15::VerifyingKey::new(key)))
    }
}

/// Verifies `signature` (the `coop-signature` header, base64) over the
/// exact `body` bytes, then parses the body.
pub fn verify_action(key: &CoopKey, body: &[u8], signature: Option<&str>) -> Result<CoopAction, CoopError> {
    let signature = signature.ok_or(CoopError::Unsigned)?;
    let raw =
        base64::engine::general_purpose::STANDARD.decode(signature.trim()).map_err(|_| CoopError::BadSignature)?;
    let signature = rsa::pkcs1v15::Signature::try_from(raw.as_slice()).map_err(|_| CoopError::BadSignature)?;
    key.0.verify(body, &signature).map_err(|_| CoopError::BadSignature)?;
    serde_json::from_slice(body).map_err(|e| CoopError::BadBody(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_round_trip() {
        let id = message_id("00ff", 3);
        assert_eq!(parse_message_id(&id), Some(("00ff", 3)));
        assert_eq!(parse_message_id("post-991"), None);
        assert_eq!(parse_message_id("frankly:00ff:x"), None);
        assert_eq!(iso(1_773_480_067_123), "2026-03-14T09:21:07.123Z");
    }
}
