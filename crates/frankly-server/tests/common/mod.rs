//! Test harness: the app in-process on a fresh SQLite or PostgreSQL
//! database, franked reports, and HTTP helpers.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::print_stderr)]

pub mod franked;
pub mod hma;
pub mod random;
pub mod review;

/// Runs each named `async fn(Harness)` as two tests, `sqlite::NAME` and
/// `postgres::NAME`, each on a fresh server. The test file imports
/// `Harness` and `Engine`.
#[allow(unused_macros)] // browser.rs runs on SQLite only
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(h) = super::Harness::start(super::Engine::Sqlite, |_| {}).await {
                    super::$name(h).await;
                }
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(h) = super::Harness::start(super::Engine::Postgres, |_| {}).await {
                    super::$name(h).await;
                }
            })*
        }
    };
}

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use frankly_server::{AppState, Config};
use tower::ServiceExt;

/// A server in-process with its own data directory and database.
pub struct Harness {
    pub state: AppState,
    pub app: Router,
    pub dir: tempfile::TempDir,
    /// Device tokens by device, registered on first use.
    tokens: tokio::sync::Mutex<std::collections::HashMap<frankly_franking::Party, String>>,
}

/// Which database a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Harness {
    /// A fresh server on `engine`, with `tweak` applied to the config;
    /// `None` (after a printed notice) when PostgreSQL is unavailable.
    pub async fn start(engine: Engine, tweak: impl FnOnce(&mut Config)) -> Option<Harness> {
        Self::start_with_banks(engine, tweak, frankly_server::ServerBanks::default()).await
    }

    /// [`Harness::start`] with the server matching against `banks`.
    pub async fn start_with_banks(
        engine: Engine,
        tweak: impl FnOnce(&mut Config),
        banks: frankly_server::ServerBanks,
    ) -> Option<Harness> {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config { data_dir: dir.path().join("data"), ..Config::default() };
        if let Engine::Postgres = engine {
            config.database_url = Some(fresh_postgres_database().await?);
        }
        tweak(&mut config);
        let state = AppState::open(config, banks).await.unwrap();
        let app = frankly_server::app(state.clone());
        Some(Harness { state, app, dir, tokens: Default::default() })
    }

    /// A second instance on the same database and data directory (another
    /// server behind the load balancer).
    pub async fn another_instance(&self) -> AppState {
        AppState::open(self.state.config().clone(), Default::default()).await.unwrap()
    }

    pub fn keyring(&self) -> std::sync::Arc<frankly_franking::Keyring> {
        self.state.platform_keys().keyring()
    }

    pub fn server_key(&self) -> (u32, frankly_report::ServerPublicKey) {
        let (id, key) = self.state.report_keys().keyring().current().map(|(i, k)| (i, k.public().clone())).unwrap();
        (id, key)
    }

    /// The bearer token of `device`, registering it with the platform first.
    pub async fn token(&self, device: &frankly_franking::Party) -> String {
        let mut tokens = self.tokens.lock().await;
        if let Some(t) = tokens.get(device) {
            return t.clone();
        }
        let body = serde_json::json!({ "user_id": device.user_id, "device_id": device.device_id });
        let (status, _, answer) = self
            .request(
                Request::post("/v1/devices")
                    .header(header::AUTHORIZATION, format!("Bearer {}", self.platform_token()))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
        let v: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        let token = v["token"].as_str().unwrap().to_owned();
        tokens.insert(device.clone(), token.clone());
        token
    }

    /// Files an appeal as the platform (`POST /v1/appeals`); returns the status.
    pub async fn appeal(&self, report_id: &str, appellant: &str, statement: &str) -> StatusCode {
        let body = serde_json::json!({"report_id": report_id, "appellant": appellant, "statement": statement});
        let req = Request::post("/v1/appeals")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.platform_token()))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.request(req).await.0
    }

    pub fn platform_token(&self) -> String {
        self.state.secrets().platform_token().to_string()
    }

    pub async fn request(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response = self.app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec();
        (status, headers, body)
    }

    /// Posts a report with the credential of the device it names (the
    /// harness can read the envelope; a device cannot read another's), or
    /// of a test device for envelopes that do not open.
    pub async fn post_report(&self, envelope: Vec<u8>) -> (StatusCode, serde_json::Value) {
        let reporter = match self.state.report_keys().keyring().open(&envelope, 0) {
            Ok((_, report)) => report.reporter,
            Err(_) => frankly_franking::Party::new("tester", "phone"),
        };
        let token = self.token(&reporter).await;
        self.post_report_with(Some(&token), envelope).await
    }

    /// Posts a report with `token` (or none).
    pub async fn post_report_with(&self, token: Option<&str>, envelope: Vec<u8>) -> (StatusCode, serde_json::Value) {
        let mut req = Request::post("/v1/reports");
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let (status, _, body) = self.request(req.body(Body::from(envelope)).unwrap()).await;
        (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
    }

    /// The stored reports, oldest first: (row id, queue, priority, content).
    pub async fn stored(&self) -> Vec<(i64, String, i64, frankly_server::StoredReport)> {
        use sqlx::Row;
        let pool = sqlx::AnyPool::connect(&self.state.config().database_url()).await.unwrap();
        let rows =
            sqlx::query("SELECT id, queue, priority, content FROM reports ORDER BY id").fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows.iter()
            .map(|r| {
                let content: Vec<u8> = r.try_get("content").unwrap();
                (
                    r.try_get("id").unwrap(),
                    r.try_get("queue").unwrap(),
                    r.try_get("priority").unwrap(),
                    serde_json::from_slice(&content).unwrap(),
                )
            })
            .collect()
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut req = Request::get(path);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        let (s, h, b) = self.request(req.body(Body::empty()).unwrap()).await;
        (s, h, String::from_utf8_lossy(&b).into_owned())
    }

    pub async fn post_form(
        &self,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let body = form.iter().map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v))).collect::<Vec<_>>().join("&");
        let mut req = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        let (s, h, b) = self.request(req.body(Body::from(body)).unwrap()).await;
        (s, h, String::from_utf8_lossy(&b).into_owned())
    }

    /// Creates a user and signs in; returns the cookie header and CSRF token.
    pub async fn sign_in(&self, username: &str, role: frankly_review::Role) -> Moderator {
        frankly_server::create_user(self.state.db(), "test", username, "a long test password", role).await.unwrap();
        self.sign_in_existing(username).await
    }

    pub async fn sign_in_existing(&self, username: &str) -> Moderator {
        let (_, headers, page) = self.get("/login", None).await;
        let login_cookie = cookie_of(&headers, "frankly_login_csrf");
        let csrf = hidden_csrf(&page);
        let (status, headers, _) = self
            .post_form(
                "/login",
                Some(&format!("frankly_login_csrf={login_cookie}")),
                &[("csrf", &csrf), ("username", username), ("password", "a long test password")],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "sign-in of {username}");
        let session = cookie_of(&headers, "frankly_session");
        let cookie = format!("frankly_session={session}");
        let (_, _, page) = self.get("/", Some(&cookie)).await;
        Moderator { cookie, csrf: hidden_csrf(&page) }
    }
}

/// A signed-in moderator's cookie and CSRF token.
#[derive(Clone, Debug)]
pub struct Moderator {
    pub cookie: String,
    pub csrf: String,
}

pub fn cookie_of(headers: &axum::http::HeaderMap, name: &str) -> String {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")).map(|rest| rest.split(';').next().unwrap().to_string()))
        .unwrap_or_else(|| panic!("no {name} cookie in {headers:?}"))
}

pub fn hidden_csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().unwrap().to_string()
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn location(headers: &axum::http::HeaderMap) -> String {
    headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

// ---- PostgreSQL: a throwaway cluster per test process, or FRANKLY_TEST_POSTGRES_URL ----

struct Cluster {
    base_url: String,
    _dir: Option<tempfile::TempDir>,
}

static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

fn pg_bin(name: &str) -> Option<PathBuf> {
    let from_path =
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|c| c.is_file()));
    from_path.or_else(|| {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin").join(name))
            .filter(|c| c.is_file())
            .collect();
        found.sort();
        found.pop()
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Starts `postgres` under a watchdog shell that stops it when this test
/// process exits, so no server outlives the tests. As root (PostgreSQL
/// refuses to run as root) the cluster runs as `nobody`.
fn start_cluster() -> Option<Cluster> {
    if let Ok(url) = std::env::var("FRANKLY_TEST_POSTGRES_URL") {
        return Some(Cluster { base_url: url.trim_end_matches('/').to_string(), _dir: None });
    }
    let (Some(initdb), Some(postgres)) = (pg_bin("initdb"), pg_bin("postgres")) else {
        missing("PostgreSQL binaries (initdb, postgres) not found");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let as_user = |program: &Path| {
        if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let data = dir.path().join("pg");
    let ok = as_user(&initdb)
        .args(["-A", "trust", "-U", "frankly", "--no-sync", "-D"])
        .arg(&data)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        missing("initdb failed");
        return None;
    }
    let port = free_port();
    let script = format!(
        "{pg} -D {data} -p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300 \
         >{log} 2>&1 & PG=$!; while [ -d /proc/{parent} ]; do sleep 0.5; done; kill -INT $PG; wait $PG; rm -rf {data}",
        pg = postgres.display(),
        data = data.display(),
        sock = dir.path().display(),
        log = dir.path().join("pg.log").display(),
        parent = std::process::id(),
    );
    // The watchdog outlives this function on purpose: it stops the cluster
    // when the test process exits.
    #[allow(clippy::zombie_processes)]
    as_user(Path::new("/bin/sh")).args(["-c", &script]).spawn().unwrap();
    let base_url = format!("postgres://frankly@127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            std::thread::sleep(std::time::Duration::from_millis(300));
            return Some(Cluster { base_url, _dir: Some(dir) });
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    missing("postgres did not start");
    None
}

/// A service or tool a test needs is missing. With
/// `FRANKLY_REQUIRE_SERVICES=1` (set by `.ci/run`) that fails the test;
/// otherwise the test prints a notice and skips (a developer machine without
/// PostgreSQL or Chromium).
pub fn missing(what: &str) {
    assert!(
        std::env::var_os("FRANKLY_REQUIRE_SERVICES").is_none_or(|v| v != "1"),
        "{what}, and FRANKLY_REQUIRE_SERVICES=1 makes a missing service a failure"
    );
    eprintln!("NOTICE: {what}: skipping");
}

/// A new empty database on the test cluster.
pub async fn fresh_postgres_database() -> Option<String> {
    let cluster = CLUSTER.get_or_init(start_cluster).as_ref()?;
    let name = format!("frankly_test_{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::SeqCst));
    sqlx::any::install_default_drivers();
    let mut conn =
        <sqlx::AnyConnection as sqlx::Connection>::connect(&format!("{}/postgres", cluster.base_url)).await.unwrap();
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str()).await.unwrap();
    Some(format!("{}/{name}", cluster.base_url))
}

/// A photo from the shared corpus.
pub fn photo() -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/photos");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    std::fs::read(&files[0]).unwrap()
}
