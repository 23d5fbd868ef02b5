//! Key files in the data directory, made on first start: the report key
//! (HPKE input keying material for RFC 9180 `DeriveKeyPair`, report key id
//! 1), the device master secret (delivery-MAC keys are derived from it per
//! device) and the platform API token.
//! Files are written with mode 0600 and read back zeroized; their contents are
//! never logged.

use std::io::Write;
use std::path::Path;

use frankly_report::{ReportKeyring, ServerKeyPair};
use zeroize::Zeroizing;

use crate::ServerError;

/// The server's long-lived secrets.
pub struct Secrets {
    /// Opens sealed reports, by report key id.
    pub report_keys: ReportKeyring,
    /// Device delivery-MAC keys are derived from it
    /// (`frankly_franking::DeviceKey::derive`).
    pub device_master: Zeroizing<[u8; 32]>,
    /// The bearer token of the platform (for `/v1/frank`, device
    /// registration and appeals), as hex.
    pub platform_token: Zeroizing<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").finish_non_exhaustive()
    }
}

/// Names of the key files: the report key's input keying material.
pub const REPORT_KEY_FILE: &str = "report-key.secret";
/// The id of the report key in [`REPORT_KEY_FILE`].
pub const REPORT_KEY_ID: u32 = 1;
/// The device master secret file.
pub const DEVICE_MASTER_FILE: &str = "device-master.secret";
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
        let device_master = load_or_create(dir, DEVICE_MASTER_FILE)?;
        let token = load_or_create(dir, PLATFORM_TOKEN_FILE)?;
        let mut report_keys = ReportKeyring::new();
        report_keys.insert(REPORT_KEY_ID, ServerKeyPair::derive(report.as_ref()), u64::MAX);
        Ok(Secrets { report_keys, device_master, platform_token: Zeroizing::new(hex::encode(token.as_ref())) })
    }
}
