//! A simulated messenger app on one device: what a real app does around
//! frankly, in order. Sending: scan, frank, encrypt (Olm), hand to the
//! relay. Receiving: check the relay's delivery MAC, decrypt, check the
//! commitment, scan, keep the franking material for a possible report.
//! Reporting: seal the chosen message and its context to the moderation
//! server.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use frankly_api::{AckRequest, Copy, Delivered, PublicKeys, Received as ReportReceived, SendRequest, SendResponse};
use frankly_client::{Delivered as CopyFor, DeviceState, Message, Reporter, Scanner, Verdict};
use frankly_franking::{Commitment, DeliveryContext, DeviceKey, Party};
use frankly_policy::Facts;
use frankly_report::{MAX_CONTEXT_MESSAGES, Reason, ServerPublicKey};
use http::Method;
use zeroize::Zeroizing;

use crate::DemoError;
use crate::e2ee::{Device, Directory};
use crate::relay::Relay;

/// The server's public keys as a device is configured with them.
#[derive(Clone, Debug)]
pub struct ServerKeys {
    /// The report key's id (named in every envelope's header).
    pub report_key_id: u32,
    /// Reports are sealed to this key.
    pub report: ServerPublicKey,
}

impl ServerKeys {
    /// Parses the answer of `GET /v1/keys`.
    pub fn parse(keys: &PublicKeys) -> Result<ServerKeys, DemoError> {
        let bad = || DemoError::Setup("the server's report key is malformed".into());
        let report = hex::decode(&keys.report_public_key).map_err(|_| bad())?;
        Ok(ServerKeys {
            report_key_id: keys.report_key_id,
            report: ServerPublicKey::from_bytes(&report).map_err(|_| bad())?,
        })
    }
}

/// What happened to a message the user sent.
#[derive(Debug)]
pub struct Sent {
    /// The message id (in the commitment).
    pub message_id: String,
    /// The commitment, by which the message is reported.
    pub commitment: Option<Commitment>,
    /// The local scan of the outgoing message.
    pub verdict: Verdict,
    /// What the relay bound and tagged for the sender's own copy; `None`
    /// if the policy blocked sending, in which case nothing was franked or sent.
    pub relayed: Option<SendResponse>,
    /// Bytes of the E2EE ciphertexts and attachment ciphertexts handed to the relay.
    pub ciphertext_bytes: usize,
    /// How many device copies the relay got.
    pub copies: usize,
}

/// A message the device accepted and shows.
#[derive(Debug)]
pub struct Shown {
    /// The relay's delivery context (authenticated sender, sequence, time, ids).
    pub delivery: DeliveryContext,
    /// The commitment.
    pub commitment: Commitment,
    /// The message id the sender committed to.
    pub message_id: String,
    /// The message.
    pub message: Message,
    /// The local scan of the incoming message.
    pub verdict: Verdict,
}

/// One delivered message and what the device did with it: shown, or
/// refused with the reason (a refused message is never shown, so everything
/// shown can be reported).
#[derive(Debug)]
pub struct Received {
    /// What the relay delivered.
    pub delivered: Delivered,
    /// Shown, or why not.
    pub outcome: Result<Shown, DemoError>,
    /// Time from the fetched bytes to the verdict (checks, decryption, scan).
    pub took: std::time::Duration,
}

/// The app's own part of its saved state (inside the encrypted
/// [`DeviceState`]'s `app` bytes).
#[derive(serde::Serialize, serde::Deserialize)]
struct AppState {
    user_id: String,
    device_id: String,
    token: String,
    device_key: String,
    olm: crate::e2ee::DevicePickle,
    contacts: BTreeSet<String>,
    senders_seen: BTreeSet<String>,
    sent: u64,
    fetched_up_to: i64,
}

/// A copy's attachment ciphertexts, in the body's order.
type Attachments = Vec<Vec<u8>>;

/// A messenger app on one device.
#[derive(Debug)]
pub struct Messenger {
    me: Party,
    device: Device,
    device_key: DeviceKey,
    scanner: Arc<Scanner>,
    keys: ServerKeys,
    relay: Relay,
    state: DeviceState,
    contacts: BTreeSet<String>,
    senders_seen: BTreeSet<String>,
    sent: u64,
    fetched_up_to: i64,
}

impl Messenger {
    /// Sets up device `device_id` of `user_id`: registers it with the
    /// platform (which returns the device's bearer token and delivery-MAC
    /// key), publishes its Olm keys in `directory`, and keeps the last
    /// `keep` messages per conversation for reports.
    pub async fn register(
        server: &str,
        platform_token: &str,
        user_id: &str,
        device_id: &str,
        scanner: Arc<Scanner>,
        directory: &mut Directory,
        keep: usize,
    ) -> Result<Messenger, DemoError> {
        let platform = Relay::new(server, Some(platform_token));
        let request = frankly_api::DeviceRequest { user_id: user_id.to_owned(), device_id: device_id.to_owned() };
        let device: frankly_api::DeviceResponse = platform.json(Method::POST, "/v1/devices", Some(&request)).await?;
        let device_key: [u8; 32] = hex::decode(&device.device_key)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| DemoError::Setup("the server's device key is malformed".into()))?;
        let relay = Relay::new(server, Some(&device.token));
        let keys: PublicKeys = relay.json::<(), _>(Method::GET, "/v1/keys", None).await?;
        let me = Party::new(user_id, device_id);
        Ok(Messenger {
            device: Device::new(&me.to_string(), directory),
            device_key: DeviceKey::from_bytes(device_key),
            scanner,
            keys: ServerKeys::parse(&keys)?,
            relay,
            state: DeviceState::new(Reporter::new(&me, keep.clamp(1, MAX_CONTEXT_MESSAGES + 1))?),
            contacts: BTreeSet::new(),
            senders_seen: BTreeSet::new(),
            sent: 0,
            fetched_up_to: 0,
            me,
        })
    }

    /// Closes the app: everything it must remember (the franking state of
    /// every conversation, the kept report material, the Olm account and
    /// sessions, the device's credentials and its place in the mailbox) as
    /// one encrypted [`DeviceState`] pickle under `key`, which a real app
    /// keeps in the platform's key store.
    pub fn close(self, key: &[u8; 32]) -> Result<Vec<u8>, DemoError> {
        let app = AppState {
            user_id: self.me.user_id.clone(),
            device_id: self.me.device_id.clone(),
            token: self.relay.token().unwrap_or_default().to_owned(),
            device_key: hex::encode(self.device_key.as_bytes()),
            olm: self.device.pickle(),
            contacts: self.contacts.clone(),
            senders_seen: self.senders_seen.clone(),
            sent: self.sent,
            fetched_up_to: self.fetched_up_to,
        };
        let mut state = self.state;
        state.app = serde_json::to_vec(&app).map_err(|e| DemoError::Setup(format!("app state: {e}")))?;
        Ok(state.pickle(key)?)
    }

    /// Opens the app again from what [`Messenger::close`] wrote. A wrong
    /// key or a damaged file is an error; nothing is reset.
    pub async fn reopen(
        server: &str,
        pickle: &[u8],
        key: &[u8; 32],
        scanner: Arc<Scanner>,
    ) -> Result<Messenger, DemoError> {
        let state = DeviceState::unpickle(pickle, key)?;
        let app: AppState =
            serde_json::from_slice(&state.app).map_err(|e| DemoError::Setup(format!("app state: {e}")))?;
        let device_key: [u8; 32] = hex::decode(&app.device_key)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| DemoError::Setup("the saved device key is malformed".into()))?;
        let relay = Relay::new(server, Some(&app.token));
        let keys: PublicKeys = relay.json::<(), _>(Method::GET, "/v1/keys", None).await?;
        Ok(Messenger {
            me: Party::new(&app.user_id, &app.device_id),
            device: Device::from_pickle(app.olm),
            device_key: DeviceKey::from_bytes(device_key),
            scanner,
            keys: ServerKeys::parse(&keys)?,
            relay,
            state,
            contacts: app.contacts,
            senders_seen: app.senders_seen,
            sent: app.sent,
            fetched_up_to: app.fetched_up_to,
        })
    }

    /// The user.
    pub fn user_id(&self) -> &str {
        &self.me.user_id
    }

    /// This device.
    pub fn party(&self) -> &Party {
        &self.me
    }

    /// The device's connection (and its log of what left the device).
    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    /// The device's scanner.
    pub fn scanner(&self) -> &Scanner {
        &self.scanner
    }

    /// The reporter (the franking material kept for reports).
    pub fn reporter(&self) -> &Reporter {
        &self.state.reporter
    }

    /// The server keys the device uses.
    pub fn server_keys(&self) -> &ServerKeys {
        &self.keys
    }

    /// The E2EE device.
    pub fn device_mut(&mut self) -> &mut Device {
        &mut self.device
    }

    /// Adds a contact (a fact the policy may read).
    pub fn add_contact(&mut self, user: &str) {
        self.contacts.insert(user.to_owned());
    }

    /// The member devices of `conversation` other than this one, as the
    /// platform lists them (a member encrypts each message for all of them).
    pub async fn peers(&self, conversation: &str) -> Result<Vec<Party>, DemoError> {
        let path = format!("/v1/conversations/devices?conversation_id={}", urlencode(conversation));
        let devices: Vec<Party> = self.relay.json::<(), _>(Method::GET, &path, None).await?;
        Ok(devices.into_iter().filter(|d| *d != self.me).collect())
    }

    /// Sends `message` in `conversation`: scans it under the device's
    /// policy and, unless the policy blocks it, franks it, encrypts it with
    /// Olm for every other member device and hands the copies to the relay,
    /// which numbers and tags them. The relay's answer for this device's own
    /// copy is checked (delivery MAC) and kept, so the user's own side can be
    /// reported too. A blocked message is neither franked nor sent.
    pub async fn send(
        &mut self,
        directory: &mut Directory,
        conversation: &str,
        message: &Message,
    ) -> Result<Sent, DemoError> {
        self.sent += 1;
        let message_id = format!("{}/{}/{}", self.me.user_id, self.me.device_id, self.sent);
        let peers = self.peers(conversation).await?;
        let all_contacts = peers.iter().all(|p| p.user_id == self.me.user_id || self.contacts.contains(&p.user_id));
        let facts = Facts { sender_is_contact: Some(all_contacts), first_message_from_sender: None };
        let scanner = Arc::clone(&self.scanner);
        let pending = self.state.prepare_outgoing(&scanner, conversation, &message_id, message.clone(), facts)?;
        let Some(franked) = pending.outgoing.franked.as_ref() else {
            return Ok(Sent {
                message_id,
                commitment: None,
                verdict: pending.outgoing.verdict,
                relayed: None,
                ciphertext_bytes: 0,
                copies: 0,
            });
        };
        let commitment = franked.franked.commitment;
        let (relayed, ciphertext_bytes) = self
            .send_raw(directory, conversation, &commitment, &franked.franked.plaintext, &franked.attachment_ciphertexts)
            .await?;
        let own_copy = CopyFor {
            commitment,
            delivery: relayed.delivery.clone(),
            tag: relayed.franked.tag,
            delivery_mac: mac(&relayed.franked.delivery_mac)?,
        };
        self.state.confirm_sent(&self.device_key, &pending, &own_copy)?;
        Ok(Sent {
            message_id,
            commitment: Some(commitment),
            verdict: pending.outgoing.verdict,
            relayed: Some(relayed),
            ciphertext_bytes,
            copies: peers.len(),
        })
    }

    /// Encrypts a franked plaintext, with `commitment` bound inside, for
    /// every other member device, and hands the copies with the attachment
    /// ciphertexts to the relay. [`send`] calls this after scanning and
    /// franking; tests call it directly to play a sender whose client
    /// misbehaves.
    ///
    /// [`send`]: Messenger::send
    pub async fn send_raw(
        &mut self,
        directory: &mut Directory,
        conversation: &str,
        commitment: &Commitment,
        franked_plaintext: &[u8],
        attachment_ciphertexts: &[Vec<u8>],
    ) -> Result<(SendResponse, usize), DemoError> {
        let peers = self.peers(conversation).await?;
        let mut copies = Vec::with_capacity(peers.len());
        let mut bytes = attachment_ciphertexts.iter().map(Vec::len).sum::<usize>();
        for peer in peers {
            let wire = self.device.encrypt(directory, &peer.to_string(), commitment, franked_plaintext)?;
            bytes += wire.len();
            copies.push(Copy { recipient: peer, ciphertext: B64.encode(&wire) });
        }
        let request = SendRequest {
            conversation_id: conversation.to_owned(),
            copies,
            attachments: attachment_ciphertexts.iter().map(|a| B64.encode(a)).collect(),
            commitment: *commitment,
        };
        let relayed: SendResponse = self.relay.json(Method::POST, "/v1/messages", Some(&request)).await?;
        Ok((relayed, bytes))
    }

    /// Fetches what the relay holds for this device and acknowledges it.
    pub async fn fetch(&mut self) -> Result<Vec<Delivered>, DemoError> {
        let path = format!("/v1/messages?after={}", self.fetched_up_to);
        let delivered: Vec<Delivered> = self.relay.json::<(), _>(Method::GET, &path, None).await?;
        if let Some(last) = delivered.last() {
            self.fetched_up_to = last.id;
            let _: () = self
                .relay
                .json(Method::POST, "/v1/messages/ack", Some(&AckRequest { up_to: self.fetched_up_to }))
                .await?;
        }
        Ok(delivered)
    }

    /// Opens one delivered copy: checks the relay's delivery MAC (under
    /// this device's key) and the conversation state (this device, the
    /// next sequence number, a new commitment) before decrypting, decrypts
    /// it in the Olm session with the device the relay names, checks that
    /// the commitment inside is the tagged one, then lets `frankly-client`
    /// check the franking and scan it ([`DeviceState::accept_incoming`]).
    /// Accepted messages are kept for reports; a copy refused after its MAC
    /// verified is kept unopened, so its place in the conversation stays
    /// visible.
    pub fn open(&mut self, directory: &Directory, delivered: &Delivered) -> Result<Shown, DemoError> {
        let d = &delivered.delivery;
        let copy = CopyFor {
            commitment: delivered.commitment,
            delivery: d.clone(),
            tag: delivered.franked.tag,
            delivery_mac: mac(&delivered.franked.delivery_mac)?,
        };
        self.state.check_delivered(&self.device_key, &copy)?;
        let (franked, attachments) = match self.decrypt(directory, delivered) {
            Ok(opened) => opened,
            Err(e) => {
                let contact = self.contacts.contains(&d.sender.user_id);
                self.state.refuse(&self.device_key, &copy, contact)?;
                return Err(e);
            }
        };
        let contact = self.contacts.contains(&d.sender.user_id) || d.sender.user_id == self.me.user_id;
        let facts = Facts {
            sender_is_contact: Some(contact),
            first_message_from_sender: Some(!self.senders_seen.contains(&d.sender.user_id)),
        };
        let scanner = Arc::clone(&self.scanner);
        let incoming = self.state.accept_incoming(
            &scanner,
            &self.device_key,
            &copy,
            &franked,
            &attachments,
            &d.sender,
            facts,
            contact,
        )?;
        self.senders_seen.insert(d.sender.user_id.clone());
        Ok(Shown {
            delivery: d.clone(),
            commitment: delivered.commitment,
            message_id: incoming.accepted.context().message_id.clone(),
            message: incoming.message,
            verdict: incoming.verdict,
        })
    }

    /// The franked plaintext (after Olm, with the tagged commitment checked
    /// inside) and the attachment ciphertexts of a copy.
    fn decrypt(
        &mut self,
        directory: &Directory,
        delivered: &Delivered,
    ) -> Result<(Zeroizing<Vec<u8>>, Attachments), DemoError> {
        let d = &delivered.delivery;
        let wire = B64.decode(&delivered.ciphertext).map_err(|_| DemoError::Http("ciphertext is not base64".into()))?;
        let attachments: Vec<Vec<u8>> = delivered
            .attachments
            .iter()
            .map(|a| B64.decode(a).map_err(|_| DemoError::Http("attachment is not base64".into())))
            .collect::<Result<_, _>>()?;
        let franked = self.device.decrypt(directory, &d.sender.to_string(), &wire, &delivered.commitment)?;
        Ok((franked, attachments))
    }

    /// Fetches and opens everything waiting.
    pub async fn receive(&mut self, directory: &Directory) -> Result<Vec<Received>, DemoError> {
        let delivered = self.fetch().await?;
        Ok(delivered
            .into_iter()
            .map(|d| {
                let started = std::time::Instant::now();
                let outcome = self.open(directory, &d);
                Received { delivered: d, outcome, took: started.elapsed() }
            })
            .collect())
    }

    /// Reports the message with commitment `reported` in `conversation`,
    /// with up to `before` and `after` kept messages around it (both
    /// sides): sealed to the moderation server's key and posted with this
    /// device's credential. The server answers every report alike.
    pub async fn report(
        &self,
        conversation: &str,
        reported: &Commitment,
        before: usize,
        after: usize,
        reason: Reason,
        note: &str,
    ) -> Result<ReportReceived, DemoError> {
        let envelope = self.state.reporter.report(
            conversation,
            reported,
            before,
            after,
            reason,
            note,
            true,
            (self.keys.report_key_id, &self.keys.report),
        )?;
        self.relay.post_report(envelope).await
    }
}

fn mac(hex_mac: &str) -> Result<[u8; 32], DemoError> {
    hex::decode(hex_mac)
        .ok()
        .and_then(|m| m.try_into().ok())
        .ok_or(DemoError::Franking(frankly_franking::FrankingError::DeliveryMac))
}

/// Percent-encodes a query value.
fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
