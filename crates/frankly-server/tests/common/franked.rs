//! Franked conversations and sealed reports, as devices and the platform
//! would make them (shared by the tests and the load generator): each
//! message numbered in the conversation and tagged for the reporter's
//! device, as the relay does.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use frankly_franking::{DeliveryContext, FrankingKey, Keyring, MessageContext, Party, commit, tag};
use frankly_report::{
    KeyBytes, Opening, Reason, Report, ReportedAttachment, ReportedMessage, ServerPublicKey, seal_report,
};

/// A device of `user` (its only one in these tests).
pub fn device(user: &str) -> Party {
    Party::new(user, "phone")
}

/// The reporter's copies of a conversation of `n` messages alternating
/// between `a` and `reporter`, numbered 1 to `n`, franked and tagged with
/// `keyring` at `t0_ms`.
pub fn conversation(
    keyring: &Keyring,
    conv: &str,
    a: &str,
    reporter: &str,
    n: usize,
    t0_ms: u64,
) -> Vec<ReportedMessage> {
    (0..n)
        .map(|i| {
            let sender = if i % 2 == 0 { a } else { reporter };
            let body = frankly_franking::Body { text: format!("message {i} from {sender}"), attachments: Vec::new() }
                .encode()
                .unwrap();
            franked(keyring, conv, &device(sender), &device(reporter), body, i as u64 + 1, t0_ms + i as u64)
        })
        .collect()
}

/// One franked message: `recipient`'s copy, with the platform's tag.
pub fn franked(
    keyring: &Keyring,
    conv: &str,
    sender: &Party,
    recipient: &Party,
    body: Vec<u8>,
    sequence: u64,
    timestamp_ms: u64,
) -> ReportedMessage {
    let key = FrankingKey::generate().unwrap();
    let message_id = format!("m{sequence}");
    let context =
        MessageContext { conversation_id: conv.into(), sender: sender.clone(), message_id: message_id.clone() };
    let commitment = commit(&key, &context, &body).unwrap();
    let delivery = DeliveryContext {
        conversation_id: conv.into(),
        sequence,
        sender: sender.clone(),
        recipient: recipient.clone(),
        timestamp_ms,
        server_message_id: format!("s{sequence}-{}", hex::encode(&commitment.0[..4])),
    };
    let tag = tag(keyring, &commitment, &delivery).unwrap();
    ReportedMessage {
        commitment,
        delivery,
        tag,
        opening: Some(Opening { franking_key: KeyBytes::from(&key), message_id, body, attachments: Vec::new() }),
    }
}

/// Replaces the last message of `messages` with one from its sender that
/// carries an image attachment.
pub fn with_image(keyring: &Keyring, messages: &mut [ReportedMessage], image: &[u8], t_ms: u64) {
    with_attachments(keyring, messages, &[("image/jpeg", image)], t_ms);
}

/// Replaces the last message of `messages` with one from its sender that
/// carries `attachments`, each with the media type its sender declared.
pub fn with_attachments(keyring: &Keyring, messages: &mut [ReportedMessage], attachments: &[(&str, &[u8])], t_ms: u64) {
    let last = messages.len() - 1;
    let encrypted: Vec<_> =
        attachments.iter().map(|(_, bytes)| frankly_franking::encrypt_attachment(bytes).unwrap().0).collect();
    let body = frankly_franking::Body {
        text: "look at this".into(),
        attachments: attachments.iter().zip(&encrypted).map(|((t, _), r)| (t.to_string(), r.clone())).collect(),
    }
    .encode()
    .unwrap();
    let d = messages[last].delivery.clone();
    let mut m = franked(keyring, &d.conversation_id, &d.sender, &d.recipient, body, d.sequence, t_ms);
    if let Some(o) = m.opening.as_mut() {
        o.attachments = attachments
            .iter()
            .zip(&encrypted)
            .map(|((_, bytes), r)| ReportedAttachment { reference: r.to_bytes(), plaintext: bytes.to_vec() })
            .collect();
    }
    messages[last] = m;
}

/// Seals a report of the last message with the rest as context, by the
/// recipient of the copies.
pub fn seal(messages: Vec<ReportedMessage>, reason: Reason, server: &(u32, ServerPublicKey)) -> (String, Vec<u8>) {
    let reporter = messages[0].delivery.recipient.clone();
    let reported = messages.len() - 1;
    let report = Report::new(&reporter, reason, "please look at this", messages, reported).unwrap();
    (report.id_hex(), seal_report(&report, server.0, &server.1).unwrap())
}
