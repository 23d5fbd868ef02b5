//! The platform's delivery MAC: lets a recipient's device detect a relay
//! that altered the sender, conversation, sequence number, recipient, time
//! or message id of a copy on the way.
//!
//! v1 signed deliveries with Ed25519. A signature can be checked by anyone,
//! so once a platform key leaked, a stored opening plus its signed tag became
//! a proof of content that anyone could check. v2 uses a MAC under a key
//! that the platform shares with that one device ([`DeviceKey`]): the device
//! could have computed it itself, so it proves nothing to anyone else
//! (`docs/franking.md`, "Deniability").
//!
//! `delivery_mac = HMAC-SHA256(K_dev, delivery_domain || u32be(key_id) ||
//! tag || c || delivery.encode())`.

use std::fmt;

use hmac::{KeyInit, Mac};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::FrankingError;
use crate::encoding::{DELIVERY_MAC_DOMAIN, put_lp};
use crate::frank::{Commitment, DeliveryContext, HmacSha256, Party, PlatformTag};

/// Domain of device-key derivation.
pub const DEVICE_KEY_DOMAIN: &[u8] = b"frankly device key v2\0";

/// The 32-byte key a device shares with the platform for delivery MACs.
/// Zeroized on drop; `Debug` does not print it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DeviceKey([u8; 32]);

impl DeviceKey {
    /// A key from its bytes (as the platform handed it to the device).
    pub fn from_bytes(bytes: [u8; 32]) -> DeviceKey {
        DeviceKey(bytes)
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// How `frankly-server` derives a device's key from its master delivery
    /// secret, so that it stores no per-device secret:
    /// `HMAC-SHA256(master, device_key_domain || lp(user) || lp(device))`.
    pub fn derive(master: &[u8; 32], device: &Party) -> Result<DeviceKey, FrankingError> {
        device.check()?;
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(master).map_err(|_| FrankingError::Internal)?;
        let mut input = DEVICE_KEY_DOMAIN.to_vec();
        put_lp(&mut input, device.user_id.as_bytes());
        put_lp(&mut input, device.device_id.as_bytes());
        mac.update(&input);
        Ok(DeviceKey(mac.finalize().into_bytes().into()))
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceKey(..)")
    }
}

fn delivery_mac(
    key: &DeviceKey,
    tag: &PlatformTag,
    commitment: &Commitment,
    delivery: &DeliveryContext,
) -> Result<HmacSha256, FrankingError> {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&key.0).map_err(|_| FrankingError::Internal)?;
    mac.update(DELIVERY_MAC_DOMAIN);
    mac.update(&tag.key_id.to_be_bytes());
    mac.update(&tag.mac);
    mac.update(&commitment.0);
    mac.update(&delivery.encode()?);
    Ok(mac)
}

/// The platform's MAC over one delivered copy, under the recipient device's key.
pub fn mac_delivery(
    key: &DeviceKey,
    tag: &PlatformTag,
    commitment: &Commitment,
    delivery: &DeliveryContext,
) -> Result<[u8; 32], FrankingError> {
    Ok(delivery_mac(key, tag, commitment, delivery)?.finalize().into_bytes().into())
}

/// The device checks the delivery MAC (constant time).
pub fn verify_delivery(
    key: &DeviceKey,
    tag: &PlatformTag,
    commitment: &Commitment,
    delivery: &DeliveryContext,
    mac: &[u8; 32],
) -> Result<(), FrankingError> {
    delivery_mac(key, tag, commitment, delivery)?.verify_slice(mac).map_err(|_| FrankingError::DeliveryMac)
}
