//! Franked conversations and sealed reports, as devices and the platform
//! would make them (shared by the tests and the load generator).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use frankly_franking::{Commitment, DeliveryContext, FrankingKey, Keyring, MessageContext, commit, tag};
use frankly_report::{Reason, Report, ReportedAttachment, ReportedMessage, ServerPublicKey, seal_report};

/// A conversation of `n` messages alternating between `a` and `b` in
/// conversation `conv`, franked and tagged with `keyring` at `t0_ms`.
pub fn conversation(keyring: &Keyring, conv: &str, a: &str, b: &str, n: usize, t0_ms: u64) -> Vec<ReportedMessage> {
    let mut out: Vec<ReportedMessage> = Vec::new();
    let mut previous: Option<Commitment> = None;
    for i in 0..n {
        let sender = if i % 2 == 0 { a } else { b };
        let key = FrankingKey::generate().unwrap();
        let context = MessageContext {
            conversation_id: conv.into(),
            sender_id: sender.into(),
            message_id: format!("m{i}"),
            sequence: (i / 2) as u64,
            previous,
        };
        let body = frankly_franking::Body { text: format!("message {i} from {sender}"), attachments: Vec::new() }
            .encode()
            .unwrap();
        out.push(franked(keyring, key, context, body, t0_ms + i as u64, i));
        previous = Some(out[i].commitment);
    }
    out
}

/// One franked message with the platform's tag.
pub fn franked(
    keyring: &Keyring,
    key: FrankingKey,
    context: MessageContext,
    body: Vec<u8>,
    timestamp_ms: u64,
    i: usize,
) -> ReportedMessage {
    let commitment = commit(&key, &context, &body).unwrap();
    let delivery = DeliveryContext {
        sender_id: context.sender_id.clone(),
        conversation_id: context.conversation_id.clone(),
        timestamp_ms,
        server_message_id: format!("s{i}-{}", hex::encode(&commitment.0[..4])),
    };
    let tag = tag(keyring, &commitment, &delivery).unwrap();
    ReportedMessage { body, franking_key: (&key).into(), commitment, context, delivery, tag, attachments: Vec::new() }
}

/// Replaces the last message of `messages` with one from its sender that
/// carries an image attachment.
pub fn with_image(keyring: &Keyring, messages: &mut [ReportedMessage], image: &[u8], t_ms: u64) {
    let last = messages.len() - 1;
    let (reference, _ciphertext) = frankly_franking::encrypt_attachment(image).unwrap();
    let body = frankly_franking::Body {
        text: "look at this".into(),
        attachments: vec![("image/jpeg".into(), reference.clone())],
    }
    .encode()
    .unwrap();
    let context = messages[last].context.clone();
    let mut m = franked(keyring, FrankingKey::generate().unwrap(), context, body, t_ms, last);
    m.attachments = vec![ReportedAttachment { reference: reference.to_bytes().to_vec(), plaintext: image.to_vec() }];
    messages[last] = m;
}

/// Seals a report of the last message with the rest as context.
pub fn seal(
    mut messages: Vec<ReportedMessage>,
    reporter: &str,
    reason: Reason,
    server: &ServerPublicKey,
) -> (String, Vec<u8>) {
    let reported = messages.pop().unwrap();
    let report = Report::new(reporter, reason, "please look at this", messages, reported).unwrap();
    (report.report_id.clone(), seal_report(&report, server).unwrap())
}
