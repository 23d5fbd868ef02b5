//! Messages as the scanner sees them (text and attachments). Their franked
//! body encoding, [`Body`], is part of the franking wire format and lives in
//! `frankly-franking`, where the moderation side reads it too.

pub use frankly_franking::{Body, MAX_BODY_ATTACHMENTS, MAX_MEDIA_TYPE_BYTES, MAX_TEXT_BYTES};

/// Most attachments scanned per message; later ones are reported in
/// [`crate::Verdict::skipped`] (and so visible to the app), not scanned.
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
    /// The media type the app declares (e.g. `image/jpeg`).
    pub media_type: String,
}

impl Attachment {
    /// An attachment of `media_type`.
    pub fn new(bytes: Vec<u8>, media_type: &str) -> Attachment {
        Attachment { bytes, media_type: media_type.to_owned() }
    }

    /// Whether the media type says image (the decoder still checks the bytes).
    pub fn is_image(&self) -> bool {
        self.media_type.to_ascii_lowercase().starts_with("image/")
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
