//! A simulated platform for client tests: conversations with members and
//! devices; each message is numbered in its conversation and tagged for
//! every member device (the sender's own included), as `frankly-server` does.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use frankly_client::{ConversationState, FrankedMessage, Incoming, Message, Reporter, Scanner};
use frankly_franking::{Commitment, DeliveryContext, KeyWindow, Keyring, Party, PlatformKey, PlatformTag, tag};
use frankly_policy::Facts;

pub const NOW: u64 = 1_800_000_000_000;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn keyring() -> Keyring {
    let mut k = Keyring::new();
    let w = KeyWindow {
        tag_from_ms: NOW - 86_400_000,
        tag_until_ms: NOW + 86_400_000,
        verify_until_ms: NOW + 90 * 86_400_000,
    };
    k.insert(PlatformKey::new(7, [9; 32], w).unwrap());
    k
}

/// One device: its conversation states and reporter.
pub struct Phone {
    pub me: Party,
    pub states: BTreeMap<String, ConversationState>,
    pub reporter: Reporter,
    pub contacts: Vec<String>,
}

impl Phone {
    pub fn new(user: &str, device: &str) -> Phone {
        let me = Party::new(user, device);
        Phone { reporter: Reporter::new(&me, 51).unwrap(), me, states: BTreeMap::new(), contacts: Vec::new() }
    }

    pub fn state(&mut self, conversation: &str) -> &mut ConversationState {
        let me = self.me.clone();
        self.states.entry(conversation.to_owned()).or_insert_with(|| ConversationState::new(conversation, &me))
    }
}

/// A copy in a device's mailbox.
pub struct Copy {
    pub commitment: Commitment,
    pub plaintext: Vec<u8>,
    pub attachments: Vec<Vec<u8>>,
    pub delivery: DeliveryContext,
    pub tag: PlatformTag,
}

/// The platform: members per conversation, the last sequence number, mailboxes.
#[derive(Default)]
pub struct Net {
    pub members: BTreeMap<String, Vec<Party>>,
    pub last: BTreeMap<String, u64>,
    pub mailbox: BTreeMap<Party, Vec<Copy>>,
}

impl Net {
    pub fn join(&mut self, conversation: &str, device: &Party) {
        self.members.entry(conversation.to_owned()).or_default().push(device.clone());
    }

    /// Numbers and tags a franked message; returns the sender's own copy.
    pub fn post(&mut self, conversation: &str, from: &Party, f: &FrankedMessage) -> (DeliveryContext, PlatformTag) {
        let seq = self.last.entry(conversation.to_owned()).or_default();
        *seq += 1;
        let seq = *seq;
        let members = self.members[conversation].clone();
        assert!(members.contains(from), "{from} is not a member of {conversation}");
        let delivery_to = |to: &Party| DeliveryContext {
            conversation_id: conversation.to_owned(),
            sequence: seq,
            sender: from.clone(),
            recipient: to.clone(),
            timestamp_ms: NOW + seq,
            server_message_id: format!("srv-{conversation}-{seq}"),
        };
        for to in members.iter().filter(|m| *m != from) {
            let delivery = delivery_to(to);
            let tag = tag(&keyring(), &f.franked.commitment, &delivery).unwrap();
            self.mailbox.entry(to.clone()).or_default().push(Copy {
                commitment: f.franked.commitment,
                plaintext: f.franked.plaintext.to_vec(),
                attachments: f.attachment_ciphertexts.clone(),
                delivery,
                tag,
            });
        }
        let own = delivery_to(from);
        let tag = tag(&keyring(), &f.franked.commitment, &own).unwrap();
        (own, tag)
    }

    pub fn take(&mut self, device: &Party) -> Vec<Copy> {
        self.mailbox.remove(device).unwrap_or_default()
    }
}

/// Franks `message` on `phone` and posts it; the phone keeps its own side.
pub fn send(
    s: &Scanner,
    net: &mut Net,
    phone: &mut Phone,
    conversation: &str,
    id: &str,
    message: &Message,
) -> Commitment {
    let out = s.prepare_outgoing(phone.state(conversation), id, message, Facts::default()).unwrap();
    let franked = out.franked.unwrap();
    let from = phone.me.clone();
    let (delivery, tag) = net.post(conversation, &from, &franked);
    phone.state(conversation).record_sent(&franked, &delivery).unwrap();
    phone.reporter.remember_sent(&franked, message, &delivery, tag);
    franked.franked.commitment
}

/// Opens everything in `phone`'s mailbox; keeps accepted and refused copies.
pub fn receive(s: &Scanner, net: &mut Net, phone: &mut Phone) -> Vec<Result<Incoming, frankly_client::ClientError>> {
    let copies = net.take(&phone.me);
    copies
        .into_iter()
        .map(|c| {
            let conversation = c.delivery.conversation_id.clone();
            let contact = phone.contacts.contains(&c.delivery.sender.user_id);
            let result = s.accept_incoming(
                phone.state(&conversation),
                &c.plaintext,
                &c.commitment,
                &c.delivery,
                &c.attachments,
                &c.delivery.sender,
                Facts::default(),
            );
            match &result {
                Ok(incoming) => phone.reporter.remember_received(incoming, &c.delivery, c.tag, contact),
                Err(_) => {
                    phone.state(&conversation).record_refused(&c.commitment, &c.delivery);
                    phone.reporter.remember_refused(&c.commitment, &c.delivery, c.tag, contact);
                }
            }
            result
        })
        .collect()
}
