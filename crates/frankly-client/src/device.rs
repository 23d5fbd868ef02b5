//! The whole device side of franking on a [`DeviceState`], in the one
//! order that keeps every shown message reportable: what an app (or a
//! binding) calls around its E2EE layer.
//!
//! Sending: [`DeviceState::prepare_outgoing`] scans and franks;
//! [`DeviceState::confirm_sent`] checks the platform's answer for this
//! device's own copy (delivery MAC, this device, this conversation) and
//! keeps the user's own side for reports.
//!
//! Receiving: [`DeviceState::accept_incoming`] checks the delivery MAC, then
//! the conversation state and the franking, then scans; a copy refused after
//! its MAC verified keeps its place in the conversation and is kept
//! unopened for reports. [`DeviceState::refuse`] does the same for a copy
//! the E2EE layer itself could not decrypt.

use std::path::Path;

use frankly_bundle::VerifyingKey;
use frankly_franking::{Commitment, DeliveryContext, DeviceKey, Party, PlatformTag, verify_delivery};
use frankly_policy::{Audience, Facts};

use crate::ClientError;
use crate::hooks::{ConversationState, Incoming, Outgoing};
use crate::message::Message;
use crate::scanner::Scanner;
use crate::state::DeviceState;

/// What the platform hands a device with each copy of a message (and with
/// its answer to a send, for the sender's own copy): the commitment it
/// tagged, the delivery context, the tag, and the MAC under this device's
/// key over all three.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// The commitment, as the platform tagged it.
    pub commitment: Commitment,
    /// This copy's delivery context.
    pub delivery: DeliveryContext,
    /// The platform's tag (kept for a report).
    pub tag: PlatformTag,
    /// `HMAC-SHA256` under this device's key ([`frankly_franking::mac_delivery`]).
    pub delivery_mac: [u8; 32],
}

impl Delivered {
    fn verify(&self, key: &DeviceKey) -> Result<(), ClientError> {
        Ok(verify_delivery(key, &self.tag, &self.commitment, &self.delivery, &self.delivery_mac)?)
    }
}

/// A message franked for sending, with what [`DeviceState::confirm_sent`]
/// needs once the platform answers.
#[derive(Debug)]
pub struct PendingSend {
    /// The scan and, unless the policy blocked it, the franked message.
    pub outgoing: Outgoing,
    /// The message as the user wrote it (kept for the user's own side).
    pub message: Message,
}

impl DeviceState {
    /// This device.
    pub fn me(&self) -> &Party {
        self.reporter.me()
    }

    /// The state of `conversation_id`, created on first use.
    pub fn conversation(&mut self, conversation_id: &str) -> &mut ConversationState {
        let me = self.reporter.me().clone();
        self.conversations
            .entry(conversation_id.to_owned())
            .or_insert_with(|| ConversationState::new(conversation_id, &me))
    }

    /// A scanner from the platform's signed bundles, verified as a device
    /// loads them ([`DeviceState::verify_policy`], [`DeviceState::verify_bank`]:
    /// signed by `key`, valid at `now`, none older than the one of the same
    /// name loaded before), for `audience` (`None`: the policy's first),
    /// with the models in `models_dir` and the user's `settings` (the
    /// policy's defaults for the rest). All or nothing: if any bundle,
    /// model or setting is refused, the loaded versions stay as they were.
    /// Persist the state afterwards.
    #[allow(clippy::too_many_arguments)]
    pub fn scanner_from_bundles<'a>(
        &mut self,
        policy: &[u8],
        banks: impl IntoIterator<Item = &'a [u8]>,
        key: &VerifyingKey,
        now: u64,
        audience: Option<Audience>,
        models_dir: Option<&Path>,
        settings: impl IntoIterator<Item = (&'a str, bool)>,
    ) -> Result<Scanner, ClientError> {
        let loaded = self.bundles.clone();
        let built = (|| {
            let policy = self.verify_policy(policy, key, now)?;
            let audience = audience.unwrap_or_else(|| policy.policy().default_audience());
            let mut builder = Scanner::builder(policy, audience);
            for bank in banks {
                builder = builder.bank(self.verify_bank(bank, key, now)?);
            }
            if let Some(dir) = models_dir {
                builder = builder.models_from_dir(dir)?;
            }
            settings.into_iter().fold(builder, |b, (name, on)| b.setting(name, on)).build()
        })();
        if built.is_err() {
            self.bundles = loaded;
        }
        built
    }

    /// Scans `message` and, unless the policy blocks it, franks it as
    /// message `message_id` of `conversation_id`
    /// ([`Scanner::prepare_outgoing`]). Nothing changes in the state until
    /// [`DeviceState::confirm_sent`].
    pub fn prepare_outgoing(
        &mut self,
        scanner: &Scanner,
        conversation_id: &str,
        message_id: &str,
        message: Message,
        facts: Facts,
    ) -> Result<PendingSend, ClientError> {
        let outgoing = scanner.prepare_outgoing(self.conversation(conversation_id), message_id, &message, facts)?;
        Ok(PendingSend { outgoing, message })
    }

    /// Records the platform's answer to a send: `delivered` is this
    /// device's own copy, whose MAC must verify under `key` and which must
    /// carry the franked commitment. The user's own message is then kept
    /// for reports, in the platform's order.
    pub fn confirm_sent(
        &mut self,
        key: &DeviceKey,
        sent: &PendingSend,
        delivered: &Delivered,
    ) -> Result<(), ClientError> {
        let franked = sent
            .outgoing
            .franked
            .as_ref()
            .ok_or_else(|| ClientError::Report("the policy blocked this message: it was not franked".into()))?;
        delivered.verify(key)?;
        if delivered.commitment != franked.franked.commitment {
            return Err(frankly_franking::FrankingError::CommitmentMismatch.into());
        }
        self.conversation(&delivered.delivery.conversation_id).record_sent(franked, &delivered.delivery)?;
        self.reporter.remember_sent(franked, &sent.message, &delivered.delivery, delivered.tag);
        Ok(())
    }

    /// Checks a delivered copy before the app decrypts it: its delivery MAC
    /// under `key`, and that it is for this device and conversation, next
    /// in the platform's order, with a new commitment. Changes nothing; an
    /// app decrypts only a copy that passes, so a replay never reaches its
    /// E2EE sessions.
    pub fn check_delivered(&mut self, key: &DeviceKey, delivered: &Delivered) -> Result<(), ClientError> {
        delivered.verify(key)?;
        Ok(self
            .conversation(&delivered.delivery.conversation_id)
            .check_delivery(&delivered.commitment, &delivered.delivery)?)
    }

    /// Checks and opens a decrypted copy ([`Scanner::accept_incoming`])
    /// after its delivery MAC verified under `key`, and keeps it for
    /// reports. `from_contact`: the sender is a contact. A copy whose MAC
    /// does not verify changes nothing; one refused after that is recorded
    /// as refused (its place taken, kept unopened) and must not be shown.
    #[allow(clippy::too_many_arguments)]
    pub fn accept_incoming(
        &mut self,
        scanner: &Scanner,
        key: &DeviceKey,
        delivered: &Delivered,
        plaintext: &[u8],
        attachment_ciphertexts: &[Vec<u8>],
        authenticated_peer: &Party,
        facts: Facts,
        from_contact: bool,
    ) -> Result<Incoming, ClientError> {
        delivered.verify(key)?;
        let d = &delivered.delivery;
        let accepted = scanner.accept_incoming(
            self.conversation(&d.conversation_id),
            plaintext,
            &delivered.commitment,
            d,
            attachment_ciphertexts,
            authenticated_peer,
            facts,
        );
        match accepted {
            Ok(incoming) => {
                self.reporter.remember_received(&incoming, d, delivered.tag, from_contact);
                Ok(incoming)
            }
            Err(e) => {
                self.record_refused(delivered, from_contact);
                Err(e)
            }
        }
    }

    /// Records a copy the app could not decrypt (its E2EE layer refused
    /// it), after checking its delivery MAC: its place in the conversation
    /// is taken and it is kept unopened for reports.
    pub fn refuse(&mut self, key: &DeviceKey, delivered: &Delivered, from_contact: bool) -> Result<(), ClientError> {
        delivered.verify(key)?;
        self.record_refused(delivered, from_contact);
        Ok(())
    }

    fn record_refused(&mut self, delivered: &Delivered, from_contact: bool) {
        let d = &delivered.delivery;
        self.conversation(&d.conversation_id).record_refused(&delivered.commitment, d);
        self.reporter.remember_refused(&delivered.commitment, d, delivered.tag, from_contact);
    }
}
