//! The byte encodings that are MACed. Every variable-length field is
//! prefixed with its length as a big-endian u32, every integer is big-endian
//! and fixed-width, and each input starts with a domain string ending in a
//! NUL byte, so no two different inputs encode to the same bytes and no
//! commitment input can be read as a tag input.

/// Domain of commitments.
pub const COMMIT_DOMAIN: &[u8] = b"frankly franking commitment v1\0";
/// Domain of platform tags.
pub const TAG_DOMAIN: &[u8] = b"frankly franking platform tag v1\0";

/// Longest identifier (conversation, sender, message, server message), in bytes.
pub const MAX_ID_BYTES: usize = 1024;

/// Appends `u32be(len) || bytes`.
pub(crate) fn put_lp(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}
