//! Configuration: defaults that run on one machine, overridden by a TOML
//! file, then by `FRANKLY_*` environment variables, then by flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::ServerError;

/// Everything the server reads at start-up. Every limit is here, with its
/// default, so a deployment can see and change it.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The data directory: SQLite database and key files.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; default: SQLite in the data directory.
    pub database_url: Option<String>,
    /// Largest connection pool.
    pub max_connections: u32,
    /// Mark cookies `Secure` (set when TLS terminates in front of the server).
    pub secure_cookies: bool,
    /// How long a moderator holds a claimed report before it returns to the queue.
    pub lease_seconds: u64,
    /// How long a moderator session lasts.
    pub session_hours: u64,
    /// How often the platform tag key rotates.
    pub key_rotation_hours: u64,
    /// How long after rotation tags made with an old key are still accepted
    /// (the oldest reportable message).
    pub key_retention_days: u64,
    /// Reports accepted per reporter per minute.
    pub reports_per_reporter_per_minute: u32,
    /// Most reports committed in one transaction by the intake writer.
    pub intake_batch: usize,
    /// Reports waiting for the intake writer before new ones get 503.
    pub intake_queue: usize,
    /// Messages waiting for one recipient on the relay.
    pub relay_mailbox_limit: i64,
    /// Signed bank bundles the server matches verified attachments against.
    pub banks: Vec<PathBuf>,
    /// The Ed25519 public key (file) that signs those banks.
    pub bank_public_key: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("frankly-data"),
            database_url: None,
            max_connections: 8,
            secure_cookies: false,
            lease_seconds: 15 * 60,
            session_hours: 12,
            key_rotation_hours: 24 * 7,
            key_retention_days: 90,
            reports_per_reporter_per_minute: 30,
            intake_batch: 512,
            intake_queue: 8192,
            relay_mailbox_limit: 10_000,
            banks: Vec::new(),
            bank_public_key: None,
        }
    }
}

/// Largest configuration file.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

impl Config {
    /// Defaults, then the file (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ServerError> {
        let mut config = match file {
            Some(path) => {
                let size = std::fs::metadata(path)
                    .map_err(|e| ServerError::Config(format!("cannot read {}: {e}", path.display())))?
                    .len();
                if size > MAX_CONFIG_BYTES {
                    return Err(ServerError::Config(format!(
                        "{} is {size} bytes (limit {MAX_CONFIG_BYTES})",
                        path.display()
                    )));
                }
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ServerError::Config(format!("cannot read {}: {e}", path.display())))?;
                toml::from_str(&text).map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?
            }
            None => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        Ok(config)
    }

    /// Applies `FRANKLY_DATA_DIR`, `FRANKLY_DATABASE_URL`, `FRANKLY_LISTEN`
    /// and `FRANKLY_SECURE_COOKIES`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ServerError> {
        if let Some(dir) = var("FRANKLY_DATA_DIR") {
            self.data_dir = dir.into();
        }
        if let Some(url) = var("FRANKLY_DATABASE_URL") {
            self.database_url = Some(url);
        }
        if let Some(listen) = var("FRANKLY_LISTEN") {
            self.listen = listen.parse().map_err(|e| ServerError::Config(format!("FRANKLY_LISTEN={listen:?}: {e}")))?;
        }
        if let Some(secure) = var("FRANKLY_SECURE_COOKIES") {
            self.secure_cookies = matches!(secure.as_str(), "1" | "true" | "yes");
        }
        Ok(())
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| crate::db::Db::sqlite_url(&self.data_dir))
    }

    /// Refuses values that cannot work.
    pub fn validate(&self) -> Result<(), ServerError> {
        let bad = |m: &str| Err(ServerError::Config(m.to_string()));
        if self.lease_seconds == 0 {
            return bad("lease_seconds must be positive");
        }
        if self.key_rotation_hours == 0 {
            return bad("key_rotation_hours must be positive");
        }
        if self.intake_batch == 0 || self.intake_queue == 0 {
            return bad("intake_batch and intake_queue must be positive");
        }
        if self.reports_per_reporter_per_minute == 0 {
            return bad("reports_per_reporter_per_minute must be positive");
        }
        if !self.banks.is_empty() && self.bank_public_key.is_none() {
            return bad("banks need bank_public_key: the server only matches against signed banks");
        }
        Ok(())
    }
}
