//! Key files in the data directory, made on first start: the device master
//! secret (delivery-MAC keys are derived from it per device), the platform
//! API token, and the audit signing key (with its public key beside it). The data directory is made 0700 and every file the
//! server keeps in it 0600; a key file that others can read is refused at
//! start. Contents are read back zeroized and never logged.
//!
//! Tag keys and report keys live in the database, wrapped under key chains
//! ([`crate::keychain`]) whose files sit in the key directory (the data
//! directory unless `key_dir` says otherwise).

use std::io::Write;
use std::path::Path;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::ServerError;

/// The server's long-lived file secrets. Opaque: the token is only ever
/// compared, the master only used to derive device keys.
pub struct Secrets {
    device_master: Zeroizing<[u8; 32]>,
    platform_token: Zeroizing<String>,
    audit_key: ed25519_dalek::SigningKey,
    webhook_key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").finish_non_exhaustive()
    }
}

/// The device master secret file.
pub const DEVICE_MASTER_FILE: &str = "device-master.secret";
/// The audit signing key file: an Ed25519 seed, 64 hex digits. It signs
/// the audit log's checkpoints.
pub const AUDIT_KEY_FILE: &str = "audit-signing.secret";
/// Its public key, 64 hex digits: keep a copy where the server cannot
/// change it, to check checkpoints with.
pub const AUDIT_PUBLIC_KEY_FILE: &str = "audit-signing.public";
/// The webhook signing key file: an Ed25519 seed, 64 hex digits. It signs
/// every webhook body.
pub const WEBHOOK_KEY_FILE: &str = "webhook-signing.secret";
/// Its public key, 64 hex digits (also served at `GET /v1/webhook-keys`).
pub const WEBHOOK_PUBLIC_KEY_FILE: &str = "webhook-signing.public";
/// The platform token file: 64 lower-case hex digits, the bearer token of
/// the platform's API calls (`Authorization: Bearer HEX`).
pub const PLATFORM_TOKEN_FILE: &str = "platform-token.secret";

pub(crate) fn random32() -> Result<Zeroizing<[u8; 32]>, ServerError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut()).map_err(|e| ServerError::Internal(format!("randomness: {e}")))?;
    Ok(bytes)
}

/// Refuses a secret file that anyone but its owner can read or write.
#[cfg(unix)]
pub(crate) fn check_private(path: &Path) -> Result<(), ServerError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| ServerError::Config(format!("cannot read {}: {e}", path.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(ServerError::Config(format!(
            "{} has mode {:o}: it holds a secret, so only its owner may read it (chmod 600 {})",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn check_private(_path: &Path) -> Result<(), ServerError> {
    Ok(())
}

/// Reads a file holding a 32-byte secret as 64 hex digits.
pub(crate) fn read_hex32(path: &Path) -> Result<Zeroizing<[u8; 32]>, ServerError> {
    check_private(path)?;
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| ServerError::Config(format!("cannot read {}: {e}", path.display())))?,
    );
    let mut out = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), out.as_mut())
        .map_err(|_| ServerError::Config(format!("{} must hold 64 hex digits (a 32-byte secret)", path.display())))?;
    Ok(out)
}

/// Reads a 32-byte hex secret from `dir/name`, creating it if absent.
fn load_or_create(dir: &Path, name: &str) -> Result<Zeroizing<[u8; 32]>, ServerError> {
    let path = dir.join(name);
    if path.exists() {
        return read_hex32(&path);
    }
    let secret = random32()?;
    write_private(&path, &Zeroizing::new(hex::encode(secret.as_ref())))?;
    tracing::info!(file = %path.display(), "created a new secret");
    Ok(secret)
}

/// Writes `text` to a new file `path` with mode 0600 (replacing one that exists).
fn write_private(path: &Path, text: &str) -> Result<(), ServerError> {
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file =
        options.open(path).map_err(|e| ServerError::Config(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| ServerError::Config(format!("cannot write {}: {e}", path.display())))
}

/// Makes `dir` (mode 0700) if needed; narrows one that others can enter
/// to 0700, with a warning.
pub(crate) fn private_dir(dir: &Path) -> Result<(), ServerError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| ServerError::Config(format!("cannot create directory {}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)
            .map_err(|e| ServerError::Config(format!("cannot read {}: {e}", dir.display())))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                mode = format!("{:o}", mode & 0o777),
                "narrowed to 0700: the directory holds secrets and the database"
            );
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| ServerError::Config(format!("cannot make {} private (chmod 700): {e}", dir.display())))?;
        }
    }
    Ok(())
}

impl Secrets {
    /// Loads the key files from `dir`, creating the directory (0700) and
    /// any missing key (0600).
    pub fn load_or_create(dir: &Path) -> Result<Secrets, ServerError> {
        private_dir(dir)?;
        let device_master = load_or_create(dir, DEVICE_MASTER_FILE)?;
        let token = load_or_create(dir, PLATFORM_TOKEN_FILE)?;
        let audit_seed = load_or_create(dir, AUDIT_KEY_FILE)?;
        let audit_key = ed25519_dalek::SigningKey::from_bytes(&audit_seed);
        let webhook_seed = load_or_create(dir, WEBHOOK_KEY_FILE)?;
        let webhook_key = ed25519_dalek::SigningKey::from_bytes(&webhook_seed);
        for (key, file) in [(&audit_key, AUDIT_PUBLIC_KEY_FILE), (&webhook_key, WEBHOOK_PUBLIC_KEY_FILE)] {
            let public = dir.join(file);
            let text = hex::encode(key.verifying_key().as_bytes());
            if std::fs::read_to_string(&public).map(|t| t.trim() != text).unwrap_or(true) {
                write_private(&public, &text)?;
            }
        }
        Ok(Secrets {
            device_master,
            platform_token: Zeroizing::new(hex::encode(token.as_ref())),
            audit_key,
            webhook_key,
        })
    }

    /// Whether `given` is the platform token (constant time).
    pub fn is_platform_token(&self, given: &str) -> bool {
        bool::from(given.as_bytes().ct_eq(self.platform_token.as_bytes()))
    }

    /// The platform token, for the platform's own process (the demo, tests
    /// and load generators run it in-process).
    pub fn platform_token(&self) -> &str {
        &self.platform_token
    }

    /// The key that signs webhooks.
    pub(crate) fn webhook_key(&self) -> &ed25519_dalek::SigningKey {
        &self.webhook_key
    }

    /// The key that signs audit checkpoints.
    pub(crate) fn audit_key(&self) -> &ed25519_dalek::SigningKey {
        &self.audit_key
    }

    /// The key the sign-in form's token is signed with:
    /// `HMAC-SHA256(master, "frankly login form key v1")`, the same on every
    /// instance.
    pub(crate) fn login_form_key(&self) -> Zeroizing<[u8; 32]> {
        use hmac::{KeyInit, Mac};
        // HMAC takes keys of any length.
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(self.device_master.as_ref())
            .unwrap_or_else(|_| unreachable!());
        mac.update(b"frankly login form key v1");
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// The delivery-MAC key of `device`, derived from the master secret
    /// (which never leaves this type).
    pub fn device_key(
        &self,
        device: &frankly_franking::Party,
    ) -> Result<frankly_franking::DeviceKey, frankly_franking::FrankingError> {
        frankly_franking::DeviceKey::derive(&self.device_master, device)
    }
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_directory_is_0700_files_are_0600_and_readable_key_files_are_refused() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        let secrets = Secrets::load_or_create(&dir).unwrap();
        assert!(secrets.is_platform_token(secrets.platform_token()));
        assert!(!secrets.is_platform_token("00"));
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        for name in [DEVICE_MASTER_FILE, PLATFORM_TOKEN_FILE] {
            assert_eq!(std::fs::metadata(dir.join(name)).unwrap().permissions().mode() & 0o777, 0o600, "{name}");
        }
        std::fs::set_permissions(dir.join(DEVICE_MASTER_FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Secrets::load_or_create(&dir).unwrap_err().to_string();
        assert!(err.contains("device-master.secret") && err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(dir.join(DEVICE_MASTER_FILE), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Secrets::load_or_create(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700, "narrowed");
    }
}
