//! frankly's server: the platform's delivery tagging service and relay, and
//! the moderation server with its review queue and web UI.
//!
//! # Design
//!
//! One binary runs every role ([`app`] builds one `axum` router), on
//! embedded defaults: a data directory holding a SQLite database and the
//! key files, created on first start. For more than one machine, several
//! instances share one PostgreSQL database; everything that must be agreed
//! (platform tag keys and their rotation, the queue and its claims, the
//! audit chain) lives in the database, so instances are interchangeable
//! behind a load balancer.
//!
//! - **Tagging and relay** (`/v1/devices`, `/v1/conversations`,
//!   `/v1/messages`, `/v1/frank`): the platform's half of franking v2. It
//!   knows each conversation's members and accepts a message only from a
//!   member device, with one E2EE copy for every other member device; it
//!   numbers the message in the conversation, tags each copy (and the
//!   sender's own) for its recipient device with the current platform key,
//!   MACs each delivery under that device's key, and forwards the copies.
//!   It never sees a plaintext.
//! - **Intake** (`/v1/reports`): only an authenticated device may report
//!   (401 otherwise, before any decryption), rate-limited per device. Sealed
//!   reports are opened, every message checked as the reporter's own copy,
//!   verified attachments matched against the server's signed banks, and
//!   the report committed before the answer (group commit, see
//!   [`intake`](crate::intake)). Every opened report gets the same answer,
//!   verified or not, so the server is no verification oracle.
//! - **Review** (the HTML pages): queues by category and priority, claims
//!   with leases, decisions with the DSA statement-of-reasons fields,
//!   escalation and appeals; media blurred and grayscale by default.
//! - **Accounts** with roles, Argon2id passwords, `HttpOnly` session cookies
//!   and CSRF tokens; authorization is checked on every route through
//!   `frankly_review::Role::may`, the one permission table.
//! - **Audit**: every view, claim, decision and login is appended to a
//!   hash chain in the same transaction as the action; [`audit::verify`]
//!   checks it.
//! - **Operations**: `/healthz` and Prometheus `/metrics`.
//!
//! What the server holds: the report key (to open reports), the platform tag
//! keys (to tag and verify), the master secret from which device delivery
//! keys are derived, and what users reported. It never holds a franking key of an unreported message, nor any
//! scanning result that a device did not put in a report.

mod api;
mod attachments;
pub mod audit;
mod auth;
mod bank_feed;
mod config;
mod coop;
mod cybertip;
mod db;
mod error;
mod fetch;
pub mod guard;
mod hma;
mod intake;
mod keychain;
pub mod lifecycle;
mod login;
mod match_store;
mod match_sync;
mod matching;
mod metrics;
mod platform_keys;
pub mod queue;
mod report_keys;
mod review_api;
mod secrets;
mod web;
pub mod webhooks;

use std::sync::Arc;

pub use attachments::AttachmentMeta;
pub use auth::{MIN_PASSWORD_CHARS, User, create_user, fold_username};
pub use bank_feed::{MAX_DELTA_CHANGES, export_bank, publish_bundle};
pub use config::{Config, EndpointFormat, WebhookEndpoint};
pub use coop::CoopConfig;
pub use cybertip::CybertipConfig;
pub use db::{Backend, Db, SCHEMA_VERSION};
pub use error::{AppError, ServerError};
pub use fetch::{HostRule, MAX_REDIRECTS, is_public};
pub use hma::{MAX_DISABLE_AHEAD_SECS, MAX_NOTE_CHARS, MAX_UPLOAD_BYTES};
pub use intake::{StoredReport, StoredVerdict};
pub use keychain::MAX_ADVANCE;
pub use login::{FAILURE_WINDOW_MS, FREE_FAILURES, LOGINS_PER_ADDRESS_PER_MINUTE, MAX_DELAY, MAX_TRACKED};
pub use match_store::{
    ApiKeyRow, IMPORT_BATCH, MAX_API_KEY_NAME_CHARS, Scope, api_keys, create_api_key, import_signals, revoke_api_key,
};
pub use match_sync::{COMPACT_AFTER, FULL_RELOAD_CHANGES, SYNC_BATCH};
pub use matching::{
    HashedFrame, MAX_MATCH_ATTACHMENT_BYTES, MatchSignal, SERVER_SECONDS_PER_HASH, STRIP_FRAMES, STRIP_TILE_HEIGHT,
    ServerBanks, ServerMatch, StoredVideo, StripError, VideoEvidence, render_strip, strip_frames,
};
pub use metrics::Metrics;
pub use platform_keys::{PlatformKeys, TAG_BACKDATE_MS, TAG_CHAIN_FILE};
pub use report_keys::{LEGACY_REPORT_KEY_FILE, REPORT_CHAIN_FILE, ReportKeys};
pub use secrets::{
    AUDIT_KEY_FILE, AUDIT_PUBLIC_KEY_FILE, DEVICE_MASTER_FILE, PLATFORM_TOKEN_FILE, Secrets, WEBHOOK_KEY_FILE,
    WEBHOOK_PUBLIC_KEY_FILE,
};

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Everything the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    db: Db,
    secrets: Secrets,
    keys: PlatformKeys,
    report_keys: ReportKeys,
    banks: ServerBanks,
    metrics: Arc<Metrics>,
    intake: intake::Intake,
    limits: api::Limits,
    body_budget: guard::BodyBudget,
    intake_slots: Arc<tokio::sync::Semaphore>,
    render_slots: Arc<tokio::sync::Semaphore>,
    hash_slots: Arc<tokio::sync::Semaphore>,
    lookup_slots: Arc<tokio::sync::Semaphore>,
    bundle_slots: Arc<tokio::sync::Semaphore>,
    login: login::LoginGuard,
    matching: match_sync::MatchLock,
    feed: bank_feed::Feed,
    fetcher: fetch::Fetcher,
    webhook_client: reqwest::Client,
    /// Coop's webhook signing key, read once at start (`[coop] public_key_file`).
    coop_key: Option<frankly_coop::CoopKey>,
    checkpointed: std::sync::atomic::AtomicI64,
}

impl AppState {
    /// Opens the data directory and database (creating both on first
    /// start), loads or makes the keys, and starts the intake writer.
    /// Needs a Tokio runtime.
    pub async fn open(config: Config, banks: ServerBanks) -> Result<AppState, ServerError> {
        config.validate()?;
        let secrets = Secrets::load_or_create(&config.data_dir)?;
        let db = Db::connect(&config.database_url(), config.max_connections).await?;
        let key_dir = config.key_dir();
        secrets::private_dir(&key_dir)?;
        let keys = PlatformKeys::load(&db, &key_dir, config.key_rotation_hours, config.key_retention_days).await?;
        let report_keys = ReportKeys::load(
            &db,
            &config.data_dir,
            &key_dir,
            config.report_key_rotation_days,
            config.report_key_grace_days,
        )
        .await?;
        let metrics = Arc::new(Metrics::new());
        let intake = intake::Intake::start(db.clone(), config.intake_batch, config.intake_queue, Arc::clone(&metrics));
        let limits = api::Limits::new(&config);
        let body_budget = guard::BodyBudget::new(config.max_inflight_body_bytes);
        let intake_slots = Arc::new(tokio::sync::Semaphore::new(config.intake_concurrency));
        let render_slots = Arc::new(tokio::sync::Semaphore::new(config.render_concurrency));
        let hash_slots = Arc::new(tokio::sync::Semaphore::new(config.hash_concurrency));
        let lookup_slots = Arc::new(tokio::sync::Semaphore::new(config.match_lookup_queue));
        // One bundle built at a time: a large bank's takes seconds and memory.
        let bundle_slots = Arc::new(tokio::sync::Semaphore::new(1));
        let login = login::LoginGuard::new(secrets.login_form_key());
        let matching = match_sync::MatchLock::load(&db, config.match_api).await?;
        let feed = bank_feed::Feed::load(&config)?;
        let fetcher = fetch::Fetcher::new(&config)?;
        // Endpoints are the operator's configuration, so no address filter;
        // no redirects (a delivery goes where it is configured to), a timeout.
        let webhook_client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(config.webhook_timeout_seconds))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| ServerError::Config(format!("webhook client: {e}")))?;
        let coop_key = match &config.coop {
            Some(coop) => coop::public_key(coop)?,
            None => None,
        };
        Ok(AppState {
            inner: Arc::new(Inner {
                config,
                db,
                secrets,
                keys,
                report_keys,
                banks,
                metrics,
                intake,
                limits,
                body_budget,
                intake_slots,
                render_slots,
                hash_slots,
                lookup_slots,
                bundle_slots,
                login,
                matching,
                feed,
                fetcher,
                webhook_client,
                coop_key,
                checkpointed: std::sync::atomic::AtomicI64::new(0),
            }),
        })
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The secrets.
    pub fn secrets(&self) -> &Secrets {
        &self.inner.secrets
    }

    /// The platform tag keys.
    pub fn platform_keys(&self) -> &PlatformKeys {
        &self.inner.keys
    }

    /// The report keys.
    pub fn report_keys(&self) -> &ReportKeys {
        &self.inner.report_keys
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}

/// The router of every role, for [`serve`] or for tests in-process. Every
/// route's body goes through [`guard::guard_body`]; axum's own body limit
/// is off, so the guard's table is the only one.
pub fn app(state: AppState) -> axum::Router {
    let mut routes = api::routes().merge(review_api::routes()).merge(web::routes());
    if state.config().match_api {
        routes = routes.merge(hma::routes()).merge(bank_feed::routes());
    }
    if state.inner.coop_key.is_some() {
        routes = routes.merge(coop::routes());
    }
    let match_api = state.config().match_api;
    let app = routes
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), guard::guard_body))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state);
    if match_api {
        // HMA's werkzeug routes `//c/banks` as `/c/banks`, and Coop's
        // default base URL ends in `/`: merge runs of slashes before routing.
        use tower::ServiceExt;
        axum::Router::new().fallback_service(app.map_request(hma::merge_slashes))
    } else {
        app
    }
}

/// Serves `listener` until `shutdown` resolves, with the connection cap and
/// timeouts of [`guard`], running lease expiry and key rotation in the
/// background.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let background = state.clone();
    let chores = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
        loop {
            tick.tick().await;
            let now = now_ms();
            if let Err(e) = queue::expire_leases(background.db(), now).await {
                tracing::warn!(error = %e, "lease expiry failed");
            }
            if let Err(e) = background.platform_keys().rotate_if_due(background.db(), now).await {
                tracing::warn!(error = %e, "key rotation failed");
            }
            if let Err(e) = background.report_keys().rotate(background.db(), now, false).await {
                tracing::warn!(error = %e, "report key rotation failed");
            }
            background.inner.limits.forget_idle();
            if let Err(e) = background.checkpoint_audit().await {
                tracing::warn!(error = %e, "audit checkpoint failed");
            }
            if let Err(e) = login::flush(&background.inner.login, background.db(), now).await {
                tracing::warn!(error = %e, "writing sign-in failure summaries failed");
            }
        }
    });
    let follower = state.config().match_api.then(|| {
        let poll = std::time::Duration::from_millis(state.config().match_poll_ms);
        tokio::spawn(match_sync::follow(state.clone(), poll))
    });
    let deliverer = (!state.config().webhooks.is_empty()).then(|| {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(state.config().webhook_poll_ms));
            loop {
                tick.tick().await;
                // A full round may leave more due: go on at once.
                loop {
                    match state.deliver_webhooks().await {
                        Ok(r) if r.delivered + r.retried + r.dead == webhooks::DELIVERY_BATCH as u64 => continue,
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "webhook delivery round failed");
                            break;
                        }
                    }
                }
            }
        })
    });
    let retention = state.config().retention();
    let purger = (!retention.is_empty()).then(|| {
        let state = state.clone();
        tokio::spawn(async move {
            let every = std::time::Duration::from_secs(state.config().retention_interval_seconds);
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = lifecycle::purge(state.db(), &retention, now_ms()).await {
                    tracing::warn!(error = %e, "retention purge failed");
                }
            }
        })
    });
    let metrics = Arc::clone(&state.inner.metrics);
    let config = state.config().clone();
    let result = guard::serve_connections(listener, app(state), &config, metrics, shutdown).await;
    chores.abort();
    if let Some(deliverer) = deliverer {
        deliverer.abort();
    }
    if let Some(purger) = purger {
        purger.abort();
    }
    if let Some(follower) = follower {
        follower.abort();
    }
    result
}

/// Replaces the current report key now (`frankly serve admin
/// rotate-report-key`); returns the new key's id.
pub async fn rotate_report_key(config: &Config) -> Result<u32, ServerError> {
    config.validate()?;
    secrets::private_dir(&config.data_dir)?;
    let key_dir = config.key_dir();
    secrets::private_dir(&key_dir)?;
    let db = Db::connect(&config.database_url(), 2).await?;
    let keys = ReportKeys::load(
        &db,
        &config.data_dir,
        &key_dir,
        config.report_key_rotation_days,
        config.report_key_grace_days,
    )
    .await?;
    keys.rotate(&db, now_ms(), true).await?;
    keys.keyring().current().map(|(id, _)| id).ok_or_else(|| ServerError::Internal("no report key".into()))
}

impl AppState {
    /// Writes an audit checkpoint now if the log grew since the last one
    /// (the chores do this every 30 s).
    pub async fn checkpoint_audit(&self) -> Result<Option<audit::Checkpoint>, ServerError> {
        let inner = &self.inner;
        audit::write_checkpoint(
            &inner.db,
            inner.secrets.audit_key(),
            &inner.config.audit_checkpoints(),
            &inner.checkpointed,
        )
        .await
    }

    /// How many accounts exist (the CLI says how to make the first).
    pub async fn user_count(&self) -> Result<i64, ServerError> {
        use sqlx::Row;
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(self.db().reader()).await?.try_get("n")?)
    }
}

/// The signal types the matching service serves, with HMA's thresholds.
pub const MATCH_SIGNAL_TYPES: [(frankly_bank::SignalType, u32); 2] =
    [(frankly_bank::SignalType::Pdq, 31), (frankly_bank::SignalType::VideoMd5, 0)];

impl AppState {
    /// The matching service's banks and indexes.
    pub(crate) fn matching(&self) -> &match_sync::MatchLock {
        &self.inner.matching
    }

    /// The `url=` fetcher.
    pub(crate) fn fetcher(&self) -> &fetch::Fetcher {
        &self.inner.fetcher
    }

    /// The bank bundles for devices.
    pub(crate) fn feed(&self) -> &bank_feed::Feed {
        &self.inner.feed
    }

    /// One round of what each instance does every `match_poll_ms` under
    /// [`serve`]: logs content whose `disable_until_ts` has passed as
    /// enabled, then applies the matching service's changes logged by any
    /// instance since the last round; returns how many it applied.
    pub async fn sync_matching(&self) -> Result<usize, ServerError> {
        match_store::log_due_enables(&self.inner.db, now_ms() / 1000).await?;
        self.inner.matching.catch_up(&self.inner.db).await
    }
}
