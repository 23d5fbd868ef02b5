//! A simulated messenger app on one device: what a real app does around
//! frankly, in order. Sending: scan, frank, encrypt (Olm), hand to the
//! relay. Receiving: check the relay's delivery signature, decrypt, check the
//! commitment, scan, keep the franking material for a possible report.
//! Reporting: seal the chosen message and its context to the moderation
//! server.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use frankly_client::{ConversationChain, Message, Reporter, Scanner, Verdict};
use frankly_franking::{Commitment, DeliveryContext, PlatformTag, VerifyingKey, verify_delivery};
use frankly_policy::Facts;
use frankly_report::{MAX_CONTEXT_MESSAGES, Reason, ServerPublicKey};
use frankly_server::{Accepted, AckRequest, Delivered, PublicKeys, SendRequest, SendResponse};
use http::Method;

use crate::DemoError;
use crate::e2ee::{Device, Directory};
use crate::relay::Relay;

/// The server's public keys as a device is configured with them.
#[derive(Clone, Debug)]
pub struct ServerKeys {
    /// Reports are sealed to this key.
    pub report: ServerPublicKey,
    /// The relay signs delivery contexts with this key.
    pub delivery: VerifyingKey,
}

impl ServerKeys {
    /// Parses the answer of `GET /v1/keys`.
    pub fn parse(keys: &PublicKeys) -> Result<ServerKeys, DemoError> {
        let bad = |what: &str| DemoError::Setup(format!("the server's {what} key is malformed"));
        let report = hex::decode(&keys.report_public_key).map_err(|_| bad("report"))?;
        let delivery: [u8; 32] = hex::decode(&keys.delivery_public_key)
            .ok()
            .and_then(|d| d.try_into().ok())
            .ok_or_else(|| bad("delivery"))?;
        Ok(ServerKeys {
            report: ServerPublicKey::from_bytes(&report).map_err(|_| bad("report"))?,
            delivery: VerifyingKey::from_bytes(&delivery).map_err(|_| bad("delivery"))?,
        })
    }
}

/// What happened to a message the user sent.
#[derive(Debug)]
pub struct Sent {
    /// The message id (in the commitment).
    pub message_id: String,
    /// The local scan of the outgoing message.
    pub verdict: Verdict,
    /// What the relay bound and tagged; `None` if the policy blocked
    /// sending, in which case nothing was franked or sent.
    pub relayed: Option<SendResponse>,
    /// Bytes of the E2EE ciphertext and attachment ciphertexts handed to the relay.
    pub ciphertext_bytes: usize,
}

/// A message the device accepted and shows.
#[derive(Debug)]
pub struct Shown {
    /// The relay's delivery context (authenticated sender, time, ids).
    pub delivery: DeliveryContext,
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

/// A messenger app on one device.
#[derive(Debug)]
pub struct Messenger {
    user_id: String,
    device: Device,
    scanner: Arc<Scanner>,
    keys: ServerKeys,
    relay: Relay,
    chains: HashMap<String, ConversationChain>,
    reporter: Reporter,
    contacts: BTreeSet<String>,
    senders_seen: BTreeSet<String>,
    sent: u64,
    fetched_up_to: i64,
}

impl Messenger {
    /// Sets up `user_id`'s device: registers it with the platform (which
    /// returns the device's bearer token), publishes its Olm keys in
    /// `directory`, and keeps the last `keep` incoming messages per
    /// conversation for reports.
    pub async fn register(
        server: &str,
        platform_token: &str,
        user_id: &str,
        scanner: Arc<Scanner>,
        directory: &mut Directory,
        keep: usize,
    ) -> Result<Messenger, DemoError> {
        let platform = Relay::new(server, Some(platform_token));
        let device: frankly_server::DeviceResponse = platform
            .json(Method::POST, "/v1/devices", Some(&frankly_server::DeviceRequest { user_id: user_id.to_owned() }))
            .await?;
        let relay = Relay::new(server, Some(&device.token));
        let keys: PublicKeys = relay.json::<(), _>(Method::GET, "/v1/keys", None).await?;
        Ok(Messenger {
            user_id: user_id.to_owned(),
            device: Device::new(user_id, directory),
            scanner,
            keys: ServerKeys::parse(&keys)?,
            relay,
            chains: HashMap::new(),
            reporter: Reporter::new(user_id, keep.clamp(1, MAX_CONTEXT_MESSAGES + 1))?,
            contacts: BTreeSet::new(),
            senders_seen: BTreeSet::new(),
            sent: 0,
            fetched_up_to: 0,
        })
    }

    /// The user.
    pub fn user_id(&self) -> &str {
        &self.user_id
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
        &self.reporter
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

    fn chain(&mut self, conversation: &str) -> &mut ConversationChain {
        let user = self.user_id.clone();
        self.chains.entry(conversation.to_owned()).or_insert_with(|| ConversationChain::new(conversation, &user))
    }

    /// Sends `message` to `to` in `conversation`: scans it under the
    /// device's policy and, unless the policy blocks it, franks it,
    /// encrypts it for `to` with Olm and hands it to the relay, which tags
    /// it. A blocked message is neither franked nor sent.
    pub async fn send(
        &mut self,
        directory: &mut Directory,
        conversation: &str,
        to: &str,
        message: &Message,
    ) -> Result<Sent, DemoError> {
        self.sent += 1;
        let message_id = format!("{}-{}", self.user_id, self.sent);
        let facts = Facts { sender_is_contact: Some(self.contacts.contains(to)), first_message_from_sender: None };
        let scanner = Arc::clone(&self.scanner);
        let out = scanner.prepare_outgoing(self.chain(conversation), &message_id, message, facts)?;
        let Some(franked) = out.franked else {
            return Ok(Sent { message_id, verdict: out.verdict, relayed: None, ciphertext_bytes: 0 });
        };
        let (relayed, ciphertext_bytes) = self
            .send_raw(
                directory,
                conversation,
                to,
                &franked.franked.commitment,
                &franked.franked.plaintext,
                &franked.attachment_ciphertexts,
            )
            .await?;
        Ok(Sent { message_id, verdict: out.verdict, relayed: Some(relayed), ciphertext_bytes })
    }

    /// Encrypts a franked plaintext with `commitment` bound inside and
    /// hands it, with the attachment ciphertexts, to the relay. [`send`]
    /// calls this after scanning and franking; tests call it directly to
    /// play a sender whose client misbehaves.
    ///
    /// [`send`]: Messenger::send
    pub async fn send_raw(
        &mut self,
        directory: &mut Directory,
        conversation: &str,
        to: &str,
        commitment: &Commitment,
        franked_plaintext: &[u8],
        attachment_ciphertexts: &[Vec<u8>],
    ) -> Result<(SendResponse, usize), DemoError> {
        let wire = self.device.encrypt(directory, to, commitment, franked_plaintext)?;
        let bytes = wire.len() + attachment_ciphertexts.iter().map(Vec::len).sum::<usize>();
        let request = SendRequest {
            conversation_id: conversation.to_owned(),
            recipients: vec![to.to_owned()],
            ciphertext: B64.encode(&wire),
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

    /// Opens one delivered message: checks the relay's delivery signature,
    /// decrypts it in the Olm session with the sender the relay names,
    /// checks that the commitment inside is the tagged one, then lets
    /// `frankly-client` check the franking (the commitment opens; the
    /// committed sender is the Olm-authenticated peer; the conversation is
    /// the one it was delivered in; the attachments are the committed ones)
    /// and scan it. Accepted messages are kept for reports.
    pub fn open(&mut self, directory: &Directory, delivered: &Delivered) -> Result<Shown, DemoError> {
        let d = &delivered.delivery;
        let signature: [u8; 64] = hex::decode(&delivered.franked.delivery_signature)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or(DemoError::Franking(frankly_franking::FrankingError::DeliverySignature))?;
        verify_delivery(&self.keys.delivery, &delivered.franked.tag, d, &signature)?;
        let wire = B64.decode(&delivered.ciphertext).map_err(|_| DemoError::Http("ciphertext is not base64".into()))?;
        let attachments: Vec<Vec<u8>> = delivered
            .attachments
            .iter()
            .map(|a| B64.decode(a).map_err(|_| DemoError::Http("attachment is not base64".into())))
            .collect::<Result<_, _>>()?;
        let franked = self.device.decrypt(directory, &d.sender_id, &wire, &delivered.commitment)?;
        let facts = Facts {
            sender_is_contact: Some(self.contacts.contains(&d.sender_id)),
            first_message_from_sender: Some(!self.senders_seen.contains(&d.sender_id)),
        };
        let scanner = Arc::clone(&self.scanner);
        let incoming = scanner.accept_incoming(
            self.chain(&d.conversation_id),
            &franked,
            &delivered.commitment,
            &attachments,
            &d.sender_id,
            facts,
        )?;
        self.senders_seen.insert(d.sender_id.clone());
        let tag: PlatformTag = delivered.franked.tag;
        self.reporter.remember(&incoming, d.clone(), tag);
        Ok(Shown {
            delivery: d.clone(),
            message_id: incoming.accepted.context().message_id.clone(),
            message: incoming.message,
            verdict: incoming.verdict,
        })
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

    /// Reports message `message_id` of `conversation` with up to `context`
    /// kept messages before it: sealed to the moderation server's key and
    /// posted. Returns the server's answer (queue, per-message verdicts).
    pub async fn report(
        &self,
        conversation: &str,
        message_id: &str,
        context: usize,
        reason: Reason,
        note: &str,
    ) -> Result<Accepted, DemoError> {
        let envelope =
            self.reporter.report(conversation, message_id, context, reason, note, true, &self.keys.report)?;
        self.relay.post_report(envelope).await
    }
}
