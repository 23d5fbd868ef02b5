//! A simulated platform for report tests: conversations whose messages are
//! numbered, tagged per recipient device and opened by each member.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use frankly_franking::{
    Commitment, DeliveryContext, FrankingKey, KeyWindow, Keyring, MessageContext, Party, PlatformKey, commit, tag,
};
use frankly_report::{KeyBytes, Opening, ReportedMessage};

pub const T0: u64 = 1_800_000_000_000;
pub const DAY: u64 = 86_400_000;

pub fn keyring() -> Keyring {
    let mut k = Keyring::new();
    let w = KeyWindow { tag_from_ms: T0 - DAY, tag_until_ms: T0 + DAY, verify_until_ms: T0 + 91 * DAY };
    k.insert(PlatformKey::new(3, [0x33; 32], w).unwrap());
    k
}

/// One message as sent: everything each member device receives.
pub struct Sent {
    pub key: FrankingKey,
    pub message_id: String,
    pub body: Vec<u8>,
    pub commitment: Commitment,
    pub sender: Party,
    pub sequence: u64,
    pub timestamp_ms: u64,
}

impl Sent {
    /// This message's copy for `device`, opened (as the device kept it) or not.
    pub fn copy_for(&self, device: &Party, opened: bool) -> ReportedMessage {
        let delivery = DeliveryContext {
            conversation_id: "c1".into(),
            sequence: self.sequence,
            sender: self.sender.clone(),
            recipient: device.clone(),
            timestamp_ms: self.timestamp_ms,
            server_message_id: format!("s{}", self.sequence),
        };
        let tag = tag(&keyring(), &self.commitment, &delivery).unwrap();
        ReportedMessage {
            commitment: self.commitment,
            delivery,
            tag,
            opening: opened.then(|| Opening {
                franking_key: KeyBytes::from(&self.key),
                message_id: self.message_id.clone(),
                body: self.body.clone(),
                attachments: Vec::new(),
            }),
        }
    }
}

/// Sends `body` from `sender` as the conversation's message `sequence`.
pub fn send(sender: &Party, sequence: u64, body: &[u8]) -> Sent {
    let key = FrankingKey::generate().unwrap();
    let message_id = format!("{}-{sequence}", sender.user_id);
    let context =
        MessageContext { conversation_id: "c1".into(), sender: sender.clone(), message_id: message_id.clone() };
    let commitment = commit(&key, &context, body).unwrap();
    Sent {
        key,
        message_id,
        body: body.to_vec(),
        commitment,
        sender: sender.clone(),
        sequence,
        timestamp_ms: T0 + sequence,
    }
}

pub fn alice() -> Party {
    Party::new("alice", "phone")
}
pub fn bob() -> Party {
    Party::new("bob", "laptop")
}

/// A dialogue of `n` messages alternating alice, bob, with bob's copies.
pub fn dialogue(n: u64) -> Vec<ReportedMessage> {
    (1..=n)
        .map(|s| {
            let from = if s % 2 == 1 { alice() } else { bob() };
            send(&from, s, format!("message {s} from {}", from.user_id).as_bytes()).copy_for(&bob(), true)
        })
        .collect()
}
