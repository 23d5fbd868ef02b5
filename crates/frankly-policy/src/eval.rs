//! Evaluating a policy: signals in, a decision out.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::policy::{Action, Audience, Condition, Direction, Policy};

/// Where a signal comes from in the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The message text.
    Text,
    /// Attachment number `n` (from 0).
    Attachment(usize),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Text => write!(f, "the text"),
            Source::Attachment(n) => write!(f, "attachment {n}"),
        }
    }
}

/// An attachment matched a bank entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BankSignal {
    /// The attachment.
    pub source: Source,
    /// The bank's name.
    pub bank: String,
    /// The entry's labels.
    pub labels: Vec<String>,
    /// Hamming distance.
    pub distance: u32,
    /// The hash algorithm (`pdq`, ...).
    pub algorithm: String,
    /// The frame of an animation that matched (0 for a still image; the
    /// closest frame when several matched the same entry).
    pub frame: usize,
}

/// A video attachment matched a banked video by vPDQ's rule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VideoMatchSignal {
    /// The attachment.
    pub source: Source,
    /// The video bank's name.
    pub bank: String,
    /// The banked video's labels.
    pub labels: Vec<String>,
    /// Share of the attachment's usable frames that match the banked video, in percent.
    pub query_percent: f64,
    /// Share of the banked video's usable frames that match the attachment, in percent.
    pub compared_percent: f64,
    /// The attachment's frames (frame numbers) that matched.
    pub frames: Vec<u64>,
}

/// A model's score for one label.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScoreSignal {
    /// The text or the attachment.
    pub source: Source,
    /// Model name.
    pub model: String,
    /// Label name.
    pub label: String,
    /// Score.
    pub score: f32,
    /// The frame scored: 0 for text and still images, the frame number for
    /// the sampled frames of a video (one signal per frame).
    pub frame: u64,
}

/// An attachment's SHA-256.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DigestSignal {
    /// The attachment.
    pub source: Source,
    /// Lowercase hex.
    pub sha256: String,
}

/// Why an attachment could not be scanned (fully). Policies name these in
/// `unscannable = { reasons = [...] }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnscannableReason {
    /// The bytes are no format the scanner recognises (text, an unknown
    /// binary), whatever type was declared.
    UnknownFormat,
    /// A recognised format the scanner does not decode (HEIC, video, PDF,
    /// an archive, ICO, ...).
    UnsupportedFormat,
    /// Over a size limit (file bytes, pixels, dimensions).
    TooLarge,
    /// The file ends early: decoded partly or not at all.
    Truncated,
    /// The decoder refused the data (corrupt, or an allocation over the limit).
    Malformed,
    /// An animation with more frames than the scanner decodes; the first
    /// ones were scanned.
    TooManyFrames,
    /// Over the scanner's attachments per message; not scanned at all.
    TooManyAttachments,
}

impl UnscannableReason {
    /// Its name in policies and verdicts.
    pub fn name(self) -> &'static str {
        match self {
            UnscannableReason::UnknownFormat => "unknown_format",
            UnscannableReason::UnsupportedFormat => "unsupported_format",
            UnscannableReason::TooLarge => "too_large",
            UnscannableReason::Truncated => "truncated",
            UnscannableReason::Malformed => "malformed",
            UnscannableReason::TooManyFrames => "too_many_frames",
            UnscannableReason::TooManyAttachments => "too_many_attachments",
        }
    }
}

/// An attachment the scanner could not scan, or not fully.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnscannableSignal {
    /// The attachment.
    pub source: Source,
    /// Why, for policies.
    pub reason: UnscannableReason,
    /// Why, in words (the decoder's error, the limit), for people.
    pub detail: String,
}

/// An attachment whose bytes are not what its declared media type says.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TypeMismatchSignal {
    /// The attachment.
    pub source: Source,
    /// The media type the sender's app declared.
    pub declared: String,
    /// The media type the bytes' signature says.
    pub sniffed: String,
}

/// Facts about the conversation that only the app knows. `None`: not
/// supplied, and a condition on it does not hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Facts {
    /// The sender is in the user's contacts.
    pub sender_is_contact: Option<bool>,
    /// This is the first message from this sender.
    pub first_message_from_sender: Option<bool>,
}

/// Everything the scanner found about one message.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Signals {
    /// Bank matches.
    pub bank_matches: Vec<BankSignal>,
    /// Video bank (vPDQ) matches.
    pub video_matches: Vec<VideoMatchSignal>,
    /// Classifier scores.
    pub scores: Vec<ScoreSignal>,
    /// Attachment digests.
    pub digests: Vec<DigestSignal>,
    /// Attachments that could not be scanned (fully).
    pub unscannable: Vec<UnscannableSignal>,
    /// Attachments whose declared media type disagrees with their bytes.
    pub type_mismatches: Vec<TypeMismatchSignal>,
    /// Conversation facts.
    pub facts: Facts,
}

/// Who is scanning what, and the user's settings.
#[derive(Clone, Debug)]
pub struct Context {
    /// Outgoing or incoming.
    pub direction: Direction,
    /// The device owner's audience.
    pub audience: Audience,
    /// Settings changed from the policy's defaults.
    pub settings: BTreeMap<String, bool>,
}

/// A rule that fired, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FiredRule {
    /// Its id.
    pub id: String,
    /// Its description.
    pub description: String,
    /// Its actions.
    pub actions: Vec<Action>,
    /// The signals that made its condition hold, in words.
    pub reasons: Vec<String>,
}

/// What the policy decided for one message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    /// The actions, in increasing severity, without duplicates; `[allow]`
    /// when nothing else applies.
    pub actions: Vec<Action>,
    /// Message keys of the fired rules (for warn, blur, block_send), in rule order.
    pub messages: Vec<String>,
    /// Resource sets to show, in rule order.
    pub resources: Vec<String>,
    /// The rules that fired, in order.
    pub fired: Vec<FiredRule>,
}

impl Decision {
    /// Whether the decision includes `action`.
    pub fn has(&self, action: Action) -> bool {
        self.actions.contains(&action)
    }
}

impl Policy {
    /// Evaluates the rules in order against the signals.
    pub fn evaluate(&self, ctx: &Context, signals: &Signals) -> Decision {
        let mut fired = Vec::new();
        for rule in &self.rules {
            if !rule.direction.covers(ctx.direction)
                || (!rule.audiences.is_empty() && !rule.audiences.contains(&ctx.audience))
            {
                continue;
            }
            if let Some(setting) = &rule.requires_setting {
                let on = ctx.settings.get(setting).or_else(|| self.settings.get(setting)).copied().unwrap_or(false);
                if !on {
                    continue;
                }
            }
            let mut reasons = Vec::new();
            if holds(rule.when.get_ref(), signals, &mut reasons) {
                fired.push(FiredRule {
                    id: rule.id.clone(),
                    description: rule.description.clone(),
                    actions: rule.actions.get_ref().clone(),
                    reasons,
                });
                if rule.stop {
                    break;
                }
            }
        }
        let mut actions: Vec<Action> = fired.iter().flat_map(|f| f.actions.iter().copied()).collect();
        actions.sort();
        actions.dedup();
        if actions.iter().any(|a| *a != Action::Allow) {
            actions.retain(|a| *a != Action::Allow);
        }
        if actions.is_empty() {
            actions.push(Action::Allow);
        }
        let rule = |id: &str| self.rules.iter().find(|r| r.id == id);
        let mut messages = Vec::new();
        let mut resources = Vec::new();
        for f in &fired {
            if let Some(r) = rule(&f.id) {
                if let Some(m) = &r.message
                    && !messages.contains(m)
                {
                    messages.push(m.clone());
                }
                if let Some(s) = &r.resources
                    && !resources.contains(s)
                {
                    resources.push(s.clone());
                }
            }
        }
        Decision { actions, messages, resources, fired }
    }
}

/// Whether `c` holds; pushes the signals that made it hold onto `reasons`
/// (reasons of sub-conditions that end up not holding are discarded).
fn holds(c: &Condition, s: &Signals, reasons: &mut Vec<String>) -> bool {
    let mark = reasons.len();
    let ok = holds_inner(c, s, reasons);
    if !ok {
        reasons.truncate(mark);
    }
    ok
}

fn holds_inner(c: &Condition, s: &Signals, reasons: &mut Vec<String>) -> bool {
    if let Some(b) = &c.bank {
        let named = |bank: &str, labels: &[String]| {
            b.bank.as_ref().is_none_or(|name| name == bank)
                && (b.labels.is_empty() || labels.iter().any(|l| b.labels.contains(l)))
        };
        let label_list = |labels: &[String]| if labels.is_empty() { "no labels".to_owned() } else { labels.join(", ") };
        // A distance bound is about hash matches, a percentage about video matches.
        let video_only = b.min_query_percent.is_some() || b.min_compared_percent.is_some();
        let hash_hit = s
            .bank_matches
            .iter()
            .find(|m| !video_only && named(&m.bank, &m.labels) && b.max_distance.is_none_or(|d| m.distance <= d));
        let video_hit = s.video_matches.iter().find(|m| {
            b.max_distance.is_none()
                && named(&m.bank, &m.labels)
                && b.min_query_percent.is_none_or(|p| m.query_percent >= p)
                && b.min_compared_percent.is_none_or(|p| m.compared_percent >= p)
        });
        match (hash_hit, video_hit) {
            (Some(m), _) => reasons.push(format!(
                "{}{} matched bank {} ({}) at {} distance {}",
                m.source,
                if m.frame > 0 { format!(" frame {}", m.frame) } else { String::new() },
                m.bank,
                label_list(&m.labels),
                m.algorithm,
                m.distance
            )),
            (None, Some(m)) => reasons.push(format!(
                "{} matched video bank {} ({}) by vpdq: {:.1} % of its frames, {:.1} % of the banked video's",
                m.source,
                m.bank,
                label_list(&m.labels),
                m.query_percent,
                m.compared_percent
            )),
            (None, None) => return false,
        }
    }
    if let Some(k) = &c.classifier {
        let scored = |x: &&ScoreSignal| x.model == k.model && x.label == k.label;
        match k.min_frame_share {
            None => {
                let best = s
                    .scores
                    .iter()
                    .filter(scored)
                    .filter(|x| x.score >= k.at_least)
                    .max_by(|a, b| a.score.total_cmp(&b.score));
                let Some(x) = best else { return false };
                let frame = if x.frame > 0 { format!(" frame {}", x.frame) } else { String::new() };
                reasons.push(format!(
                    "{} {} {:.3} >= {:.3} on {}{frame}",
                    x.model, x.label, x.score, k.at_least, x.source
                ));
            }
            Some(share) => {
                // Per source: the share of its scored frames at or over the threshold.
                let mut sources: Vec<Source> = s.scores.iter().filter(scored).map(|x| x.source).collect();
                sources.dedup();
                let hit = sources.into_iter().find_map(|source| {
                    let frames: Vec<&ScoreSignal> =
                        s.scores.iter().filter(scored).filter(|x| x.source == source).collect();
                    let over = frames.iter().filter(|x| x.score >= k.at_least).count();
                    (over > 0 && over as f32 / frames.len() as f32 >= share).then_some((source, over, frames.len()))
                });
                let Some((source, over, n)) = hit else { return false };
                reasons.push(format!(
                    "{} {} >= {:.3} on {over} of {n} scored frames of {source} (at least {:.0} % asked)",
                    k.model,
                    k.label,
                    k.at_least,
                    share * 100.0
                ));
            }
        }
    }
    if let Some(e) = &c.exact {
        let Some(d) = s.digests.iter().find(|d| e.sha256.contains(&d.sha256)) else { return false };
        reasons.push(format!("{} has listed SHA-256 {}", d.source, d.sha256));
    }
    if let Some(u) = &c.unscannable {
        let hit = s.unscannable.iter().find(|x| u.reasons.is_empty() || u.reasons.contains(&x.reason));
        let Some(x) = hit else { return false };
        reasons.push(format!("{} cannot be scanned ({}): {}", x.source, x.reason.name(), x.detail));
    }
    if c.type_mismatch.is_some() {
        let Some(x) = s.type_mismatches.first() else { return false };
        reasons.push(format!("{} is declared {} but its bytes are {}", x.source, x.declared, x.sniffed));
    }
    if let Some(f) = &c.facts {
        for (want, have, name) in [
            (f.sender_is_contact, s.facts.sender_is_contact, "sender_is_contact"),
            (f.first_message_from_sender, s.facts.first_message_from_sender, "first_message_from_sender"),
        ] {
            if let Some(want) = want {
                if have != Some(want) {
                    return false;
                }
                reasons.push(format!("{name} = {want}"));
            }
        }
    }
    if !c.any.is_empty() && !c.any.iter().any(|sub| holds(sub, s, reasons)) {
        return false;
    }
    if !c.all.iter().all(|sub| holds(sub, s, reasons)) {
        return false;
    }
    if let Some(sub) = &c.not {
        let mut ignored = Vec::new();
        if holds(sub, s, &mut ignored) {
            return false;
        }
        reasons.push("negated condition does not hold".into());
    }
    true
}
