//! The delivery service's optional signature over a tag and its delivery
//! context, so the recipient's device can detect a relay that altered the
//! sender, conversation, timestamp or message id on the way.
//!
//! It signs the tag (a MAC), never the commitment or the body: anyone can
//! check the signature, so it must not make the content attributable. What it
//! proves to an outsider is only that the platform delivered some message
//! from that sender at that time, which the platform knows anyway.
//!
//! `signature = Ed25519(domain || u32be(key_id) || tag || lp(sender) ||
//! lp(conversation) || u64be(timestamp_ms) || lp(server message id))`,
//! checked with `verify_strict`: non-canonical scalars and small-order points,
//! which make Ed25519 signatures malleable, are refused.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::FrankingError;
use crate::encoding::{MAX_ID_BYTES, put_lp};
use crate::frank::{DeliveryContext, PlatformTag};

/// Domain of delivery signatures.
pub const DELIVERY_SIGNATURE_DOMAIN: &[u8] = b"frankly delivery signature v1\0";

fn signed_bytes(tag: &PlatformTag, delivery: &DeliveryContext) -> Result<Vec<u8>, FrankingError> {
    for (field, value) in [
        ("sender_id", &delivery.sender_id),
        ("conversation_id", &delivery.conversation_id),
        ("server_message_id", &delivery.server_message_id),
    ] {
        if value.len() > MAX_ID_BYTES {
            return Err(FrankingError::FieldTooLong { field, len: value.len(), limit: MAX_ID_BYTES });
        }
    }
    let mut out = DELIVERY_SIGNATURE_DOMAIN.to_vec();
    out.extend_from_slice(&tag.key_id.to_be_bytes());
    out.extend_from_slice(&tag.mac);
    put_lp(&mut out, delivery.sender_id.as_bytes());
    put_lp(&mut out, delivery.conversation_id.as_bytes());
    out.extend_from_slice(&delivery.timestamp_ms.to_be_bytes());
    put_lp(&mut out, delivery.server_message_id.as_bytes());
    Ok(out)
}

/// The delivery service signs a tag and its delivery context.
pub fn sign_delivery(
    key: &SigningKey,
    tag: &PlatformTag,
    delivery: &DeliveryContext,
) -> Result<[u8; 64], FrankingError> {
    Ok(key.sign(&signed_bytes(tag, delivery)?).to_bytes())
}

/// The recipient checks the delivery signature (strictly).
pub fn verify_delivery(
    key: &VerifyingKey,
    tag: &PlatformTag,
    delivery: &DeliveryContext,
    signature: &[u8; 64],
) -> Result<(), FrankingError> {
    key.verify_strict(&signed_bytes(tag, delivery)?, &Signature::from_bytes(signature))
        .map_err(|_| FrankingError::DeliverySignature)
}
