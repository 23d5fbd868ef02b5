//! The device side of franking over C: the persisted device state, the
//! send and receive hooks, refusals and reports, thin over
//! `frankly_client::DeviceState` (which holds the rules and their order).

use std::ffi::c_char;
use std::sync::Mutex;

use frankly_bundle::VerifyingKey;
use frankly_client::{Attachment, Delivered, DeviceState, Incoming, Message, PendingSend, Reporter, Scanner};
use frankly_franking::{Commitment, DeliveryContext, DeviceKey, Party, PlatformTag};
use frankly_policy::{Audience, Facts};
use frankly_report::{Reason, ServerPublicKey};
use zeroize::Zeroizing;

use crate::{
    Failure, FranklyAttachment, FranklyBuffer, FranklyScanner, FranklySetting, FranklyStatus, MAX_BANK_BUNDLES, buffer,
    bytes, guard, invalid, refused, required_text, settings_of, text, write_out,
};

/// A device's franking state (opaque): its conversations, the messages
/// kept for reports, the signed bundles it loaded, and its delivery-MAC
/// key. Calls on one device from several threads are serialised.
pub struct FranklyDevice {
    state: Mutex<DeviceState>,
    key: DeviceKey,
}

impl std::fmt::Debug for FranklyDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FranklyDevice").finish_non_exhaustive()
    }
}

/// A message scanned and, unless the policy blocked it, franked for sending
/// (opaque). Borrowed views into it stay valid until it is released.
#[derive(Debug)]
pub struct FranklyOutgoing {
    pending: PendingSend,
    verdict: Vec<u8>,
}

/// A received message that passed the franking check, with its scan
/// (opaque). Borrowed views into it stay valid until it is released.
#[derive(Debug)]
pub struct FranklyIncoming {
    incoming: Incoming,
    verdict: Vec<u8>,
    media_types: Vec<std::ffi::CString>,
}

/// A user's device: NUL-terminated user and device ids.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FranklyParty {
    /// The user (account).
    pub user_id: *const c_char,
    /// The device of that user.
    pub device_id: *const c_char,
}

/// A yes/no fact the app may not know.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FranklyFact {
    /// Not known: rules that read it do not fire.
    FranklyUnknown = 0,
    /// No.
    FranklyNo = 1,
    /// Yes.
    FranklyYes = 2,
}

/// What the app knows about the conversation, for the policy.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FranklyFacts {
    /// The other side is in the user's contacts (for an incoming message,
    /// also what the reporter uses to keep this conversation longest).
    pub sender_is_contact: FranklyFact,
    /// This is the first message from this sender.
    pub first_message_from_sender: FranklyFact,
}

/// Bytes borrowed from the caller: a pointer and a length.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FranklyBytes {
    /// The bytes (NULL only when `len` is 0).
    pub data: *const u8,
    /// Their length.
    pub len: usize,
}

/// What the platform hands the device with each copy of a message (and
/// with its answer to a send, for the sender's own copy).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FranklyDelivered {
    /// The commitment the platform tagged.
    pub commitment: [u8; 32],
    /// The conversation.
    pub conversation_id: *const c_char,
    /// The platform's number for the message in the conversation.
    pub sequence: u64,
    /// The sending device, as the platform authenticated it.
    pub sender: FranklyParty,
    /// The device this copy is for.
    pub recipient: FranklyParty,
    /// When the platform accepted the message, Unix milliseconds.
    pub timestamp_ms: u64,
    /// The platform's id for the message.
    pub server_message_id: *const c_char,
    /// The id of the platform key that made the tag.
    pub tag_key_id: u32,
    /// The platform's tag.
    pub tag: [u8; 32],
    /// The MAC under this device's key over the tag, commitment and delivery.
    pub delivery_mac: [u8; 32],
}

/// # Safety
/// Both strings of `p` are NUL-terminated.
unsafe fn party(p: &FranklyParty, what: &str) -> Result<Party, Failure> {
    // SAFETY: forwarded from the caller.
    let (user, device) = unsafe {
        (
            required_text(p.user_id, &format!("{what}.user_id"))?,
            required_text(p.device_id, &format!("{what}.device_id"))?,
        )
    };
    Ok(Party::new(user, device))
}

/// # Safety
/// `d` is NULL or a valid `FranklyDelivered` whose strings are NUL-terminated.
unsafe fn delivered(d: *const FranklyDelivered) -> Result<Delivered, Failure> {
    if d.is_null() {
        return Err(invalid("delivered is NULL"));
    }
    // SAFETY: non-null and valid, as the caller guarantees.
    let d = unsafe { &*d };
    // SAFETY: its strings are NUL-terminated, as the caller guarantees.
    let (conversation_id, server_message_id, sender, recipient) = unsafe {
        (
            required_text(d.conversation_id, "delivered.conversation_id")?,
            required_text(d.server_message_id, "delivered.server_message_id")?,
            party(&d.sender, "delivered.sender")?,
            party(&d.recipient, "delivered.recipient")?,
        )
    };
    Ok(Delivered {
        commitment: Commitment(d.commitment),
        delivery: DeliveryContext {
            conversation_id: conversation_id.to_owned(),
            sequence: d.sequence,
            sender,
            recipient,
            timestamp_ms: d.timestamp_ms,
            server_message_id: server_message_id.to_owned(),
        },
        tag: PlatformTag { key_id: d.tag_key_id, mac: d.tag },
        delivery_mac: d.delivery_mac,
    })
}

/// # Safety
/// `key` is NULL or points to 32 readable bytes.
unsafe fn key32(key: *const u8, what: &str) -> Result<Zeroizing<[u8; 32]>, Failure> {
    if key.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    let mut out = Zeroizing::new([0u8; 32]);
    // SAFETY: 32 readable bytes, as the caller guarantees; `out` is ours.
    unsafe { std::ptr::copy_nonoverlapping(key, out.as_mut_ptr(), 32) };
    Ok(out)
}

/// The facts, and whether the sender is a contact (NULL: nothing known).
///
/// # Safety
/// `f` is NULL or points to a valid `FranklyFacts`.
unsafe fn facts(f: *const FranklyFacts) -> (Facts, bool) {
    let fact = |f: FranklyFact| match f {
        FranklyFact::FranklyUnknown => None,
        FranklyFact::FranklyNo => Some(false),
        FranklyFact::FranklyYes => Some(true),
    };
    if f.is_null() {
        return (Facts::default(), false);
    }
    // SAFETY: non-null and valid, as the caller guarantees.
    let f = unsafe { *f };
    let facts = Facts {
        sender_is_contact: fact(f.sender_is_contact),
        first_message_from_sender: fact(f.first_message_from_sender),
    };
    (facts, facts.sender_is_contact == Some(true))
}

/// # Safety
/// `device` is NULL or a valid device handle.
unsafe fn device_ref<'a>(device: *const FranklyDevice) -> Result<&'a FranklyDevice, Failure> {
    if device.is_null() {
        return Err(invalid("device is NULL"));
    }
    // SAFETY: non-null and a live handle, as the caller guarantees.
    Ok(unsafe { &*device })
}

/// # Safety
/// `scanner` is NULL or a valid scanner handle.
unsafe fn scanner_ref<'a>(scanner: *const FranklyScanner) -> Result<&'a Scanner, Failure> {
    if scanner.is_null() {
        return Err(invalid("scanner is NULL"));
    }
    // SAFETY: non-null and a live handle, as the caller guarantees.
    Ok(unsafe { &(*scanner).0 })
}

impl FranklyDevice {
    fn lock(&self) -> std::sync::MutexGuard<'_, DeviceState> {
        // A panic while the state was locked was caught at the boundary;
        // the state itself is only changed by whole operations.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn new_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// A fresh device `user_id`/`device_id` that keeps the last `keep`
/// messages of each conversation for reports (1 to 51), with
/// `device_key`, the 32-byte delivery-MAC key the platform gave this
/// device, into `*out`.
///
/// # Safety
/// `user_id` and `device_id` are NUL-terminated; `device_key` points to 32
/// readable bytes; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn frankly_device_new(
    user_id: *const c_char,
    device_id: *const c_char,
    keep: usize,
    device_key: *const u8,
    out: *mut *mut FranklyDevice,
) -> FranklyStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let (me, key) =
            unsafe { (party(&FranklyParty { user_id, device_id }, "device")?, key32(device_key, "device_key")?) };
        me.check().map_err(refused)?;
        let reporter = Reporter::new(&me, keep).map_err(refused)?;
        let device = FranklyDevice { state: Mutex::new(DeviceState::new(reporter)), key: DeviceKey::from_bytes(*key) };
        // SAFETY: `out` is writable, as the caller guarantees.
        unsafe { write_out(out, new_handle(device), "out") }
    })
}

/// Reopens a device from what [`frankly_device_save`] wrote under the
/// 32-byte `pickle_key`, with its `device_key`, into `*out`. A wrong key or
/// an altered file is refused; nothing is reset.
///
/// # Safety
/// `pickle` points to `len` readable bytes; `pickle_key` and `device_key`
/// to 32 each; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn frankly_device_load(
    pickle: *const u8,
    len: usize,
    pickle_key: *const u8,
    device_key: *const u8,
    out: *mut *mut FranklyDevice,
) -> FranklyStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let (data, pickle_key, key) = unsafe {
            (bytes(pickle, len, "pickle")?, key32(pickle_key, "pickle_key")?, key32(device_key, "device_key")?)
        };
        let state = DeviceState::unpickle(data, &pickle_key).map_err(refused)?;
        let device = FranklyDevice { state: Mutex::new(state), key: DeviceKey::from_bytes(*key) };
        // SAFETY: `out` is writable, as the caller guarantees.
        unsafe { write_out(out, new_handle(device), "out") }
    })
}

/// The device's state encrypted under the 32-byte `pickle_key` (keep the
/// key in the platform's key store), into `*pickle_out`. Save after every
/// call that changed it, before showing what it returned.
///
/// # Safety
/// `device` is valid; `pickle_key` points to 32 readable bytes;
/// `pickle_out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn frankly_device_save(
    device: *const FranklyDevice,
    pickle_key: *const u8,
    pickle_out: *mut FranklyBuffer,
) -> FranklyStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let (device, key) = unsafe { (device_ref(device)?, key32(pickle_key, "pickle_key")?) };
        let pickle = device.lock().pickle(&key).map_err(refused)?;
        // SAFETY: `pickle_out` is writable, as the caller guarantees.
        unsafe { write_out(pickle_out, buffer(pickle), "pickle_out") }
    })
}

/// Releases a device (NULL is ignored). Its keys are zeroized.
///
/// # Safety
/// `device` came from `frankly_device_new` or `frankly_device_load`, was
/// not released before, and no other thread is using it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn frankly_device_free(device: *mut FranklyDevice) {
    if !device.is_null() {
        // SAFETY: created by Box::into_raw in new_handle, released once.
        drop(unsafe { Box::from_raw(device) });
    }
}

/// A scanner from the platform's signed bundles, verified as a device loads
/// them: the policy bundle and each bank bundle signed by the 32-byte
/// Ed25519 `platform_key`, valid at `now` (Unix seconds), and none older
/// than the one of the same name this device loaded before (remembered in
/// the device's state: save it afterwards). `audience` is "child", "teen"
/// or "adult" (NULL: the policy's first); `models_dir` is NULL when the
/// policy reads no classifier; `settings` are the user's (the policy's
/// defaults for the rest). Into `*out`.
///
/// # Safety
/// `device` is valid; `policy_bundle` points to `policy_len` readable
/// bytes; `bank_bundles` to `bank_count` valid byte ranges (or `bank_count`
/// is 0); `platform_key` to 32 readable bytes; `audience` and `models_dir`
/// are NULL or NUL-terminated; `settings` points to `setting_count`
/// settings with NUL-terminated names (or the count is 0); `out` is
/// writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn frankly_scanner_new_signed(
    device: *const FranklyDevice,
    policy_bundle: *const u8,
    policy_len: usize,
    bank_bundles: *const FranklyBytes,
    bank_count: usize,
    platform_key: *const u8,
    now: u64,
    audience: *const c_char,
    models_dir: *const c_char,
    settings: *const FranklySetting,
    setting_count: usize,
    out: *mut *mut FranklyScanner,
) -> FranklyStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let (device, policy, key, audience, models_dir) = unsafe {
            (
                device_ref(device)?,
                bytes(policy_bundle, policy_len, "policy_bundle")?,
                key32(platform_key, "platform_key")?,
                text(audience, "audience")?,
                text(models_dir, "models_dir")?,
            )
        };
        let key = VerifyingKey::from_bytes(&key).map_err(|e| invalid(format!("platform_key: {e}")))?;
        let audience = audience.map(str::parse::<Audience>).transpose().map_err(invalid)?;
        if bank_count > 0 && bank_bundles.is_null() {
            return Err(invalid("bank_bundles is NULL with bank_count > 0"));
        }
        let mut banks = Vec::with_capacity(bank_count.min(MAX_BANK_BUNDLES));
        for i in 0..bank_count {
            // SAFETY: `bank_bundles` has `bank_count` elements; `i < bank_count`.
            let b = unsafe { *bank_bundles.add(i) };
            // SAFETY: each element is a valid byte range, as the caller guarantees.
            banks.push(unsafe { bytes(b.data, b.len, &format!("bank_bundles[{i}]")) }?);
        }
        // SAFETY: the caller's contract above.
        let settings = unsafe { settings_of(settings, setting_count) }?;
        let scanner = device
            .lock()
            .scanner_from_bundles(policy, banks, &key, now, audience, models_dir.map(std::path::Path::new), settings)
            .map_err(refused)?;
        // SAFETY: `out` is writable, as the caller guarantees.
        unsafe { write_out(out, new_handle(FranklyScanner(scanner)), "out") }
    })
}

/// # Safety
/// `attachments` points to `count` attachments whose pointers are valid (or `count` is 0).
unsafe fn message(
    text_ptr: *const c_char,
    attachments: *const FranklyAttachment,
    count: usize,
) -> Result<Message, Failure> {
    // SAFETY: forwarded from the caller.
    let body = unsafe { text(text_ptr, "text") }?.unwrap_or("");
    if count > 0 && attachments.is_null() {
        return Err(invalid("attachments is NULL with attachment_count > 0"));
    }
    let mut message = Message::text(body);
    for i in 0..count {
        // SAFETY: `attachments` has `count` elements; `i < count`.
        let a = unsafe { &*attachments.add(i) };
        // SAFETY: the attachment's pointers are valid, as the caller guarantees.
        let (data, media_type) = unsafe {
            (
                bytes(a.bytes, a.len, &format!("attachments[{i}].bytes"))?,
                text(a.media_type, &format!("attachments[{i}].media_type"))?,
            )
        };
        message =
            message.with_attachment(Attachment::new(data.to_vec(), media_type.unwrap_or("application/octet-stream")));
    }
    Ok(message)
}

/// Scans an outgoing message (its text and attachments) and, unless the
/// policy blocks it, franks it as message `message_id` (unique among this
/// device's messages in the conversation) of `conversation_id`, into
/// `*out`. `facts` may be NULL (nothing known). Read the verdict and, when
/// not blocked, the plaintext, commitment and attachment ciphertexts to
/// encrypt and send; then [`frankly_device_confirm_sent`] with the
/// platform's answer.
///
/// # Safety
/// `device` and `scanner` are valid; `conversation_id` and `message_id` are
/// NUL-terminated; `text` is NULL or NUL-terminated; `attachments` points to
/// `attachment_count` valid attachments (or the count is 0); `facts` is NULL
/// or valid; `out` is writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn frankly_device_prepare_outgoing(
    device: *const FranklyDevice,
    scanner: *const FranklyScanner,
    conversation_id: *const c_char,
    message_id: *const c_char,
    text: *const c_char,
    attachments: *const FranklyAttachment,
    attachment_count: usize,
    facts: *const FranklyFacts,
    out: *mut *mut FranklyOutgoing,
) -> FranklyStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let (device, scanner, conversation_id, message_id, message) = unsafe {
            (
                device_ref(device)?,
                scanner_ref(scanner)?,
                required_text(conversation_id, "conversation_id")?,
                required_text(message_id, "message_id")?,
                message(text, attachments, attachment_count)?,
            )
        };
        // SAFETY: the caller's contract above.
        let (facts, _) = unsafe { self::facts(facts) };
        let pending =
            device.lock().prepare_outgoing(scanner, conversation_id, message_id, message, facts).map_err(refused)?;
        let verdict = serde_json::to_vec(&pending.outgoing.verdict).map_err(refused)?;
        // SAFETY: `out` is writable, as the caller guarantees.
        unsafe { write_out(out, new_handle(FranklyOutgoing { pending, verdict }), "out") }
    })
}

/// # Safety
/// `data` and `len` are writable.
unsafe fn view(bytes: &[u8], data: *mut *const u8, len: *mut usize) -> Result<(), Failure> {
    if data.is_null() || len.is_null() {
        return Err(invalid("data and len must not be NULL"));
    }
    // SAFETY: both are writable, as the caller guarantees.
    unsafe {
        data.write(bytes.as_ptr());
        len.write(bytes.len());
    }
    Ok(())
}

/// # Safety
/// `outgoing` is NULL or a valid handle.
unsafe fn outgoing_ref<'a>(outgoing: *const FranklyOutgoing) -> Result<&'a FranklyOutgoing, Failure> {
    if outgoing.is_null() {
        return Err(invalid("outgoing is NULL"));
    }
    // SAFETY: non-null and a live handle, as the caller guarantees.
    Ok(unsafe { &*outgoing })
}

/// Whether the policy blocked sending (then nothing was franked: do not send).
///
/// # Safety
/// `outgoing` is a valid handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn frankly_outgoing_blocked(outgoing: *const FranklyOutgoing) -> bool {
    // SAFETY: forwarded from the caller; a NULL handle counts as blocked.
    unsafe { outgoing_ref(outgoing) }.map_or(true, |o| o.pending.outgoing.franked.is_none())
}

/// A view of the scan's verdict as UTF-8 JSON (as `frankly scan --json`
/// prints it), valid until `outgoing` is released.
///
/// # Safety
/// `outgoing` is valid; `data` and `len` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn frankly_outgoing_verdict(
    outgoing: *const FranklyOutgoing,
    data: *mut *const u8,
    len: *mut usize,
) -> FranklyStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        unsafe { view(&outgoing_ref(outgoing)?.verdict, data, len) }
    })
}

/// The franked message, or why there is none.
fn franked(o: &FranklyOutgoing) -> Result<&frankly_client::FrankedMessage, Failure> {
    o.pending.outgoing.franked.as_ref().ok_or_else(|| refused("the policy blocked this message: nothing was franked"))
}

/// A view of the plaintext to encrypt (the franking key and the committed
/// body), valid until `outgoing` is released; and the 32-byte commitment to
/// bind to the ciphertext (associated data) and hand to the platform.
/// Refused when the policy blocked the message.
///
/// # Safety
/// `outgoing` is valid; `data`, `len` are writable; `commitment_out` points
/// to 32 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn frankly_outgoing_franked(
    outgoing: *const FranklyOutgoing,
    data: *mut *const u8,
    len: *mut usize,
    commitment_out: *mut u8,
) -> FranklyStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let f = franked(unsafe { outgoing_ref(outgoing) }?)?;
        if commitment_out.is_null() {
            return Err(invalid("commitment_out is NULL"));
        }
        // SAFETY: 32 writable bytes, as the caller guarantees.
        unsafe { std::ptr::copy_nonoverlapping(f.franked.commitment.0.as_ptr(), commitment_out, 32) };
        // SAFETY: the caller's contract above.
        unsafe { view(&f.franked.plaintext, data, len) }
    })
}

/// How many attachment ciphertexts the franked message has (0 when blocked).
///
/// # Safety
/// `outgoing` is a valid handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn frankly_outgoing_attachment_count(outgoing: *const FranklyOutgoing) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { outgoing_ref(outgoing) }
        .ok()
        .and_then(|o| o.pending.outgoing.franked.as_ref())
        .map_or(0, |f| f.attachment_ciphertexts.len())
}

/// A view of attachment `index`'s ciphertext (each under its own key,
/// committed in the body) for the app to upload, valid until `outgoing`
/// is released.
///
/// # Safety
/// `outgoing` is valid; `data` and `len` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn frankly_outgoing_attachment(
    outgoing: *const FranklyOutgoing,
    index: usize,
    data: *mut *const u8,
    len: *mut usize,
) -> FranklyStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let f = franked(unsafe { outgoing_ref(outgoing) }?)?;
        let c = f.attachment_ciphertexts.get(index).ok_or_else(|| {
            invalid(format!("attachment {index} out of range ({} attachments)", f.attachment_ciphertexts.len()))
        })?;
        // SAFETY: the caller's contract above.
        unsafe { view(c, data, len) }
    })
}

/// Releases an outgoing message (NULL is ignored); its franking key is zeroized.
///
/// # Safety
/// `outgoing` came from [`frankly_device_prepare_outgoing`] and was not released before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn frankly_outgoing_free(outgoing: *mut FranklyOutgoing) {
    if !outgoing.is_null() {
        // SAFETY: created by Box::into_raw in new_handle, released once.
        drop(unsafe { Box::from_raw(outgoing) });
    }
}

/// Records the platform's answer to a send: `own_copy` is this device's
/// copy of the message (its MAC must verify under this device's key and
/// carry the franked commitment). The user's own message is then kept for
/// reports.
///
/// # Safety
/// `device` and `outgoing` are valid; `own_copy` is valid with
/// NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn frankly_device_confirm_sent(
    device: *const FranklyDevice,
    outgoing: *const FranklyOutgoing,
    own_copy: *const FranklyDelivered,
) -> FranklyStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let (device, outgoing, copy) = unsafe { (device_ref(device)?, outgoing_ref(outgoing)?, delivered(own_copy)?) };
        device.lock().confirm_sent(&device.key, &outgoing.pending, &copy).map_err(refused)
    })
}

/// Checks a delivered copy before the app decrypts it: its delivery MAC,
/// and that it is for this device and conversation, next in the platform's
/// order, with a new commitment. Changes nothing. Decrypt only a copy that
/// passes.
///
/// # Safety
/// `device` is valid; `copy` is valid with NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn frankly_device_check_delivered(
    device: *const FranklyDevice,
    copy: *const FranklyDelivered,
) -> FranklyStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let (device, copy) = unsafe { (device_ref(device)?, delivered(copy)?) };
        device.lock().check_delivered(&device.key, &copy).map_err(refused)
    })
}

/// Checks and opens a decrypted copy (`plaintext`, with the downloaded
/// attachment ciphertexts in the body's order) that the E2EE layer
/// authenticated as coming from `authenticated_peer`, then scans it, into
/// `*out`. `FRANKLY_REFUSED` means the app must not show it (its place in
/// the conversation is recorded and it is kept unopened for reports);
/// `facts` may be NULL.
///
/// # Safety
/// `device` and `scanner` are valid; `copy` and `authenticated_peer` are
/// valid with NUL-terminated strings; `plaintext` points to `len` readable
/// bytes; `attachments` to `attachment_count` valid byte ranges (or the
/// count is 0); `facts` is NULL or valid; `out` is writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn frankly_device_accept_incoming(
    device: *const FranklyDevice,
    scanner: *const FranklyScanner,
    copy: *const FranklyDelivered,
    plaintext: *const u8,
    len: usize,
    attachments: *const FranklyBytes,
    attachment_count: usize,
    authenticated_peer: *const FranklyParty,
    facts: *const FranklyFacts,
    out: *mut *mut FranklyIncoming,
) -> FranklyStatus {
    guard(|| {
        if authenticated_peer.is_null() {
            return Err(invalid("authenticated_peer is NULL"));
        }
        // SAFETY: the caller's contract above.
        let (device, scanner, copy, plaintext, peer) = unsafe {
            (
                device_ref(device)?,
                scanner_ref(scanner)?,
                delivered(copy)?,
                bytes(plaintext, len, "plaintext")?,
                party(&*authenticated_peer, "authenticated_peer")?,
            )
        };
        if attachment_count > 0 && attachments.is_null() {
            return Err(invalid("attachments is NULL with attachment_count > 0"));
        }
        let mut ciphertexts = Vec::with_capacity(attachment_count.min(frankly_client::MAX_ATTACHMENTS + 1));
        for i in 0..attachment_count {
            // SAFETY: `attachments` has `attachment_count` elements; `i < attachment_count`.
            let a = unsafe { *attachments.add(i) };
            // SAFETY: each is a valid byte range, as the caller guarantees.
            ciphertexts.push(unsafe { bytes(a.data, a.len, &format!("attachments[{i}]")) }?.to_vec());
        }
        // SAFETY: the caller's contract above.
        let (facts, from_contact) = unsafe { self::facts(facts) };
        let incoming = device
            .lock()
            .accept_incoming(scanner, &device.key, &copy, plaintext, &ciphertexts, &peer, facts, from_contact)
            .map_err(refused)?;
        let verdict = serde_json::to_vec(&incoming.verdict).map_err(refused)?;
        let media_types = incoming
            .message
            .attachments
            .iter()
            .map(|a| std::ffi::CString::new(a.media_type.replace('\0', "")).unwrap_or_default())
            .collect();
        // SAFETY: `out` is writable, as the caller guarantees.
        unsafe { write_out(out, new_handle(FranklyIncoming { incoming, verdict, media_types }), "out") }
    })
}

/// # Safety
/// `incoming` is NULL or a valid handle.
unsafe fn incoming_ref<'a>(incoming: *const FranklyIncoming) -> Result<&'a FranklyIncoming, Failure> {
    if incoming.is_null() {
        return Err(invalid("incoming is NULL"));
    }
    // SAFETY: non-null and a live handle, as the caller guarantees.
    Ok(unsafe { &*incoming })
}

/// Views of the accepted message's text (UTF-8, not NUL-terminated) and
/// of the scan's verdict (JSON), valid until `incoming` is released.
///
/// # Safety
/// `incoming` is valid; the four out pointers are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn frankly_incoming_message(
    incoming: *const FranklyIncoming,
    text: *mut *const u8,
    text_len: *mut usize,
    verdict: *mut *const u8,
    verdict_len: *mut usize,
) -> FranklyStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let i = unsafe { incoming_ref(incoming) }?;
        // SAFETY: the caller's contract above.
        unsafe {
            view(i.incoming.message.text.as_bytes(), text, text_len)?;
            view(&i.verdict, verdict, verdict_len)
        }
    })
}

/// How many attachments the accepted message has.
///
/// # Safety
/// `incoming` is a valid handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn frankly_incoming_attachment_count(incoming: *const FranklyIncoming) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { incoming_ref(incoming) }.map_or(0, |i| i.incoming.message.attachments.len())
}

/// A view of attachment `index`'s plaintext and its declared media type
/// (NUL-terminated), valid until `incoming` is released.
///
/// # Safety
/// `incoming` is valid; the three out pointers are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn frankly_incoming_attachment(
    incoming: *const FranklyIncoming,
    index: usize,
    data: *mut *const u8,
    len: *mut usize,
    media_type: *mut *const c_char,
) -> FranklyStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let i = unsafe { incoming_ref(incoming) }?;
        let attachments = &i.incoming.message.attachments;
        let a = attachments
            .get(index)
            .ok_or_else(|| invalid(format!("attachment {index} out of range ({} attachments)", attachments.len())))?;
        // SAFETY: the caller's contract above.
        unsafe {
            view(&a.bytes, data, len)?;
            write_out(media_type, i.media_types[index].as_ptr(), "media_type")
        }
    })
}

/// Releases an incoming message (NULL is ignored); its franking key is zeroized.
///
/// # Safety
/// `incoming` came from [`frankly_device_accept_incoming`] and was not released before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn frankly_incoming_free(incoming: *mut FranklyIncoming) {
    if !incoming.is_null() {
        // SAFETY: created by Box::into_raw in new_handle, released once.
        drop(unsafe { Box::from_raw(incoming) });
    }
}

/// Records a copy the E2EE layer could not decrypt, after checking its
/// delivery MAC: its place in the conversation is taken and it is kept
/// unopened for reports. `from_contact`: the sender is a contact.
///
/// # Safety
/// `device` is valid; `copy` is valid with NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn frankly_device_refuse(
    device: *const FranklyDevice,
    copy: *const FranklyDelivered,
    from_contact: bool,
) -> FranklyStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let (device, copy) = unsafe { (device_ref(device)?, delivered(copy)?) };
        device.lock().refuse(&device.key, &copy, from_contact).map_err(refused)
    })
}

/// Seals a report of the kept message with commitment `reported` in
/// `conversation_id`, with up to `before` and `after` kept messages around
/// it (both sides, in the platform's order), the reason ("child-safety",
/// "non-consensual-imagery", "harassment", "violence", "self-harm", "spam",
/// "other"), a note (NULL: none) and, if `with_evidence`, the local
/// scanning evidence, to report key `server_key_id` (the server's 32-byte
/// X25519 public key), into `*envelope_out`: post it to the moderation
/// server. Only this leaves the device.
///
/// # Safety
/// `device` is valid; `conversation_id` and `reason` are NUL-terminated;
/// `note` is NULL or NUL-terminated; `reported` and `server_public_key`
/// point to 32 readable bytes; `envelope_out` is writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn frankly_device_report(
    device: *const FranklyDevice,
    conversation_id: *const c_char,
    reported: *const u8,
    before: usize,
    after: usize,
    reason: *const c_char,
    note: *const c_char,
    with_evidence: bool,
    server_key_id: u32,
    server_public_key: *const u8,
    envelope_out: *mut FranklyBuffer,
) -> FranklyStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let (device, conversation_id, reported, reason, note, server) = unsafe {
            (
                device_ref(device)?,
                required_text(conversation_id, "conversation_id")?,
                key32(reported, "reported")?,
                required_text(reason, "reason")?,
                text(note, "note")?.unwrap_or(""),
                key32(server_public_key, "server_public_key")?,
            )
        };
        let reason: Reason = reason.parse().map_err(invalid)?;
        let server =
            ServerPublicKey::from_bytes(&server[..]).map_err(|e| invalid(format!("server_public_key: {e}")))?;
        let envelope = device
            .lock()
            .reporter
            .report(
                conversation_id,
                &Commitment(*reported),
                before,
                after,
                reason,
                note,
                with_evidence,
                (server_key_id, &server),
            )
            .map_err(refused)?;
        // SAFETY: `envelope_out` is writable, as the caller guarantees.
        unsafe { write_out(envelope_out, buffer(envelope), "envelope_out") }
    })
}
