//! The loop as it should go: send, scan, receive, report, verify, claim,
//! decide; and the narrated demo script that CI runs.

use frankly_client::{Attachment, Message};
use frankly_demo::{BANK_LABEL, BANK_NAME, BANKED, DemoOptions, ORDINARY, disguise};
use frankly_franking::Body;
use frankly_policy::Action;
use frankly_report::Reason;
use frankly_server::queue::{self, Ground};
use frankly_server::{DecisionInput, audit};

use crate::{AB, MB, World, repo};

fn image(bytes: Vec<u8>, media_type: &str) -> Message {
    Message::text("").with_attachment(Attachment::new(bytes, media_type))
}

#[tokio::test(flavor = "multi_thread")]
async fn send_scan_receive_report_verify_claim_decide() {
    let mut w = World::new().await;

    // alice → bob: a pre-key message starts the Olm session; scanned, franked, tagged.
    let hi = w.alice.send(&mut w.directory, AB, "bob", &Message::text("hi Bob, Saturday?")).await.unwrap();
    assert_eq!(hi.verdict.decision.actions, [Action::Allow]);
    let relayed = hi.relayed.as_ref().unwrap();
    assert_eq!(relayed.delivery.sender_id, "alice", "the relay binds the sender it authenticated");
    let got = w.bob.receive(&w.directory).await.unwrap();
    assert_eq!(got.len(), 1);
    let shown = got[0].outcome.as_ref().unwrap();
    assert_eq!((shown.message.text.as_str(), shown.message_id.as_str()), ("hi Bob, Saturday?", hi.message_id.as_str()));
    assert_eq!(shown.delivery, relayed.delivery);
    assert_eq!(shown.verdict.decision.actions, [Action::Allow]);

    // bob → alice over the established session, with an ordinary photo.
    let cat = w.bob.send(&mut w.directory, AB, "alice", &image(ORDINARY.bytes.to_vec(), ORDINARY.media_type)).await;
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
    let blocked = w.alice.send(&mut w.directory, AB, "bob", &image(disguised, "image/jpeg")).await.unwrap();
    assert!(blocked.relayed.is_none());
    assert!(blocked.verdict.decision.has(Action::BlockSend));
    assert_eq!(blocked.verdict.signals.bank_matches[0].bank, BANK_NAME);
    assert_eq!(w.alice.relay().log().len(), requests, "a blocked message makes no request");

    // mallory (whose client only logs) sends bob text and a banked photo.
    let hey = w.mallory.send(&mut w.directory, MB, "bob", &Message::text("hey")).await.unwrap();
    let picture = disguise(BANKED[0].bytes, 0.7, 75).unwrap();
    let pic = w.mallory.send(&mut w.directory, MB, "bob", &image(picture.clone(), "image/jpeg")).await.unwrap();
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
    assert!(hit.distance <= w.platform.bank().threshold, "PDQ distance {} within the threshold", hit.distance);

    // bob reports the picture with the message before it.
    let accepted = w.bob.report(MB, &pic.message_id, 1, Reason::Harassment, "stranger").await.unwrap();
    assert_eq!(accepted.messages, ["verified", "verified"]);
    assert!(accepted.chain_ok);

    // A moderator claims it and sees exactly what bob saw.
    let db = w.platform.state().db();
    let user = w.moderator().await;
    let id = queue::claim(db, &user, &accepted.queue, 60_000).await.unwrap().unwrap();
    let view = queue::view(db, &user, id).await.unwrap();
    assert_eq!((view.row.sender_id.as_str(), view.row.reporter_id.as_str()), ("mallory", "bob"));
    assert_eq!((view.row.messages, view.row.verified), (2, 2));
    assert_eq!(view.stored.server_matches.len(), 1, "the server's own bank matched the verified attachment");
    let messages = &view.stored.report.messages;
    assert_eq!(Body::decode(&messages[0].body).unwrap().text, "hey");
    assert_eq!(messages[0].context.message_id, hey.message_id);
    assert_eq!(messages[1].attachments[0].plaintext, picture, "the reported attachment is the one bob was shown");
    assert!(messages.iter().all(|m| m.context.conversation_id == MB), "nothing of alice/bob reaches moderation");
    let evidence: Vec<&str> = view.stored.report.evidence.iter().map(|e| e.kind.as_str()).collect();
    assert!(evidence.contains(&"pdq-match"), "bob chose to attach his device's evidence: {evidence:?}");

    let decision = DecisionInput {
        action: frankly_server::Action::Suspend,
        restriction: None,
        facts: "verified harassment and a banked picture".into(),
        automated_detection: true,
        ground: Ground::Terms,
        ground_reference: "Terms §4".into(),
        redress: None,
    };
    queue::decide(db, &user, id, &decision).await.unwrap();
    let row = queue::view(db, &user, id).await.unwrap();
    assert_eq!(row.row.status, "decided");
    assert_eq!(row.decisions.len(), 1);
    assert!(audit::verify(db).await.unwrap().entries >= 3, "claim, view and decision are audited");
    w.platform.stop().await.unwrap();
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
        (6, 1, 1, 2, 1, 1),
        "{text}"
    );
    assert!(s.audit_entries >= 3);
    for expected in [
        "the policy blocks sending: nothing was franked, encrypted or sent",
        "REFUSED: franking: commitment does not match the message",
        "refused the replayed envelope: 409 replay",
        "matched bank demo-known-abuse",
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
