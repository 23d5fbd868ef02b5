//! The JSON wire types of frankly's server, for its clients: a platform's
//! backend, a messenger, a test. They are what `frankly-server` reads and
//! writes, so a client that links this crate (serde and the franking types
//! only) speaks the server's API without linking axum, sqlx or argon2.
//!
//! - Tagging and relay (`/v1/frank`, `/v1/devices`, `/v1/conversations`,
//!   `/v1/messages`): [`FrankRequest`], [`DeviceRequest`], [`SendRequest`],
//!   [`Delivered`] and their answers, with the limits the server enforces.
//! - Report intake (`/v1/reports`) answers [`Received`], the same for
//!   every report it could open (the server is no verification oracle).
//! - Appeals (`/v1/appeals`): [`AppealInput`].
//! - Every refusal is an [`ErrorBody`] with a stable code.
//! - The moderation API (`/api/v1/`): [`moderation`].

pub mod moderation;

use frankly_franking::{Commitment, DeliveryContext, Party, PlatformTag};

/// Largest relayed message (ciphertext plus attachments), in bytes.
pub const MAX_RELAY_BYTES: usize = 16 << 20;

/// Largest `POST /v1/messages` body: the copies and attachments in base64
/// (4/3 of their size) inside JSON.
pub const MAX_SEND_REQUEST_BYTES: usize = MAX_RELAY_BYTES * 2;

/// Most messages returned by one `GET /v1/messages`.
pub const MAX_FETCH: i64 = 100;

/// The public keys devices are configured with.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct PublicKeys {
    /// The id of the report key devices seal to (the envelope header names it).
    pub report_key_id: u32,
    /// X25519 key that reports are sealed to, hex.
    pub report_public_key: String,
}

/// A tag and the delivery MAC for one copy.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Franked {
    /// The tag with its key id.
    pub tag: PlatformTag,
    /// HMAC under the recipient device's key over the tag and delivery, hex.
    pub delivery_mac: String,
}

/// `POST /v1/frank`: for a platform that runs its own relay, a commitment
/// and the delivery context of one copy, which the platform vouches for
/// (membership, sequence number, recipient).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrankRequest {
    /// The commitment, hex.
    pub commitment: Commitment,
    /// What the tag binds.
    pub delivery: DeliveryContext,
}

/// `POST /v1/devices`: the platform registers a device of a user.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRequest {
    /// The user the device belongs to.
    pub user_id: String,
    /// The device's id, unique among the user's devices.
    pub device_id: String,
}

/// A device's credentials, shown once.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct DeviceResponse {
    /// The bearer token, hex; the server keeps only its hash.
    pub token: String,
    /// The device's delivery-MAC key, hex (derived, not stored).
    pub device_key: String,
}

/// `POST /v1/conversations`: the platform creates a conversation with its members.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationRequest {
    /// The conversation.
    pub conversation_id: String,
    /// Its members (users; all their devices take part).
    pub members: Vec<String>,
}

/// Most members of one conversation.
pub const MAX_MEMBERS: usize = 256;

/// `POST /v1/conversations/members`: the platform adds a member (who sees
/// messages from the next sequence number on).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    /// The conversation.
    pub conversation_id: String,
    /// The user joining.
    pub user_id: String,
}

/// One device's copy of a message.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Copy {
    /// The recipient device.
    pub recipient: Party,
    /// Its E2EE ciphertext, base64.
    pub ciphertext: String,
}

/// `POST /v1/messages`: a message for every other device of the
/// conversation's members.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The conversation.
    pub conversation_id: String,
    /// One copy per member device other than the sender's: exactly those.
    pub copies: Vec<Copy>,
    /// Separately encrypted attachments, base64 (shared by every copy).
    #[serde(default)]
    pub attachments: Vec<String>,
    /// The franking commitment, hex.
    pub commitment: Commitment,
}

/// What the relay bound and tagged, for the sender's own copy.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SendResponse {
    /// The sender's copy's delivery context (sequence number, time, ids).
    pub delivery: DeliveryContext,
    /// Its tag and delivery MAC.
    pub franked: Franked,
}

/// Most copies of one message.
pub const MAX_COPIES: usize = 1024;

/// One delivered copy.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Delivered {
    /// The relay's mailbox position for this device (use as `after`).
    pub id: i64,
    /// The delivery context.
    pub delivery: DeliveryContext,
    /// The commitment.
    pub commitment: Commitment,
    /// Tag and delivery MAC.
    pub franked: Franked,
    /// Ciphertext, base64.
    pub ciphertext: String,
    /// Attachments, base64.
    pub attachments: Vec<String>,
}

/// `POST /v1/messages/ack`: drop delivered messages up to an id.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// The last id the device has stored.
    pub up_to: i64,
}

/// The answer to every report that an authenticated device submitted and
/// the server could open: the same whether its messages verified, failed,
/// or repeat an earlier report, so the server is no verification oracle.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Received {
    /// The report's id, hex.
    pub report_id: String,
    /// Always `"received"`.
    pub status: String,
}

/// An appeal as the platform submits it.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppealInput {
    /// The device's report id.
    pub report_id: String,
    /// Who appeals (the reported user or the reporter).
    pub appellant: String,
    /// Their statement.
    pub statement: String,
}

/// The JSON body of an API error.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// A stable code.
    pub error: String,
    /// What went wrong.
    pub message: String,
    /// The index (in the report, oldest first) of the message that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_index: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_refuse_unknown_fields_and_errors_omit_an_absent_index() {
        let e = serde_json::from_str::<AckRequest>(r#"{"up_to": 3, "admin": true}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `admin`"), "{e}");
        let body = ErrorBody { error: "replay".into(), message: "seen".into(), message_index: None };
        assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"error":"replay","message":"seen"}"#);
        let appeal: AppealInput =
            serde_json::from_str(r#"{"report_id": "ab", "appellant": "bob", "statement": "no"}"#).unwrap();
        assert_eq!(appeal.appellant, "bob");
    }
}
