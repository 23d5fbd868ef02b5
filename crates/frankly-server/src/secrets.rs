//! Key files in the data directory, made on first start: the report key
//! (HPKE), the delivery signing key (Ed25519) and the platform API token.
//! Files are written with mode 0600 and read back zeroized; their contents are
//! never logged.

use std::io::Write;
use std::path::Path;

use frankly_franking::SigningKey;
use frankly_report::ServerKeyPair;
use zeroize::Zeroizing;

use crate::ServerError;

/// The server's long-lived secrets.
pub struct Secrets {
    /// Opens sealed reports.
    pub report_key: ServerKeyPair,
    /// Signs delivery contexts on the relay.
    pub delivery_key: SigningKey,
    /// The bearer token of the platform (for `/v1/frank`, device
    /// registration and appeals), as hex.
    pub platform_token: Zeroizing<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").finish_non_exhaustive()
    }
}

/// Names of the key files.
pub const REPORT_KEY_FILE: &str = "report-key.secret";
/// The delivery signing key file.
pub const DELIVERY_KEY_FILE: &str = "delivery-key.secret";
/// The platform token file.
pub const PLATFORM_TOKEN_FILE: &str = "platform-token.secret";

pub(crate) fn random32() -> Result<Zeroizing<[u8; 32]>, ServerError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut()).map_err(|e| ServerError::Internal(format!("randomness: {e}")))?;
    Ok(bytes)
}

/// Reads a 32-byte hex secret from `dir/name`, creating it if absent.
fn load_or_create(dir: &Path, name: &str) -> Result<Zeroizing<[u8; 32]>, ServerError> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            let mut out = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(text.trim(), out.as_mut()).map_err(|_| {
                ServerError::Config(format!("{} must hold 64 hex digits (a 32-byte secret)", path.display()))
            })?;
            Ok(out)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = random32()?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(&path)
                .map_err(|e| ServerError::Config(format!("cannot create {}: {e}", path.display())))?;
            let text = Zeroizing::new(hex::encode(secret.as_ref()));
            file.write_all(text.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| ServerError::Config(format!("cannot write {}: {e}", path.display())))?;
            tracing::info!(file = %path.display(), "created a new secret");
            Ok(secret)
        }
        Err(e) => Err(ServerError::Config(format!("cannot read {}: {e}", path.display()))),
    }
}

impl Secrets {
    /// Loads the key files from `dir`, creating the directory and any missing key.
    pub fn load_or_create(dir: &Path) -> Result<Secrets, ServerError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ServerError::Config(format!("cannot create data directory {}: {e}", dir.display())))?;
        let report = load_or_create(dir, REPORT_KEY_FILE)?;
        let delivery = load_or_create(dir, DELIVERY_KEY_FILE)?;
        let token = load_or_create(dir, PLATFORM_TOKEN_FILE)?;
        Ok(Secrets {
            report_key: ServerKeyPair::derive(report.as_ref()),
            delivery_key: SigningKey::from_bytes(&delivery),
            platform_token: Zeroizing::new(hex::encode(token.as_ref())),
        })
    }
}
