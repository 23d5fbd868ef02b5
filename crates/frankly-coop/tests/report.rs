//! The report intake body against Coop's request schema as its source
//! states it (roostorg/coop `server/routes/reporting/ReportingRoutes.ts`:
//! `reporter {kind: "user", typeId, id}`, `reportedAt`, `reportedItem {id,
//! typeId, data}` required; `reportedForReason` an object, never null;
//! items of shape `{id, typeId, data}` and never also `type`).

#![allow(clippy::unwrap_used)]

use frankly_coop::{CoopTypes, Message, VerifiedReport, coop_report, parse_message_id};
use serde_json::Value;

fn report() -> VerifiedReport {
    let message = |i: u64, sender: &str, verdict: &str| Message {
        sender: sender.into(),
        conversation: "conv-1".into(),
        sequence: i + 1,
        timestamp_ms: 1_773_480_000_000 + i as i64 * 1000,
        text: (verdict != "unopened").then(|| format!("message {i}")),
        verdict: verdict.into(),
        detail: format!("{verdict} by message franking"),
    };
    VerifiedReport {
        report_id: "00ff".into(),
        reporter: "bob".into(),
        received_ms: 1_773_480_067_123,
        reason: "harassment".into(),
        note: "threats".into(),
        messages: vec![
            message(0, "mallory", "verified"),
            message(1, "bob", "unopened"),
            message(2, "mallory", "verified"),
        ],
        reported: 2,
        order: "sequence 1 to 3, nothing omitted between".into(),
    }
}

fn types() -> CoopTypes {
    CoopTypes { user: "tUser".into(), message: "tMessage".into(), verdict: "tVerdict".into() }
}

fn item_ok(item: &Value) {
    let o = item.as_object().unwrap();
    assert!(o["id"].is_string() && o["typeId"].is_string() && o["data"].is_object(), "{item}");
    assert!(!o.contains_key("type"), "shape A only: {item}");
}

#[test]
fn the_report_has_every_field_coop_requires_in_its_shape() {
    let body = serde_json::to_value(coop_report(&report(), &types(), Some("pol-harassment"))).unwrap();
    assert_eq!(body["reporter"], serde_json::json!({"kind": "user", "typeId": "tUser", "id": "bob"}));
    assert_eq!(body["reportedAt"], "2026-03-14T09:21:07.123Z");
    let reason = &body["reportedForReason"];
    assert_eq!(
        (reason["policyId"].as_str(), reason["reason"].as_str(), reason["csam"].as_bool()),
        (Some("pol-harassment"), Some("harassment: threats"), Some(false))
    );
    item_ok(&body["reportedItem"]);
    assert_eq!(parse_message_id(body["reportedItem"]["id"].as_str().unwrap()), Some(("00ff", 2)));
    let data = &body["reportedItem"]["data"];
    assert_eq!((data["text"].as_str(), data["franking"].as_str()), (Some("message 2"), Some("verified")));
    assert_eq!(data["sender"], serde_json::json!({"id": "mallory", "typeId": "tUser"}), "RELATED_ITEM");
    assert_eq!(data["createdAt"], "2026-03-14T09:20:02.000Z");
    let thread = body["reportedItemThread"].as_array().unwrap();
    assert_eq!(thread.len(), 2);
    thread.iter().for_each(item_ok);
    let verdicts = body["additionalItems"].as_array().unwrap();
    assert_eq!(verdicts.len(), 3, "one verdict per message");
    verdicts.iter().for_each(item_ok);
    assert_eq!(verdicts[1]["data"]["verdict"], "unopened");
    assert!(verdicts[2]["data"]["detail"].as_str().unwrap().contains("order: sequence 1 to 3"));
    // No nulls anywhere Coop's schema wants an object or leaves a key out.
    assert!(!body.as_object().unwrap().values().any(Value::is_null), "{body}");
    // A child-safety report goes to Coop's NCMEC queue.
    let cs = VerifiedReport { reason: "child-safety".into(), note: String::new(), ..report() };
    let body = serde_json::to_value(coop_report(&cs, &types(), None)).unwrap();
    assert_eq!(body["reportedForReason"], serde_json::json!({"reason": "child-safety", "csam": true}));
}
