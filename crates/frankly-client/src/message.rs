//! Messages as the scanner sees them: text and attachments.

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

/// Longest message text in a body, in bytes.
pub const MAX_TEXT_BYTES: usize = 1 << 20;
/// Longest media type, in bytes.
pub const MAX_MEDIA_TYPE_BYTES: usize = 127;
const BODY_MAGIC: &[u8; 4] = b"FMB1";

impl Message {
    /// The franked body of the message (`docs/franking.md`, "Message body"):
    /// `"FMB1" | u32 text length | text | u16 count | (u8 media type length |
    /// media type | u32 length | bytes) per attachment`, big-endian lengths.
    pub fn to_body(&self) -> Result<Vec<u8>, crate::ClientError> {
        let bad = |m: String| crate::ClientError::Body(m);
        if self.text.len() > MAX_TEXT_BYTES {
            return Err(bad(format!("text of {} bytes, over {MAX_TEXT_BYTES}", self.text.len())));
        }
        if self.attachments.len() > MAX_ATTACHMENTS {
            return Err(bad(format!("{} attachments, over {MAX_ATTACHMENTS}", self.attachments.len())));
        }
        let total: usize = self.attachments.iter().map(|a| a.bytes.len() + a.media_type.len() + 5).sum();
        let mut out = Vec::with_capacity(10 + self.text.len() + total);
        out.extend_from_slice(BODY_MAGIC);
        out.extend_from_slice(&(self.text.len() as u32).to_be_bytes());
        out.extend_from_slice(self.text.as_bytes());
        out.extend_from_slice(&(self.attachments.len() as u16).to_be_bytes());
        for a in &self.attachments {
            check_media_type(&a.media_type).map_err(bad)?;
            let len = u32::try_from(a.bytes.len()).map_err(|_| bad("attachment over 4 GiB".into()))?;
            out.push(a.media_type.len() as u8);
            out.extend_from_slice(a.media_type.as_bytes());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&a.bytes);
        }
        Ok(out)
    }

    /// Parses a franked body; refuses malformed or trailing bytes.
    pub fn from_body(body: &[u8]) -> Result<Message, crate::ClientError> {
        let bad = |m: &str| crate::ClientError::Body(m.to_owned());
        let rest = body.strip_prefix(BODY_MAGIC).ok_or_else(|| bad("not a frankly message body (FMB1)"))?;
        let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(|| bad("truncated text length"))?;
        let len = u32::from_be_bytes(*len) as usize;
        if len > MAX_TEXT_BYTES || len > rest.len() {
            return Err(bad("text length out of range"));
        }
        let (text, rest) = rest.split_at(len);
        let text = std::str::from_utf8(text).map_err(|_| bad("text is not UTF-8"))?.to_owned();
        let (count, mut rest) = rest.split_first_chunk::<2>().ok_or_else(|| bad("truncated attachment count"))?;
        let count = u16::from_be_bytes(*count) as usize;
        if count > MAX_ATTACHMENTS {
            return Err(bad("too many attachments"));
        }
        let mut attachments = Vec::with_capacity(count);
        for _ in 0..count {
            let (mlen, r) = rest.split_first().ok_or_else(|| bad("truncated media type"))?;
            let mlen = usize::from(*mlen);
            if mlen > r.len() {
                return Err(bad("truncated media type"));
            }
            let (media_type, r) = r.split_at(mlen);
            let media_type = std::str::from_utf8(media_type).map_err(|_| bad("media type is not ASCII"))?;
            check_media_type(media_type).map_err(crate::ClientError::Body)?;
            let (len, r) = r.split_first_chunk::<4>().ok_or_else(|| bad("truncated attachment length"))?;
            let len = u32::from_be_bytes(*len) as usize;
            if len > r.len() {
                return Err(bad("attachment length out of range"));
            }
            let (bytes, r) = r.split_at(len);
            attachments.push(Attachment::new(bytes.to_vec(), media_type));
            rest = r;
        }
        if !rest.is_empty() {
            return Err(bad("trailing bytes after the last attachment"));
        }
        Ok(Message { text, attachments })
    }
}

fn check_media_type(m: &str) -> Result<(), String> {
    let ok =
        !m.is_empty() && m.len() <= MAX_MEDIA_TYPE_BYTES && m.bytes().all(|b| b.is_ascii_graphic()) && m.contains('/');
    if ok {
        Ok(())
    } else {
        Err(format!("media type {m:?} must be 1 to {MAX_MEDIA_TYPE_BYTES} printable ASCII bytes like image/jpeg"))
    }
}
