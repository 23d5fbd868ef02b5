//! `frankly eval privacy`: what each party of a franked, reported message
//! learns, measured on real objects built with the client libraries.
//!
//! [`privacy_table`] sends one message the way a messenger using frankly
//! does (FMB1 body with an encrypted attachment, franked and sealed under a
//! message key, tagged and delivery-MACed by the platform), opens it as the
//! recipient, builds and seals a report of it, and opens and verifies that
//! report as the moderation server. Every byte count in the table is the
//! length of an object this run produced; nothing is typed in.

use std::collections::HashSet;

use frankly_client::Body;
use frankly_franking::{
    DeliveryContext, DeviceKey, KeyWindow, Keyring, MessageContext, Party, PlatformKey, encrypt_attachment,
    mac_delivery, open_attachment, open_message, seal_message, tag, verify_delivery,
};
use frankly_report::{
    KeyBytes, Opening, Reason, Report, ReportKeyring, ReportedAttachment, ReportedMessage, ServerKeyPair,
    encode_report, open_and_verify, seal_report,
};

use crate::EvalError;

/// One line of the privacy table.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PrivacyRow {
    /// Who.
    pub party: &'static str,
    /// In which flow.
    pub flow: &'static str,
    /// What it holds, field by field.
    pub learns: String,
    /// How many bytes of it (measured).
    pub bytes: usize,
    /// Whether someone outside the platform and moderation service can
    /// check it, and with what.
    pub third_party_verifiable: &'static str,
}

fn fail<E: std::fmt::Display>(e: E) -> EvalError {
    EvalError::Privacy(e.to_string())
}

/// Builds the table for a message with `text` and one attachment
/// (`media_type`, `attachment`), reported by its recipient.
pub fn privacy_table(text: &str, media_type: &str, attachment: &[u8]) -> Result<Vec<PrivacyRow>, EvalError> {
    // The sender's device.
    let (alice, bob) = (Party::new("alice", "phone"), Party::new("bob", "laptop"));
    let context =
        MessageContext { conversation_id: "conversation-1".into(), sender: alice.clone(), message_id: "msg-1".into() };
    let (reference, attachment_ciphertext) = encrypt_attachment(attachment).map_err(fail)?;
    let body =
        Body { text: text.to_owned(), attachments: vec![(media_type.to_owned(), reference)] }.encode().map_err(fail)?;
    let message_key = [0x42u8; 32];
    let sealed = seal_message(&message_key, [7u8; 12], &context, &body).map_err(fail)?;
    let encoded_context = context.encode().map_err(fail)?;

    // The platform: numbers the message, tags bob's copy, MACs its delivery.
    let now = 1_700_000_000_000;
    let mut keyring = Keyring::new();
    let window = KeyWindow { tag_from_ms: now - 1000, tag_until_ms: now + 1000, verify_until_ms: now + 86_400_000 };
    keyring.insert(PlatformKey::new(1, [0x24u8; 32], window).map_err(fail)?);
    let delivery = DeliveryContext {
        conversation_id: "conversation-1".into(),
        sequence: 1,
        sender: alice.clone(),
        recipient: bob.clone(),
        timestamp_ms: now,
        server_message_id: "srv-1".into(),
    };
    let platform_tag = tag(&keyring, &sealed.commitment, &delivery).map_err(fail)?;
    let device_key = DeviceKey::derive(&[0x11u8; 32], &bob).map_err(fail)?;
    let delivery_mac = mac_delivery(&device_key, &platform_tag, &sealed.commitment, &delivery).map_err(fail)?;

    // The recipient's device.
    verify_delivery(&device_key, &platform_tag, &sealed.commitment, &delivery, &delivery_mac).map_err(fail)?;
    let opened = open_message(&message_key, &sealed, &delivery, &alice, &bob).map_err(fail)?;
    let received = Body::decode(&opened.body).map_err(fail)?;
    let (_, received_ref) = received.attachments.first().ok_or_else(|| fail("attachment lost"))?;
    let attachment_plain = open_attachment(received_ref, &attachment_ciphertext).map_err(fail)?;

    // The report, sealed to the moderation server.
    let server = ServerKeyPair::derive(b"frankly eval privacy table");
    let mut report_keys = ReportKeyring::new();
    report_keys.insert(1, ServerKeyPair::derive(b"frankly eval privacy table"), u64::MAX);
    let reported = ReportedMessage {
        commitment: *opened.accepted.commitment(),
        delivery: delivery.clone(),
        tag: platform_tag,
        opening: Some(Opening {
            franking_key: KeyBytes::from(&opened.franking_key),
            message_id: opened.accepted.context().message_id.clone(),
            body: opened.body.clone(),
            attachments: vec![ReportedAttachment {
                reference: received_ref.to_bytes(),
                plaintext: attachment_plain.clone(),
            }],
        }),
    };
    let report =
        Report::new(&bob, Reason::Harassment, "reported from frankly eval privacy", vec![reported], 0).map_err(fail)?;
    let report_bytes = encode_report(&report).map_err(fail)?;
    let envelope = seal_report(&report, 1, server.public()).map_err(fail)?;

    // The moderation server.
    let verified =
        open_and_verify(&envelope, &report_keys, &keyring, &bob, now + 1, &mut HashSet::new()).map_err(fail)?;
    let verified_bytes = encode_report(verified.report()).map_err(fail)?.len();

    let tag_bytes = 4 + platform_tag.mac.len();
    let delivery_bytes = delivery.encode().map_err(fail)?.len();
    Ok(vec![
        PrivacyRow {
            party: "sender device",
            flow: "send",
            learns: "everything it sends: body (text + attachment refs), attachment plaintext, franking key, context"
                .into(),
            bytes: body.len() + attachment.len() + opened.franking_key.as_bytes().len() + encoded_context.len(),
            third_party_verifiable: "no: it produced them",
        },
        PrivacyRow {
            party: "relay / platform",
            flow: "send + deliver",
            learns: format!(
                "commitment ({} B), message ciphertext ({} B) + nonce ({} B), attachment ciphertext ({} B), delivery metadata ({delivery_bytes} B): no content",
                sealed.commitment.0.len(),
                sealed.ciphertext.len(),
                sealed.nonce.len(),
                attachment_ciphertext.len()
            ),
            bytes: sealed.commitment.0.len()
                + sealed.ciphertext.len()
                + sealed.nonce.len()
                + attachment_ciphertext.len()
                + delivery_bytes,
            third_party_verifiable: "it emits a tag per device copy and a delivery MAC under that device's key: both MACs, so nothing it emits is publicly checkable",
        },
        PrivacyRow {
            party: "recipient device",
            flow: "receive",
            learns: format!(
                "body ({} B), attachment ({} B), franking key (32 B), context ({} B), tag ({tag_bytes} B), delivery MAC ({} B)",
                opened.body.len(),
                attachment_plain.len(),
                encoded_context.len(),
                delivery_mac.len()
            ),
            bytes: opened.body.len()
                + attachment_plain.len()
                + 32
                + encoded_context.len()
                + tag_bytes
                + delivery_mac.len(),
            third_party_verifiable: "commitment: anyone given the opening; tag: only holders of the platform key; delivery MAC: only the platform and this device",
        },
        PrivacyRow {
            party: "relay / platform",
            flow: "report",
            learns: "a sealed report envelope of this many bytes, and who sent it: nothing inside".into(),
            bytes: envelope.len(),
            third_party_verifiable: "no",
        },
        PrivacyRow {
            party: "moderation server",
            flow: "report",
            learns: format!(
                "the report ({} B, FRP2): reported body, attachment, franking key, context, delivery, tag, reason, note; {} of {} messages verified",
                verified_bytes,
                verified.verdicts().iter().filter(|v| matches!(v, frankly_report::Verdict::Verified)).count(),
                verified.verdicts().len()
            ),
            bytes: verified_bytes,
            third_party_verifiable: "it verifies commitment and tag (it holds the platform key); it cannot prove them to others",
        },
        PrivacyRow {
            party: "observer of a leaked report",
            flow: "leak",
            learns: "the plaintext report: content, ids, timestamps".into(),
            bytes: report_bytes.len(),
            third_party_verifiable: "no: the tag is a MAC only the platform and moderation service can check, so an outsider cannot tell it from a report made up with a fresh key and commitment (deniable)",
        },
        PrivacyRow {
            party: "observer of a leaked report and a leaked platform key",
            flow: "leak",
            learns: "the plaintext report, and that its tags check under the leaked key".into(),
            bytes: report_bytes.len() + 32,
            third_party_verifiable: "no: whoever holds the leaked key can make such tags for any text, and no signature vouches for them (v2 has none); after the key's retention it is destroyed",
        },
        PrivacyRow {
            party: "observer of a leaked envelope",
            flow: "leak",
            learns: "ciphertext only (HPKE to the moderation server)".into(),
            bytes: envelope.len(),
            third_party_verifiable: "no",
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_message() {
        let small = privacy_table("hi", "image/jpeg", &[1u8; 100]).unwrap();
        let large = privacy_table("hi", "image/jpeg", &[1u8; 5000]).unwrap();
        assert_eq!(small.len(), 8);
        for (s, l) in small.iter().zip(&large) {
            assert_eq!((s.party, s.flow), (l.party, l.flow));
        }
        // The relay sees the attachment ciphertext: exactly 4,900 more bytes.
        assert_eq!(large[1].bytes - small[1].bytes, 4900);
        // The recipient sees the plaintext attachment.
        assert_eq!(large[2].bytes - small[2].bytes, 4900);
        // Reports carry the attachment as bytes (binary FRP2), not hex.
        assert_eq!(large[4].bytes - small[4].bytes, 4900);
        assert!(small[4].learns.contains("1 of 1 messages verified"));
    }
}
