//! The sealed envelope (`docs/franking.md`, "Envelope"):
//! `magic || u16be(2) || u32be(report_key_id) || enc (32) || ciphertext`,
//! where the HPKE plaintext is the encoded report padded with Padmé.

use std::collections::BTreeMap;

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use crate::codec;
use crate::report::{Report, ReportError};

/// First bytes of every envelope.
pub const ENVELOPE_MAGIC: &[u8; 8] = b"FRNKRPT\0";
/// The envelope version this build writes and reads.
pub const ENVELOPE_VERSION: u16 = 2;
/// HPKE `info`: binds the key schedule to this protocol and version.
pub const HPKE_INFO: &[u8] = b"frankly report envelope v2";
/// Largest envelope accepted (attachments included): a report with one
/// 16 MiB attachment (the relay's limit) and its context fits.
pub const MAX_ENVELOPE_BYTES: usize = 32 << 20;
/// Header bytes: magic, version, report key id.
pub const HEADER_BYTES: usize = 8 + 2 + 4;
const ENC_BYTES: usize = 32;

type Kem = X25519HkdfSha256;

/// The moderation service's public key, as devices are configured with it.
#[derive(Clone)]
pub struct ServerPublicKey(<Kem as hpke::Kem>::PublicKey);

impl ServerPublicKey {
    /// The 32-byte X25519 public key.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.0.to_bytes());
        out
    }

    /// Reads a 32-byte X25519 public key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ReportError> {
        Ok(ServerPublicKey(<Kem as hpke::Kem>::PublicKey::from_bytes(bytes).map_err(|_| ReportError::InvalidKey)?))
    }
}

impl std::fmt::Debug for ServerPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerPublicKey({})", hex::encode(self.to_bytes()))
    }
}

/// The moderation service's key pair. The private key is zeroized on drop
/// (by `hpke`) and never printed.
pub struct ServerKeyPair {
    private: <Kem as hpke::Kem>::PrivateKey,
    public: ServerPublicKey,
}

impl ServerKeyPair {
    /// A fresh key pair from the operating system's random generator.
    pub fn generate() -> Result<Self, ReportError> {
        let mut ikm = Zeroizing::new([0u8; 32]);
        getrandom::fill(ikm.as_mut()).map_err(|e| ReportError::Random(e.to_string()))?;
        Ok(Self::derive(ikm.as_ref()))
    }

    /// The key pair derived from input keying material (RFC 9180 DeriveKeyPair).
    pub fn derive(ikm: &[u8]) -> Self {
        let (private, public) = Kem::derive_keypair(ikm);
        ServerKeyPair { private, public: ServerPublicKey(public) }
    }

    /// The public half, for devices.
    pub fn public(&self) -> &ServerPublicKey {
        &self.public
    }

    fn open_body(&self, envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>, ReportError> {
        let header = &envelope[..HEADER_BYTES];
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&envelope[HEADER_BYTES..HEADER_BYTES + ENC_BYTES])
            .map_err(|_| ReportError::Decrypt)?;
        let plaintext = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Base,
            &self.private,
            &enc,
            HPKE_INFO,
            &envelope[HEADER_BYTES + ENC_BYTES..],
            header,
        )
        .map_err(|_| ReportError::Decrypt)?;
        Ok(Zeroizing::new(plaintext))
    }
}

impl std::fmt::Debug for ServerKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKeyPair").field("public", &self.public).finish_non_exhaustive()
    }
}

/// The moderation service's report keys by id: the current one, which
/// devices seal to, and old ones kept after rotation until their
/// `open_until_ms`, so reports sealed before a device learned of the
/// rotation still open.
#[derive(Debug, Default)]
pub struct ReportKeyring {
    keys: BTreeMap<u32, (ServerKeyPair, u64)>,
}

impl ReportKeyring {
    /// An empty keyring.
    pub fn new() -> ReportKeyring {
        ReportKeyring::default()
    }

    /// Adds key `id`, which opens envelopes until `open_until_ms`.
    pub fn insert(&mut self, id: u32, key: ServerKeyPair, open_until_ms: u64) {
        self.keys.insert(id, (key, open_until_ms));
    }

    /// The newest key (highest id): the one devices seal to.
    pub fn current(&self) -> Option<(u32, &ServerKeyPair)> {
        self.keys.iter().next_back().map(|(id, (k, _))| (*id, k))
    }

    /// Checks the header, finds the key it names (known, not past its
    /// window at `now_ms`), opens and unpads the plaintext, and decodes the
    /// report.
    pub fn open(&self, envelope: &[u8], now_ms: u64) -> Result<(u32, Report), ReportError> {
        let id = parse_header(envelope)?;
        let (key, until) = self.keys.get(&id).ok_or(ReportError::UnknownReportKey(id))?;
        if now_ms >= *until {
            return Err(ReportError::UnknownReportKey(id));
        }
        let padded = key.open_body(envelope)?;
        Ok((id, codec::decode(unpad(&padded)?)?))
    }
}

/// Checks size, magic and version, returns the report key id.
pub fn parse_header(envelope: &[u8]) -> Result<u32, ReportError> {
    if envelope.len() > MAX_ENVELOPE_BYTES {
        return Err(ReportError::TooLarge { size: envelope.len(), limit: MAX_ENVELOPE_BYTES });
    }
    if envelope.len() < 10 || &envelope[..8] != ENVELOPE_MAGIC {
        return Err(ReportError::NotAnEnvelope);
    }
    let version = u16::from_be_bytes([envelope[8], envelope[9]]);
    if version != ENVELOPE_VERSION {
        return Err(ReportError::UnsupportedVersion(version));
    }
    if envelope.len() < HEADER_BYTES + ENC_BYTES + 16 {
        return Err(ReportError::NotAnEnvelope);
    }
    Ok(u32::from_be_bytes([envelope[10], envelope[11], envelope[12], envelope[13]]))
}

/// Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files
/// and Communication with PURBs", PETS 2019): rounds `len` up so that only
/// O(log log len) bits of it remain; at most 12 % overhead, less as sizes grow.
pub fn padme(len: usize) -> usize {
    if len < 2 {
        return len;
    }
    let e = usize::BITS - 1 - len.leading_zeros(); // floor(log2 len)
    let s = u32::BITS - e.leading_zeros(); // floor(log2 e) + 1
    let last_bits = e - s;
    let mask = (1usize << last_bits) - 1;
    (len + mask) & !mask
}

/// `u32be(len(report)) || report || zeros`, `padme(4 + len)` bytes in all.
fn pad(report: &[u8]) -> Result<Zeroizing<Vec<u8>>, ReportError> {
    let len = u32::try_from(report.len())
        .map_err(|_| ReportError::TooLarge { size: report.len(), limit: MAX_ENVELOPE_BYTES })?;
    let total = padme(4 + report.len());
    let mut out = Zeroizing::new(Vec::with_capacity(total));
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(report);
    out.resize(total, 0);
    Ok(out)
}

fn unpad(padded: &[u8]) -> Result<&[u8], ReportError> {
    let bad = |m: &str| ReportError::Malformed(m.to_owned());
    let (len, rest) = padded.split_first_chunk::<4>().ok_or_else(|| bad("padding: truncated length"))?;
    let len = u32::from_be_bytes(*len) as usize;
    if len > rest.len() {
        return Err(bad("padding: length beyond the plaintext"));
    }
    if padded.len() != padme(4 + len) {
        return Err(bad("padding: not the Padmé size of the report"));
    }
    let (report, zeros) = rest.split_at(len);
    if zeros.iter().any(|&b| b != 0) {
        return Err(bad("padding: non-zero padding bytes"));
    }
    Ok(report)
}

fn header(key_id: u32) -> Vec<u8> {
    let mut header = ENVELOPE_MAGIC.to_vec();
    header.extend_from_slice(&ENVELOPE_VERSION.to_be_bytes());
    header.extend_from_slice(&key_id.to_be_bytes());
    header
}

fn plaintext(report: &Report) -> Result<Zeroizing<Vec<u8>>, ReportError> {
    let encoded = Zeroizing::new(codec::encode(report)?);
    pad(&encoded)
}

/// Seals a report to report key `key_id` of the moderation service, with
/// fresh HPKE randomness from the operating system.
pub fn seal_report(report: &Report, key_id: u32, server: &ServerPublicKey) -> Result<Vec<u8>, ReportError> {
    let plaintext = plaintext(report)?;
    let header = header(key_id);
    let (enc, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Base,
        &server.0,
        HPKE_INFO,
        &plaintext,
        &header,
    )
    .map_err(|_| ReportError::Seal)?;
    finish(header, &enc, &ciphertext)
}

/// [`seal_report`] with a caller-chosen random generator (for test vectors).
pub fn seal_report_with_rng(
    report: &Report,
    key_id: u32,
    server: &ServerPublicKey,
    rng: &mut impl hpke::rand_core::CryptoRng,
) -> Result<Vec<u8>, ReportError> {
    let plaintext = plaintext(report)?;
    let header = header(key_id);
    let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Base,
        &server.0,
        HPKE_INFO,
        &plaintext,
        &header,
        rng,
    )
    .map_err(|_| ReportError::Seal)?;
    finish(header, &enc, &ciphertext)
}

/// The encoded report, unpadded and unsealed (for vectors and size studies).
pub fn encode_report(report: &Report) -> Result<Vec<u8>, ReportError> {
    codec::encode(report)
}

/// Parses an encoded report (for vectors and independent checkers).
pub fn decode_report(bytes: &[u8]) -> Result<Report, ReportError> {
    codec::decode(bytes)
}

fn finish(header: Vec<u8>, enc: &<Kem as hpke::Kem>::EncappedKey, ciphertext: &[u8]) -> Result<Vec<u8>, ReportError> {
    let mut out = header;
    out.extend_from_slice(&enc.to_bytes());
    out.extend_from_slice(ciphertext);
    if out.len() > MAX_ENVELOPE_BYTES {
        return Err(ReportError::TooLarge { size: out.len(), limit: MAX_ENVELOPE_BYTES });
    }
    Ok(out)
}
