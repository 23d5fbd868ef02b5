//! The sealed envelope: `magic || u16be(version) || enc (32) || ciphertext`.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use crate::report::{Report, ReportError};

/// First bytes of every envelope.
pub const ENVELOPE_MAGIC: &[u8; 8] = b"FRNKRPT\0";
const ENVELOPE_VERSION: u16 = 1;
/// HPKE `info`: binds the key schedule to this protocol and version.
pub const HPKE_INFO: &[u8] = b"frankly report envelope v1";
/// Largest envelope accepted (attachments included).
pub const MAX_ENVELOPE_BYTES: usize = 32 << 20;
const HEADER_BYTES: usize = 8 + 2;
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

    pub(crate) fn open(&self, envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>, ReportError> {
        if envelope.len() > MAX_ENVELOPE_BYTES {
            return Err(ReportError::TooLarge { size: envelope.len(), limit: MAX_ENVELOPE_BYTES });
        }
        if envelope.len() < HEADER_BYTES || &envelope[..8] != ENVELOPE_MAGIC {
            return Err(ReportError::NotAnEnvelope);
        }
        let version = u16::from_be_bytes([envelope[8], envelope[9]]);
        if version != ENVELOPE_VERSION {
            return Err(ReportError::UnsupportedVersion(version));
        }
        if envelope.len() < HEADER_BYTES + ENC_BYTES + 16 {
            return Err(ReportError::NotAnEnvelope);
        }
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

fn header() -> Vec<u8> {
    let mut header = ENVELOPE_MAGIC.to_vec();
    header.extend_from_slice(&ENVELOPE_VERSION.to_be_bytes());
    header
}

fn plaintext(report: &Report) -> Result<Zeroizing<Vec<u8>>, ReportError> {
    report.check_limits()?;
    Ok(Zeroizing::new(serde_json::to_vec(report).map_err(|e| ReportError::Malformed(e.to_string()))?))
}

/// Seals a report to the moderation service, with fresh HPKE randomness
/// from the operating system.
pub fn seal_report(report: &Report, server: &ServerPublicKey) -> Result<Vec<u8>, ReportError> {
    let plaintext = plaintext(report)?;
    let header = header();
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
    server: &ServerPublicKey,
    rng: &mut impl hpke::rand_core::CryptoRng,
) -> Result<Vec<u8>, ReportError> {
    let plaintext = plaintext(report)?;
    let header = header();
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

fn finish(header: Vec<u8>, enc: &<Kem as hpke::Kem>::EncappedKey, ciphertext: &[u8]) -> Result<Vec<u8>, ReportError> {
    let mut out = header;
    out.extend_from_slice(&enc.to_bytes());
    out.extend_from_slice(ciphertext);
    if out.len() > MAX_ENVELOPE_BYTES {
        return Err(ReportError::TooLarge { size: out.len(), limit: MAX_ENVELOPE_BYTES });
    }
    Ok(out)
}
