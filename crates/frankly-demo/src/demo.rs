//! The narrated demo: the whole loop, step by step, with what each party
//! saw and learned, and timings.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use frankly_client::{Attachment, Message, Scanner, Verdict};
use frankly_policy::{Action, Audience};
use frankly_report::Reason;
use frankly_review::{DecisionInput, Ground, Role};
use frankly_server::User;
use frankly_server::queue;
use zeroize::Zeroizing;

use crate::DemoError;
use crate::assets::{BANK_NAME, BANKED, CLIP, ORDINARY, VIDEO_BANK_NAME, disguise};
use crate::e2ee::Directory;
use crate::messenger::{Messenger, Received, Sent};
use crate::platform::{Platform, load_scanner};

/// Where the demo finds what frankly ships, and where it keeps its data.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// The shipped policies (`policies/` of the repository).
    pub policies_dir: PathBuf,
    /// The shipped models (`models/`).
    pub models_dir: PathBuf,
    /// The server's data directory (new or empty); a fresh temporary one if `None`.
    pub data_dir: Option<PathBuf>,
    /// Where the server listens (port 0 picks a free one).
    pub listen: std::net::SocketAddr,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            policies_dir: PathBuf::from("policies"),
            models_dir: PathBuf::from("models"),
            data_dir: None,
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

/// What the demo measured, for tests and for the closing summary.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Messages the relay carried.
    pub relayed: usize,
    /// Messages a device's policy blocked before franking.
    pub blocked: usize,
    /// Messages a recipient refused (never shown).
    pub refused: usize,
    /// Reports the server accepted.
    pub reports: usize,
    /// Reports it refused (no credential).
    pub reports_refused: usize,
    /// Decisions made.
    pub decisions: usize,
    /// Audit log entries, verified.
    pub audit_entries: i64,
}

/// The server left running after the script, with the demo moderator's
/// credentials.
pub struct Running {
    /// The review UI.
    pub url: String,
    /// The demo moderator.
    pub username: String,
    /// Their password (random per run).
    pub password: Zeroizing<String>,
    /// What happened.
    pub summary: Summary,
    platform: Platform,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("url", &self.url).field("summary", &self.summary).finish_non_exhaustive()
    }
}

impl Running {
    /// The server.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// Stops the server and removes a temporary data directory.
    pub async fn stop(self) -> Result<(), DemoError> {
        self.platform.stop().await
    }
}

/// Writes the narration.
struct Narrator<'a> {
    out: &'a mut dyn Write,
    step: usize,
    started: Instant,
}

impl Narrator<'_> {
    fn step(&mut self, title: &str) -> std::io::Result<()> {
        self.step += 1;
        writeln!(self.out)?;
        writeln!(self.out, "[{}] {title}", self.step)
    }

    fn say(&mut self, who: &str, text: &str) -> std::io::Result<()> {
        let mut lines = text.lines();
        writeln!(self.out, "  {who:<18}{}", lines.next().unwrap_or(""))?;
        for l in lines {
            writeln!(self.out, "  {:<18}{l}", "")?;
        }
        Ok(())
    }
}

fn ms(since: Instant) -> String {
    format!("{:.1} ms", since.elapsed().as_secs_f64() * 1e3)
}

fn short(bytes: &[u8]) -> String {
    format!("{}…", hex::encode(&bytes[..bytes.len().min(6)]))
}

/// The verdict: the actions, the bank matches, the scores of the labels
/// the policy reads, the rules that fired.
fn verdict_line(v: &Verdict, reads: &BTreeSet<(String, String)>) -> String {
    let actions: Vec<&str> = v.decision.actions.iter().map(|a| action_name(*a)).collect();
    let mut line = actions.join(" + ");
    for m in &v.signals.bank_matches {
        line.push_str(&format!("\nmatched bank {} [{}] at PDQ distance {}", m.bank, m.labels.join(", "), m.distance));
    }
    for m in &v.signals.video_matches {
        line.push_str(&format!(
            "\nmatched video bank {} [{}] by vPDQ: {:.0} % of the clip's frames, {:.0} % of the banked video's",
            m.bank,
            m.labels.join(", "),
            m.query_percent,
            m.compared_percent
        ));
    }
    for s in v.signals.scores.iter().filter(|s| reads.contains(&(s.model.clone(), s.label.clone()))) {
        line.push_str(&format!("\nclassifier {}/{} = {:.3}", s.model, s.label, s.score));
    }
    for f in &v.decision.fired {
        line.push_str(&format!("\nrule {} fired", f.id));
    }
    line.push_str(&format!("\nscan took {:.1} ms, on the device", v.timings.total_us as f64 / 1e3));
    line
}

/// How the app would present an incoming message under its verdict.
fn presentation(v: &Verdict) -> String {
    let mut how = Vec::new();
    if v.decision.has(Action::Blur) {
        how.push("blurred until tapped");
    }
    if v.decision.has(Action::Warn) {
        how.push("behind a warning");
    }
    if v.decision.has(Action::ShowResources) {
        how.push("with help resources");
    }
    if v.decision.has(Action::SuggestReport) {
        how.push("with a Report button");
    }
    if how.is_empty() { String::new() } else { format!(", {}", how.join(", ")) }
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Allow => "allow",
        Action::Log => "log",
        Action::Warn => "warn",
        Action::Blur => "blur",
        Action::ShowResources => "show-resources",
        Action::SuggestReport => "suggest-report",
        Action::BlockSend => "block-send",
    }
}

fn scanner(
    options: &DemoOptions,
    policy: &str,
    audience: Audience,
    platform: &Platform,
) -> Result<Arc<Scanner>, DemoError> {
    load_scanner(&options.policies_dir, &options.models_dir, policy, audience, platform.bank(), platform.video_bank())
}

fn random_password() -> Result<Zeroizing<String>, DemoError> {
    let mut bytes = Zeroizing::new([0u8; 12]);
    getrandom::fill(bytes.as_mut()).map_err(|e| DemoError::Setup(format!("randomness: {e}")))?;
    Ok(Zeroizing::new(hex::encode(bytes.as_ref())))
}

/// Sends and narrates; returns the outcome.
async fn send(
    n: &mut Narrator<'_>,
    summary: &mut Summary,
    directory: &mut Directory,
    from: &mut Messenger,
    conversation: &str,
    message: &Message,
) -> Result<Sent, DemoError> {
    let t = Instant::now();
    let sent = from.send(directory, conversation, message).await?;
    let who = format!("{}'s device", from.user_id());
    let reads = from.scanner().policy().classifier_labels();
    match &sent.relayed {
        None => {
            summary.blocked += 1;
            n.say(&who, &format!("scan (outgoing): {}", verdict_line(&sent.verdict, &reads)))?;
            n.say(&who, "the policy blocks sending: nothing was franked, encrypted or sent")?;
            n.say("relay", "saw nothing: no request was made")?;
        }
        Some(r) => {
            summary.relayed += 1;
            n.say(&who, &format!("scan (outgoing): {}", verdict_line(&sent.verdict, &reads)))?;
            n.say(
                &who,
                &format!(
                    "franked as {} with a fresh franking key; Olm-encrypted for {} device(s); {} bytes to the relay ({})",
                    sent.message_id,
                    sent.copies,
                    sent.ciphertext_bytes,
                    ms(t)
                ),
            )?;
            n.say(
                "relay",
                &format!(
                    "saw: from {} (its device token), a member of {conversation}; {} bytes of ciphertext, commitment {};\n\
                     numbered it {} in the conversation, tagged each copy for its device with platform key {}\n\
                     and MACed each delivery under that device's key",
                    r.delivery.sender,
                    sent.ciphertext_bytes,
                    short(&sent.commitment.map(|c| c.0).unwrap_or_default()),
                    r.delivery.sequence,
                    r.franked.tag.key_id
                ),
            )?;
        }
    }
    Ok(sent)
}

/// Receives and narrates.
async fn receive(
    n: &mut Narrator<'_>,
    summary: &mut Summary,
    directory: &Directory,
    to: &mut Messenger,
) -> Result<Vec<Received>, DemoError> {
    let received = to.receive(directory).await?;
    let who = format!("{}'s device", to.user_id());
    let reads = to.scanner().policy().classifier_labels();
    for r in &received {
        match &r.outcome {
            Ok(shown) => {
                let mut parts = Vec::new();
                if !shown.message.text.is_empty() {
                    parts.push(format!("{:?}", shown.message.text));
                }
                for a in &shown.message.attachments {
                    parts.push(format!("a picture ({}, {} bytes)", a.media_type, a.bytes.len()));
                }
                let what = parts.join(" + ");
                n.say(
                    &who,
                    &format!(
                        "delivery MAC ✓  sequence {} follows ✓  Olm decrypt ✓  commitment inside = tagged commitment ✓\n\
                         opening ✓ (delivered sender {} = the Olm peer; addressed to this device ✓)",
                        shown.delivery.sequence,
                        shown.delivery.sender
                    ),
                )?;
                n.say(&who, &format!("scan (incoming): {}", verdict_line(&shown.verdict, &reads)))?;
                n.say(
                    &who,
                    &format!(
                        "shows {what}{} ({:.1} ms from fetch to screen)",
                        presentation(&shown.verdict),
                        r.took.as_secs_f64() * 1e3
                    ),
                )?;
            }
            Err(e) => {
                summary.refused += 1;
                n.say(&who, &format!("REFUSED: {e}"))?;
                n.say(
                    &who,
                    "not shown: a message the device cannot verify is never shown, so all it shows can be reported",
                )?;
            }
        }
    }
    Ok(received)
}

fn text(t: &str) -> Message {
    Message::text(t)
}

/// Runs the demo script, writing the narration to `out`, and returns the
/// server still running (call [`Running::stop`], or leave it up for the
/// review UI).
pub async fn run(options: &DemoOptions, out: &mut dyn Write) -> Result<Running, DemoError> {
    let mut n = Narrator { out, step: 0, started: Instant::now() };
    let mut summary = Summary::default();
    writeln!(
        n.out,
        "frankly demo: four people's devices, the platform's relay and a moderation server, on this machine.\n\
         Every key, ciphertext, tag and check below is real; only the people are simulated."
    )?;

    // The script's story (report 1, the demo account) needs a server of its own.
    if let Some(dir) = &options.data_dir
        && std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
    {
        return Err(DemoError::Setup(format!(
            "{} is not empty: the demo needs a fresh data directory (remove it, or pick another)",
            dir.display()
        )));
    }

    // 1. The server.
    n.step("The platform and the moderation server start")?;
    let t = Instant::now();
    let platform = Platform::start(options.data_dir.clone(), options.listen).await?;
    let state = platform.state().clone();
    let url = platform.url().to_owned();
    let password = random_password()?;
    let moderator_id = frankly_server::create_user(state.db(), "demo", "demo", &password, Role::Moderator).await?;
    let platform_token = platform.platform_token();
    let data_dir = platform.data_dir().to_path_buf();
    n.say(
        "server",
        &format!(
            "frankly-server at {url}, SQLite in {} ({})\n\
             first start generated its keys: the report key (HPKE, X25519), the device master secret (each device's\n\
             delivery-MAC key is derived from it) and the platform tag key (HMAC-SHA256, tagging for {} hours),\n\
             shared by the platform and moderation only",
            data_dir.display(),
            ms(t),
            state.config().key_rotation_hours
        ),
    )?;
    n.say(
        "hash bank",
        &format!(
            "{BANK_NAME}: the PDQ hashes of {} photos standing in for known abuse material,\n\
             signed ({} bytes, Ed25519) and verified by every device and by the server before use",
            BANKED.len(),
            platform.bundle_bytes()
        ),
    )?;

    // 2. The devices.
    n.step("Four devices: Olm identity keys, policies, models")?;
    let t = Instant::now();
    let mut directory = Directory::new();
    let adult = scanner(options, "adult", Audience::Adult, &platform)?;
    let bob_scanner = scanner(options, "teen", Audience::Teen, &platform)?;
    let mallory_scanner = scanner(options, "research", Audience::Adult, &platform)?;
    let register = |user: &'static str| (user, format!("{user}-phone"));
    let mut devices = Vec::new();
    for (user, scanner) in [("alice", &adult), ("bob", &bob_scanner), ("carol", &adult), ("mallory", &mallory_scanner)]
    {
        let (u, d) = register(user);
        devices.push(Messenger::register(&url, &platform_token, u, &d, Arc::clone(scanner), &mut directory, 16).await?);
    }
    let [mut alice, mut bob, mut carol, mut mallory]: [Messenger; 4] =
        devices.try_into().map_err(|_| DemoError::Setup("four devices".into()))?;
    alice.add_contact("bob");
    alice.add_contact("carol");
    bob.add_contact("alice");
    bob.add_contact("carol");
    carol.add_contact("alice");
    carol.add_contact("bob");
    for m in [&alice, &bob, &carol, &mallory] {
        let key = directory.identity(&m.party().to_string()).map(|k| k.to_base64()).unwrap_or_default();
        n.say(
            &format!("{}'s device", m.user_id()),
            &format!("{}: Olm identity key {}…, one-time keys published", m.party(), &key[..12]),
        )?;
    }
    n.say(
        "policies",
        "alice, carol: adult; bob: teen (he is 15); mallory: research, which only logs,\n\
         standing in for a modified client that never blocks anything",
    )?;
    n.say("models", &format!("open_nsfw and profanity_check (ONNX, run by tract), loaded on each device ({})", ms(t)))?;
    let (ab, mb, club) = ("alice/bob", "mallory/bob", "climbing-club");
    platform.create_conversation(ab, &["alice", "bob"]).await?;
    platform.create_conversation(mb, &["mallory", "bob"]).await?;
    platform.create_conversation(club, &["alice", "bob", "carol"]).await?;
    n.say(
        "platform",
        "conversations alice/bob, mallory/bob (mallory asked to chat) and the group climbing-club (alice, bob, carol):\n\
         the relay tags a message only from a member, for the member devices",
    )?;

    // 3. Alice and Bob.
    n.step("alice → bob, a first message (Olm pre-key message: the session starts)")?;
    send(
        &mut n,
        &mut summary,
        &mut directory,
        &mut alice,
        ab,
        &text("Hi Bob! Still on for the climbing gym on Saturday?"),
    )
    .await?;
    receive(&mut n, &mut summary, &directory, &mut bob).await?;

    n.step("bob → alice, a reply, and a photo of his cat")?;
    send(&mut n, &mut summary, &mut directory, &mut bob, ab, &text("Yes! 10am? Here's Chelsea, she says hi")).await?;
    let cat = text("").with_attachment(Attachment::new(ORDINARY.bytes.to_vec(), ORDINARY.media_type));
    send(&mut n, &mut summary, &mut directory, &mut bob, ab, &cat).await?;
    receive(&mut n, &mut summary, &directory, &mut alice).await?;

    n.step("alice tries to forward a banked photo, resized to 50% and re-encoded (JPEG q60)")?;
    let disguised = disguise(BANKED[0].bytes, 0.5, 60)?;
    n.say(
        "alice's device",
        &format!(
            "{} bytes, SHA-256 {}…: not one byte in common with the original; the PDQ hash barely moves",
            disguised.len(),
            &frankly_hash::sha256_hex(&disguised)[..12]
        ),
    )?;
    let forward = text("lol look").with_attachment(Attachment::new(disguised, "image/jpeg"));
    send(&mut n, &mut summary, &mut directory, &mut alice, ab, &forward).await?;

    n.step("alice tries to forward a banked clip, re-encoded at half size (640x360, H.264)")?;
    n.say(
        "alice's device",
        &format!(
            "{} bytes, video MD5 {}: another file than the banked one; the device decodes it, hashes one frame a second (vPDQ)\n\
             and matches the frames against the {VIDEO_BANK_NAME} video bank (Meta's published vPDQ of the original)",
            CLIP.bytes.len(),
            frankly_hash::md5_hex(CLIP.bytes)
        ),
    )?;
    let clip = text("").with_attachment(Attachment::new(CLIP.bytes.to_vec(), "application/octet-stream"));
    send(&mut n, &mut summary, &mut directory, &mut alice, ab, &clip).await?;

    // 4. Mallory.
    n.step("mallory, a stranger to bob, writes to him")?;
    send(&mut n, &mut summary, &mut directory, &mut mallory, mb, &text("hey, saw you at the gym")).await?;
    send(
        &mut n,
        &mut summary,
        &mut directory,
        &mut mallory,
        mb,
        &text("answer me you stupid fucking loser, you're a worthless piece of shit"),
    )
    .await?;
    let banked = disguise(BANKED[1].bytes, 0.7, 75)?;
    let picture = text("this is you").with_attachment(Attachment::new(banked, "image/jpeg"));
    let image_sent = send(&mut n, &mut summary, &mut directory, &mut mallory, mb, &picture).await?;
    receive(&mut n, &mut summary, &directory, &mut bob).await?;

    n.step("mallory's client lies: it commits to one text and encrypts another")?;
    forged_send(&mut n, &mut directory, &mut mallory, mb).await?;
    receive(&mut n, &mut summary, &directory, &mut bob).await?;

    // 5. The first report.
    n.step("bob reports mallory's picture, with the two messages before it and the one after as context")?;
    let t = Instant::now();
    let note = "a stranger keeps insulting me";
    let picture_c = image_sent.commitment.ok_or_else(|| DemoError::Setup("the picture was not sent".into()))?;
    let built = bob.reporter().build_report(mb, &picture_c, 2, 1, Reason::Harassment, note, true)?;
    let keys = bob.server_keys().clone();
    let envelope = frankly_report::seal_report(&built, keys.report_key_id, &keys.report)
        .map_err(|e| DemoError::Client(frankly_client::ClientError::Report(e.to_string())))?;
    n.say(
        "bob's device",
        &format!(
            "seals {} messages (each his device's own copy: commitment, platform tag, delivery context, and the\n\
             opening unless his device refused it) and {} pieces of local scanning evidence, encoded in binary and\n\
             padded (Padmé), to the moderation server's report key {} (HPKE): {} bytes",
            built.messages.len(),
            built.evidence.len(),
            keys.report_key_id,
            envelope.len()
        ),
    )?;
    let received = bob.relay().post_report(envelope.clone()).await?;
    summary.reports += 1;
    n.say(
        "moderation",
        &format!(
            "authenticated bob's device before opening anything; answered {:?} for report {}, as it answers\n\
             every report, verified or not, so nobody can use it to test leaked messages ({})",
            received.status,
            received.report_id,
            ms(t)
        ),
    )?;

    n.step("someone who recorded bob's envelope replays it without a credential; bob's app sends it twice")?;
    let eavesdropper = crate::relay::Relay::new(&url, None);
    match eavesdropper.post_report(envelope.clone()).await {
        Err(DemoError::Refused { status, code, .. }) => {
            summary.reports_refused += 1;
            n.say(
                "moderation",
                &format!("refused the envelope without a device credential: {status} {code}; no HPKE open was spent"),
            )?;
        }
        Ok(_) => return Err(DemoError::Setup("the server accepted a report without a credential".into())),
        Err(e) => return Err(e),
    }
    bob.relay().post_report(envelope).await?;
    n.say(
        "moderation",
        "the same answer to bob's second copy, and nothing queued twice: one report per message per reporter",
    )?;

    // 6. The group: a late joiner, both sides of a conversation.
    n.step("the group climbing-club: alice, bob and carol talk; mallory is added later")?;
    send(&mut n, &mut summary, &mut directory, &mut alice, club, &text("Who's in for Saturday?")).await?;
    send(&mut n, &mut summary, &mut directory, &mut carol, club, &text("Me! Bringing the new rope")).await?;
    for m in [&mut bob, &mut carol, &mut alice] {
        receive(&mut n, &mut summary, &directory, m).await?;
    }
    platform.add_member(club, "mallory").await?;
    n.say("platform", "added mallory to climbing-club: from now on each message has a copy for her device too")?;
    let threat = send(
        &mut n,
        &mut summary,
        &mut directory,
        &mut mallory,
        club,
        &text("bob you'd better not show up on Saturday"),
    )
    .await?;
    receive(&mut n, &mut summary, &directory, &mut bob).await?;
    send(&mut n, &mut summary, &mut directory, &mut bob, club, &text("please leave me alone")).await?;
    send(&mut n, &mut summary, &mut directory, &mut mallory, club, &text("or what? everyone here knows you're a joke"))
        .await?;
    for m in [&mut alice, &mut carol, &mut bob] {
        receive(&mut n, &mut summary, &directory, m).await?;
    }

    n.step("bob reports mallory's threat in the group, with both sides: the messages before and after it")?;
    let t = Instant::now();
    let threat_c = threat.commitment.ok_or_else(|| DemoError::Setup("the threat was not sent".into()))?;
    let group_report =
        bob.reporter().build_report(club, &threat_c, 2, 2, Reason::Harassment, "threats in our group", true)?;
    let senders: Vec<String> = group_report
        .messages
        .iter()
        .map(|m| format!("{} #{}", m.delivery.sender.user_id, m.delivery.sequence))
        .collect();
    n.say(
        "bob's device",
        &format!("report of {} messages in the platform's order: {}", senders.len(), senders.join(", ")),
    )?;
    bob.report(club, &threat_c, 2, 2, Reason::Harassment, "threats in our group").await?;
    summary.reports += 1;
    n.say("moderation", &format!("received and verified it ({})", ms(t)))?;

    // 6. Review.
    n.step("a moderator claims the top report, looks, decides")?;
    let t = Instant::now();
    let user = User { id: moderator_id, username: "demo".into(), role: Role::Moderator, reveal_media: false };
    let id = queue::claim(
        state.db(),
        &user,
        frankly_review::Queue::Harassment,
        i64::try_from(state.config().lease_seconds).unwrap_or(900) * 1000,
    )
    .await?
    .ok_or_else(|| DemoError::Setup("nothing to claim".into()))?;
    let view = queue::view(state.db(), &user, id).await?;
    let order = match &view.stored.order {
        Ok(o) if o.is_complete() => format!("sequence {} to {}, nothing omitted", o.first, o.last),
        Ok(o) => format!("sequence {} to {}, {} gap(s)", o.first, o.last, o.gaps.len()),
        Err(e) => format!("not in order: {e}"),
    };
    n.say(
        "moderator demo",
        &format!(
            "claimed report {id} (priority {}: the server's bank match put it first), lease {} min\n\
             sees {} messages, {} verified, one delivered but refused on bob's device; {order};\n\
             {} server bank match(es); media blurred until revealed",
            view.row.priority,
            state.config().lease_seconds / 60,
            view.row.messages,
            view.row.verified,
            view.stored.server_matches.len()
        ),
    )?;
    let decision = DecisionInput {
        action: frankly_review::Action::Suspend,
        restriction: None,
        facts: "Verified messages from mallory to bob: repeated insults, then a picture matching the known-abuse bank."
            .into(),
        automated_detection: true,
        ground: Ground::Terms,
        ground_reference: "Terms of service §4 (abuse and harassment)".into(),
        redress: None,
    };
    let decided = queue::decide(state.db(), &user, id, &decision, state.config().strike_days).await?;
    summary.decisions += 1;
    n.say(
        "moderator demo",
        &format!(
            "decided: suspend mallory, with the DSA statement of reasons; {} ms from intake to decision ({})",
            decided.latency_ms,
            ms(t)
        ),
    )?;
    let chain = frankly_server::audit::verify(state.db()).await?;
    summary.audit_entries = chain.entries;
    n.say(
        "audit",
        &format!("hash chain of {} entries verified; head {}…", chain.entries, &chain.head[..12.min(chain.head.len())]),
    )?;

    // 7. The ledger.
    n.step("What each party learned")?;
    for m in [&alice, &bob, &carol, &mallory] {
        let log = m.relay().log();
        let sent: usize = log.iter().map(|e| e.sent_bytes).sum();
        let reports = log.iter().filter(|e| e.path == "/v1/reports").count();
        let scans = if reports == 0 {
            "no scan result, no hash".to_owned()
        } else {
            format!("scan evidence only inside the {reports} sealed report(s) the user chose to send")
        };
        n.say(
            &format!("{}'s device", m.user_id()),
            &format!("made {} requests, {} bytes out: E2EE ciphertexts with commitments; {scans}", log.len(), sent),
        )?;
    }
    n.say(
        "relay/platform",
        &format!(
            "carried {} messages: for each, the sender device, the member devices, the conversation and its sequence\n\
             number, time, sizes and commitment; never a plaintext, a franking key or a verdict.\n\
             {} blocked message(s) it never heard of.",
            summary.relayed, summary.blocked
        ),
    )?;
    n.say(
        "moderation",
        "saw only the messages bob chose to report (both sides, with their sequence numbers, so it knows\n\
         what lies between them) and the evidence he attached; it can prove to itself that mallory sent them,\n\
         but tags and delivery MACs are MACs: no outsider can be convinced, even with a leaked platform key",
    )?;
    n.say("scanning", "ran on each device before encryption and after decryption; its verdicts never left a device")?;
    writeln!(n.out, "\ndemo finished in {:.1} s", n.started.elapsed().as_secs_f64())?;

    Ok(Running { url: format!("{url}/"), username: "demo".into(), password, summary, platform })
}

/// Mallory's modified client: the commitment is to one body, the
/// ciphertext carries another.
async fn forged_send(
    n: &mut Narrator<'_>,
    directory: &mut Directory,
    mallory: &mut Messenger,
    conversation: &str,
) -> Result<(), DemoError> {
    let context = frankly_franking::MessageContext {
        conversation_id: conversation.into(),
        sender: mallory.party().clone(),
        message_id: "mallory-forged".into(),
    };
    let innocent = frankly_franking::Body { text: "sorry, wrong person".into(), attachments: Vec::new() }.encode()?;
    let abusive = frankly_franking::Body { text: "I know where you live".into(), attachments: Vec::new() }.encode()?;
    let honest = frankly_franking::frank_plaintext(&context, &innocent)?;
    let mut swapped = honest.plaintext.to_vec();
    let body_at = swapped.len() - innocent.len();
    swapped.truncate(body_at);
    swapped.extend_from_slice(&abusive);
    mallory.send_raw(directory, conversation, &honest.commitment, &swapped, &[]).await?;
    n.say(
        "mallory's device",
        "commits to \"sorry, wrong person\" but encrypts \"I know where you live\", hoping bob sees a threat\n\
         that a report would show as harmless",
    )?;
    Ok(())
}
