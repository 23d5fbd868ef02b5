//! The policy file format (`policies/*.toml`, `format = "frankly-policy-v1"`)
//! and its validation.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use toml::Spanned;

use crate::PolicyError;
use crate::eval::UnscannableReason;

/// Longest policy file read, in bytes.
pub const MAX_POLICY_BYTES: usize = 1 << 20;
/// Most rules in one policy.
pub const MAX_RULES: usize = 256;
/// Deepest nesting of `any`/`all`/`not` conditions.
pub const MAX_CONDITION_DEPTH: usize = 8;
/// Most exact hashes in one policy.
pub const MAX_EXACT_HASHES: usize = 10_000;
/// Longest rule id, setting name, message or resource key.
pub const MAX_KEY_CHARS: usize = 64;

/// Which way a message is going when it is scanned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Before encryption, on the sender's device.
    Outgoing,
    /// After decryption, on the recipient's device.
    Incoming,
}

/// Whose device it is: the app says (from account settings or age assurance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Under 13.
    Child,
    /// 13 to 17.
    Teen,
    /// 18 and over.
    Adult,
}

impl std::str::FromStr for Audience {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "child" => Ok(Audience::Child),
            "teen" => Ok(Audience::Teen),
            "adult" => Ok(Audience::Adult),
            _ => Err(format!("unknown audience {s:?} (child, teen or adult)")),
        }
    }
}

impl std::str::FromStr for Direction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "outgoing" => Ok(Direction::Outgoing),
            "incoming" => Ok(Direction::Incoming),
            _ => Err(format!("unknown direction {s:?} (outgoing or incoming)")),
        }
    }
}

/// A local action. The app renders them; frankly never acts by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing to do (only alone; dropped when another action applies).
    Allow,
    /// Record that the rule fired, without showing anything (research).
    Log,
    /// Show a warning (the rule's `message` key).
    Warn,
    /// Blur the media until the user confirms to view it.
    Blur,
    /// Offer help resources (the rule's `resources` key).
    ShowResources,
    /// Offer to report the message.
    SuggestReport,
    /// Do not send (outgoing only); the rule's `message` explains why.
    BlockSend,
}

/// Which directions a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Applies {
    /// Outgoing messages.
    Outgoing,
    /// Incoming messages.
    Incoming,
    /// Both.
    Both,
}

impl Applies {
    pub(crate) fn covers(self, d: Direction) -> bool {
        matches!(
            (self, d),
            (Applies::Both, _) | (Applies::Outgoing, Direction::Outgoing) | (Applies::Incoming, Direction::Incoming)
        )
    }
}

/// A condition on the signals; every clause present must hold.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// A bank match.
    pub bank: Option<BankCondition>,
    /// A classifier score (image or text model).
    pub classifier: Option<ScoreCondition>,
    /// An attachment whose SHA-256 is listed.
    pub exact: Option<ExactCondition>,
    /// Facts about the conversation, supplied by the app.
    pub facts: Option<FactsCondition>,
    /// An attachment the scanner could not scan (fully).
    pub unscannable: Option<UnscannableCondition>,
    /// An attachment whose declared media type disagrees with its bytes.
    pub type_mismatch: Option<TypeMismatchCondition>,
    /// At least one of these holds.
    #[serde(default)]
    pub any: Vec<Condition>,
    /// All of these hold.
    #[serde(default)]
    pub all: Vec<Condition>,
    /// This does not hold.
    pub not: Option<Box<Condition>>,
}

/// Holds when an attachment matched a bank.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankCondition {
    /// Only this bank (default: any).
    pub bank: Option<String>,
    /// Only entries with at least one of these labels (default: any).
    #[serde(default)]
    pub labels: Vec<String>,
    /// Only hash matches this close (default: the bank's own threshold).
    /// Given, video (vPDQ) matches do not count.
    pub max_distance: Option<u32>,
    /// Only video (vPDQ) matches where at least this share of the
    /// attachment's frames matched, in percent (default: the video bank's
    /// own rule). Given, hash matches do not count.
    pub min_query_percent: Option<f64>,
    /// Only video matches where at least this share of the banked video's
    /// frames matched, in percent. Given, hash matches do not count.
    pub min_compared_percent: Option<f64>,
}

/// Holds when a model gave a label at least this score.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreCondition {
    /// Model name, as in `models/<name>.toml`.
    pub model: String,
    /// Label name.
    pub label: String,
    /// Threshold, 0..=1.
    pub at_least: f32,
    /// Holds only when at least this share (0..=1) of one attachment's
    /// scored frames reach `at_least` (a video's sampled frames; a still
    /// image has one). Default: any one frame.
    pub min_frame_share: Option<f32>,
}

/// Holds when an attachment's SHA-256 is in the list.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExactCondition {
    /// Lowercase hex SHA-256 digests.
    pub sha256: Vec<String>,
}

/// Holds when every listed fact has the listed value. A fact the app did
/// not supply never holds.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactsCondition {
    /// The sender is in the user's contacts.
    pub sender_is_contact: Option<bool>,
    /// This is the first message from this sender.
    pub first_message_from_sender: Option<bool>,
}

/// Holds when an attachment could not be scanned (fully), for one of
/// `reasons` (default: any reason).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnscannableCondition {
    /// Only these reasons (default: any).
    #[serde(default)]
    pub reasons: Vec<UnscannableReason>,
}

/// Holds when an attachment's declared media type disagrees with the type
/// its bytes' signature says (`type_mismatch = {}`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeMismatchCondition {}

/// One rule: when it applies, what must hold, what to do.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique id, `[a-z0-9._-]`, named in verdicts.
    pub id: String,
    /// What the rule is for, shown in verdicts.
    pub description: String,
    /// Directions it applies to.
    pub direction: Applies,
    /// Audiences it applies to (default: all).
    #[serde(default)]
    pub audiences: Vec<Audience>,
    /// A setting that must be on for the rule to apply.
    pub requires_setting: Option<String>,
    /// The condition.
    pub when: Spanned<Condition>,
    /// What to do.
    pub actions: Spanned<Vec<Action>>,
    /// Message key for `warn`, `blur` and `block_send`.
    pub message: Option<String>,
    /// Resource set for `show_resources`.
    pub resources: Option<String>,
    /// Stop evaluating later rules when this one fires.
    #[serde(default)]
    pub stop: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    format: String,
    name: String,
    description: String,
    #[serde(default)]
    audiences: Vec<Audience>,
    #[serde(default)]
    settings: BTreeMap<String, bool>,
    #[serde(default)]
    rules: Vec<Spanned<Rule>>,
}

/// A validated policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The audiences it is written for (all when the file names none).
    pub audiences: Vec<Audience>,
    /// Settings the app may change, with their defaults.
    pub settings: BTreeMap<String, bool>,
    /// Rules in evaluation order.
    pub rules: Vec<Rule>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

impl Policy {
    /// The audience a scanner runs for when the caller names none: the
    /// policy's first.
    pub fn default_audience(&self) -> Audience {
        self.audiences.first().copied().unwrap_or(Audience::Adult)
    }

    /// Parses and validates a policy file's text.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge { bytes: text.len(), limit: MAX_POLICY_BYTES });
        }
        let file: PolicyFile = toml::from_str(text).map_err(|e| PolicyError::Parse {
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().to_owned(),
        })?;
        let at = |offset: usize, rule: Option<&str>, field: &str, message: String| PolicyError::Invalid {
            line: line_of(text, offset),
            rule: rule.map(str::to_owned),
            field: field.to_owned(),
            message,
        };
        if file.format != "frankly-policy-v1" {
            return Err(at(0, None, "format", format!("{:?} is not frankly-policy-v1", file.format)));
        }
        if file.rules.len() > MAX_RULES {
            return Err(at(0, None, "rules", format!("{} rules, over the limit of {MAX_RULES}", file.rules.len())));
        }
        for name in file.settings.keys() {
            check_key(name).map_err(|m| at(0, None, &format!("settings.{name}"), m))?;
        }
        let audiences = if file.audiences.is_empty() {
            vec![Audience::Child, Audience::Teen, Audience::Adult]
        } else {
            file.audiences
        };
        let mut ids = BTreeSet::new();
        let mut rules = Vec::with_capacity(file.rules.len());
        let mut total_hashes = 0;
        for spanned in file.rules {
            let start = spanned.span().start;
            let rule = spanned.into_inner();
            let id = rule.id.clone();
            let bad = |field: &str, m: String| at(start, Some(&id), field, m);
            check_key(&rule.id).map_err(|m| bad("id", m))?;
            if !ids.insert(rule.id.clone()) {
                return Err(bad("id", "the id is used by an earlier rule".into()));
            }
            if let Some(a) = rule.audiences.iter().find(|a| !audiences.contains(a)) {
                return Err(bad("audiences", format!("{a:?} is not among the policy's audiences {audiences:?}")));
            }
            if let Some(s) = &rule.requires_setting
                && !file.settings.contains_key(s)
            {
                return Err(bad("requires_setting", format!("{s:?} is not declared in [settings]")));
            }
            let actions_line = rule.actions.span().start;
            let actions = rule.actions.get_ref();
            let bad_actions = |m: String| at(actions_line, Some(&id), "actions", m);
            if actions.is_empty() {
                return Err(bad_actions("no actions (use [\"allow\"] or [\"log\"])".into()));
            }
            if actions.contains(&Action::Allow) && actions.len() > 1 {
                return Err(bad_actions("allow cannot be combined with other actions".into()));
            }
            if actions.contains(&Action::BlockSend) && rule.direction != Applies::Outgoing {
                return Err(bad_actions(
                    "block_send applies to outgoing messages only (direction = \"outgoing\")".into(),
                ));
            }
            let needs_message = actions.iter().any(|a| matches!(a, Action::Warn | Action::Blur | Action::BlockSend));
            match &rule.message {
                None if needs_message => {
                    return Err(bad("message", "warn, blur and block_send need a message key".into()));
                }
                Some(m) => check_key(m).map_err(|e| bad("message", e))?,
                None => {}
            }
            match &rule.resources {
                None if actions.contains(&Action::ShowResources) => {
                    return Err(bad("resources", "show_resources needs a resources key".into()));
                }
                Some(r) => check_key(r).map_err(|e| bad("resources", e))?,
                None => {}
            }
            let mut hashes = BTreeSet::new();
            let when_line = rule.when.span().start;
            check_condition(rule.when.get_ref(), 0, &mut hashes)
                .map_err(|(field, m)| at(when_line, Some(&id), &format!("when.{field}"), m))?;
            total_hashes += hashes.len();
            if total_hashes > MAX_EXACT_HASHES {
                return Err(bad("when.exact", format!("over {MAX_EXACT_HASHES} exact hashes in the policy")));
            }
            rules.push(rule);
        }
        Ok(Policy { name: file.name, description: file.description, audiences, settings: file.settings, rules })
    }

    /// Every (model, label) a rule's condition reads. A scanner must load
    /// these models: a rule about a model that is not there would silently
    /// never fire.
    pub fn classifier_labels(&self) -> BTreeSet<(String, String)> {
        fn walk(c: &Condition, out: &mut BTreeSet<(String, String)>) {
            if let Some(k) = &c.classifier {
                out.insert((k.model.clone(), k.label.clone()));
            }
            c.any.iter().chain(&c.all).chain(c.not.as_deref()).for_each(|sub| walk(sub, out));
        }
        let mut out = BTreeSet::new();
        for rule in &self.rules {
            walk(rule.when.get_ref(), &mut out);
        }
        out
    }

    /// Whether the policy is written for `audience`; a device must not
    /// scan with a policy written for another audience.
    pub fn supports(&self, audience: Audience) -> bool {
        self.audiences.contains(&audience)
    }
}

fn check_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.chars().count() <= MAX_KEY_CHARS
        && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok { Ok(()) } else { Err(format!("{key:?} must be 1 to {MAX_KEY_CHARS} characters of a-z, 0-9, '.', '_', '-'")) }
}

/// Checks a condition; collects its exact hashes. Errors name the field
/// path under `when`.
fn check_condition(c: &Condition, depth: usize, hashes: &mut BTreeSet<[u8; 32]>) -> Result<(), (String, String)> {
    if depth > MAX_CONDITION_DEPTH {
        return Err(("any/all/not".into(), format!("nested deeper than {MAX_CONDITION_DEPTH}")));
    }
    let clauses = [
        c.bank.is_some(),
        c.classifier.is_some(),
        c.exact.is_some(),
        c.facts.is_some(),
        c.unscannable.is_some(),
        c.type_mismatch.is_some(),
    ]
    .iter()
    .filter(|&&b| b)
    .count()
        + usize::from(!c.any.is_empty())
        + usize::from(!c.all.is_empty())
        + usize::from(c.not.is_some());
    if clauses == 0 {
        return Err((
            String::new(),
            "empty condition: give bank, classifier, exact, facts, unscannable, type_mismatch, any, all or not".into(),
        ));
    }
    if let Some(s) = &c.classifier {
        if !(0.0..=1.0).contains(&s.at_least) {
            return Err(("classifier.at_least".into(), format!("{} is not within 0..=1", s.at_least)));
        }
        if s.model.is_empty() || s.label.is_empty() {
            return Err(("classifier".into(), "model and label must be named".into()));
        }
        if let Some(share) = s.min_frame_share
            && !(share > 0.0 && share <= 1.0)
        {
            return Err(("classifier.min_frame_share".into(), format!("{share} is not within (0, 1]")));
        }
    }
    if let Some(b) = &c.bank {
        if b.max_distance.is_some_and(|d| d > 256) {
            return Err(("bank.max_distance".into(), "over 256 bits".into()));
        }
        for (field, p) in [("min_query_percent", b.min_query_percent), ("min_compared_percent", b.min_compared_percent)]
        {
            if let Some(p) = p
                && !(0.0..=100.0).contains(&p)
            {
                return Err((format!("bank.{field}"), format!("{p} is not within 0..=100")));
            }
        }
        if b.max_distance.is_some() && (b.min_query_percent.is_some() || b.min_compared_percent.is_some()) {
            return Err((
                "bank".into(),
                "max_distance is about hash matches and the percentages about video matches: give one or the other"
                    .into(),
            ));
        }
    }
    if let Some(e) = &c.exact {
        if e.sha256.is_empty() {
            return Err(("exact.sha256".into(), "empty list".into()));
        }
        for (i, h) in e.sha256.iter().enumerate() {
            let mut d = [0u8; 32];
            let ok = h.len() == 64
                && h.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
                && (0..32).all(|k| u8::from_str_radix(&h[2 * k..2 * k + 2], 16).map(|v| d[k] = v).is_ok());
            if !ok {
                return Err((format!("exact.sha256[{i}]"), format!("{h:?} is not 64 lowercase hex digits")));
            }
            hashes.insert(d);
        }
    }
    if let Some(f) = &c.facts
        && f.sender_is_contact.is_none()
        && f.first_message_from_sender.is_none()
    {
        return Err(("facts".into(), "no fact given".into()));
    }
    for (name, list) in [("any", &c.any), ("all", &c.all)] {
        for (i, sub) in list.iter().enumerate() {
            check_condition(sub, depth + 1, hashes).map_err(|(f, m)| (format!("{name}[{i}].{f}"), m))?;
        }
    }
    if let Some(sub) = &c.not {
        check_condition(sub, depth + 1, hashes).map_err(|(f, m)| (format!("not.{f}"), m))?;
    }
    Ok(())
}
