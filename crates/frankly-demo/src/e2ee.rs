//! The E2EE layer: Olm sessions from `vodozemac` (X25519 triple
//! Diffie-Hellman, then the double ratchet with AES-256-CBC and HMAC-SHA256),
//! and how the franking commitment rides inside it.
//!
//! Olm has no associated-data input: `Session::encrypt` takes a plaintext
//! only. So the commitment cannot be authenticated as AD the way
//! `frankly_franking::seal_message` does with an AEAD. Instead it is bound
//! *inside* the encrypted payload:
//!
//! ```text
//! payload = "FOP2" || c (32 bytes) || k_f || lp(message_id) || body
//! ```
//!
//! The sender also hands `c` to the relay in the clear, which tags it. After
//! decryption the recipient compares the `c` inside (authenticated by Olm's
//! MAC, so only the sender could have put it there) with the `c` the relay
//! delivered and tagged, in constant time, and refuses the message if they
//! differ. That gives what AD would: a ciphertext is accepted with exactly
//! one commitment, the one the platform tagged. Then `frankly-client`
//! recomputes `c` from `k_f`, the context and the body, so a sender who
//! commits to one body and encrypts another is refused too.
//!
//! Which device sent a message is what Olm authenticates: a session is
//! between two devices (addressed `user/device`), bound to the peer
//! device's Curve25519 identity key, looked up in the [`Directory`] under
//! the sender the relay names. A relay that names another sender makes
//! decryption fail (there is no session with that user's key that the
//! ciphertext authenticates under). A real messenger gets identity keys from
//! its key server and has users verify them (Matrix: cross-signing, SAS);
//! the demo's directory stands in for that server.

use std::collections::HashMap;

use frankly_franking::Commitment;
use subtle::ConstantTimeEq;
use vodozemac::Curve25519PublicKey;
use vodozemac::olm::{Account, OlmMessage, Session, SessionConfig};
use zeroize::Zeroizing;

/// The payload's first bytes: the layout above, version 2 (franking v2).
pub const PAYLOAD_MAGIC: &[u8; 4] = b"FOP2";
/// One-time keys a device publishes at a time.
pub const ONE_TIME_KEYS: usize = 64;
/// Largest wire message the layer decodes (Olm adds a few dozen bytes and
/// pads to the AES block to what franking puts in).
pub const MAX_WIRE_BYTES: usize = 1 << 20;

/// Why the E2EE layer refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum E2eeError {
    /// No identity key (or no one-time key left) is published for the user.
    #[error("no keys published for {0}: the user has no device, or its one-time keys are used up")]
    NoKeys(String),
    /// An Olm session could not be created.
    #[error("cannot create an Olm session with {peer}: {message}")]
    Session {
        /// The peer.
        peer: String,
        /// Why.
        message: String,
    },
    /// The ciphertext does not decrypt in the session with the named sender.
    #[error(
        "message claimed to be from {sender} does not decrypt in the session with {sender}'s identity key: \
         another sender, an altered ciphertext or a replay"
    )]
    Decrypt {
        /// The sender the relay named.
        sender: String,
    },
    /// Olm refused to encrypt.
    #[error("cannot encrypt: {0}")]
    Encrypt(String),
    /// The wire message or the payload inside is malformed.
    #[error("malformed E2EE message: {0}")]
    Malformed(&'static str),
    /// The commitment inside the encrypted payload is not the one the relay
    /// delivered and tagged.
    #[error("the commitment inside the encrypted message differs from the one the platform tagged")]
    CommitmentMismatch,
}

/// What the key server publishes per device (`user/device`): its
/// Curve25519 identity key and unused one-time keys.
#[derive(Debug, Default)]
pub struct Directory {
    users: HashMap<String, Published>,
}

#[derive(Debug)]
struct Published {
    identity: Curve25519PublicKey,
    one_time_keys: Vec<Curve25519PublicKey>,
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Directory {
        Directory::default()
    }

    /// The identity key published for `user`.
    pub fn identity(&self, user: &str) -> Option<Curve25519PublicKey> {
        self.users.get(user).map(|p| p.identity)
    }

    /// Takes one of `user`'s one-time keys (each is used once).
    fn claim(&mut self, user: &str) -> Result<(Curve25519PublicKey, Curve25519PublicKey), E2eeError> {
        let p = self.users.get_mut(user).ok_or_else(|| E2eeError::NoKeys(user.to_owned()))?;
        let otk = p.one_time_keys.pop().ok_or_else(|| E2eeError::NoKeys(user.to_owned()))?;
        Ok((p.identity, otk))
    }
}

/// One device: an Olm account and a session per peer device.
pub struct Device {
    user_id: String,
    account: Account,
    sessions: HashMap<String, Session>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("user_id", &self.user_id)
            .field("sessions", &self.sessions.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A device's Olm state as vodozemac pickles it (secret keys inside: keep
/// it only encrypted, as [`crate::Messenger::close`] does).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct DevicePickle {
    user_id: String,
    account: vodozemac::olm::AccountPickle,
    sessions: Vec<(String, vodozemac::olm::SessionPickle)>,
}

impl Device {
    /// The account and every session, for persisting.
    pub(crate) fn pickle(&self) -> DevicePickle {
        DevicePickle {
            user_id: self.user_id.clone(),
            account: self.account.pickle(),
            sessions: self.sessions.iter().map(|(peer, s)| (peer.clone(), s.pickle())).collect(),
        }
    }

    /// The device a [`DevicePickle`] holds.
    pub(crate) fn from_pickle(p: DevicePickle) -> Device {
        Device {
            user_id: p.user_id,
            account: Account::from_pickle(p.account),
            sessions: p.sessions.into_iter().map(|(peer, s)| (peer, Session::from_pickle(s))).collect(),
        }
    }

    /// A new device for `user_id` with fresh identity keys, published with
    /// [`ONE_TIME_KEYS`] one-time keys in `directory`.
    pub fn new(user_id: &str, directory: &mut Directory) -> Device {
        let mut account = Account::new();
        account.generate_one_time_keys(ONE_TIME_KEYS);
        let one_time_keys = account.one_time_keys().into_values().collect();
        account.mark_keys_as_published();
        directory.users.insert(user_id.to_owned(), Published { identity: account.curve25519_key(), one_time_keys });
        Device { user_id: user_id.to_owned(), account, sessions: HashMap::new() }
    }

    /// The user this device belongs to.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The device's Curve25519 identity key.
    pub fn identity_key(&self) -> Curve25519PublicKey {
        self.account.curve25519_key()
    }

    /// Encrypts `franked_plaintext` for `peer` with `commitment` bound
    /// inside, creating the Olm session from the directory on first use.
    /// Returns the wire message: one byte of Olm message type, then the Olm
    /// message.
    pub fn encrypt(
        &mut self,
        directory: &mut Directory,
        peer: &str,
        commitment: &Commitment,
        franked_plaintext: &[u8],
    ) -> Result<Vec<u8>, E2eeError> {
        if !self.sessions.contains_key(peer) {
            let (identity, otk) = directory.claim(peer)?;
            let session = self
                .account
                .create_outbound_session(SessionConfig::version_1(), identity, otk)
                .map_err(|e| E2eeError::Session { peer: peer.to_owned(), message: e.to_string() })?;
            self.sessions.insert(peer.to_owned(), session);
        }
        let session = self.sessions.get_mut(peer).ok_or_else(|| E2eeError::NoKeys(peer.to_owned()))?;
        let mut payload = Zeroizing::new(Vec::with_capacity(36 + franked_plaintext.len()));
        payload.extend_from_slice(PAYLOAD_MAGIC);
        payload.extend_from_slice(&commitment.0);
        payload.extend_from_slice(franked_plaintext);
        let message = session.encrypt(payload.as_slice()).map_err(|e| E2eeError::Encrypt(e.to_string()))?;
        let (kind, bytes) = message.to_parts();
        let mut wire = Vec::with_capacity(1 + bytes.len());
        wire.push(u8::try_from(kind).map_err(|_| E2eeError::Malformed("message type"))?);
        wire.extend_from_slice(&bytes);
        Ok(wire)
    }

    /// Decrypts a wire message that the relay says `sender` sent with
    /// `commitment`, in the Olm session with `sender`'s identity key (made
    /// from a pre-key message on first contact), and returns the franked
    /// plaintext once the commitment inside matches. A message that does not
    /// decrypt leaves the sessions as they were.
    pub fn decrypt(
        &mut self,
        directory: &Directory,
        sender: &str,
        wire: &[u8],
        commitment: &Commitment,
    ) -> Result<Zeroizing<Vec<u8>>, E2eeError> {
        if wire.len() > MAX_WIRE_BYTES {
            return Err(E2eeError::Malformed("longer than MAX_WIRE_BYTES"));
        }
        let (kind, bytes) = wire.split_first().ok_or(E2eeError::Malformed("empty"))?;
        let message = OlmMessage::from_parts(usize::from(*kind), bytes)
            .map_err(|_| E2eeError::Malformed("not an Olm message"))?;
        let refused = || E2eeError::Decrypt { sender: sender.to_owned() };
        let payload = match (self.sessions.get_mut(sender), &message) {
            (Some(session), _) => match session.decrypt(&message) {
                Ok(p) => Zeroizing::new(p),
                // The peer may have started a new session (pre-key message).
                Err(_) if matches!(message, OlmMessage::PreKey(_)) => self.inbound(directory, sender, &message)?,
                Err(_) => return Err(refused()),
            },
            (None, OlmMessage::PreKey(_)) => self.inbound(directory, sender, &message)?,
            (None, OlmMessage::Normal(_)) => return Err(refused()),
        };
        let rest = payload.strip_prefix(PAYLOAD_MAGIC.as_slice()).ok_or(E2eeError::Malformed("no FOP2 header"))?;
        let (inner, franked) = rest.split_first_chunk::<32>().ok_or(E2eeError::Malformed("no commitment"))?;
        if !bool::from(inner.ct_eq(&commitment.0)) {
            return Err(E2eeError::CommitmentMismatch);
        }
        Ok(Zeroizing::new(franked.to_vec()))
    }

    fn inbound(
        &mut self,
        directory: &Directory,
        sender: &str,
        message: &OlmMessage,
    ) -> Result<Zeroizing<Vec<u8>>, E2eeError> {
        let OlmMessage::PreKey(pre_key) = message else { return Err(E2eeError::Malformed("not a pre-key message")) };
        let identity = directory.identity(sender).ok_or_else(|| E2eeError::NoKeys(sender.to_owned()))?;
        let created = self
            .account
            .create_inbound_session(SessionConfig::version_1(), identity, pre_key)
            .map_err(|_| E2eeError::Decrypt { sender: sender.to_owned() })?;
        self.sessions.insert(sender.to_owned(), created.session);
        Ok(Zeroizing::new(created.plaintext))
    }
}
