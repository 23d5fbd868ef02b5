//! Commitments, platform tags, and their verification.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::FrankingError;
use crate::encoding::{COMMIT_DOMAIN, MAX_ID_BYTES, TAG_DOMAIN, put_lp};
use crate::keys::{FrankingKey, Keyring};

type HmacSha256 = Hmac<Sha256>;

/// A franking commitment `c`: 32 bytes, sent beside the ciphertext and
/// authenticated by the E2EE layer as associated data.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
pub struct Commitment(#[serde(with = "hex32")] pub [u8; 32]);

/// A platform tag over a commitment and its delivery context.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
pub struct PlatformTag {
    /// Which platform key made it.
    pub key_id: u32,
    /// `HMAC-SHA256(K_p[key_id], tag input)`.
    #[serde(with = "hex32")]
    pub mac: [u8; 32],
}

/// What the sender commits to besides the body.
#[derive(Clone, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
pub struct MessageContext {
    /// The conversation (group or one-to-one) the message belongs to.
    pub conversation_id: String,
    /// The sender's identity as the E2EE layer authenticates it.
    pub sender_id: String,
    /// The sender's id for this message.
    pub message_id: String,
    /// The sender's per-conversation message counter, from 0, without gaps.
    pub sequence: u64,
    /// The commitment of the last message the sender had seen in the
    /// conversation (theirs or anyone's), `None` for the first.
    pub previous: Option<Commitment>,
}

/// What the delivery service binds into its tag (it never sees the body).
#[derive(Clone, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
pub struct DeliveryContext {
    /// The sender, as the platform authenticated the connection.
    pub sender_id: String,
    /// The conversation the platform delivered the message in.
    pub conversation_id: String,
    /// When the platform received it, Unix milliseconds.
    pub timestamp_ms: u64,
    /// The platform's id for the delivered message.
    pub server_message_id: String,
}

fn check_id(field: &'static str, value: &str) -> Result<(), FrankingError> {
    if value.len() > MAX_ID_BYTES {
        return Err(FrankingError::FieldTooLong { field, len: value.len(), limit: MAX_ID_BYTES });
    }
    Ok(())
}

impl MessageContext {
    /// The encoded context: `lp(conversation) || lp(sender) || lp(message id)
    /// || u64be(sequence) || 0x00` or `|| 0x01 || previous commitment`.
    pub fn encode(&self) -> Result<Vec<u8>, FrankingError> {
        check_id("conversation_id", &self.conversation_id)?;
        check_id("sender_id", &self.sender_id)?;
        check_id("message_id", &self.message_id)?;
        let mut out =
            Vec::with_capacity(64 + self.conversation_id.len() + self.sender_id.len() + self.message_id.len());
        put_lp(&mut out, self.conversation_id.as_bytes());
        put_lp(&mut out, self.sender_id.as_bytes());
        put_lp(&mut out, self.message_id.as_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        match &self.previous {
            None => out.push(0),
            Some(c) => {
                out.push(1);
                out.extend_from_slice(&c.0);
            }
        }
        Ok(out)
    }
}

impl DeliveryContext {
    /// The tag input after the domain: `u32be(key_id) || c || lp(sender) ||
    /// lp(conversation) || u64be(timestamp_ms) || lp(server message id)`.
    pub fn encode(&self, key_id: u32, commitment: &Commitment) -> Result<Vec<u8>, FrankingError> {
        check_id("sender_id", &self.sender_id)?;
        check_id("conversation_id", &self.conversation_id)?;
        check_id("server_message_id", &self.server_message_id)?;
        let mut out = Vec::with_capacity(96 + self.sender_id.len() + self.conversation_id.len());
        out.extend_from_slice(&key_id.to_be_bytes());
        out.extend_from_slice(&commitment.0);
        put_lp(&mut out, self.sender_id.as_bytes());
        put_lp(&mut out, self.conversation_id.as_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        put_lp(&mut out, self.server_message_id.as_bytes());
        Ok(out)
    }
}

fn commit_mac(key: &FrankingKey, context: &MessageContext, body: &[u8]) -> Result<HmacSha256, FrankingError> {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key.as_bytes()).map_err(|_| FrankingError::Internal)?;
    mac.update(COMMIT_DOMAIN);
    mac.update(&context.encode()?);
    mac.update(body);
    Ok(mac)
}

/// The sender's commitment `c = HMAC-SHA256(k_f, domain || context || body)`.
pub fn commit(key: &FrankingKey, context: &MessageContext, body: &[u8]) -> Result<Commitment, FrankingError> {
    Ok(Commitment(commit_mac(key, context, body)?.finalize().into_bytes().into()))
}

/// Checks an opening `(k_f, context, body)` against a commitment, in
/// constant time.
pub fn verify_commitment(
    commitment: &Commitment,
    key: &FrankingKey,
    context: &MessageContext,
    body: &[u8],
) -> Result<(), FrankingError> {
    commit_mac(key, context, body)?.verify_slice(&commitment.0).map_err(|_| FrankingError::CommitmentMismatch)
}

fn tag_mac(
    key: &[u8; 32],
    key_id: u32,
    commitment: &Commitment,
    delivery: &DeliveryContext,
) -> Result<HmacSha256, FrankingError> {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).map_err(|_| FrankingError::Internal)?;
    mac.update(TAG_DOMAIN);
    mac.update(&delivery.encode(key_id, commitment)?);
    Ok(mac)
}

/// The delivery service's tag on a commitment, with the key that covers the
/// message's timestamp.
pub fn tag(
    keyring: &Keyring,
    commitment: &Commitment,
    delivery: &DeliveryContext,
) -> Result<PlatformTag, FrankingError> {
    let key = keyring.signing_key(delivery.timestamp_ms)?;
    let mac = tag_mac(key.secret(), key.id(), commitment, delivery)?.finalize().into_bytes().into();
    Ok(PlatformTag { key_id: key.id(), mac })
}

/// Checks a platform tag: known key id, covering the timestamp, MAC equal in
/// constant time.
pub fn verify_tag(
    keyring: &Keyring,
    tag: &PlatformTag,
    commitment: &Commitment,
    delivery: &DeliveryContext,
) -> Result<(), FrankingError> {
    let key = keyring.verifying_key(tag.key_id, delivery.timestamp_ms)?;
    tag_mac(key.secret(), key.id(), commitment, delivery)?
        .verify_slice(&tag.mac)
        .map_err(|_| FrankingError::TagMismatch)
}

/// A message the recipient's device accepted: its commitment opened, and the
/// committed sender is the peer the E2EE layer authenticated. Only
/// [`receive`] constructs it; anything a recipient accepts is reportable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedMessage {
    context: MessageContext,
    commitment: Commitment,
}

impl AcceptedMessage {
    /// The committed context.
    pub fn context(&self) -> &MessageContext {
        &self.context
    }

    /// The commitment.
    pub fn commitment(&self) -> &Commitment {
        &self.commitment
    }
}

/// The recipient's check after decryption: recompute the commitment over the
/// decrypted body and context, compare it in constant time with the `c` the
/// E2EE layer authenticated, and check that the committed sender is the
/// authenticated peer and the committed conversation the one it arrived in.
pub fn receive(
    commitment: &Commitment,
    key: &FrankingKey,
    context: &MessageContext,
    body: &[u8],
    authenticated_peer: &str,
    conversation_id: &str,
) -> Result<AcceptedMessage, FrankingError> {
    verify_commitment(commitment, key, context, body)?;
    if !bool::from(context.sender_id.as_bytes().ct_eq(authenticated_peer.as_bytes())) {
        return Err(FrankingError::SenderMismatch {
            committed: context.sender_id.clone(),
            authenticated: authenticated_peer.to_string(),
        });
    }
    if context.conversation_id != conversation_id {
        return Err(FrankingError::ConversationMismatch {
            committed: context.conversation_id.clone(),
            delivered: conversation_id.to_string(),
        });
    }
    Ok(AcceptedMessage { context: context.clone(), commitment: *commitment })
}

/// Checks that `messages` (oldest first, each with its commitment) form an
/// unbroken chain: every message's `previous` is the commitment of the
/// message before it in the list, and each sender's sequence numbers
/// increase by one from their first appearance.
pub fn verify_chain(messages: &[(MessageContext, Commitment)]) -> Result<(), FrankingError> {
    let mut last_sequence: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for (i, (context, _)) in messages.iter().enumerate() {
        if i > 0 {
            let expected = messages[i - 1].1;
            if context.previous != Some(expected) {
                return Err(FrankingError::BrokenChain { index: i });
            }
            if context.conversation_id != messages[0].0.conversation_id {
                return Err(FrankingError::BrokenChain { index: i });
            }
        }
        if let Some(prev) = last_sequence.insert(&context.sender_id, context.sequence)
            && context.sequence != prev + 1
        {
            return Err(FrankingError::SequenceGap { index: i, expected: prev + 1, found: context.sequence });
        }
    }
    Ok(())
}

mod hex32 {
    pub(super) fn serialize<S: serde::Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(text.as_ref(), &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}
