//! The franked message body (FMB1): text plus references to separately
//! encrypted attachments. Devices build and parse it; the moderation side
//! parses it to show a reported message and find its attachments.

use crate::FrankingError;
use crate::attachment::{ATTACHMENT_REF_BYTES, AttachmentRef};

/// Longest message text in a franked body, in bytes.
pub const MAX_TEXT_BYTES: usize = 256 << 10;
/// Most attachments in a franked body (a report carries at most as many).
pub const MAX_BODY_ATTACHMENTS: usize = 16;
/// Longest media type, in bytes.
pub const MAX_MEDIA_TYPE_BYTES: usize = 127;
const BODY_MAGIC: &[u8; 4] = b"FMB1";

/// The franked body of a message (`docs/franking.md`, "Message body"): the
/// text, and per attachment its media type and the reference (key, nonce,
/// plaintext SHA-256) to its separately encrypted bytes:
/// `"FMB1" | u32 text length | text | u16 count | (u8 media type length |
/// media type | 76-byte reference) per attachment`, big-endian lengths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body {
    /// The text.
    pub text: String,
    /// Media type and reference of each attachment, in order.
    pub attachments: Vec<(String, AttachmentRef)>,
}

impl Body {
    /// Encodes the body.
    pub fn encode(&self) -> Result<Vec<u8>, FrankingError> {
        let bad = |m: String| FrankingError::MalformedBody(m);
        if self.text.len() > MAX_TEXT_BYTES {
            return Err(bad(format!("text of {} bytes, over {MAX_TEXT_BYTES}", self.text.len())));
        }
        if self.attachments.len() > MAX_BODY_ATTACHMENTS {
            return Err(bad(format!("{} attachments, over {MAX_BODY_ATTACHMENTS}", self.attachments.len())));
        }
        let mut out = Vec::with_capacity(10 + self.text.len() + self.attachments.len() * (ATTACHMENT_REF_BYTES + 32));
        out.extend_from_slice(BODY_MAGIC);
        out.extend_from_slice(&(self.text.len() as u32).to_be_bytes());
        out.extend_from_slice(self.text.as_bytes());
        out.extend_from_slice(&(self.attachments.len() as u16).to_be_bytes());
        for (media_type, reference) in &self.attachments {
            check_media_type(media_type).map_err(bad)?;
            out.push(media_type.len() as u8);
            out.extend_from_slice(media_type.as_bytes());
            out.extend_from_slice(&reference.to_bytes());
        }
        Ok(out)
    }

    /// Parses a body; refuses malformed or trailing bytes.
    pub fn decode(body: &[u8]) -> Result<Body, FrankingError> {
        let bad = |m: &str| FrankingError::MalformedBody(m.to_owned());
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
        if count > MAX_BODY_ATTACHMENTS {
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
            check_media_type(media_type).map_err(FrankingError::MalformedBody)?;
            if r.len() < ATTACHMENT_REF_BYTES {
                return Err(bad("truncated attachment reference"));
            }
            let (reference, r) = r.split_at(ATTACHMENT_REF_BYTES);
            let reference =
                AttachmentRef::from_bytes(reference).map_err(|e| FrankingError::MalformedBody(e.to_string()))?;
            attachments.push((media_type.to_owned(), reference));
            rest = r;
        }
        if !rest.is_empty() {
            return Err(bad("trailing bytes after the last attachment"));
        }
        Ok(Body { text, attachments })
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
