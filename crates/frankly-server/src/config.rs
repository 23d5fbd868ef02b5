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
    /// Take the client address for sign-in limits from the last
    /// `X-Forwarded-For` hop (set it only behind a proxy that adds one).
    pub trust_forwarded_for: bool,
    /// How long a moderator holds a claimed report before it returns to the queue.
    pub lease_seconds: u64,
    /// How long a moderator session lasts.
    pub session_hours: u64,
    /// How often the platform tag key rotates.
    pub key_rotation_hours: u64,
    /// How long after rotation tags made with an old key are still accepted
    /// (the oldest reportable message).
    pub key_retention_days: u64,
    /// Where the key chain files are (`tag-keys.chain`, `report-keys.chain`);
    /// default: the data directory. Keep them out of database backups: a
    /// backup plus the chain as it was would undo key destruction.
    pub key_dir: Option<PathBuf>,
    /// How often the report key devices seal to is replaced.
    pub report_key_rotation_days: u64,
    /// How long a replaced report key still opens reports.
    pub report_key_grace_days: u64,
    /// The audit checkpoint file (append-only; default
    /// `data_dir/audit-checkpoints.jsonl`). Ship it, or the log lines, off
    /// the machine: a copy the server cannot change is what shows truncation.
    pub audit_checkpoints: Option<PathBuf>,
    /// Reports accepted per reporter per minute.
    pub reports_per_reporter_per_minute: u32,
    /// Most reports committed in one transaction by the intake writer.
    pub intake_batch: usize,
    /// Reports waiting for the intake writer before new ones get 503.
    pub intake_queue: usize,
    /// Most open HTTP connections (lowered at start to leave 256 file
    /// descriptors of the process's limit free).
    pub max_http_connections: usize,
    /// Time for a request's headers to arrive, and for an idle keep-alive
    /// connection to send its next request.
    pub header_timeout_seconds: u64,
    /// Time for a request's whole body to arrive.
    pub body_timeout_seconds: u64,
    /// Bytes all unfinished request bodies may hold together.
    pub max_inflight_body_bytes: usize,
    /// Reports opened and verified at once (HPKE, parsing, image decoding).
    pub intake_concurrency: usize,
    /// Video frame strips decoded and drawn at once for the review page.
    pub render_concurrency: usize,
    /// Uploads the match API hashes at once (`POST /h/hash`,
    /// `POST /m/lookup`, `POST /c/bank/<name>/content`).
    pub hash_concurrency: usize,
    /// Largest attachment image the server decodes for bank matching, in
    /// pixels.
    pub max_decode_pixels: u64,
    /// Messages waiting for one recipient on the relay.
    pub relay_mailbox_limit: i64,
    /// Serve HMA's API (`/h`, `/m`, `/c`, `/status`) over the banks curated
    /// in the database (docs/server.md, "Use frankly as your HMA matcher").
    pub match_api: bool,
    /// Scopes of that API open without an API key (`hash`, `match`,
    /// `curate`): for a matcher on a private network whose clients cannot
    /// send `Authorization`. None by default.
    pub match_api_open_scopes: Vec<String>,
    /// Lookups (`/m/lookup`, `/m/raw_lookup`) admitted at once; past it a
    /// lookup is refused at once with 503 `busy` (a bounded queue: a flood
    /// of lookups costs refusals, not memory or latency for everyone).
    pub match_lookup_queue: usize,
    /// How often (milliseconds) each instance reads the change log of the
    /// matching service's banks, so that changes made through another
    /// instance reach its index (its own changes are applied before the
    /// request returns).
    pub match_poll_ms: u64,
    /// Secret key file (`frankly keygen`, mode 0600) with which the server
    /// signs bank bundles and deltas for devices as banks change. Without
    /// it, bundles are signed offline and published with `frankly serve
    /// admin publish-bundle`, and deltas are not served.
    pub bank_signing_key: Option<PathBuf>,
    /// Hours a bundle or delta signed by the server stays valid.
    pub bundle_valid_hours: u64,
    /// Hosts that `url=` may fetch media from (exact names, or `*.domain`
    /// for its subdomains). Empty, the default: `url=` is refused.
    pub url_fetch_hosts: Vec<String>,
    /// Seconds a `url=` fetch may take, connection to last byte.
    pub url_fetch_timeout_seconds: u64,
    /// Let `url=` reach private, loopback and link-local addresses (a media
    /// store on your own network). Off by default: with it on, the
    /// allowlist is the only guard against requests into your network.
    pub url_fetch_allow_private: bool,
    /// Signed bank bundles the server matches verified attachments against.
    pub banks: Vec<PathBuf>,
    /// The Ed25519 public key (file) that signs those banks.
    pub bank_public_key: Option<PathBuf>,
    /// Where signed webhooks go (docs/server.md, "Webhooks"). None by default.
    pub webhooks: Vec<WebhookEndpoint>,
    /// Attempts per delivery before it becomes a dead letter.
    pub webhook_max_attempts: u32,
    /// The first retry's delay, in milliseconds; each later one doubles it,
    /// up to `webhook_max_backoff_ms`.
    pub webhook_backoff_ms: u64,
    /// The longest delay between two attempts, in milliseconds.
    pub webhook_max_backoff_ms: u64,
    /// Seconds an endpoint has to answer one delivery.
    pub webhook_timeout_seconds: u64,
    /// How often (milliseconds) the deliverer looks for new events and due retries.
    pub webhook_poll_ms: u64,
    /// Days a strike from a restricting decision counts against the
    /// reported user (docs/server.md, "Strikes").
    pub strike_days: u32,
    /// Retention rules for decided reports, first match wins: after `days`
    /// from the latest decision, the bodies and media of the reports of
    /// `queue` decided with `action` are purged (docs/server.md,
    /// "Retention"). None by default: everything is kept.
    pub retention: Vec<frankly_review::RetentionRule>,
    /// How often (seconds) the retention purge runs.
    pub retention_interval_seconds: u64,
    /// Who files CyberTipline reports, and as which service
    /// (docs/server.md, "CyberTipline export"); none: no export.
    pub cybertipline: Option<crate::cybertip::CybertipConfig>,
    /// ROOST's Coop: forwarding verified reports to its intake and taking
    /// its action webhooks (docs/server.md, "Coop"); none by default.
    pub coop: Option<crate::coop::CoopConfig>,
}

/// A webhook endpoint.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpoint {
    /// `https://...` (or `http://` for a receiver on this machine or network).
    pub url: String,
    /// The events it gets (`report.created`, `report.decided`,
    /// `appeal.filed`, `appeal.decided`); empty: all of them.
    #[serde(default)]
    pub events: Vec<String>,
    /// What is sent: frankly's signed event (`frankly`, the default), or
    /// for `report.created` the verified report in Coop's report intake
    /// format (`coop`: the URL is Coop's `/api/v1/report`, with `[coop]`).
    #[serde(default)]
    pub format: EndpointFormat,
}

/// What a webhook endpoint is sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointFormat {
    /// frankly's event, signed with Ed25519.
    #[default]
    Frankly,
    /// Coop's report intake body, with Coop's `x-api-key`.
    Coop,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("frankly-data"),
            database_url: None,
            max_connections: 8,
            secure_cookies: false,
            trust_forwarded_for: false,
            lease_seconds: 15 * 60,
            session_hours: 12,
            key_rotation_hours: 24 * 7,
            key_retention_days: 90,
            key_dir: None,
            report_key_rotation_days: 30,
            report_key_grace_days: 14,
            audit_checkpoints: None,
            reports_per_reporter_per_minute: 30,
            intake_batch: 512,
            intake_queue: 8192,
            max_http_connections: 4096,
            header_timeout_seconds: 10,
            body_timeout_seconds: 120,
            max_inflight_body_bytes: 256 << 20,
            intake_concurrency: 2,
            render_concurrency: 2,
            hash_concurrency: 2,
            max_decode_pixels: 50_000_000,
            relay_mailbox_limit: 10_000,
            match_api: false,
            match_api_open_scopes: Vec::new(),
            match_lookup_queue: 512,
            match_poll_ms: 250,
            bank_signing_key: None,
            bundle_valid_hours: 24 * 7,
            url_fetch_hosts: Vec::new(),
            url_fetch_timeout_seconds: 10,
            url_fetch_allow_private: false,
            banks: Vec::new(),
            bank_public_key: None,
            webhooks: Vec::new(),
            webhook_max_attempts: 8,
            webhook_backoff_ms: 1000,
            webhook_max_backoff_ms: 3_600_000,
            webhook_timeout_seconds: 10,
            webhook_poll_ms: 500,
            strike_days: frankly_review::DEFAULT_STRIKE_DAYS,
            retention: Vec::new(),
            retention_interval_seconds: 3600,
            cybertipline: None,
            coop: None,
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

    /// Applies `FRANKLY_DATA_DIR`, `FRANKLY_KEY_DIR`, `FRANKLY_DATABASE_URL`,
    /// `FRANKLY_LISTEN` and `FRANKLY_SECURE_COOKIES`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ServerError> {
        if let Some(dir) = var("FRANKLY_DATA_DIR") {
            self.data_dir = dir.into();
        }
        if let Some(dir) = var("FRANKLY_KEY_DIR") {
            self.key_dir = Some(dir.into());
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

    /// The audit checkpoint file in effect.
    pub fn audit_checkpoints(&self) -> PathBuf {
        self.audit_checkpoints.clone().unwrap_or_else(|| self.data_dir.join("audit-checkpoints.jsonl"))
    }

    /// The directory of the key chain files in effect.
    pub fn key_dir(&self) -> PathBuf {
        self.key_dir.clone().unwrap_or_else(|| self.data_dir.clone())
    }

    /// The retention rules in effect (checked by [`validate`](Self::validate)).
    pub fn retention(&self) -> frankly_review::Retention {
        frankly_review::Retention::new(self.retention.clone()).unwrap_or_default()
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
        if self.report_key_rotation_days == 0 {
            return bad("report_key_rotation_days must be positive");
        }
        if self.intake_batch == 0 || self.intake_queue == 0 {
            return bad("intake_batch and intake_queue must be positive");
        }
        if self.max_http_connections == 0 || self.header_timeout_seconds == 0 || self.body_timeout_seconds == 0 {
            return bad("max_http_connections, header_timeout_seconds and body_timeout_seconds must be positive");
        }
        if self.max_inflight_body_bytes < frankly_report::MAX_ENVELOPE_BYTES {
            return bad("max_inflight_body_bytes must hold at least one report envelope (32 MiB)");
        }
        if self.intake_concurrency == 0 || self.render_concurrency == 0 || self.hash_concurrency == 0 {
            return bad("intake_concurrency, render_concurrency and hash_concurrency must be positive");
        }
        if let Some(bad_scope) = self.match_api_open_scopes.iter().find(|s| crate::Scope::parse(s).is_none()) {
            return bad(&format!("match_api_open_scopes: unknown scope {bad_scope:?} (hash, match, curate, bundle)"));
        }
        if self.match_lookup_queue == 0 {
            return bad("match_lookup_queue must be positive");
        }
        if self.match_poll_ms == 0 || self.match_poll_ms > 60_000 {
            return bad("match_poll_ms must be 1 to 60000");
        }
        if self.bundle_valid_hours == 0 {
            return bad("bundle_valid_hours must be positive");
        }
        if self.url_fetch_timeout_seconds == 0 || self.url_fetch_timeout_seconds > 300 {
            return bad("url_fetch_timeout_seconds must be 1 to 300");
        }
        if let Some(host) = self.url_fetch_hosts.iter().find(|h| crate::fetch::HostRule::parse(h).is_none()) {
            return bad(&format!("url_fetch_hosts: {host:?} is not a host name or *.domain"));
        }
        if self.reports_per_reporter_per_minute == 0 {
            return bad("reports_per_reporter_per_minute must be positive");
        }
        for w in &self.webhooks {
            if !(w.url.starts_with("https://") || w.url.starts_with("http://"))
                || w.url.parse::<reqwest::Url>().is_err()
            {
                return bad(&format!("webhooks: {:?} is not an http(s) URL", w.url));
            }
            if w.format == EndpointFormat::Coop
                && (self.coop.is_none() || w.events != [crate::webhooks::Event::ReportCreated.name()])
            {
                return bad(&format!(
                    "webhooks: {:?} has format coop: it needs [coop] and events = [\"report.created\"]",
                    w.url
                ));
            }
            if let Some(e) = w.events.iter().find(|e| e.parse::<crate::webhooks::Event>().is_err()) {
                return bad(&format!(
                    "webhooks: unknown event {e:?} (report.created, report.decided, appeal.filed, appeal.decided)"
                ));
            }
        }
        if self.webhook_max_attempts == 0
            || self.webhook_backoff_ms == 0
            || self.webhook_max_backoff_ms < self.webhook_backoff_ms
        {
            return bad(
                "webhook_max_attempts and webhook_backoff_ms must be positive, and webhook_max_backoff_ms at least webhook_backoff_ms",
            );
        }
        if self.webhook_timeout_seconds == 0
            || self.webhook_timeout_seconds > 300
            || self.webhook_poll_ms == 0
            || self.webhook_poll_ms > 60_000
        {
            return bad("webhook_timeout_seconds must be 1 to 300 and webhook_poll_ms 1 to 60000");
        }
        if self.strike_days == 0 {
            return bad("strike_days must be positive");
        }
        if let Err(e) = frankly_review::Retention::new(self.retention.clone()) {
            return bad(&format!("retention: {e}"));
        }
        if self.retention_interval_seconds == 0 {
            return bad("retention_interval_seconds must be positive");
        }
        if let Some(coop) = &self.coop
            && coop.public_key_file.is_some()
            && (coop.account.is_none() || coop.actions.is_empty())
        {
            return bad("[coop] public_key_file needs account (whose decisions Coop's are) and [coop.actions]");
        }
        if !self.banks.is_empty() && self.bank_public_key.is_none() {
            return bad("banks need bank_public_key: the server only matches against signed banks");
        }
        Ok(())
    }
}
