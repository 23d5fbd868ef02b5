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
//!   [`Role::can_see`] and [`Role::is_admin`].
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
pub mod audit;
mod auth;
mod config;
mod db;
mod error;
mod intake;
mod metrics;
mod platform_keys;
pub mod queue;
mod secrets;
mod web;

use std::sync::Arc;

use frankly_bank::Matcher;

pub use api::{
    AckRequest, ConversationRequest, Copy, Delivered, DeviceRequest, DeviceResponse, FrankRequest, Franked, MAX_COPIES,
    MAX_FETCH, MAX_MEMBERS, MAX_RELAY_BYTES, MemberRequest, PublicKeys, Received, SendRequest, SendResponse,
};
pub use auth::{MIN_PASSWORD_CHARS, Role, User, create_user};
pub use config::Config;
pub use db::{Backend, Db, SCHEMA_VERSION};
pub use error::{AppError, ErrorBody, ServerError};
pub use intake::{ServerMatch, StoredReport, StoredVerdict};
pub use metrics::Metrics;
pub use platform_keys::PlatformKeys;
pub use queue::{
    APPEALS_QUEUE, Action, AppealInput, CHILD_SAFETY_QUEUE, DecisionInput, ESCALATED_QUEUE, Ground, QUEUES,
};
pub use secrets::{DEVICE_MASTER_FILE, PLATFORM_TOKEN_FILE, REPORT_KEY_FILE, REPORT_KEY_ID, Secrets};

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
    matcher: Option<Matcher>,
    metrics: Arc<Metrics>,
    intake: intake::Intake,
    limits: api::Limits,
}

impl AppState {
    /// Opens the data directory and database (creating both on first
    /// start), loads or makes the keys, and starts the intake writer.
    /// Needs a Tokio runtime.
    pub async fn open(config: Config, matcher: Option<Matcher>) -> Result<AppState, ServerError> {
        config.validate()?;
        let secrets = Secrets::load_or_create(&config.data_dir)?;
        let db = Db::connect(&config.database_url(), config.max_connections).await?;
        let keys = PlatformKeys::load(&db, config.key_rotation_hours, config.key_retention_days).await?;
        let metrics = Arc::new(Metrics::new());
        let intake = intake::Intake::start(db.clone(), config.intake_batch, config.intake_queue, Arc::clone(&metrics));
        let limits = api::Limits::new(&config);
        Ok(AppState { inner: Arc::new(Inner { config, db, secrets, keys, matcher, metrics, intake, limits }) })
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

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}

/// The router of every role, for `axum::serve` or for tests in-process.
pub fn app(state: AppState) -> axum::Router {
    api::routes().merge(web::routes()).with_state(state)
}

/// Binds `config.listen` and serves until `shutdown` resolves, running
/// lease expiry and key rotation in the background.
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
            background.inner.limits.forget_idle();
        }
    });
    let result = axum::serve(listener, app(state).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| ServerError::Internal(format!("server: {e}")));
    chores.abort();
    result
}

impl AppState {
    /// How many accounts exist (the CLI says how to make the first).
    pub async fn user_count(&self) -> Result<i64, ServerError> {
        use sqlx::Row;
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(self.db().reader()).await?.try_get("n")?)
    }
}
