//! The reporter: keeps the franking material of recent incoming messages
//! and, when the user chooses to report one, seals it with its context to
//! the moderation server.

use std::collections::VecDeque;

use frankly_franking::{DeliveryContext, PlatformTag};
use frankly_report::{
    Evidence, KeyBytes, MAX_CONTEXT_MESSAGES, Reason, Report, ReportedAttachment, ReportedMessage, ServerPublicKey,
    seal_report,
};

use crate::ClientError;
use crate::hooks::Incoming;
use crate::scanner::Verdict;

/// Most conversations the reporter keeps messages of; the least recently
/// used one is forgotten first.
pub const MAX_CONVERSATIONS: usize = 1024;
/// Default byte budget of everything kept (bodies and attachment plaintexts).
pub const DEFAULT_MAX_KEPT_BYTES: usize = 64 << 20;

struct Kept {
    message: ReportedMessage,
    evidence: Vec<Evidence>,
    bytes: usize,
}

/// Keeps, per conversation, the last `keep` incoming messages with what a
/// report needs (body, franking key, commitment, context, delivery context,
/// platform tag, attachment plaintexts), within a memory budget, and builds
/// sealed reports from them. Franking keys are zeroized when forgotten.
pub struct Reporter {
    reporter_id: String,
    keep: usize,
    max_bytes: usize,
    bytes: usize,
    /// Least recently used first.
    conversations: VecDeque<(String, VecDeque<Kept>)>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("reporter_id", &self.reporter_id)
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
    out
}

impl Reporter {
    /// A reporter for user `reporter_id` keeping the last `keep` incoming
    /// messages of each conversation (1 to the report's context limit + 1).
    pub fn new(reporter_id: &str, keep: usize) -> Result<Reporter, ClientError> {
        if keep == 0 || keep > MAX_CONTEXT_MESSAGES + 1 {
            return Err(ClientError::Report(format!("keep must be 1 to {}", MAX_CONTEXT_MESSAGES + 1)));
        }
        Ok(Reporter {
            reporter_id: reporter_id.to_owned(),
            keep,
            max_bytes: DEFAULT_MAX_KEPT_BYTES,
            bytes: 0,
            conversations: VecDeque::new(),
        })
    }

    /// Sets the memory budget (bytes of bodies and attachments kept).
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Reporter {
        self.max_bytes = max_bytes;
        self.evict();
        self
    }

    /// Bytes of bodies and attachments kept now.
    pub fn kept_bytes(&self) -> usize {
        self.bytes
    }

    /// Messages kept for a conversation.
    pub fn kept(&self, conversation_id: &str) -> usize {
        self.conversations.iter().find(|(c, _)| c == conversation_id).map_or(0, |(_, m)| m.len())
    }

    /// Remembers an accepted incoming message with the delivery context and
    /// tag the platform delivered it with.
    pub fn remember(&mut self, incoming: &Incoming, delivery: DeliveryContext, tag: PlatformTag) {
        let context = incoming.accepted.context().clone();
        let attachments: Vec<ReportedAttachment> = incoming
            .attachment_refs
            .iter()
            .zip(&incoming.message.attachments)
            .map(|(r, a)| ReportedAttachment { reference: r.to_bytes().to_vec(), plaintext: a.bytes.clone() })
            .collect();
        let bytes = incoming.body.len() + attachments.iter().map(|a| a.plaintext.len()).sum::<usize>();
        let kept = Kept {
            message: ReportedMessage {
                body: incoming.body.clone(),
                franking_key: KeyBytes::from(&incoming.franking_key),
                commitment: *incoming.accepted.commitment(),
                context: context.clone(),
                delivery,
                tag,
                attachments,
            },
            evidence: evidence_of(&incoming.verdict),
            bytes,
        };
        let at = match self.conversations.iter().position(|(c, _)| *c == context.conversation_id) {
            Some(i) => i,
            None => {
                self.conversations.push_back((context.conversation_id.clone(), VecDeque::new()));
                self.conversations.len() - 1
            }
        };
        let Some(mut entry) = self.conversations.remove(at) else { return };
        entry.1.push_back(kept);
        self.bytes += bytes;
        while entry.1.len() > self.keep {
            if let Some(old) = entry.1.pop_front() {
                self.bytes -= old.bytes;
            }
        }
        self.conversations.push_back(entry);
        while self.conversations.len() > MAX_CONVERSATIONS {
            if let Some((_, old)) = self.conversations.pop_front() {
                self.bytes -= old.iter().map(|k| k.bytes).sum::<usize>();
            }
        }
        self.evict();
    }

    /// Forgets the oldest messages of the least recently used conversations
    /// until the budget holds.
    fn evict(&mut self) {
        while self.bytes > self.max_bytes {
            let Some((_, messages)) = self.conversations.front_mut() else { break };
            match messages.pop_front() {
                Some(old) => self.bytes -= old.bytes,
                None => {
                    self.conversations.pop_front();
                }
            }
            if self.conversations.front().is_some_and(|(_, m)| m.is_empty()) {
                self.conversations.pop_front();
            }
        }
    }

    /// Builds the report the user chose: message `message_id` of the
    /// conversation with up to `context` kept messages before it, the
    /// reason and note, and the local scanning evidence if `with_evidence`.
    /// Unsealed, so the app can show the user exactly what would be sent;
    /// [`Reporter::report`] seals it.
    pub fn build_report(
        &self,
        conversation_id: &str,
        message_id: &str,
        context: usize,
        reason: Reason,
        note: &str,
        with_evidence: bool,
    ) -> Result<Report, ClientError> {
        let missing = || ClientError::Report(format!("message {message_id} of {conversation_id} is not kept"));
        let (_, messages) = self.conversations.iter().find(|(c, _)| c == conversation_id).ok_or_else(missing)?;
        let at = messages.iter().position(|k| k.message.context.message_id == message_id).ok_or_else(missing)?;
        let first = at.saturating_sub(context.min(MAX_CONTEXT_MESSAGES));
        let before: Vec<ReportedMessage> = messages.range(first..at).map(|k| k.message.clone()).collect();
        let reported = &messages[at];
        let mut report = Report::new(&self.reporter_id, reason, note, before, reported.message.clone())
            .map_err(|e| ClientError::Report(e.to_string()))?;
        if with_evidence {
            report.evidence = reported.evidence.clone();
        }
        Ok(report)
    }

    /// Builds the report the user chose ([`Reporter::build_report`]) and
    /// seals it to the moderation server's key. Only this leaves the device.
    #[allow(clippy::too_many_arguments)]
    pub fn report(
        &self,
        conversation_id: &str,
        message_id: &str,
        context: usize,
        reason: Reason,
        note: &str,
        with_evidence: bool,
        server: &ServerPublicKey,
    ) -> Result<Vec<u8>, ClientError> {
        let report = self.build_report(conversation_id, message_id, context, reason, note, with_evidence)?;
        seal_report(&report, server).map_err(|e| ClientError::Report(e.to_string()))
    }
}
