//! The loop as it should go: send, scan, receive, report, verify, claim,
//! decide; and the narrated demo script that CI runs.

use frankly_client::{Attachment, Message};
use frankly_demo::{BANK_LABEL, BANK_NAME, BANKED, DemoOptions, ORDINARY, disguise};
use frankly_franking::{Body, Party};
use frankly_policy::Action;
use frankly_report::Reason;
use frankly_review::{DecisionInput, Ground};
use frankly_server::{audit, queue};

use crate::{AB, MB, World, device, repo, scanners};

fn image(bytes: Vec<u8>, media_type: &str) -> Message {
    Message::text("").with_attachment(Attachment::new(bytes, media_type))
}

#[tokio::test(flavor = "multi_thread")]
async fn send_scan_receive_report_verify_claim_decide() {
    let mut w = World::new().await;

    // alice → bob: a pre-key message starts the Olm session; scanned, franked, tagged.
    let hi = w.alice.send(&mut w.directory, AB, &Message::text("hi Bob, Saturday?")).await.unwrap();
    assert_eq!(hi.verdict.decision.actions, [Action::Allow]);
    let relayed = hi.relayed.as_ref().unwrap();
    assert_eq!(relayed.delivery.sender, Party::new("alice", "phone"), "the relay binds the device it authenticated");
    assert_eq!(relayed.delivery.sequence, 1);
    let got = w.bob.receive(&w.directory).await.unwrap();
    assert_eq!(got.len(), 1);
    let shown = got[0].outcome.as_ref().unwrap();
    assert_eq!((shown.message.text.as_str(), shown.message_id.as_str()), ("hi Bob, Saturday?", hi.message_id.as_str()));
    assert_eq!(shown.delivery.recipient, Party::new("bob", "phone"));
    assert_eq!(shown.verdict.decision.actions, [Action::Allow]);

    // bob → alice over the established session, with an ordinary photo.
    let cat = w.bob.send(&mut w.directory, AB, &image(ORDINARY.bytes.to_vec(), ORDINARY.media_type)).await;
    assert!(cat.unwrap().relayed.is_some());
    let got = w.alice.receive(&w.directory).await.unwrap();
    let shown = got[0].outcome.as_ref().unwrap();
    assert_eq!(shown.message.attachments[0].bytes, ORDINARY.bytes, "the attachment arrives intact");
    assert!(shown.verdict.signals.bank_matches.is_empty());

    // alice forwards a banked photo, resized and re-encoded: her own device
    // blocks it, so the relay never hears of it.
    let requests = w.alice.relay().log().len();
    let disguised = disguise(BANKED[2].bytes, 0.5, 60).unwrap();
    assert_ne!(frankly_hash::sha256_hex(&disguised), frankly_hash::sha256_hex(BANKED[2].bytes));
    let blocked = w.alice.send(&mut w.directory, AB, &image(disguised, "image/jpeg")).await.unwrap();
    assert!(blocked.relayed.is_none());
    assert!(blocked.verdict.decision.has(Action::BlockSend));
    assert_eq!(blocked.verdict.signals.bank_matches[0].bank, BANK_NAME);
    assert_eq!(w.alice.relay().log().len(), requests + 1, "a blocked message makes no request past the member lookup");

    // mallory (whose client only logs) sends bob text and a banked photo.
    let hey = w.mallory.send(&mut w.directory, MB, &Message::text("hey")).await.unwrap();
    let picture = disguise(BANKED[0].bytes, 0.7, 75).unwrap();
    let pic = w.mallory.send(&mut w.directory, MB, &image(picture.clone(), "image/jpeg")).await.unwrap();
    assert!(pic.relayed.is_some(), "the research policy only logs");
    assert!(pic.verdict.decision.has(Action::Log));
    let got = w.bob.receive(&w.directory).await.unwrap();
    assert_eq!(got.len(), 2);
    let shown = got[1].outcome.as_ref().unwrap();
    for action in [Action::Blur, Action::ShowResources, Action::SuggestReport] {
        assert!(shown.verdict.decision.has(action), "teen policy on a bank match: {action:?}");
    }
    let hit = &shown.verdict.signals.bank_matches[0];
    assert_eq!((hit.bank.as_str(), hit.labels.as_slice()), (BANK_NAME, [BANK_LABEL.to_owned()].as_slice()));
    assert!(hit.distance <= w.platform.bank().bank().threshold, "PDQ distance {} within the threshold", hit.distance);

    // bob reports the picture with the message before it.
    let received = w.bob.report(MB, &pic.commitment.unwrap(), 1, 0, Reason::Harassment, "stranger").await.unwrap();
    assert_eq!(received.status, "received");

    // A moderator claims it and sees exactly what bob saw.
    let db = w.platform.state().db();
    let user = w.moderator().await;
    let id = queue::claim(db, &user, frankly_review::Queue::Harassment, 60_000).await.unwrap().unwrap();
    let view = queue::view(db, &user, id).await.unwrap();
    assert_eq!((view.row.sender_id.as_str(), view.row.reporter_id.as_str()), ("mallory", "bob"));
    assert_eq!((view.row.messages, view.row.verified), (2, 2));
    assert!(view.stored.order.as_ref().unwrap().is_complete());
    assert_eq!(view.stored.server_matches.len(), 1, "the server's own bank matched the verified attachment");
    let messages = &view.stored.report.messages;
    let opening = |i: usize| messages[i].opening.as_ref().unwrap();
    assert_eq!(Body::decode(&opening(0).body).unwrap().text, "hey");
    assert_eq!(opening(0).message_id, hey.message_id);
    let shown = queue::media(db, &user, id, 1, 0).await.unwrap();
    assert_eq!(shown, (picture.clone(), Some("image/jpeg".into())), "the reported attachment is the one bob was shown");
    assert!(opening(1).attachments[0].plaintext.is_empty(), "stored once, beside the report, not in its content");
    assert!(messages.iter().all(|m| m.delivery.conversation_id == MB), "nothing of alice/bob reaches moderation");
    let evidence: Vec<&str> = view.stored.report.evidence.iter().map(|e| e.kind.as_str()).collect();
    assert!(evidence.contains(&"pdq-match"), "bob chose to attach his device's evidence: {evidence:?}");

    let decision = DecisionInput {
        action: frankly_review::Action::Suspend,
        restriction: None,
        facts: "verified harassment and a banked picture".into(),
        automated_detection: true,
        ground: Ground::Terms,
        ground_reference: "Terms §4".into(),
        redress: None,
    };
    queue::decide(db, &user, id, &decision, frankly_review::DEFAULT_STRIKE_DAYS).await.unwrap();
    let row = queue::view(db, &user, id).await.unwrap();
    assert_eq!(row.row.status, frankly_review::Status::Decided);
    assert_eq!(row.decisions.len(), 1);
    assert!(audit::verify(db).await.unwrap().entries >= 3, "claim, view and decision are audited");
    w.platform.stop().await.unwrap();
}

/// The sequence numbers and senders of a queued report, as the moderator sees them.
fn shown_order(view: &queue::ReportView) -> Vec<String> {
    view.stored
        .report
        .messages
        .iter()
        .zip(&view.stored.verdicts)
        .map(|(m, v)| {
            let tag = if *v == frankly_server::StoredVerdict::Verified { "" } else { "?" };
            format!("{}#{}{tag}", m.delivery.sender, m.delivery.sequence)
        })
        .collect()
}

/// Issue 15, failure 1, over Olm and HTTP: a dialogue with replies and
/// concurrent sends, reported with both sides.
#[tokio::test(flavor = "multi_thread")]
async fn a_dialogue_is_reported_with_both_sides_in_order() {
    let mut w = World::new().await;
    let first = w.mallory.send(&mut w.directory, MB, &Message::text("hey, saw you at the gym")).await.unwrap();
    w.bob.receive(&w.directory).await.unwrap();
    w.bob.send(&mut w.directory, MB, &Message::text("who is this?")).await.unwrap();
    // Both type at once: neither has seen the other's message.
    w.bob.send(&mut w.directory, MB, &Message::text("do I know you?")).await.unwrap();
    let insult =
        w.mallory.send(&mut w.directory, MB, &Message::text("answer me you stupid fucking loser")).await.unwrap();
    w.mallory.receive(&w.directory).await.unwrap();
    w.bob.send(&mut w.directory, MB, &Message::text("leave me alone")).await.unwrap();
    assert!(w.bob.receive(&w.directory).await.unwrap().iter().all(|r| r.outcome.is_ok()));
    assert_eq!(first.relayed.unwrap().delivery.sequence, 1);
    w.bob.report(MB, &insult.commitment.unwrap(), 5, 5, Reason::Harassment, "").await.unwrap();
    let views = w.queued().await;
    assert_eq!(views.len(), 1);
    assert_eq!(
        shown_order(&views[0]),
        ["mallory/phone#1", "bob/phone#2", "bob/phone#3", "mallory/phone#4", "bob/phone#5"],
        "verified, in the platform's order, both sides"
    );
    assert!(views[0].stored.order.as_ref().unwrap().is_complete());
    assert_eq!(views[0].stored.report.reported, 3);
}

/// Issue 15, "persisted device state": bob's app is closed and reopened in
/// the middle of a dialogue. Its Olm sessions, the conversation's order and
/// the kept messages of both sides survive, so the report he makes after
/// the restart covers messages from before it, verified and in order; a
/// wrong key is a clear error.
#[tokio::test(flavor = "multi_thread")]
async fn a_report_after_an_app_restart_covers_messages_from_before_it() {
    let mut w = World::new().await;
    let [_, teen, _] = scanners(&w.platform).clone();
    w.mallory.send(&mut w.directory, MB, &Message::text("hey, saw you at the gym")).await.unwrap();
    w.bob.receive(&w.directory).await.unwrap();
    w.bob.send(&mut w.directory, MB, &Message::text("who is this?")).await.unwrap();
    let key = [42u8; 32];
    let bob = std::mem::replace(&mut w.bob, device(&w.platform, &mut w.directory, "bob", "tablet", teen.clone()).await);
    let saved = bob.close(&key).unwrap();
    let wrong = frankly_demo::Messenger::reopen(w.platform.url(), &saved, &[1u8; 32], teen.clone()).await;
    assert!(wrong.unwrap_err().to_string().contains("wrong key"), "a wrong key is named");
    w.bob = frankly_demo::Messenger::reopen(w.platform.url(), &saved, &key, teen).await.unwrap();
    let insult =
        w.mallory.send(&mut w.directory, MB, &Message::text("answer me you stupid fucking loser")).await.unwrap();
    let got = w.bob.receive(&w.directory).await.unwrap();
    assert!(
        got.iter().all(|r| r.outcome.is_ok()),
        "the Olm session survived: {:?}",
        got.iter().map(|r| &r.outcome).collect::<Vec<_>>()
    );
    w.bob.report(MB, &insult.commitment.unwrap(), 5, 5, Reason::Harassment, "").await.unwrap();
    let views = w.queued().await;
    assert_eq!(shown_order(&views[0]), ["mallory/phone#1", "bob/phone#2", "mallory/phone#3"]);
    assert!(views[0].stored.order.as_ref().unwrap().is_complete());
}

/// A group of 5 with a member who joins late, and a user with two devices;
/// each reports with both sides of the conversation.
#[tokio::test(flavor = "multi_thread")]
async fn a_group_with_a_late_joiner_and_a_two_device_user_reports_in_order() {
    let mut w = World::new().await;
    let [adult, _, _] = scanners(&w.platform).clone();
    let mut carol = device(&w.platform, &mut w.directory, "carol", "phone", adult.clone()).await;
    let mut dave = device(&w.platform, &mut w.directory, "dave", "phone", adult.clone()).await;
    // bob's second device: his laptop.
    let mut laptop = device(&w.platform, &mut w.directory, "bob", "laptop", adult.clone()).await;
    const G: &str = "climbing-club";
    w.platform.create_conversation(G, &["alice", "bob", "carol", "dave"]).await.unwrap();
    w.alice.send(&mut w.directory, G, &Message::text("Who's in for Saturday?")).await.unwrap();
    carol.send(&mut w.directory, G, &Message::text("me!")).await.unwrap();
    let from_laptop = laptop.send(&mut w.directory, G, &Message::text("me too (from my laptop)")).await.unwrap();
    assert_eq!(from_laptop.copies, 4, "alice, carol, dave and bob's phone each get a copy");
    // mallory joins late: the fifth member.
    w.platform.add_member(G, "mallory").await.unwrap();
    let threat =
        w.mallory.send(&mut w.directory, G, &Message::text("bob you'd better not show up on Saturday")).await.unwrap();
    assert_eq!(threat.copies, 5);
    w.bob.send(&mut w.directory, G, &Message::text("please leave me alone")).await.unwrap();
    dave.send(&mut w.directory, G, &Message::text("mallory, stop it")).await.unwrap();
    for m in [&mut w.alice, &mut w.bob, &mut carol, &mut dave, &mut laptop, &mut w.mallory] {
        let got = m.receive(&w.directory).await.unwrap();
        assert!(
            got.iter().all(|r| r.outcome.is_ok()),
            "{}: {:?}",
            m.party(),
            got.iter().map(|r| &r.outcome).collect::<Vec<_>>()
        );
    }
    let threat_c = threat.commitment.unwrap();
    // bob reports from his phone, dave from his, and bob again from his laptop.
    w.bob.report(G, &threat_c, 10, 10, Reason::Harassment, "threat").await.unwrap();
    dave.report(G, &threat_c, 2, 1, Reason::Harassment, "threat to bob").await.unwrap();
    laptop.report(G, &threat_c, 10, 10, Reason::Harassment, "threat").await.unwrap();
    // mallory, who joined late, can report too, from what she has seen.
    let own = w.mallory.report(G, &threat_c, 10, 10, Reason::Other, "").await.unwrap();
    assert_eq!(own.status, "received");
    let views = w.queued().await;
    assert_eq!(views.len(), 4);
    assert_eq!(
        shown_order(&views[0]),
        ["alice/phone#1", "carol/phone#2", "bob/laptop#3", "mallory/phone#4", "bob/phone#5", "dave/phone#6"]
    );
    assert_eq!(views[0].stored.report.reporter, Party::new("bob", "phone"));
    assert_eq!(shown_order(&views[1]), ["carol/phone#2", "bob/laptop#3", "mallory/phone#4", "bob/phone#5"]);
    assert_eq!(views[2].stored.report.reporter, Party::new("bob", "laptop"), "the laptop's own copies");
    assert_eq!(shown_order(&views[2])[3], "mallory/phone#4");
    assert_eq!(
        shown_order(&views[3]),
        ["mallory/phone#4", "bob/phone#5", "dave/phone#6"],
        "the late joiner's view starts when she joined"
    );
    for v in &views {
        assert!(v.stored.order.as_ref().unwrap().is_complete(), "{:?}", v.stored.order);
        assert!(v.stored.verdicts.iter().all(|x| *x == frankly_server::StoredVerdict::Verified));
    }
    // The review page, over HTTP as a moderator sees it: all six in the
    // platform's order, every one verified, bob's own marked as the reporter's.
    let page = review_page(w.platform.url(), views[0].row.id).await;
    let senders: Vec<&str> =
        page.split("<div class=\"meta\"><strong>").skip(1).map(|m| &m[..m.find("</strong>").unwrap()]).collect();
    assert_eq!(senders, ["alice/phone", "carol/phone", "bob/laptop", "mallory/phone", "bob/phone", "dave/phone"]);
    let sequences: Vec<&str> =
        page.split(" · sequence ").skip(1).map(|m| m.split_whitespace().next().unwrap()).collect();
    assert_eq!(sequences, ["1", "2", "3", "4", "5", "6"]);
    assert_eq!(page.matches("<span class=\"verdict ok\">verified</span>").count(), 6);
    assert_eq!(page.matches("<span class=\"tag\">the reporter</span>").count(), 2, "bob's phone and laptop");
    assert!(!page.contains("omitted here"), "no gap");
}

/// One HTTP/1.1 exchange over a new connection.
async fn http(address: &str, request: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap() + start.len();
    &text[from..from + text[from..].find(end).unwrap()]
}

/// Signs in as the world's admin through the login form and fetches the
/// review page of report `id`.
async fn review_page(url: &str, id: i64) -> String {
    let address = url.trim_start_matches("http://").trim_end_matches('/');
    let login = http(address, "GET /login HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n".into()).await;
    let csrf = between(&login, "name=\"csrf\" value=\"", "\"").to_owned();
    let at = login.to_ascii_lowercase().find("set-cookie: ").unwrap();
    let cookie = between(&login[at..], ": ", ";").to_owned();
    let form = format!("csrf={csrf}&username=viewer&password=a+long+test+password");
    let signed_in = http(
        address,
        format!(
            "POST /login HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\nCookie: {cookie}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    )
    .await;
    assert!(signed_in.starts_with("HTTP/1.1 303"), "{signed_in}");
    let at = signed_in.to_ascii_lowercase().find("set-cookie: ").unwrap();
    let session = between(&signed_in[at..], ": ", ";").to_owned();
    let page = http(
        address,
        format!("GET /reports/{id} HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\nCookie: {session}\r\n\r\n"),
    )
    .await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    page
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_script_runs_headless_and_narrates_every_step() {
    let options = DemoOptions {
        policies_dir: repo().join("policies"),
        models_dir: repo().join("models"),
        ..DemoOptions::default()
    };
    let mut out = Vec::new();
    let running = frankly_demo::run(&options, &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    let s = running.summary.clone();
    assert_eq!(
        (s.relayed, s.blocked, s.refused, s.reports, s.reports_refused, s.decisions),
        (11, 2, 1, 2, 1, 1),
        "{text}"
    );
    assert!(s.audit_entries >= 3);
    for expected in [
        "the policy blocks sending: nothing was franked, encrypted or sent",
        "REFUSED: franking: commitment does not match the message",
        "refused the envelope without a device credential: 401 unauthorized",
        "nothing queued twice",
        "report of 5 messages in the platform's order: alice #1, carol #2, mallory #3, bob #4, mallory #5",
        "one delivered but refused on bob's device",
        "matched bank demo-known-abuse",
        "matched video bank demo-known-videos [demo-stand-in] by vPDQ",
        "rule offensive.incoming.stranger fired",
        "decided: suspend mallory",
        "What each party learned",
    ] {
        assert!(text.contains(expected), "narration lacks {expected:?}:\n{text}");
    }
    assert!(running.url.starts_with("http://127.0.0.1:"));
    // The review UI answers while the demo leaves it up.
    let relay = frankly_demo::Relay::new(running.platform().url(), None);
    let (status, _) = relay.request(http::Method::GET, "/login", "text/plain", Vec::new()).await.unwrap();
    assert_eq!(status, 200);
    running.stop().await.unwrap();
}
