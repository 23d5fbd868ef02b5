//! Messages as the scanner sees them (text and attachments). Their franked
//! body encoding, [`Body`], is part of the franking wire format and lives in
//! `frankly-franking`, where the moderation side reads it too.

pub use frankly_franking::{Body, MAX_BODY_ATTACHMENTS, MAX_MEDIA_TYPE_BYTES, MAX_TEXT_BYTES};

/// Most attachments scanned per message; later ones are not scanned, and
/// each is an `unscannable` signal (`too_many_attachments`) that policies
/// act on.
pub const MAX_ATTACHMENTS: usize = 32;

/// A message: its text (may be empty) and attachments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// The text.
    pub text: String,
    /// Attachments, in order; verdicts refer to them by index.
    pub attachments: Vec<Attachment>,
}

/// An attachment: its bytes and media type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// The plaintext bytes.
    pub bytes: Vec<u8>,
    /// The media type the sender's app declares (e.g. `image/jpeg`). The
    /// scanner does not trust it: what it runs is decided by the bytes, and
    /// a declared type that disagrees with them is a signal
    /// (`Signals::type_mismatches`).
    pub media_type: String,
}

impl Attachment {
    /// An attachment of `media_type`.
    pub fn new(bytes: Vec<u8>, media_type: &str) -> Attachment {
        Attachment { bytes, media_type: media_type.to_owned() }
    }
}

impl Message {
    /// A text message.
    pub fn text(text: &str) -> Message {
        Message { text: text.to_owned(), attachments: Vec::new() }
    }

    /// Adds an attachment.
    pub fn with_attachment(mut self, attachment: Attachment) -> Message {
        self.attachments.push(attachment);
        self
    }
}
