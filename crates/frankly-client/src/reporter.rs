//! The reporter: keeps the franking material of recent messages, sent and
//! received, per conversation, and, when the user chooses to report one,
//! seals it with its context to the moderation server.

use std::collections::{BTreeMap, HashMap};

use frankly_franking::{Commitment, DeliveryContext, Party, PlatformTag};
use frankly_report::{
    Evidence, KeyBytes, MAX_CONTEXT_MESSAGES, Opening, Reason, Report, ReportedAttachment, ReportedMessage,
    ServerPublicKey, seal_report,
};

use crate::ClientError;
use crate::hooks::{FrankedMessage, Incoming};
use crate::message::Message;
use crate::scanner::Verdict;

/// Most conversations kept that have priority (with a contact, or in which
/// this user wrote).
pub const MAX_PRIORITY_CONVERSATIONS: usize = 1024;
/// Most conversations kept with strangers only.
pub const MAX_STRANGER_CONVERSATIONS: usize = 256;
/// Most conversations kept per stranger: a stranger who opens more evicts
/// only their own, never anyone else's.
pub const MAX_CONVERSATIONS_PER_STRANGER: usize = 4;
/// Default byte budget of one conversation (bodies and attachment plaintexts).
pub const DEFAULT_MAX_CONVERSATION_BYTES: usize = 32 << 20;
/// Default byte budget of everything kept.
pub const DEFAULT_MAX_KEPT_BYTES: usize = 256 << 20;

#[derive(serde::Serialize, serde::Deserialize)]
struct Kept {
    message: ReportedMessage,
    evidence: Vec<Evidence>,
    bytes: usize,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Conversation {
    /// With a contact, or the user wrote in it: evicted last.
    priority: bool,
    /// The stranger whose message opened it (for per-stranger budgets).
    stranger: Option<String>,
    /// By the platform's sequence number.
    messages: BTreeMap<u64, Kept>,
    bytes: usize,
    last_used: u64,
}

/// Keeps, per conversation, the last `keep` messages (sent, received, and
/// refused-but-delivered) with what a report needs, within per-conversation
/// and total budgets, and builds sealed reports from them. Strangers cannot
/// evict what is kept of other conversations: budgets are per conversation,
/// stranger conversations are capped per stranger and in all, and
/// conversations with contacts (or in which the user wrote) are evicted
/// last. Franking keys are zeroized when forgotten. It is part of the
/// persisted [`crate::DeviceState`].
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Reporter {
    me: Party,
    keep: usize,
    max_conversation_bytes: usize,
    max_bytes: usize,
    bytes: usize,
    tick: u64,
    conversations: HashMap<String, Conversation>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("me", &self.me)
            .field("keep", &self.keep)
            .field("conversations", &self.conversations.len())
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

fn evidence_of(verdict: &Verdict) -> Vec<Evidence> {
    let mut out: Vec<Evidence> = verdict
        .decision
        .fired
        .iter()
        .map(|f| Evidence { kind: format!("rule:{}", f.id), detail: f.reasons.join("; ") })
        .collect();
    out.extend(verdict.signals.bank_matches.iter().map(|m| Evidence {
        kind: format!("{}-match", m.algorithm),
        detail: format!("bank {} labels [{}] distance {} on {}", m.bank, m.labels.join(", "), m.distance, m.source),
    }));
    out.extend(verdict.signals.scores.iter().map(|s| Evidence {
        kind: format!("classifier:{}/{}", s.model, s.label),
        detail: format!("{:.4} on {}", s.score, s.source),
    }));
    out.truncate(frankly_report::MAX_EVIDENCE);
    for e in &mut out {
        truncate_utf8(&mut e.kind, frankly_report::MAX_EVIDENCE_KIND_BYTES);
        truncate_utf8(&mut e.detail, frankly_report::MAX_EVIDENCE_DETAIL_BYTES);
    }
    out
}

fn truncate_utf8(s: &mut String, limit: usize) {
    if s.len() > limit {
        let mut at = limit;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
}

impl Reporter {
    /// A reporter for device `me` keeping the last `keep` messages of each
    /// conversation (1 to the report's limit, [`MAX_CONTEXT_MESSAGES`] + 1).
    pub fn new(me: &Party, keep: usize) -> Result<Reporter, ClientError> {
        if keep == 0 || keep > MAX_CONTEXT_MESSAGES + 1 {
            return Err(ClientError::Report(format!("keep must be 1 to {}", MAX_CONTEXT_MESSAGES + 1)));
        }
        Ok(Reporter {
            me: me.clone(),
            keep,
            max_conversation_bytes: DEFAULT_MAX_CONVERSATION_BYTES,
            max_bytes: DEFAULT_MAX_KEPT_BYTES,
            bytes: 0,
            tick: 0,
            conversations: HashMap::new(),
        })
    }

    /// Sets the budgets: per conversation and in all (bytes of bodies and
    /// attachments kept).
    pub fn with_budgets(mut self, per_conversation: usize, total: usize) -> Reporter {
        self.max_conversation_bytes = per_conversation;
        self.max_bytes = total;
        self.evict_total();
        self
    }

    /// Bytes of bodies and attachments kept now.
    pub fn kept_bytes(&self) -> usize {
        self.bytes
    }

    /// Messages kept for a conversation.
    pub fn kept(&self, conversation_id: &str) -> usize {
        self.conversations.get(conversation_id).map_or(0, |c| c.messages.len())
    }

    /// The commitments kept for a conversation, in the platform's order.
    pub fn commitments(&self, conversation_id: &str) -> Vec<Commitment> {
        self.conversations
            .get(conversation_id)
            .map(|c| c.messages.values().map(|k| k.message.commitment).collect())
            .unwrap_or_default()
    }

    /// Remembers an accepted incoming message with the delivery context
    /// and tag of this device's copy. `from_contact`: the sender is a
    /// contact (the conversation then has priority).
    pub fn remember_received(
        &mut self,
        incoming: &Incoming,
        delivery: &DeliveryContext,
        tag: PlatformTag,
        from_contact: bool,
    ) {
        let attachments: Vec<ReportedAttachment> = incoming
            .attachment_refs
            .iter()
            .zip(&incoming.message.attachments)
            .map(|(r, a)| ReportedAttachment { reference: r.to_bytes(), plaintext: a.bytes.clone() })
            .collect();
        let opening = Opening {
            franking_key: KeyBytes::from(&incoming.franking_key),
            message_id: incoming.accepted.context().message_id.clone(),
            body: incoming.body.clone(),
            attachments,
        };
        let message = ReportedMessage {
            commitment: *incoming.accepted.commitment(),
            delivery: delivery.clone(),
            tag,
            opening: Some(opening),
        };
        self.insert(message, evidence_of(&incoming.verdict), from_contact, Some(&delivery.sender.user_id));
    }

    /// Remembers a message this device sent (the user's own side of the
    /// conversation), with the platform's copy for this device. Writing in
    /// a conversation gives it priority.
    pub fn remember_sent(
        &mut self,
        sent: &FrankedMessage,
        message: &Message,
        delivery: &DeliveryContext,
        tag: PlatformTag,
    ) {
        let attachments: Vec<ReportedAttachment> = sent
            .attachment_refs
            .iter()
            .zip(&message.attachments)
            .map(|(r, a)| ReportedAttachment { reference: r.to_bytes(), plaintext: a.bytes.clone() })
            .collect();
        let opening = Opening {
            franking_key: KeyBytes::from(&sent.franking_key),
            message_id: sent.context.message_id.clone(),
            body: sent.body.clone(),
            attachments,
        };
        let message = ReportedMessage {
            commitment: sent.franked.commitment,
            delivery: delivery.clone(),
            tag,
            opening: Some(opening),
        };
        self.insert(message, Vec::new(), true, None);
    }

    /// Remembers a copy the device refused (it did not open, or failed a
    /// check) after its delivery MAC verified: reported unopened, it shows
    /// the moderator that the platform delivered something there.
    pub fn remember_refused(
        &mut self,
        commitment: &Commitment,
        delivery: &DeliveryContext,
        tag: PlatformTag,
        from_contact: bool,
    ) {
        let message = ReportedMessage { commitment: *commitment, delivery: delivery.clone(), tag, opening: None };
        self.insert(message, Vec::new(), from_contact, Some(&delivery.sender.user_id));
    }

    fn insert(&mut self, message: ReportedMessage, evidence: Vec<Evidence>, priority: bool, sender: Option<&str>) {
        if message.delivery.recipient != self.me {
            return;
        }
        let id = message.delivery.conversation_id.clone();
        let stranger = if priority { None } else { sender.map(str::to_owned) };
        if !self.conversations.contains_key(&id) {
            self.make_room_for(stranger.as_deref());
        }
        self.tick += 1;
        let tick = self.tick;
        let conversation = self.conversations.entry(id).or_insert_with(|| Conversation {
            priority: false,
            stranger: stranger.clone(),
            messages: BTreeMap::new(),
            bytes: 0,
            last_used: tick,
        });
        if priority {
            conversation.priority = true;
            conversation.stranger = None;
        }
        conversation.last_used = tick;
        let sequence = message.delivery.sequence;
        if conversation.messages.contains_key(&sequence) {
            return;
        }
        let bytes = message
            .opening
            .as_ref()
            .map_or(0, |o| o.body.len() + o.attachments.iter().map(|a| a.plaintext.len()).sum::<usize>());
        conversation.messages.insert(sequence, Kept { message, evidence, bytes });
        conversation.bytes += bytes;
        self.bytes += bytes;
        while conversation.messages.len() > self.keep
            || (conversation.bytes > self.max_conversation_bytes && conversation.messages.len() > 1)
        {
            if let Some((_, old)) = conversation.messages.pop_first() {
                conversation.bytes -= old.bytes;
                self.bytes -= old.bytes;
            }
        }
        self.evict_total();
    }

    /// Before a new conversation: a stranger at their cap loses their own
    /// least recently used conversation; then the caps on stranger and
    /// priority conversations hold by evicting the least recently used of
    /// that kind.
    fn make_room_for(&mut self, stranger: Option<&str>) {
        if let Some(s) = stranger {
            let theirs: Vec<(&String, u64)> = self
                .conversations
                .iter()
                .filter(|(_, c)| c.stranger.as_deref() == Some(s))
                .map(|(id, c)| (id, c.last_used))
                .collect();
            if theirs.len() >= MAX_CONVERSATIONS_PER_STRANGER {
                let oldest = theirs.iter().min_by_key(|(_, t)| *t).map(|(id, _)| (*id).clone());
                if let Some(id) = oldest {
                    self.forget(&id);
                }
            }
        }
        let priority = stranger.is_none();
        let (count, cap) = (
            self.conversations.values().filter(|c| c.priority == priority).count(),
            if priority { MAX_PRIORITY_CONVERSATIONS } else { MAX_STRANGER_CONVERSATIONS },
        );
        if count >= cap {
            self.evict_lru(|c| c.priority == priority);
        }
    }

    fn evict_lru(&mut self, which: impl Fn(&Conversation) -> bool) -> bool {
        let oldest = self
            .conversations
            .iter()
            .filter(|(_, c)| which(c))
            .min_by_key(|(_, c)| c.last_used)
            .map(|(id, _)| id.clone());
        match oldest {
            Some(id) => {
                self.forget(&id);
                true
            }
            None => false,
        }
    }

    fn forget(&mut self, id: &str) {
        if let Some(c) = self.conversations.remove(id) {
            self.bytes -= c.bytes;
        }
    }

    /// The device it keeps for.
    pub fn me(&self) -> &Party {
        &self.me
    }

    /// The total budget: stranger conversations go first, least recently
    /// used first; priority ones only when no stranger's is left.
    fn evict_total(&mut self) {
        while self.bytes > self.max_bytes {
            if !self.evict_lru(|c| !c.priority) && !self.evict_lru(|_| true) {
                break;
            }
        }
    }

    /// Builds the report the user chose: the message with commitment
    /// `reported` in `conversation_id`, with up to `before` kept messages
    /// before it and `after` after it (both sides of the conversation, in
    /// the platform's order; at most [`MAX_CONTEXT_MESSAGES`] in all), the
    /// reason and note, and the local scanning evidence of the reported
    /// message if `with_evidence`. Unsealed, so the app can show the user
    /// exactly what would be sent; [`Reporter::report`] seals it.
    #[allow(clippy::too_many_arguments)]
    pub fn build_report(
        &self,
        conversation_id: &str,
        reported: &Commitment,
        before: usize,
        after: usize,
        reason: Reason,
        note: &str,
        with_evidence: bool,
    ) -> Result<Report, ClientError> {
        let missing = || ClientError::Report(format!("no kept message of {conversation_id} has that commitment"));
        let conversation = self.conversations.get(conversation_id).ok_or_else(missing)?;
        let kept: Vec<&Kept> = conversation.messages.values().collect();
        let at = kept.iter().position(|k| k.message.commitment == *reported).ok_or_else(missing)?;
        if kept[at].message.opening.is_none() {
            return Err(ClientError::Report("that message was refused on this device and cannot be reported".into()));
        }
        let before = before.min(MAX_CONTEXT_MESSAGES).min(at);
        let after = after.min(MAX_CONTEXT_MESSAGES - before).min(kept.len() - at - 1);
        let window = &kept[at - before..=at + after];
        let messages: Vec<ReportedMessage> = window.iter().map(|k| k.message.clone()).collect();
        let mut report =
            Report::new(&self.me, reason, note, messages, before).map_err(|e| ClientError::Report(e.to_string()))?;
        if with_evidence {
            report.evidence = kept[at].evidence.clone();
        }
        Ok(report)
    }

    /// Builds the report the user chose ([`Reporter::build_report`]) and
    /// seals it to report key `key_id` of the moderation server. Only this
    /// leaves the device.
    #[allow(clippy::too_many_arguments)]
    pub fn report(
        &self,
        conversation_id: &str,
        reported: &Commitment,
        before: usize,
        after: usize,
        reason: Reason,
        note: &str,
        with_evidence: bool,
        server: (u32, &ServerPublicKey),
    ) -> Result<Vec<u8>, ClientError> {
        let report = self.build_report(conversation_id, reported, before, after, reason, note, with_evidence)?;
        seal_report(&report, server.0, server.1).map_err(|e| ClientError::Report(e.to_string()))
    }
}
