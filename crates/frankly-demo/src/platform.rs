//! The platform's side, in process: `frankly-server` (relay, tagging,
//! report intake, review) on a free port with a fresh data directory and
//! the demo bank, and scanners built from the shipped policies and models.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use frankly_bank::{Matcher, VerifiedBank, VerifiedVideoBank, VideoMatcher};
use frankly_client::{Scanner, trust_local_policy};
use frankly_policy::Audience;
use frankly_server::{AppState, Config, ServerError};
use tokio::sync::oneshot;
use zeroize::Zeroizing;

use crate::DemoError;
use crate::assets::{demo_bank, demo_video_bank};

/// A running server with its state, on embedded defaults.
pub struct Platform {
    url: String,
    state: AppState,
    bank: VerifiedBank,
    video_bank: VerifiedVideoBank,
    bundle_bytes: usize,
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<Result<(), ServerError>>,
    temp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Platform {
    /// Starts the server on `listen` (port 0: a free one) with its data in
    /// `data_dir` (a fresh temporary directory if `None`, removed on stop).
    /// Its own banks are the demo bank and the demo video bank, signed and
    /// verified.
    pub async fn start(data_dir: Option<PathBuf>, listen: std::net::SocketAddr) -> Result<Platform, DemoError> {
        let temp = match &data_dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().map_err(|e| DemoError::Setup(format!("temporary directory: {e}")))?),
        };
        let data_dir = data_dir.or_else(|| temp.as_ref().map(|t| t.path().to_path_buf())).unwrap_or_default();
        let now = u64::try_from(frankly_server::now_ms() / 1000).unwrap_or(0);
        let bank_key = frankly_bundle::generate_key().map_err(|e| DemoError::Setup(e.to_string()))?;
        let (bundle, bank) = demo_bank(&bank_key, now)?;
        let video_bank = demo_video_bank(&bank_key, now)?;
        let config = Config { listen, data_dir, ..Config::default() };
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let banks = frankly_server::ServerBanks {
            matcher: Matcher::new(vec![bank.bank().clone()]),
            videos: VideoMatcher::new(vec![video_bank.bank().clone()]),
        };
        let state = AppState::open(config, banks).await?;
        let (tx, rx) = oneshot::channel();
        let server = tokio::spawn(frankly_server::serve(state.clone(), listener, async {
            let _ = rx.await;
        }));
        Ok(Platform { url, state, bank, video_bank, bundle_bytes: bundle.len(), shutdown: Some(tx), server, temp })
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's state (database, keys, configuration).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The demo bank, as the server and devices load it: verified from
    /// the platform's signed bundle.
    pub fn bank(&self) -> &VerifiedBank {
        &self.bank
    }

    /// The demo video bank, verified from its signed bundle.
    pub fn video_bank(&self) -> &VerifiedVideoBank {
        &self.video_bank
    }

    /// Size of the signed bank bundle.
    pub fn bundle_bytes(&self) -> usize {
        self.bundle_bytes
    }

    /// Where the data lives.
    pub fn data_dir(&self) -> &Path {
        &self.state.config().data_dir
    }

    /// The token with which the platform registers devices.
    pub fn platform_token(&self) -> Zeroizing<String> {
        Zeroizing::new(self.state.secrets().platform_token().to_owned())
    }

    /// Creates `conversation` with `members` (users), as the platform's
    /// own systems would when a chat or group is made.
    pub async fn create_conversation(&self, conversation: &str, members: &[&str]) -> Result<(), DemoError> {
        let relay = crate::relay::Relay::new(&self.url, Some(&self.platform_token()));
        let request = frankly_api::ConversationRequest {
            conversation_id: conversation.to_owned(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        };
        let _: () = relay.json(http::Method::POST, "/v1/conversations", Some(&request)).await?;
        Ok(())
    }

    /// Adds `user` to `conversation` (a late joiner sees messages from then on).
    pub async fn add_member(&self, conversation: &str, user: &str) -> Result<(), DemoError> {
        let relay = crate::relay::Relay::new(&self.url, Some(&self.platform_token()));
        let request = frankly_api::MemberRequest { conversation_id: conversation.to_owned(), user_id: user.to_owned() };
        let _: () = relay.json(http::Method::POST, "/v1/conversations/members", Some(&request)).await?;
        Ok(())
    }

    /// Whether the data directory is temporary.
    pub fn is_temporary(&self) -> bool {
        self.temp.is_some()
    }

    /// Stops the server (and removes a temporary data directory).
    pub async fn stop(mut self) -> Result<(), DemoError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.server).await.map_err(|e| DemoError::Setup(e.to_string()))??;
        Ok(())
    }
}

/// A scanner for one device: the shipped policy `policy` (from
/// `policies_dir`) for `audience`, the models its rules read (from
/// `models_dir`), `bank` and `video_bank`. The policy is the repository's file, read
/// from the disk of the machine the demo runs on, so it is trusted as
/// local (`frankly_client::trust_local_policy`); a real device verifies
/// the platform's signed policy bundle instead.
pub fn load_scanner(
    policies_dir: &Path,
    models_dir: &Path,
    policy: &str,
    audience: Audience,
    bank: &VerifiedBank,
    video_bank: &VerifiedVideoBank,
) -> Result<Arc<Scanner>, DemoError> {
    let path = policies_dir.join(format!("{policy}.toml"));
    let text = std::fs::read_to_string(&path).map_err(|e| {
        DemoError::Setup(format!(
            "cannot read policy {}: {e} (run from the repository root, or pass --policies)",
            path.display()
        ))
    })?;
    let policy = trust_local_policy(&text).map_err(|e| DemoError::Setup(format!("policy {}: {e}", path.display())))?;
    let scanner = Scanner::builder(policy, audience)
        .bank(bank.clone())
        .video_bank(video_bank.clone())
        .models_from_dir(models_dir)?
        .build()?;
    Ok(Arc::new(scanner))
}
