//! Commitments, platform tags, the recipient's check and the ordering of
//! verified messages.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::FrankingError;
use crate::encoding::{COMMIT_DOMAIN, Reader, TAG_DOMAIN, check_id, put_lp};
use crate::keys::{FrankingKey, Keyring};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// A franking commitment `c`: 32 bytes, sent beside the ciphertext and
/// bound to it by the E2EE layer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize, serde::Deserialize)]
pub struct Commitment(#[serde(with = "hex32")] pub [u8; 32]);

/// A platform tag over a commitment and its delivery to one device.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
pub struct PlatformTag {
    /// Which platform key made it.
    pub key_id: u32,
    /// `HMAC-SHA256(K_p[key_id], tag_input)`.
    #[serde(with = "hex32")]
    pub mac: [u8; 32],
}

/// A user's device, as the platform authenticates it: the user and one of
/// their devices. Each device has its own E2EE sessions, its own copy of
/// every message and its own tags.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    /// The user (account).
    pub user_id: String,
    /// The device of that user.
    pub device_id: String,
}

impl Party {
    /// `user_id` on device `device_id`.
    pub fn new(user_id: &str, device_id: &str) -> Party {
        Party { user_id: user_id.to_owned(), device_id: device_id.to_owned() }
    }

    /// Checks both identifiers.
    pub fn check(&self) -> Result<(), FrankingError> {
        check_id("user_id", &self.user_id)?;
        check_id("device_id", &self.device_id)
    }

    fn put(&self, out: &mut Vec<u8>) {
        put_lp(out, self.user_id.as_bytes());
        put_lp(out, self.device_id.as_bytes());
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Party, FrankingError> {
        Ok(Party { user_id: r.id("user_id")?, device_id: r.id("device_id")? })
    }

    /// Compares in constant time over the encodings.
    fn ct_eq(&self, other: &Party) -> bool {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        self.put(&mut a);
        other.put(&mut b);
        a.len() == b.len() && bool::from(a.ct_eq(&b))
    }
}

impl std::fmt::Display for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.user_id, self.device_id)
    }
}

/// What the sender commits to besides the body. Nothing here orders
/// messages: the platform does that ([`DeliveryContext::sequence`]), so a
/// sender cannot poison the order of a conversation.
#[derive(Clone, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
pub struct MessageContext {
    /// The conversation (group or one-to-one) the message belongs to.
    pub conversation_id: String,
    /// The sending device.
    pub sender: Party,
    /// The sender's id for this message, unique among its messages in the
    /// conversation (recipients refuse a repeat).
    pub message_id: String,
}

impl MessageContext {
    /// `lp(conversation) || lp(sender user) || lp(sender device) || lp(message id)`.
    pub fn encode(&self) -> Result<Vec<u8>, FrankingError> {
        check_id("conversation_id", &self.conversation_id)?;
        self.sender.check()?;
        check_id("message_id", &self.message_id)?;
        let mut out = Vec::with_capacity(16 + self.conversation_id.len() + 2 * 64 + self.message_id.len());
        put_lp(&mut out, self.conversation_id.as_bytes());
        self.sender.put(&mut out);
        put_lp(&mut out, self.message_id.as_bytes());
        Ok(out)
    }
}

/// What the platform binds into its tag for one copy of a message: the
/// authenticated sender, the conversation and the platform's sequence
/// number in it, the device the copy is delivered to, the time and the
/// platform's message id. It never sees the body.
#[derive(Clone, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryContext {
    /// The conversation, whose membership the platform knows.
    pub conversation_id: String,
    /// The platform's number for this message in the conversation: 1 for
    /// the first, then one more for each message the platform accepted,
    /// the same in every member's copy.
    pub sequence: u64,
    /// The sending device, as the platform authenticated it.
    pub sender: Party,
    /// The device this copy is delivered to (the sender's own devices get
    /// copies too, so they can report their own side).
    pub recipient: Party,
    /// When the platform accepted the message, Unix milliseconds.
    pub timestamp_ms: u64,
    /// The platform's id for the message (the same in every copy).
    pub server_message_id: String,
}

impl DeliveryContext {
    /// `lp(conversation) || u64be(sequence) || lp(sender user) || lp(sender
    /// device) || lp(recipient user) || lp(recipient device) ||
    /// u64be(timestamp_ms) || lp(server message id)`.
    pub fn encode(&self) -> Result<Vec<u8>, FrankingError> {
        check_id("conversation_id", &self.conversation_id)?;
        self.sender.check()?;
        self.recipient.check()?;
        check_id("server_message_id", &self.server_message_id)?;
        let mut out = Vec::with_capacity(64 + self.conversation_id.len() + 4 * 64 + self.server_message_id.len());
        put_lp(&mut out, self.conversation_id.as_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        self.sender.put(&mut out);
        self.recipient.put(&mut out);
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        put_lp(&mut out, self.server_message_id.as_bytes());
        Ok(out)
    }

    /// Parses [`DeliveryContext::encode`]'s bytes from the front of `r`.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<DeliveryContext, FrankingError> {
        Ok(DeliveryContext {
            conversation_id: r.id("conversation_id")?,
            sequence: r.u64("sequence")?,
            sender: Party::read(r)?,
            recipient: Party::read(r)?,
            timestamp_ms: r.u64("timestamp")?,
            server_message_id: r.id("server_message_id")?,
        })
    }

    /// The context the sender committed to, as this delivery names it.
    pub fn message_context(&self, message_id: &str) -> MessageContext {
        MessageContext {
            conversation_id: self.conversation_id.clone(),
            sender: self.sender.clone(),
            message_id: message_id.to_owned(),
        }
    }
}

fn commit_mac(key: &FrankingKey, context: &MessageContext, body: &[u8]) -> Result<HmacSha256, FrankingError> {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key.as_bytes()).map_err(|_| FrankingError::Internal)?;
    mac.update(COMMIT_DOMAIN);
    mac.update(&context.encode()?);
    mac.update(body);
    Ok(mac)
}

/// The sender's commitment `c = HMAC-SHA256(k_f, commit_domain || context || body)`.
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

/// The tag input: `tag_domain || u32be(key_id) || c || delivery.encode()`.
pub fn tag_input(key_id: u32, commitment: &Commitment, delivery: &DeliveryContext) -> Result<Vec<u8>, FrankingError> {
    let mut out = TAG_DOMAIN.to_vec();
    out.extend_from_slice(&key_id.to_be_bytes());
    out.extend_from_slice(&commitment.0);
    out.extend_from_slice(&delivery.encode()?);
    Ok(out)
}

fn tag_mac(
    key: &[u8; 32],
    key_id: u32,
    commitment: &Commitment,
    delivery: &DeliveryContext,
) -> Result<HmacSha256, FrankingError> {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).map_err(|_| FrankingError::Internal)?;
    mac.update(&tag_input(key_id, commitment, delivery)?);
    Ok(mac)
}

/// The platform's tag on one copy of a message, made with the key that
/// tags at the delivery's timestamp.
pub fn tag(
    keyring: &Keyring,
    commitment: &Commitment,
    delivery: &DeliveryContext,
) -> Result<PlatformTag, FrankingError> {
    let key = keyring.tagging_key(delivery.timestamp_ms)?;
    let mac = tag_mac(key.secret(), key.id(), commitment, delivery)?.finalize().into_bytes().into();
    Ok(PlatformTag { key_id: key.id(), mac })
}

/// Checks a platform tag at time `now_ms`: the key is known, its
/// verification retention has not ended, the message's timestamp lies in
/// the key's tagging period and is not in the future (beyond
/// [`crate::MAX_CLOCK_SKEW_MS`]), and the MAC is equal in constant time.
pub fn verify_tag(
    keyring: &Keyring,
    tag: &PlatformTag,
    commitment: &Commitment,
    delivery: &DeliveryContext,
    now_ms: u64,
) -> Result<(), FrankingError> {
    let key = keyring.verifying_key(tag.key_id, delivery.timestamp_ms, now_ms)?;
    tag_mac(key.secret(), key.id(), commitment, delivery)?
        .verify_slice(&tag.mac)
        .map_err(|_| FrankingError::TagMismatch)
}

/// A message the recipient's device accepted: its commitment opened under
/// the context its delivery names. Only [`receive`] constructs it.
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

/// The recipient's check after decryption: the delivery is addressed to
/// `me`, names the sender the E2EE layer authenticated, and the commitment
/// opens to the decrypted body under the context the delivery names (its
/// conversation and sender, and the sender's message id). Everything
/// compared in constant time where secret-dependent.
pub fn receive(
    commitment: &Commitment,
    key: &FrankingKey,
    message_id: &str,
    body: &[u8],
    delivery: &DeliveryContext,
    authenticated_peer: &Party,
    me: &Party,
) -> Result<AcceptedMessage, FrankingError> {
    if !delivery.recipient.ct_eq(me) {
        return Err(FrankingError::NotForThisDevice { recipient: delivery.recipient.to_string() });
    }
    if !delivery.sender.ct_eq(authenticated_peer) {
        return Err(FrankingError::SenderMismatch {
            delivered: delivery.sender.to_string(),
            authenticated: authenticated_peer.to_string(),
        });
    }
    let context = delivery.message_context(message_id);
    verify_commitment(commitment, key, &context, body)?;
    Ok(AcceptedMessage { context, commitment: *commitment })
}

/// Messages the reporter did not include between two that it did: the
/// platform numbered `missing` messages after `after` and before `before`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Gap {
    /// The sequence number before the gap.
    pub after: u64,
    /// The sequence number after the gap.
    pub before: u64,
    /// How many messages are missing (`before - after - 1`).
    pub missing: u64,
}

/// The order of a report's verified messages, as the platform numbered
/// them. A moderator learns exactly which numbers between `first` and
/// `last` are absent; nothing about messages before `first` (the reporter
/// may have joined then, or chose where to start) or after `last`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ordering {
    /// The first sequence number in the report.
    pub first: u64,
    /// The last.
    pub last: u64,
    /// Every omission between them, in order.
    pub gaps: Vec<Gap>,
}

impl Ordering {
    /// Whether nothing is missing between `first` and `last`.
    pub fn is_complete(&self) -> bool {
        self.gaps.is_empty()
    }
}

/// Orders verified deliveries (in report order): they must share one
/// conversation and one recipient and their platform sequence numbers must
/// strictly increase; every number skipped is returned as a [`Gap`]. Call
/// it only with deliveries whose tags verified, so a sender can neither
/// break nor fake the order. Arithmetic is checked.
pub fn verify_order(deliveries: &[&DeliveryContext]) -> Result<Ordering, FrankingError> {
    let Some(first) = deliveries.first() else { return Err(FrankingError::EmptyOrder) };
    let mut gaps = Vec::new();
    for (i, pair) in deliveries.windows(2).enumerate() {
        let (a, b) = (pair[0], pair[1]);
        let index = i + 1;
        if b.conversation_id != first.conversation_id {
            return Err(FrankingError::OrderConversation { index });
        }
        if b.recipient != first.recipient {
            return Err(FrankingError::OrderRecipient { index });
        }
        if b.sequence <= a.sequence {
            return Err(FrankingError::OutOfOrder { index, previous: a.sequence, found: b.sequence });
        }
        // b > a, so neither subtraction can underflow; checked all the same.
        let missing =
            b.sequence.checked_sub(a.sequence).and_then(|d| d.checked_sub(1)).ok_or(FrankingError::Internal)?;
        if missing > 0 {
            gaps.push(Gap { after: a.sequence, before: b.sequence, missing });
        }
    }
    let last = deliveries.last().map_or(first.sequence, |d| d.sequence);
    Ok(Ordering { first: first.sequence, last, gaps })
}

pub(crate) mod hex32 {
    pub(crate) fn serialize<S: serde::Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(text.as_ref(), &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}
