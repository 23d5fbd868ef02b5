//! `frankly eval privacy`: what each party of a franked, reported message
//! learns, measured on real objects built with the client libraries.
//!
//! [`privacy_table`] sends one message the way a messenger using frankly
//! does (FMB1 body with an encrypted attachment, franked and sealed under a
//! message key, tagged and signed by the delivery service), opens it as the
//! recipient, builds and seals a report of it, and opens and verifies that
//! report as the moderation server. Every byte count in the table is the
//! length of an object this run produced; nothing is typed in.

use std::collections::HashSet;

use frankly_client::Body;
use frankly_franking::{
    DeliveryContext, Keyring, MessageContext, PlatformKey, SigningKey, encrypt_attachment, open_attachment,
    open_message, seal_message, sign_delivery, tag, verify_delivery,
};
use frankly_report::{
    KeyBytes, Reason, Report, ReportedAttachment, ReportedMessage, ServerKeyPair, open_and_verify, seal_report,
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
    let context = MessageContext {
        conversation_id: "conversation-1".into(),
        sender_id: "alice".into(),
        message_id: "msg-1".into(),
        sequence: 0,
        previous: None,
    };
    let (reference, attachment_ciphertext) = encrypt_attachment(attachment).map_err(fail)?;
    let body =
        Body { text: text.to_owned(), attachments: vec![(media_type.to_owned(), reference)] }.encode().map_err(fail)?;
    let message_key = [0x42u8; 32];
    let sealed = seal_message(&message_key, [7u8; 12], &context, &body).map_err(fail)?;
    let encoded_context = context.encode().map_err(fail)?;

    // The platform: tags the commitment, signs the tag and delivery context.
    let mut keyring = Keyring::new();
    keyring.insert(PlatformKey::new(1, [0x24u8; 32], 0, u64::MAX));
    let delivery = DeliveryContext {
        sender_id: "alice".into(),
        conversation_id: "conversation-1".into(),
        timestamp_ms: 1_700_000_000_000,
        server_message_id: "srv-1".into(),
    };
    let platform_tag = tag(&keyring, &sealed.commitment, &delivery).map_err(fail)?;
    let delivery_key = SigningKey::from_bytes(&[0x11u8; 32]);
    let signature = sign_delivery(&delivery_key, &platform_tag, &delivery).map_err(fail)?;

    // The recipient's device.
    verify_delivery(&delivery_key.verifying_key(), &platform_tag, &delivery, &signature).map_err(fail)?;
    let opened = open_message(&message_key, &sealed, "alice", "conversation-1").map_err(fail)?;
    let received = Body::decode(&opened.body).map_err(fail)?;
    let (_, received_ref) = received.attachments.first().ok_or_else(|| fail("attachment lost"))?;
    let attachment_plain = open_attachment(received_ref, &attachment_ciphertext).map_err(fail)?;

    // The report, sealed to the moderation server.
    let server = ServerKeyPair::derive(b"frankly eval privacy table");
    let reported = ReportedMessage {
        body: opened.body.clone(),
        franking_key: KeyBytes::from(&opened.franking_key),
        commitment: *opened.accepted.commitment(),
        context: opened.accepted.context().clone(),
        delivery: delivery.clone(),
        tag: platform_tag,
        attachments: vec![ReportedAttachment {
            reference: received_ref.to_bytes().to_vec(),
            plaintext: attachment_plain.clone(),
        }],
    };
    let report =
        Report::new("bob", Reason::Harassment, "reported from frankly eval privacy", vec![], reported).map_err(fail)?;
    let report_json = serde_json::to_vec(&report).map_err(fail)?;
    let envelope = seal_report(&report, server.public()).map_err(fail)?;

    // The moderation server.
    let verified = open_and_verify(&envelope, &server, &keyring, &mut HashSet::new()).map_err(fail)?;
    let verified_bytes = serde_json::to_vec(verified.report()).map_err(fail)?.len();

    let tag_bytes = 4 + platform_tag.mac.len();
    let delivery_bytes = delivery.sender_id.len()
        + delivery.conversation_id.len()
        + delivery.server_message_id.len()
        + std::mem::size_of_val(&delivery.timestamp_ms);
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
            third_party_verifiable: "it emits a tag (MAC, deniable) and an Ed25519 delivery signature over tag + metadata: the signature is public, the content is not in it",
        },
        PrivacyRow {
            party: "recipient device",
            flow: "receive",
            learns: format!(
                "body ({} B), attachment ({} B), franking key (32 B), context ({} B), tag ({tag_bytes} B), delivery signature ({} B)",
                opened.body.len(),
                attachment_plain.len(),
                encoded_context.len(),
                signature.len()
            ),
            bytes: opened.body.len()
                + attachment_plain.len()
                + 32
                + encoded_context.len()
                + tag_bytes
                + signature.len(),
            third_party_verifiable: "commitment: anyone given the opening; tag: only holders of the platform key; delivery signature: anyone, metadata only",
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
                "the report ({} B JSON): reported body, attachment, franking key, context, delivery, tag, reason, note; {} of {} messages verified",
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
            bytes: report_json.len(),
            third_party_verifiable: "no: the tag is a MAC only the platform and moderation service can check, so an outsider cannot tell it from a report made up with a fresh key and commitment (deniable)",
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
        assert_eq!(small.len(), 7);
        for (s, l) in small.iter().zip(&large) {
            assert_eq!((s.party, s.flow), (l.party, l.flow));
        }
        // The relay sees the attachment ciphertext: exactly 4,900 more bytes.
        assert_eq!(large[1].bytes - small[1].bytes, 4900);
        // The recipient sees the plaintext attachment.
        assert_eq!(large[2].bytes - small[2].bytes, 4900);
        // Reports carry the attachment hex-encoded in JSON.
        assert!(large[4].bytes > small[4].bytes + 2 * 4900 - 10);
        assert!(small[4].learns.contains("1 of 1 messages verified"));
    }
}
