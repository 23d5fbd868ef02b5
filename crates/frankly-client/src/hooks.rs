//! Send and receive hooks around any E2EE protocol: scanning and franking
//! in the right order, so an app that uses them gets franking right by
//! construction.
//!
//! Sending: [`Scanner::prepare_outgoing`] scans the message first; if the
//! policy blocks it, nothing is franked and the chain does not move.
//! Otherwise it encodes the body, commits to it under a fresh franking key
//! with the conversation's chain context, and returns the plaintext for the
//! E2EE layer and the commitment to authenticate as associated data (or, for
//! protocols without associated data, to carry beside the ciphertext and
//! compare after decryption).
//!
//! Receiving: [`Scanner::accept_incoming`] first checks the franking (the
//! commitment opens, the committed sender is the authenticated peer, the
//! conversation is the one it arrived in); a message that fails is refused
//! and never shown, so everything shown can be reported. Then it scans.

use frankly_franking::{
    AcceptedMessage, AttachmentRef, Commitment, FrankedPlaintext, FrankingKey, MessageContext, encrypt_attachment,
    frank_plaintext, open_attachment, open_franked_plaintext,
};
use frankly_policy::{Action, Facts};

use crate::ClientError;
use crate::message::{Attachment, Body, Message};
use crate::scanner::{Scanner, Verdict};

/// This device's view of one conversation's franking chain: who this user
/// is, the sequence number of their next message, and the commitment of the
/// last message seen in the conversation (sent or received), which the next
/// message sent commits to. Persist it with the conversation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConversationChain {
    /// The conversation.
    pub conversation_id: String,
    /// This device's user, as the platform authenticates them.
    pub sender_id: String,
    /// Sequence number of this user's next message.
    pub next_sequence: u64,
    /// Commitment of the last message seen in this conversation.
    pub previous: Option<Commitment>,
}

impl ConversationChain {
    /// A new conversation.
    pub fn new(conversation_id: &str, sender_id: &str) -> ConversationChain {
        ConversationChain {
            conversation_id: conversation_id.to_owned(),
            sender_id: sender_id.to_owned(),
            next_sequence: 0,
            previous: None,
        }
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
    /// it as message `message_id` of `chain`, advancing the chain.
    pub fn prepare_outgoing(
        &self,
        chain: &mut ConversationChain,
        message_id: &str,
        message: &Message,
        facts: Facts,
    ) -> Result<Outgoing, ClientError> {
        let verdict = self.scan_outgoing(message, facts);
        if verdict.decision.has(Action::BlockSend) {
            return Ok(Outgoing { verdict, franked: None });
        }
        let context = MessageContext {
            conversation_id: chain.conversation_id.clone(),
            sender_id: chain.sender_id.clone(),
            message_id: message_id.to_owned(),
            sequence: chain.next_sequence,
            previous: chain.previous,
        };
        let mut body = Body { text: message.text.clone(), attachments: Vec::with_capacity(message.attachments.len()) };
        let mut attachment_ciphertexts = Vec::with_capacity(message.attachments.len());
        for a in &message.attachments {
            let (reference, ciphertext) = encrypt_attachment(&a.bytes)?;
            body.attachments.push((a.media_type.clone(), reference));
            attachment_ciphertexts.push(ciphertext);
        }
        let franked = frank_plaintext(&context, &body.encode()?)?;
        chain.next_sequence += 1;
        chain.previous = Some(franked.commitment);
        Ok(Outgoing { verdict, franked: Some(FrankedMessage { context, franked, attachment_ciphertexts }) })
    }

    /// Checks the franking of a decrypted message of `chain`'s conversation
    /// and of its attachments
    /// (downloaded ciphertexts, in the body's order), then scans it. A
    /// message whose commitment does not open, whose committed sender is not
    /// `authenticated_peer`, that belongs to another conversation, or whose
    /// attachments are not the committed ones is refused with the reason;
    /// the app must not show it. An accepted message becomes the chain's
    /// latest.
    pub fn accept_incoming(
        &self,
        chain: &mut ConversationChain,
        plaintext: &[u8],
        commitment: &Commitment,
        attachment_ciphertexts: &[Vec<u8>],
        authenticated_peer: &str,
        facts: Facts,
    ) -> Result<Incoming, ClientError> {
        let opened = open_franked_plaintext(plaintext, commitment, authenticated_peer, &chain.conversation_id)?;
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
        chain.previous = Some(*commitment);
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
