//! The byte encodings that are MACed (`docs/franking.md`, "Encodings").
//! Every variable-length field is prefixed with its length as a big-endian
//! u32, every integer is big-endian and fixed-width, and each MAC input
//! starts with a domain string ending in a NUL byte, so no two different
//! inputs encode to the same bytes and no input of one kind can be read as
//! another.

use crate::FrankingError;

/// Domain of commitments.
pub const COMMIT_DOMAIN: &[u8] = b"frankly franking commitment v2\0";
/// Domain of platform tags.
pub const TAG_DOMAIN: &[u8] = b"frankly franking platform tag v2\0";
/// Domain of the platform's per-device delivery MACs.
pub const DELIVERY_MAC_DOMAIN: &[u8] = b"frankly delivery mac v2\0";

/// Longest identifier (conversation, user, device, message, server
/// message), in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// Appends `u32be(len) || bytes`.
pub(crate) fn put_lp(out: &mut Vec<u8>, bytes: &[u8]) {
    // Every caller passes a checked identifier or a bounded body, far below 4 GiB.
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Checks an identifier: 1 to [`MAX_ID_BYTES`] bytes of UTF-8 without
/// control characters (no NUL, no newline), so it can be stored, logged
/// and shown as it is.
pub fn check_id(field: &'static str, value: &str) -> Result<(), FrankingError> {
    if value.is_empty() || value.len() > MAX_ID_BYTES {
        return Err(FrankingError::InvalidId {
            field,
            reason: format!("{} bytes, not 1 to {MAX_ID_BYTES}", value.len()),
        });
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(FrankingError::InvalidId {
            field,
            reason: format!("contains control character U+{:04X}", c as u32),
        });
    }
    Ok(())
}

/// A bounded reader over untrusted bytes: every read checks the length
/// first, so a truncated or oversized field is an error, never a panic or
/// an allocation beyond what the input holds.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FrankingError> {
        if n > self.bytes.len() {
            return Err(FrankingError::Malformed(format!("{what} truncated")));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], FrankingError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, FrankingError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, FrankingError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// `u32be(len) || bytes` with `len <= limit`.
    pub(crate) fn lp(&mut self, limit: usize, what: &'static str) -> Result<&'a [u8], FrankingError> {
        let len = self.u32(what)? as usize;
        if len > limit {
            return Err(FrankingError::Malformed(format!("{what} is {len} bytes (limit {limit})")));
        }
        self.take(len, what)
    }

    /// A length-prefixed identifier, checked with [`check_id`].
    pub(crate) fn id(&mut self, field: &'static str) -> Result<String, FrankingError> {
        let bytes = self.lp(MAX_ID_BYTES, field)?;
        let s =
            std::str::from_utf8(bytes).map_err(|_| FrankingError::InvalidId { field, reason: "not UTF-8".into() })?;
        check_id(field, s)?;
        Ok(s.to_owned())
    }
}
