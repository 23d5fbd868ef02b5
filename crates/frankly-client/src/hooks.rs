//! Send and receive hooks around any E2EE protocol: scanning and franking
//! in the right order, so an app that uses them gets franking right by
//! construction.
//!
//! Sending: [`Scanner::prepare_outgoing`] scans the message first; if the
//! policy blocks it, nothing is franked and the conversation state does not
//! change. Otherwise it encodes the body, commits to it under a fresh
//! franking key with the conversation, this device and the message id, and
//! returns the plaintext for the E2EE layer and the commitment to
//! authenticate as associated data (or, for protocols without associated
//! data, to carry beside the ciphertext and compare after decryption).
//!
//! Receiving: [`Scanner::accept_incoming`] first checks the delivery against
//! the [`ConversationState`] (this device, this conversation, the next
//! sequence number, a new commitment and message id) and the franking (the
//! delivered sender is the authenticated peer, the commitment opens); a
//! message that fails is refused and never shown, so everything shown can be
//! reported. Then it scans.

use std::collections::VecDeque;

use frankly_franking::{
    AcceptedMessage, AttachmentRef, Commitment, DeliveryContext, FrankedPlaintext, FrankingError, FrankingKey,
    MessageContext, Party, encrypt_attachment, frank_plaintext, open_attachment, open_franked_plaintext,
};
use frankly_policy::{Action, Facts};

use crate::ClientError;
use crate::message::{Attachment, Body, Message};
use crate::scanner::{Scanner, Verdict};

/// How many recent messages (commitments and message ids) a conversation
/// state remembers to refuse repeats.
pub const RECENT_MESSAGES: usize = 4096;

/// This device's view of one conversation: who this device is, the
/// platform's last sequence number it received, and the recent commitments
/// and message ids (its own and others'), so a repeated message is refused.
/// Ordering is the platform's: nothing a sender chooses enters it. Persist
/// it with the conversation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConversationState {
    /// The conversation.
    pub conversation_id: String,
    /// This device.
    pub me: Party,
    /// The highest platform sequence number delivered to this device's
    /// mailbox (0 before the first).
    pub last_received: u64,
    /// Recent messages, oldest first: commitment, sender and message id.
    recent: VecDeque<(Commitment, Party, String)>,
}

impl ConversationState {
    /// A new conversation for device `me`.
    pub fn new(conversation_id: &str, me: &Party) -> ConversationState {
        ConversationState {
            conversation_id: conversation_id.to_owned(),
            me: me.clone(),
            last_received: 0,
            recent: VecDeque::new(),
        }
    }

    fn seen_commitment(&self, c: &Commitment) -> bool {
        self.recent.iter().any(|(r, _, _)| r == c)
    }

    fn seen_id(&self, sender: &Party, message_id: &str) -> bool {
        self.recent.iter().any(|(_, s, m)| s.user_id == sender.user_id && m == message_id)
    }

    fn remember(&mut self, c: Commitment, sender: &Party, message_id: &str) {
        self.recent.push_back((c, sender.clone(), message_id.to_owned()));
        while self.recent.len() > RECENT_MESSAGES {
            self.recent.pop_front();
        }
    }

    /// Checks a delivered copy before decryption: this conversation, this
    /// device, a sequence number after the last one received, a commitment
    /// not seen before.
    pub fn check_delivery(&self, commitment: &Commitment, delivery: &DeliveryContext) -> Result<(), FrankingError> {
        if delivery.conversation_id != self.conversation_id {
            return Err(FrankingError::ConversationMismatch {
                delivered: delivery.conversation_id.clone(),
                expected: self.conversation_id.clone(),
            });
        }
        if delivery.recipient != self.me {
            return Err(FrankingError::NotForThisDevice { recipient: delivery.recipient.to_string() });
        }
        if delivery.sequence <= self.last_received {
            return Err(FrankingError::OutOfOrder { index: 0, previous: self.last_received, found: delivery.sequence });
        }
        if self.seen_commitment(commitment) {
            return Err(FrankingError::Duplicate("this commitment was already delivered".into()));
        }
        Ok(())
    }

    /// Records a delivered copy the device refused (after its delivery MAC
    /// verified): the sequence number advances, so the place stays taken.
    pub fn record_refused(&mut self, commitment: &Commitment, delivery: &DeliveryContext) {
        if self.check_delivery(commitment, delivery).is_ok() {
            self.last_received = delivery.sequence;
        }
    }

    /// Records the platform's answer to a message this device sent: the
    /// copy must name this device as sender and recipient and this
    /// conversation (the caller has checked its delivery MAC over the
    /// franked commitment).
    pub fn record_sent(&mut self, sent: &FrankedMessage, delivery: &DeliveryContext) -> Result<(), FrankingError> {
        if delivery.conversation_id != self.conversation_id
            || delivery.sender != self.me
            || delivery.recipient != self.me
        {
            return Err(FrankingError::NotForThisDevice { recipient: delivery.recipient.to_string() });
        }
        self.remember(sent.franked.commitment, &self.me.clone(), &sent.context.message_id);
        Ok(())
    }
}

/// What to do with an outgoing message.
#[derive(Debug)]
pub struct Outgoing {
    /// The scan's verdict (warn, block send, ...): the app shows it.
    pub verdict: Verdict,
    /// The franked plaintext and its commitment, unless the policy blocked
    /// sending. If the app asks the user to confirm (`warn`), it sends this
    /// only after the user confirmed.
    pub franked: Option<FrankedMessage>,
}

/// A franked outgoing message, ready for the E2EE layer.
#[derive(Debug)]
pub struct FrankedMessage {
    /// The context committed to.
    pub context: MessageContext,
    /// The franking key (kept to report one's own message).
    pub franking_key: FrankingKey,
    /// The committed body (FMB1).
    pub body: Vec<u8>,
    /// The attachment references in the body, in order.
    pub attachment_refs: Vec<AttachmentRef>,
    /// The E2EE plaintext and the commitment (associated data).
    pub franked: FrankedPlaintext,
    /// The attachments, each encrypted under its own key (ChaCha20-Poly1305),
    /// in order, for the app to upload; the body commits to their keys and
    /// plaintext hashes.
    pub attachment_ciphertexts: Vec<Vec<u8>>,
}

/// An incoming message that passed the franking check, with its scan.
#[derive(Debug)]
pub struct Incoming {
    /// The message.
    pub message: Message,
    /// The committed body (text and attachment references), for a report.
    pub body: Vec<u8>,
    /// The attachment references in the body, in order, for a report.
    pub attachment_refs: Vec<AttachmentRef>,
    /// Proof of the franking check, with the context and commitment.
    pub accepted: AcceptedMessage,
    /// The franking key: keep it (with the platform's tag) to be able to
    /// report this message.
    pub franking_key: FrankingKey,
    /// The scan's verdict.
    pub verdict: Verdict,
}

impl Scanner {
    /// Scans an outgoing message and, unless the policy blocks it, franks
    /// it as message `message_id` (unique among this device's messages in
    /// the conversation) of `state`'s conversation. A blocked message is
    /// never franked.
    pub fn prepare_outgoing(
        &self,
        state: &ConversationState,
        message_id: &str,
        message: &Message,
        facts: Facts,
    ) -> Result<Outgoing, ClientError> {
        let verdict = self.scan_outgoing(message, facts);
        if verdict.decision.has(Action::BlockSend) {
            return Ok(Outgoing { verdict, franked: None });
        }
        if state.seen_id(&state.me, message_id) {
            return Err(FrankingError::Duplicate(format!("message id {message_id:?} was already used")).into());
        }
        let context = MessageContext {
            conversation_id: state.conversation_id.clone(),
            sender: state.me.clone(),
            message_id: message_id.to_owned(),
        };
        let mut body = Body { text: message.text.clone(), attachments: Vec::with_capacity(message.attachments.len()) };
        let mut attachment_ciphertexts = Vec::with_capacity(message.attachments.len());
        let mut attachment_refs = Vec::with_capacity(message.attachments.len());
        for a in &message.attachments {
            let (reference, ciphertext) = encrypt_attachment(&a.bytes)?;
            body.attachments.push((a.media_type.clone(), reference.clone()));
            attachment_refs.push(reference);
            attachment_ciphertexts.push(ciphertext);
        }
        let body = body.encode()?;
        let franked = frank_plaintext(&context, &body)?;
        let franking_key = FrankingKey::from_bytes(
            franked.plaintext.get(..32).and_then(|k| k.try_into().ok()).ok_or(FrankingError::Internal)?,
        );
        Ok(Outgoing {
            verdict,
            franked: Some(FrankedMessage {
                context,
                franking_key,
                body,
                attachment_refs,
                franked,
                attachment_ciphertexts,
            }),
        })
    }

    /// Checks a decrypted copy of `state`'s conversation and its
    /// attachments (downloaded ciphertexts, in the body's order), then
    /// scans it. Refused, with the reason, unless: the delivery is for this
    /// device and conversation, its sequence number follows the last one
    /// received, the commitment and the sender's message id are new, the
    /// delivery names `authenticated_peer` (the sender the E2EE layer
    /// authenticated), the commitment opens, and the attachments are the
    /// committed ones. The app must not show a refused message.
    #[allow(clippy::too_many_arguments)]
    pub fn accept_incoming(
        &self,
        state: &mut ConversationState,
        plaintext: &[u8],
        commitment: &Commitment,
        delivery: &DeliveryContext,
        attachment_ciphertexts: &[Vec<u8>],
        authenticated_peer: &Party,
        facts: Facts,
    ) -> Result<Incoming, ClientError> {
        state.check_delivery(commitment, delivery)?;
        let opened = open_franked_plaintext(plaintext, commitment, delivery, authenticated_peer, &state.me)?;
        let message_id = opened.accepted.context().message_id.clone();
        if state.seen_id(&delivery.sender, &message_id) {
            return Err(FrankingError::Duplicate(format!(
                "{} already sent message id {message_id:?}",
                delivery.sender
            ))
            .into());
        }
        let body = Body::decode(&opened.body)?;
        if body.attachments.len() != attachment_ciphertexts.len() {
            return Err(ClientError::Body(format!(
                "the body references {} attachments, {} were given",
                body.attachments.len(),
                attachment_ciphertexts.len()
            )));
        }
        let mut message = Message { text: body.text, attachments: Vec::with_capacity(body.attachments.len()) };
        let mut attachment_refs = Vec::with_capacity(body.attachments.len());
        for ((media_type, reference), ciphertext) in body.attachments.into_iter().zip(attachment_ciphertexts) {
            message.attachments.push(Attachment::new(open_attachment(&reference, ciphertext)?, &media_type));
            attachment_refs.push(reference);
        }
        let verdict = self.scan_incoming(&message, facts);
        state.last_received = delivery.sequence;
        state.remember(*commitment, &delivery.sender, &message_id);
        Ok(Incoming {
            message,
            body: opened.body,
            attachment_refs,
            accepted: opened.accepted,
            franking_key: opened.franking_key,
            verdict,
        })
    }
}
