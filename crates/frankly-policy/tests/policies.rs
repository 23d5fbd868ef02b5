//! The shipped policies' behaviour, every validation error, and every
//! refusal of a policy bundle.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use frankly_bundle::SigningKey;
use frankly_policy::{
    Action, Audience, BankSignal, BundleError, Context, DigestSignal, Direction, Facts, Loaded, Policy, PolicyError,
    ScoreSignal, Signals, Source, TypeMismatchSignal, UnscannableReason, UnscannableSignal, VideoMatchSignal,
    sign_policy, verify_policy,
};

fn shipped(name: &str) -> Policy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies").join(format!("{name}.toml"));
    Policy::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ctx(direction: Direction, audience: Audience) -> Context {
    Context { direction, audience, settings: BTreeMap::new() }
}

fn nsfw(score: f32) -> ScoreSignal {
    ScoreSignal { source: Source::Attachment(0), model: "open_nsfw".into(), label: "nsfw".into(), score, frame: 0 }
}

fn profanity(score: f32) -> ScoreSignal {
    ScoreSignal { source: Source::Text, model: "profanity_check".into(), label: "profanity".into(), score, frame: 0 }
}

fn bank_match() -> BankSignal {
    BankSignal {
        source: Source::Attachment(0),
        bank: "demo".into(),
        labels: vec!["csam".into()],
        distance: 12,
        algorithm: "pdq".into(),
        frame: 0,
    }
}

fn with_scores(scores: Vec<ScoreSignal>, facts: Facts) -> Signals {
    Signals { scores, facts, ..Signals::default() }
}

#[test]
fn every_shipped_policy_loads_and_is_written_for_its_audience() {
    for (name, audience) in [("child", Audience::Child), ("teen", Audience::Teen), ("adult", Audience::Adult)] {
        let p = shipped(name);
        assert!(p.supports(audience) && p.audiences.len() == 1, "{name}");
    }
    let research = shipped("research");
    assert!(research.supports(Audience::Child) && research.supports(Audience::Adult));
}

#[test]
fn child_policy_blurs_incoming_nudity_with_resources_and_reports_strangers() {
    let p = shipped("child");
    let incoming = ctx(Direction::Incoming, Audience::Child);
    let d = p.evaluate(&incoming, &with_scores(vec![nsfw(0.6)], Facts::default()));
    assert_eq!(d.actions, [Action::Blur, Action::ShowResources]);
    assert_eq!(d.resources, ["message-someone-you-trust"]);
    assert_eq!(d.fired[0].id, "nudity.incoming");
    assert!(d.fired[0].reasons[0].contains("open_nsfw nsfw 0.600 >= 0.500 on attachment 0"), "{:?}", d.fired);

    let stranger = Facts { sender_is_contact: Some(false), ..Facts::default() };
    let d = p.evaluate(&incoming, &with_scores(vec![nsfw(0.6)], stranger));
    assert_eq!(d.actions, [Action::Blur, Action::ShowResources, Action::SuggestReport]);
    // Unknown facts never hold: without the app saying, no stranger rule.
    let d = p.evaluate(&incoming, &with_scores(vec![nsfw(0.2)], stranger));
    assert_eq!(d.actions, [Action::Allow]);
    assert!(d.fired.is_empty());
}

#[test]
fn known_abuse_blocks_sending_and_stops_evaluation() {
    for name in ["child", "teen", "adult"] {
        let p = shipped(name);
        let audience = p.audiences[0];
        let signals = Signals { bank_matches: vec![bank_match()], scores: vec![nsfw(0.99)], ..Signals::default() };
        let d = p.evaluate(&ctx(Direction::Outgoing, audience), &signals);
        assert!(d.has(Action::BlockSend), "{name}");
        assert_eq!(d.fired.len(), 1, "{name}: stop = true ends evaluation");
        assert!(d.fired[0].reasons[0].contains("matched bank demo (csam) at pdq distance 12"));
        let d = p.evaluate(&ctx(Direction::Incoming, audience), &signals);
        assert!(d.has(Action::SuggestReport) && !d.has(Action::BlockSend), "{name}");
    }
}

#[test]
fn adult_warnings_are_off_unless_enabled() {
    let p = shipped("adult");
    let mut c = ctx(Direction::Incoming, Audience::Adult);
    let signals = with_scores(vec![nsfw(0.95)], Facts::default());
    assert_eq!(p.evaluate(&c, &signals).actions, [Action::Allow]);
    c.settings.insert("sensitive_content_warnings".into(), true);
    assert_eq!(p.evaluate(&c, &signals).actions, [Action::Blur]);
}

#[test]
fn teen_policy_treats_a_first_message_with_nudity_as_the_sextortion_pattern() {
    let p = shipped("teen");
    let c = ctx(Direction::Incoming, Audience::Teen);
    let first = Facts { first_message_from_sender: Some(true), ..Facts::default() };
    let d = p.evaluate(&c, &with_scores(vec![nsfw(0.6)], first));
    assert_eq!(d.fired.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), ["nudity.incoming.stranger"]);
    assert!(d.has(Action::SuggestReport) && d.has(Action::Blur));
    let d = p.evaluate(&ctx(Direction::Outgoing, Audience::Teen), &with_scores(vec![profanity(0.97)], first));
    assert_eq!(d.actions, [Action::Warn]);
    assert_eq!(d.messages, ["offensive.outgoing.reconsider"]);
}

#[test]
fn research_policy_only_logs() {
    let p = shipped("research");
    let signals = Signals {
        bank_matches: vec![bank_match()],
        scores: vec![nsfw(0.9), profanity(0.9)],
        facts: Facts { sender_is_contact: Some(false), ..Facts::default() },
        ..Signals::default()
    };
    for direction in [Direction::Incoming, Direction::Outgoing] {
        let d = p.evaluate(&ctx(direction, Audience::Teen), &signals);
        assert_eq!(d.actions, [Action::Log]);
        assert_eq!(d.fired.len(), 4);
    }
    let d = p.evaluate(&ctx(Direction::Incoming, Audience::Adult), &unscannable(UnscannableReason::Truncated));
    assert_eq!(d.fired.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), ["log.unscannable", "log.type-mismatch"]);
    assert_eq!(d.actions, [Action::Log]);
}

/// Attachment 0 could not be scanned for `reason`, and was declared as
/// another type than its bytes.
fn unscannable(reason: UnscannableReason) -> Signals {
    Signals {
        unscannable: vec![UnscannableSignal { source: Source::Attachment(0), reason, detail: "detail".into() }],
        type_mismatches: vec![TypeMismatchSignal {
            source: Source::Attachment(0),
            declared: "text/plain".into(),
            sniffed: "image/jpeg".into(),
        }],
        ..Signals::default()
    }
}

#[test]
fn child_and_teen_policies_blur_what_could_not_be_scanned_and_adults_do_not() {
    for (name, audience) in [("child", Audience::Child), ("teen", Audience::Teen)] {
        let p = shipped(name);
        for reason in [UnscannableReason::UnknownFormat, UnscannableReason::Truncated, UnscannableReason::TooManyFrames]
        {
            let d = p.evaluate(&ctx(Direction::Incoming, audience), &unscannable(reason));
            assert_eq!(d.actions, [Action::Blur], "{name}");
            assert_eq!(d.messages, ["unscannable.incoming"]);
            assert_eq!(d.fired[0].reasons, [format!("attachment 0 cannot be scanned ({}): detail", reason.name())]);
        }
        assert!(p.evaluate(&ctx(Direction::Incoming, audience), &Signals::default()).fired.is_empty());
    }
    let adult = shipped("adult");
    let d = adult.evaluate(&ctx(Direction::Incoming, Audience::Adult), &unscannable(UnscannableReason::Malformed));
    assert_eq!(d.actions, [Action::Allow]);
}

#[test]
fn unscannable_and_type_mismatch_conditions_parse_filter_and_validate() {
    let rule = |when: &str| BASE.replace(r#"when.classifier = { model = "m", label = "l", at_least = 0.5 }"#, when);
    let p = Policy::from_toml(&rule(r#"when.unscannable = { reasons = ["truncated", "too_large"] }"#)).unwrap();
    let c = ctx(Direction::Incoming, Audience::Adult);
    assert!(p.evaluate(&c, &unscannable(UnscannableReason::Truncated)).has(Action::Warn));
    assert!(!p.evaluate(&c, &unscannable(UnscannableReason::UnknownFormat)).has(Action::Warn));
    let p = Policy::from_toml(&rule("when.type_mismatch = {}")).unwrap();
    let d = p.evaluate(&c, &unscannable(UnscannableReason::UnknownFormat));
    assert_eq!(d.fired[0].reasons, ["attachment 0 is declared text/plain but its bytes are image/jpeg"]);
    assert!(!p.evaluate(&c, &Signals::default()).has(Action::Warn));
    let err = invalid(&rule(r#"when.unscannable = { reasons = ["corrupt"] }"#));
    assert!(err.contains("unknown variant `corrupt`") && err.contains("truncated"), "{err}");
    let err = invalid(&rule("when.type_mismatch = { declared = \"x\" }"));
    assert!(err.contains("unknown field `declared`"), "{err}");
}

fn video_match(query_percent: f64, compared_percent: f64) -> VideoMatchSignal {
    VideoMatchSignal {
        source: Source::Attachment(0),
        bank: "videos".into(),
        labels: vec!["csam".into()],
        query_percent,
        compared_percent,
        frames: vec![0, 1, 2],
    }
}

#[test]
fn the_shipped_policies_act_on_a_video_match_as_on_a_photo_match() {
    for name in ["child", "teen", "adult"] {
        let p = shipped(name);
        let audience = p.audiences[0];
        let signals = Signals { video_matches: vec![video_match(95.0, 40.0)], ..Signals::default() };
        let d = p.evaluate(&ctx(Direction::Outgoing, audience), &signals);
        assert!(d.has(Action::BlockSend), "{name}: {d:?}");
        assert_eq!(
            d.fired[0].reasons,
            [
                "attachment 0 matched video bank videos (csam) by vpdq: 95.0 % of its frames, 40.0 % of the banked video's"
            ]
        );
        let d = p.evaluate(&ctx(Direction::Incoming, audience), &signals);
        assert!(d.has(Action::SuggestReport), "{name}: {d:?}");
    }
}

#[test]
fn bank_percentages_and_frame_shares_select_what_they_name() {
    let rule = |when: &str| BASE.replace(r#"when.classifier = { model = "m", label = "l", at_least = 0.5 }"#, when);
    let c = ctx(Direction::Incoming, Audience::Adult);
    let videos = |q, r| Signals { video_matches: vec![video_match(q, r)], ..Signals::default() };
    let photo = Signals { bank_matches: vec![bank_match()], ..Signals::default() };
    let p = Policy::from_toml(&rule("when.bank = { min_compared_percent = 80.0 }")).unwrap();
    assert!(p.evaluate(&c, &videos(10.0, 85.0)).has(Action::Warn));
    assert!(!p.evaluate(&c, &videos(100.0, 50.0)).has(Action::Warn));
    // A percentage is about video matches: a photo match does not satisfy it.
    assert!(!p.evaluate(&c, &photo).has(Action::Warn));
    // A distance bound is about hash matches: a video match does not satisfy it.
    let p = Policy::from_toml(&rule("when.bank = { max_distance = 20 }")).unwrap();
    assert!(p.evaluate(&c, &photo).has(Action::Warn));
    assert!(!p.evaluate(&c, &videos(100.0, 100.0)).has(Action::Warn));
    let p = Policy::from_toml(&rule(r#"when.bank = { bank = "other" }"#)).unwrap();
    assert!(!p.evaluate(&c, &videos(100.0, 100.0)).has(Action::Warn));

    // Frame shares: 3 of 8 sampled frames of a video over 0.5.
    let frames = |scores: &[f32]| Signals {
        scores: scores
            .iter()
            .enumerate()
            .map(|(i, &score)| ScoreSignal { frame: i as u64 * 30, ..nsfw(score) })
            .collect(),
        ..Signals::default()
    };
    let video = frames(&[0.1, 0.9, 0.2, 0.7, 0.1, 0.6, 0.1, 0.1]);
    let any = Policy::from_toml(&BASE.replace(r#"model = "m", label = "l""#, r#"model = "open_nsfw", label = "nsfw""#))
        .unwrap();
    let d = any.evaluate(&c, &video);
    assert_eq!(d.fired[0].reasons, ["open_nsfw nsfw 0.900 >= 0.500 on attachment 0 frame 30"]);
    let share = |s: f32| {
        Policy::from_toml(&BASE.replace(
            r#"model = "m", label = "l", at_least = 0.5"#,
            &format!(r#"model = "open_nsfw", label = "nsfw", at_least = 0.5, min_frame_share = {s}"#),
        ))
        .unwrap()
    };
    let d = share(0.25).evaluate(&c, &video);
    assert_eq!(
        d.fired[0].reasons,
        ["open_nsfw nsfw >= 0.500 on 3 of 8 scored frames of attachment 0 (at least 25 % asked)"]
    );
    assert!(!share(0.5).evaluate(&c, &video).has(Action::Warn));
    // A still image is one frame.
    assert!(share(1.0).evaluate(&c, &frames(&[0.8])).has(Action::Warn));

    for (when, want) in [
        ("when.bank = { min_query_percent = 120.0 }", "when.bank.min_query_percent: 120 is not within 0..=100"),
        ("when.bank = { max_distance = 3, min_query_percent = 50.0 }", "give one or the other"),
    ] {
        let err = invalid(&rule(when));
        assert!(err.contains(want), "want {want:?}, got {err:?}");
    }
    let err = invalid(&BASE.replace("at_least = 0.5", "at_least = 0.5, min_frame_share = 0.0"));
    assert!(err.contains("when.classifier.min_frame_share: 0 is not within (0, 1]"), "{err}");
}

const BASE: &str = r#"format = "frankly-policy-v1"
name = "t"
description = "test"

[settings]
opt = false

[[rules]]
id = "r1"
description = "d"
direction = "incoming"
when.classifier = { model = "m", label = "l", at_least = 0.5 }
actions = ["warn"]
message = "m.k"
"#;

fn invalid(text: &str) -> String {
    Policy::from_toml(text).unwrap_err().to_string()
}

#[test]
fn validation_errors_name_the_line_rule_and_field() {
    assert!(Policy::from_toml(BASE).is_ok());
    let cases: Vec<(String, &str)> = vec![
        (BASE.replace("actions = [\"warn\"]", "actions = [\"warn\"]\ncolour = 1"), "line 14: unknown field `colour`"),
        (BASE.replace("\"warn\"", "\"shout\""), "line 13: unknown variant `shout`"),
        (BASE.replace("direction = \"incoming\"", "direction = \"sideways\""), "line 11: unknown variant `sideways`"),
        (BASE.replace("\"warn\"", "\"block_send\""), "line 13: rule `r1`: actions: block_send applies to outgoing"),
        (BASE.replace("message = \"m.k\"", ""), "rule `r1`: message: warn, blur and block_send need a message key"),
        (BASE.replace("\"warn\"", "\"show_resources\""), "rule `r1`: resources: show_resources needs a resources key"),
        (BASE.replace("\"warn\"", "\"allow\", \"warn\""), "rule `r1`: actions: allow cannot be combined"),
        (BASE.replace("\"warn\"", ""), "rule `r1`: actions: no actions"),
        (
            BASE.replace("at_least = 0.5", "at_least = 1.5"),
            "line 12: rule `r1`: when.classifier.at_least: 1.5 is not within",
        ),
        (BASE.replace("id = \"r1\"", "id = \"R 1\""), "line 8: rule `R 1`: id: \"R 1\" must be"),
        (
            format!("{BASE}\n{}", &BASE[BASE.find("[[rules]]").unwrap()..]),
            "line 16: rule `r1`: id: the id is used by an earlier rule",
        ),
        (
            BASE.replace("direction = \"incoming\"", "direction = \"incoming\"\nrequires_setting = \"nope\""),
            "rule `r1`: requires_setting: \"nope\" is not declared",
        ),
        (
            BASE.replace(
                "when.classifier = { model = \"m\", label = \"l\", at_least = 0.5 }",
                "when.exact = { sha256 = [\"abc\"] }",
            ),
            "when.exact.sha256[0]: \"abc\" is not 64 lowercase hex",
        ),
        (
            BASE.replace("when.classifier = { model = \"m\", label = \"l\", at_least = 0.5 }", "when.facts = {}"),
            "when.facts: no fact given",
        ),
        (
            BASE.replace("when.classifier = { model = \"m\", label = \"l\", at_least = 0.5 }", "when.any = [{}]"),
            "when.any[0].: empty condition",
        ),
        (
            BASE.replace("format = \"frankly-policy-v1\"", "format = \"frankly-policy-v2\""),
            "line 1: format: \"frankly-policy-v2\" is not frankly-policy-v1",
        ),
        (
            BASE.replace("description = \"test\"", "description = \"test\"\naudiences = [\"adult\"]")
                .replace("direction = \"incoming\"", "direction = \"incoming\"\naudiences = [\"child\"]"),
            "rule `r1`: audiences: Child is not among",
        ),
        (BASE.replace("at_least = 0.5 }", "at_least = 0.5 "), "line 13: missing comma"),
    ];
    for (text, want) in cases {
        let err = invalid(&text);
        assert!(err.contains(want), "want {want:?}, got {err:?}");
    }
}

#[test]
fn limits_are_enforced() {
    let rule = &BASE[BASE.find("[[rules]]").unwrap()..];
    let mut many = BASE[..BASE.find("[[rules]]").unwrap()].to_owned();
    for i in 0..=frankly_policy::MAX_RULES {
        many.push_str(&rule.replace("id = \"r1\"", &format!("id = \"r{i}\"")));
    }
    assert!(invalid(&many).contains("rules, over the limit of 256"));
    let mut deep = "{ facts = { sender_is_contact = true } }".to_owned();
    for _ in 0..=frankly_policy::MAX_CONDITION_DEPTH {
        deep = format!("{{ not = {deep} }}");
    }
    let text =
        BASE.replace("when.classifier = { model = \"m\", label = \"l\", at_least = 0.5 }", &format!("when = {deep}"));
    assert!(invalid(&text).contains("nested deeper than 8"), "{}", invalid(&text));
    let huge = format!("{BASE}#{}", "x".repeat(frankly_policy::MAX_POLICY_BYTES));
    assert!(matches!(Policy::from_toml(&huge), Err(PolicyError::TooLarge { .. })));
}

#[test]
fn conditions_combine_with_any_all_not_and_exact_digests() {
    let digest = "ab".repeat(32);
    let text = BASE.replace(
        "when.classifier = { model = \"m\", label = \"l\", at_least = 0.5 }",
        &format!(
            "when.all = [ {{ exact = {{ sha256 = [\"{digest}\"] }} }}, {{ not = {{ facts = {{ sender_is_contact = true }} }} }} ]"
        ),
    );
    let p = Policy::from_toml(&text).unwrap();
    let c = ctx(Direction::Incoming, Audience::Adult);
    let mut s = Signals {
        digests: vec![DigestSignal { source: Source::Attachment(1), sha256: digest.clone() }],
        ..Signals::default()
    };
    let d = p.evaluate(&c, &s);
    assert_eq!(d.actions, [Action::Warn]);
    assert!(d.fired[0].reasons.iter().any(|r| r.contains("attachment 1 has listed SHA-256")));
    s.facts.sender_is_contact = Some(true);
    assert_eq!(p.evaluate(&c, &s).actions, [Action::Allow]);
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

#[test]
fn policy_bundles_refuse_unsigned_tampered_expired_and_rolled_back() {
    let now = 1_800_000_000;
    let pubkey = key().verifying_key();
    let (bytes, info) = sign_policy(BASE, &key(), 5, now - 10, now + 86_400).unwrap();
    let ok = verify_policy(&bytes, &pubkey, now, None).unwrap();
    assert_eq!(ok.policy().name, "t");
    assert_eq!(ok.info().version, 5);

    let err = verify_policy(BASE.as_bytes(), &pubkey, now, None).unwrap_err();
    assert!(matches!(err, PolicyError::Bundle(BundleError::Unsigned { kind: "policy", .. })), "{err}");
    assert!(err.to_string().contains("frankly policy sign"));

    let mut tampered = bytes.clone();
    let at = tampered.windows(4).position(|w| w == b"warn").unwrap();
    tampered[at..at + 4].copy_from_slice(b"blur");
    assert!(matches!(
        verify_policy(&tampered, &pubkey, now, None),
        Err(PolicyError::Bundle(BundleError::BadSignature { .. }))
    ));

    let other = SigningKey::from_bytes(&[43; 32]).verifying_key();
    assert!(matches!(
        verify_policy(&bytes, &other, now, None),
        Err(PolicyError::Bundle(BundleError::BadSignature { .. }))
    ));
    assert!(matches!(
        verify_policy(&bytes, &pubkey, now + 86_400, None),
        Err(PolicyError::Bundle(BundleError::Expired { .. }))
    ));
    assert!(matches!(
        verify_policy(&bytes, &pubkey, now - 3_600, None),
        Err(PolicyError::Bundle(BundleError::NotYetValid { .. }))
    ));
    let newer = Loaded { version: 6, digest: [0; 32] };
    assert!(matches!(
        verify_policy(&bytes, &pubkey, now, Some(&newer)),
        Err(PolicyError::Bundle(BundleError::Rollback { loaded: 6, offered: 5 }))
    ));
    let same_version = Loaded { version: 5, digest: [0; 32] };
    assert!(matches!(
        verify_policy(&bytes, &pubkey, now, Some(&same_version)),
        Err(PolicyError::Bundle(BundleError::Equivocation { version: 5 }))
    ));
    let same = Loaded { version: 5, digest: info.digest };
    assert!(verify_policy(&bytes, &pubkey, now, Some(&same)).is_ok());

    // An invalid policy is refused at signing time.
    let bad = BASE.replace("\"warn\"", "\"block_send\"");
    assert!(matches!(sign_policy(&bad, &key(), 1, now, now + 1), Err(PolicyError::Invalid { .. })));
}
