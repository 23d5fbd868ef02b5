//! Curation ships to devices, and beyond HMA: every change to a bank
//! bumps its version and gives a new signed bundle and a delta a device
//! applies; bundles signed offline are published and checked; instances
//! on one database see each other's changes through the change log;
//! `url=` fetching refuses loopback, link-local and private addresses
//! after DNS; a moderator banks a reported photo from the review UI; and
//! hostile input (path characters, a flood of lookups) gets a 4xx or 503,
//! nothing stored, no crash. On SQLite and PostgreSQL where it matters.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use common::franked::{conversation, seal, with_image};
use common::hma::Hma;
use common::random::pdqs;
use common::{Engine, location};
use frankly_bank::{Bank, SignalType, VerifiedBank, VerifyingKey, apply_delta_bundle, unix_now, verify_bundle};
use frankly_report::Reason;
use frankly_review::Role;
use frankly_server::Scope;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A signing key file (0600) in its own directory, and its public key.
fn signing_key() -> (tempfile::TempDir, PathBuf, VerifyingKey) {
    let dir = tempfile::tempdir().unwrap();
    let key = frankly_bank::generate_key().unwrap();
    let path = dir.path().join("bank-signing.key");
    std::fs::write(&path, frankly_bank::signing_key_text(&key).as_bytes()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    (dir, path, key.verifying_key())
}

/// GET with the harness's key, the raw answer.
async fn fetch(s: &Hma, path: &str, extra: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::get(path).header(header::AUTHORIZATION, format!("Bearer {}", s.key));
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    s.h.request(req.body(Body::empty()).unwrap()).await
}

async fn full_bundle(s: &Hma, bank: &str, key: &VerifyingKey) -> VerifiedBank {
    let (status, headers, bytes) = fetch(s, &format!("/v1/banks/{bank}/bundle"), &[]).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    let verified = verify_bundle(&bytes, key, unix_now(), None).unwrap();
    let version = verified.info().version.to_string();
    assert_eq!(headers["x-frankly-bundle-version"], version.as_str());
    assert_eq!(headers[header::ETAG], format!("\"{version}\"").as_str());
    verified
}

fn hashes_of(bank: &Bank) -> Vec<String> {
    let mut out: Vec<String> = bank.entries.iter().map(|e| SignalType::Pdq.format_hash(&e.hash)).collect();
    out.sort();
    out
}

async fn add(s: &Hma, bank: &str, body: Value) -> i64 {
    let (status, answer) = s.post(&format!("/c/bank/{bank}/signal"), body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["id"].as_i64().unwrap()
}

/// Every change bumps the version; the full bundle holds what matches;
/// a delta from any older version gives exactly the full bundle's bank.
async fn bundles_and_deltas_follow_every_change(engine: Engine) {
    let (_dir, path, public) = signing_key();
    let Some(s) = Hma::start_with(engine, |c| c.bank_signing_key = Some(path)).await else { return };
    let h = pdqs(1, 3);
    s.create_bank("CSAM_LIST").await;
    let ids = [
        add(&s, "CSAM_LIST", json!({ "pdq": h[0], "labels": ["csam", "tier1"] })).await,
        add(&s, "CSAM_LIST", json!({ "pdq": h[1], "note": "from NCMEC" })).await,
        add(&s, "CSAM_LIST", json!({ "pdq": h[2], "labels": ["csam"] })).await,
    ];
    let v4 = full_bundle(&s, "CSAM_LIST", &public).await;
    assert_eq!(v4.info().version, 4, "created, then three additions");
    let mut expected = h.clone();
    expected.sort();
    assert_eq!(hashes_of(v4.bank()), expected);
    let first = v4.bank().entries.iter().find(|e| SignalType::Pdq.format_hash(&e.hash) == h[0]).unwrap();
    assert_eq!(first.labels.iter().map(String::as_str).collect::<Vec<_>>(), ["csam", "tier1"]);
    assert_eq!(first.source_id.as_deref(), Some(format!("content:{}", ids[0]).as_str()));
    assert_eq!((v4.bank().name.as_str(), v4.bank().threshold), ("CSAM_LIST", 31));
    // Unchanged: 304 on the ETag, and a delta from the current version too.
    assert_eq!(
        fetch(&s, "/v1/banks/CSAM_LIST/bundle", &[("if-none-match", "\"4\"")]).await.0,
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(fetch(&s, "/v1/banks/CSAM_LIST/delta?from=4", &[]).await.0, StatusCode::NOT_MODIFIED);
    // Labels travel with matches too.
    let (_, found) = s.get(&format!("/m/lookup?signal_type=pdq&signal={}&include_metadata=true", h[0])).await;
    assert_eq!(found["CSAM_LIST"][0]["labels"], json!(["csam", "tier1"]), "{found}");

    // Disable one (version 5), delete another (version 6).
    let (status, _) = s.put(&format!("/c/bank/CSAM_LIST/content/{}", ids[1]), json!({ "disable_until_ts": 0 })).await;
    assert_eq!(status, StatusCode::OK);
    let v5 = full_bundle(&s, "CSAM_LIST", &public).await;
    assert_eq!((v5.info().version, v5.bank().len()), (5, 2));
    assert_eq!(s.delete(&format!("/c/bank/CSAM_LIST/content/{}", ids[0])).await.0, StatusCode::OK);
    let v6 = full_bundle(&s, "CSAM_LIST", &public).await;
    assert_eq!(hashes_of(v6.bank()), [h[2].clone()]);
    for (held, from) in [(&v4, 4), (&v5, 5)] {
        let (status, headers, bytes) = fetch(&s, &format!("/v1/banks/CSAM_LIST/delta?from={from}"), &[]).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
        assert_eq!(headers["x-frankly-bundle-version"], "6");
        let updated = apply_delta_bundle(held, &bytes, &public, unix_now()).unwrap();
        assert_eq!(updated.bank(), v6.bank(), "delta from {from}");
        assert!(bytes.len() < 400, "a delta of two changes is {} bytes", bytes.len());
    }
    let (status, _, body) = fetch(&s, "/v1/banks/CSAM_LIST/delta?from=7", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&body));
    assert_eq!(fetch(&s, "/v1/banks/CSAM_LIST/delta", &[]).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(fetch(&s, "/v1/banks/CSAM_LIST/delta?from=-1", &[]).await.0, StatusCode::BAD_REQUEST);

    // Disabled until a second from now: out of the bundle (version 7),
    // then logged as enabled once the time passed (version 8), back in.
    let until = unix_now() + 1;
    let (status, _) =
        s.put(&format!("/c/bank/CSAM_LIST/content/{}", ids[2]), json!({ "disable_until_ts": until })).await;
    assert_eq!(status, StatusCode::OK);
    let v7 = full_bundle(&s, "CSAM_LIST", &public).await;
    assert_eq!((v7.info().version, v7.bank().len()), (7, 0));
    while unix_now() <= until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.h.state.sync_matching().await.unwrap();
    let v8 = full_bundle(&s, "CSAM_LIST", &public).await;
    assert_eq!((v8.info().version, hashes_of(v8.bank())), (8, vec![h[2].clone()]));
    let (_, _, delta) = fetch(&s, "/v1/banks/CSAM_LIST/delta?from=7", &[]).await;
    assert_eq!(apply_delta_bundle(&v7, &delta, &public, unix_now()).unwrap().bank(), v8.bank());

    // A bulk import is logged change by change: a delta across it.
    let more = pdqs(9, 1_200);
    let labels = ["imported".to_owned()];
    frankly_server::import_signals(s.h.state.db(), "t", "CSAM_LIST", SignalType::Pdq, &more, &labels).await.unwrap();
    s.h.state.sync_matching().await.unwrap();
    let imported = full_bundle(&s, "CSAM_LIST", &public).await;
    assert_eq!((imported.info().version, imported.bank().len()), (8 + 1_200, 1_201));
    let (_, _, delta) = fetch(&s, "/v1/banks/CSAM_LIST/delta?from=8", &[]).await;
    assert_eq!(apply_delta_bundle(&v8, &delta, &public, unix_now()).unwrap().bank(), imported.bank());
    let (_, found) = s.get(&format!("/m/lookup?signal_type=pdq&signal={}&include_metadata=true", more[1_199])).await;
    assert_eq!(found["CSAM_LIST"][0]["labels"], json!(["imported"]), "{found}");

    // Negative banks are the server's rule, not shipped; unknown banks 404;
    // a key without the bundle scope is refused.
    let (status, _) = s.post("/c/banks", json!({ "name": "FALSE_POSITIVES", "negative": true })).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(fetch(&s, "/v1/banks/FALSE_POSITIVES/bundle", &[]).await.0, StatusCode::CONFLICT);
    assert_eq!(fetch(&s, "/v1/banks/NO_SUCH_BANK/bundle", &[]).await.0, StatusCode::NOT_FOUND);
    let (_, matcher) =
        frankly_server::create_api_key(s.h.state.db(), "t", "matcher", &[Scope::Match], None).await.unwrap();
    let req = Request::get("/v1/banks/CSAM_LIST/bundle")
        .header(header::AUTHORIZATION, format!("Bearer {}", matcher.as_str()))
        .body(Body::empty())
        .unwrap();
    assert_eq!(s.h.request(req).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        s.h.request(Request::get("/v1/banks/CSAM_LIST/bundle").body(Body::empty()).unwrap()).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_and_deltas_follow_every_change_on_sqlite() {
    bundles_and_deltas_follow_every_change(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_and_deltas_follow_every_change_on_postgres() {
    bundles_and_deltas_follow_every_change(Engine::Postgres).await;
}

/// A delta spans at most `MAX_DELTA_CHANGES` changes: from further back,
/// 409 and the full bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_from_too_far_back_is_refused() {
    let (_dir, path, public) = signing_key();
    let s = Hma::start_with(Engine::Sqlite, |c| c.bank_signing_key = Some(path)).await.unwrap();
    s.create_bank("LARGE").await;
    let held = full_bundle(&s, "LARGE", &public).await;
    assert_eq!(held.info().version, 1);
    let limit = usize::try_from(frankly_server::MAX_DELTA_CHANGES).unwrap();
    let many = pdqs(11, limit + 1);
    frankly_server::import_signals(s.h.state.db(), "t", "LARGE", SignalType::Pdq, &many, &[]).await.unwrap();
    let (status, _, body) = fetch(&s, "/v1/banks/LARGE/delta?from=1", &[]).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("fetch the full bundle"), "{text}");
    let (status, _, body) = fetch(&s, "/v1/banks/LARGE/delta?from=2", &[]).await;
    assert_eq!(status, StatusCode::OK, "exactly the limit: {}", String::from_utf8_lossy(&body));
    assert_eq!(full_bundle(&s, "LARGE", &public).await.bank().len(), limit + 1);
}

/// Without a signing key on the server: bundles are exported, signed
/// offline and published; what is published is checked as a device would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_signed_offline_are_published_after_the_checks_a_device_makes() {
    let s = Hma::start(Engine::Sqlite).await.unwrap();
    s.create_bank("HASHES").await;
    let h = pdqs(2, 2);
    add(&s, "HASHES", json!({ "pdq": h[0] })).await;
    let (status, _, body) = fetch(&s, "/v1/banks/HASHES/bundle", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&body).contains("publish-bundle"));
    assert_eq!(fetch(&s, "/v1/banks/HASHES/delta?from=1", &[]).await.0, StatusCode::CONFLICT);

    let db = s.h.state.db();
    let key = frankly_bank::generate_key().unwrap();
    let public = key.verifying_key();
    let (plain, version) = frankly_server::export_bank(db, "HASHES", SignalType::Pdq).await.unwrap();
    assert_eq!((version, plain.len()), (2, 1));
    let sign = |bank: &Bank, version: u64| frankly_bank::sign_bundle(bank, &key, version, unix_now(), unix_now() + 60);
    // Refused: another key; a version the bank is not at; other entries.
    let stranger = frankly_bank::generate_key().unwrap();
    let (forged, _) = frankly_bank::sign_bundle(&plain, &stranger, 2, unix_now(), unix_now() + 60).unwrap();
    assert!(frankly_server::publish_bundle(db, &forged, &public).await.is_err());
    let (ahead, _) = sign(&plain, 3).unwrap();
    let e = frankly_server::publish_bundle(db, &ahead, &public).await.unwrap_err();
    assert!(e.to_string().contains("version 3"), "{e}");
    let mut padded = plain.clone();
    padded.entries.push(frankly_bank::Entry {
        hash: SignalType::Pdq.parse_hash(&h[1]).unwrap(),
        labels: Default::default(),
        source_id: None,
    });
    padded.canonicalize();
    let (other, _) = sign(&padded, 2).unwrap();
    assert!(frankly_server::publish_bundle(db, &other, &public).await.unwrap_err().to_string().contains("entries"));
    let (bundle, _) = sign(&plain, 2).unwrap();
    assert_eq!(frankly_server::publish_bundle(db, &bundle, &public).await.unwrap(), 2);
    let (status, headers, served) = fetch(&s, "/v1/banks/HASHES/bundle", &[]).await;
    assert_eq!((status, served.as_slice()), (StatusCode::OK, bundle.as_slice()));
    assert_eq!(
        (&headers["x-frankly-bank-version"], &headers["x-frankly-bundle-version"]),
        (&"2".parse().unwrap(), &"2".parse().unwrap())
    );

    // Another bundle of the published version; then, after the bank moved
    // on, an older version than published.
    let (second, _) = frankly_bank::sign_bundle(&plain, &key, 2, unix_now() - 5, unix_now() + 60).unwrap();
    let e = frankly_server::publish_bundle(db, &second, &public).await.unwrap_err();
    assert!(e.to_string().contains("another bundle of version 2"), "{e}");
    add(&s, "HASHES", json!({ "pdq": h[1] })).await;
    let (now, v3) = frankly_server::export_bank(db, "HASHES", SignalType::Pdq).await.unwrap();
    assert_eq!(v3, 3);
    let (newer, _) = sign(&now, 3).unwrap();
    assert_eq!(frankly_server::publish_bundle(db, &newer, &public).await.unwrap(), 3);
    let (_, again) = frankly_server::export_bank(db, "HASHES", SignalType::Pdq).await.unwrap();
    assert_eq!(again, 3);
    let e = frankly_server::publish_bundle(db, &bundle, &public).await.unwrap_err();
    assert!(e.to_string().contains("version 2"), "{e}");
}

/// Two instances on one database: a change through one reaches the
/// other's index when it reads the change log, and under `serve` within
/// `match_poll_ms`.
async fn instances_see_each_others_changes(engine: Engine) {
    let Some(a) = Hma::start(engine).await else { return };
    let b = a.h.another_instance().await;
    let b_app = frankly_server::app(b.clone());
    let h = pdqs(3, 2);
    let lookup = |hash: &str| {
        Request::get(format!("/m/raw_lookup?signal_type=pdq&signal={hash}"))
            .header(header::AUTHORIZATION, format!("Bearer {}", a.key))
            .body(Body::empty())
            .unwrap()
    };
    let on_b = |hash: String| {
        let app = b_app.clone();
        let req = lookup(&hash);
        async move {
            let response = app.oneshot(req).await.unwrap();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
            serde_json::from_slice::<Value>(&body).unwrap()["matches"].as_array().unwrap().len()
        }
    };
    a.create_bank("SHARED").await;
    let id = add(&a, "SHARED", json!({ "pdq": h[0] })).await;
    assert_eq!(on_b(h[0].clone()).await, 0, "b has not read the log yet");
    assert!(b.sync_matching().await.unwrap() >= 2);
    assert_eq!(on_b(h[0].clone()).await, 1);
    assert_eq!(a.delete(&format!("/c/bank/SHARED/content/{id}")).await.0, StatusCode::OK);
    b.sync_matching().await.unwrap();
    assert_eq!(on_b(h[0].clone()).await, 0, "deletes reach b too");

    // Under serve, b follows the log by itself.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(frankly_server::serve(b.clone(), listener, async move {
        let _ = stopped.await;
    }));
    add(&a, "SHARED", json!({ "pdq": h[1] })).await;
    let started = Instant::now();
    while on_b(h[1].clone()).await == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "b never saw the change");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("instance b matched a change made through a after {:?}", started.elapsed());
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_see_each_others_changes_on_sqlite() {
    instances_see_each_others_changes(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_see_each_others_changes_on_postgres() {
    instances_see_each_others_changes(Engine::Postgres).await;
}

/// A local media host: a photo, a 40 MiB body, a stalled answer, redirects.
async fn media_host(photo: Vec<u8>) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/photo.jpg", get(move || async move { ([(header::CONTENT_TYPE, "image/jpeg")], photo) }))
        .route("/notes.txt", get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "hello") }))
        .route("/big", get(|| async { ([(header::CONTENT_TYPE, "image/jpeg")], vec![0u8; 40 << 20]) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route("/away", get(|| async { axum::response::Redirect::temporary("http://elsewhere.example/x.jpg") }))
        .route("/loop", get(|| async { axum::response::Redirect::temporary("/loop") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (addr, tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }))
}

fn upload(photo: &[u8]) -> Request<Body> {
    let boundary = "frankly-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(photo);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Request::post("/h/hash")
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
        .body(Body::from(body))
        .unwrap()
}

async fn message(s: &Hma, method: Method, path: &str) -> (StatusCode, String) {
    let (status, body) = s.call(method, path, None).await;
    (status, body["message"].as_str().map(str::to_owned).unwrap_or_else(|| body.to_string()))
}

/// `url=` refuses loopback, link-local (cloud metadata) and private
/// addresses, by literal or after DNS, and hosts off the allowlist; nothing
/// is stored. Allowed to reach this machine, it fetches within its size,
/// time and redirect limits, and hashes as an upload does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_fetching_refuses_internal_addresses_and_is_bounded() {
    let photo = common::photo();
    let (addr, _host) = media_host(photo.clone()).await;
    let port = addr.port();
    let hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "169.254.169.254".to_owned()];
    let s = Hma::start_with(Engine::Sqlite, |c| c.url_fetch_hosts = hosts.clone()).await.unwrap();
    s.create_bank("FETCHED").await;
    for (url, why) in [
        (format!("http://127.0.0.1:{port}/photo.jpg"), "127.0.0.1 is a private, loopback or reserved address"),
        ("http://169.254.169.254/latest/meta-data/".to_owned(), "169.254.169.254 is a private"),
        (format!("http://localhost:{port}/photo.jpg"), "localhost resolves only to private"),
        ("http://elsewhere.example/x.jpg".to_owned(), "elsewhere.example is not in url_fetch_hosts"),
        ("file:///etc/passwd".to_owned(), "scheme"),
    ] {
        for path in [format!("/h/hash?url={url}"), format!("/m/lookup?url={url}")] {
            let (status, text) = message(&s, Method::GET, &path).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {text}");
            assert!(text.contains(why), "{path}: {text}");
        }
        let (status, text) = message(&s, Method::POST, &format!("/c/bank/FETCHED/content?url={url}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    }
    let (status, body) = s.get("/c/bank/FETCHED").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(s.get("/m/index/status").await.1["pdq"]["size"], 0, "nothing was stored");

    // A media store on this machine, allowed on purpose.
    let s = Hma::start_with(Engine::Sqlite, |c| {
        c.url_fetch_hosts = hosts;
        c.url_fetch_allow_private = true;
        c.url_fetch_timeout_seconds = 1;
    })
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let (status, fetched) = s.get(&format!("/h/hash?url={base}/photo.jpg")).await;
    assert_eq!(status, StatusCode::OK, "{fetched}");
    let mut req = upload(&photo);
    req.headers_mut().insert(header::AUTHORIZATION, format!("Bearer {}", s.key).parse().unwrap());
    let (_, _, uploaded) = s.h.request(req).await;
    assert_eq!(fetched, serde_json::from_slice::<Value>(&uploaded).unwrap(), "fetched and uploaded hash alike");
    for (path, status, why) in [
        ("/notes.txt", StatusCode::BAD_REQUEST, "unsupported url ContentType: 'text/plain'"),
        ("/big", StatusCode::PAYLOAD_TOO_LARGE, "Content too large"),
        ("/slow", StatusCode::BAD_REQUEST, "timed out"),
        ("/away", StatusCode::BAD_REQUEST, "redirect refused: host elsewhere.example is not in url_fetch_hosts"),
        ("/loop", StatusCode::BAD_REQUEST, "more than 3 redirects"),
    ] {
        let (got, text) = message(&s, Method::GET, &format!("/h/hash?url={base}{path}")).await;
        assert_eq!(got, status, "{path}: {text}");
        assert!(text.contains(why), "{path}: {text}");
    }
    s.create_bank("FETCHED").await;
    let (status, added) = s.call(Method::POST, &format!("/c/bank/FETCHED/content?url={base}/photo.jpg"), None).await;
    assert_eq!(status, StatusCode::OK, "{added}");
    let (_, found) = s.get(&format!("/m/lookup?url={base}/photo.jpg")).await;
    assert_eq!(found["pdq"]["FETCHED"][0]["bank_content_id"], added["id"], "{found}");
}

/// Bank names with path characters are refused and never reach a path;
/// a flood of 10,000 concurrent lookups is answered 200 or 503 (the
/// bounded admission queue), and the server answers normally after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_characters_and_a_flood_of_lookups_are_refused_cleanly() {
    let s = Hma::start_with(Engine::Sqlite, |c| c.match_lookup_queue = 16).await.unwrap();
    for name in ["../../ETC", "A/B", "A\\B", "..", "A%2FB", "BANK\0"] {
        let (status, body) = s.post("/c/banks", json!({ "name": name })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name:?}: {body}");
    }
    for path in ["/c/bank/..%2F..%2Fetc", "/v1/banks/..%2F..%2Fetc/bundle", "/c/bank/..%2F..%2Fetc/content/1"] {
        let status = fetch(&s, path, &[]).await.0;
        assert!(status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST, "{path}: {status}");
    }
    let e = frankly_server::import_signals(s.h.state.db(), "t", "../X", SignalType::Pdq, &pdqs(4, 1), &[]).await;
    assert!(e.unwrap_err().to_string().contains("UPPER_WITH_UNDERSCORE"));
    assert_eq!(s.get("/c/banks").await.1, json!([]), "nothing stored");

    s.create_bank("FLOOD").await;
    let h = pdqs(5, 1).remove(0);
    add(&s, "FLOOD", json!({ "pdq": h, "note": "n" })).await;
    let path = format!("/m/lookup?signal_type=pdq&signal={h}&include_metadata=true");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10_000 {
        let app = s.h.app.clone();
        let req =
            Request::get(&path).header(header::AUTHORIZATION, format!("Bearer {}", s.key)).body(Body::empty()).unwrap();
        tasks.spawn(async move { app.oneshot(req).await.unwrap().status() });
    }
    let (mut ok, mut busy) = (0, 0);
    while let Some(status) = tasks.join_next().await {
        match status.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => busy += 1,
            other => panic!("a lookup got {other}"),
        }
    }
    eprintln!("10,000 concurrent lookups: {ok} answered, {busy} refused with 503");
    assert!(ok > 0 && busy > 0, "{ok} answered, {busy} refused");
    let (status, found) = s.get(&path).await;
    assert_eq!((status, found["FLOOD"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
}

/// A moderator banks a reported photo from the review page: audited with
/// the report as subject, matched by the next lookup, in the next bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderators_add_reported_media_to_a_bank_from_the_review_page() {
    let (_dir, path, public) = signing_key();
    let s = Hma::start_with(Engine::Sqlite, |c| c.bank_signing_key = Some(path)).await.unwrap();
    s.create_bank("REVIEWED").await;
    let photo = common::photo();
    let now = u64::try_from(frankly_server::now_ms()).unwrap();
    let mut msgs = conversation(&s.h.keyring(), "conv", "mallory", "bob", 2, now);
    with_image(&s.h.keyring(), &mut msgs, &photo, now + 10);
    let (_, envelope) = seal(msgs, Reason::Harassment, &s.h.server_key());
    assert_eq!(s.h.post_report(envelope).await.0, StatusCode::ACCEPTED);
    let m = s.h.sign_in("mo", Role::Moderator).await;
    let other = s.h.sign_in("ot", Role::Moderator).await;
    let (_, headers, _) = s.h.post_form("/queues/harassment/claim", Some(&m.cookie), &[("csrf", &m.csrf)]).await;
    let report = location(&headers);
    let (status, _, page) = s.h.get(&report, Some(&m.cookie)).await;
    assert_eq!(status, StatusCode::OK);
    let form = page.split("class=\"inline add-to-bank\"").count() - 1;
    assert!(form >= 1 && page.contains("<option value=\"REVIEWED\">REVIEWED</option>"), "{page}");
    let action = page
        .split("/bank\" class=\"inline add-to-bank\"")
        .next()
        .unwrap()
        .rsplit("action=\"")
        .next()
        .unwrap()
        .to_owned()
        + "/bank";
    // Someone not holding the claim may not.
    let fields = |who: &common::Moderator| {
        vec![("csrf", who.csrf.clone()), ("bank", "REVIEWED".to_owned()), ("labels", "harassment, reviewed".to_owned())]
    };
    let as_pairs = |v: &[(&'static str, String)]| v.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();
    let other_fields = as_pairs(&fields(&other));
    let other_fields: Vec<(&str, &str)> = other_fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(s.h.post_form(&action, Some(&other.cookie), &other_fields).await.0, StatusCode::FORBIDDEN);
    let mine = as_pairs(&fields(&m));
    let mine: Vec<(&str, &str)> = mine.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, headers, body) = s.h.post_form(&action, Some(&m.cookie), &mine).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(location(&headers).ends_with("?notice=banked"));

    let bundle = full_bundle(&s, "REVIEWED", &public).await;
    assert_eq!(bundle.bank().len(), 1);
    let entry = &bundle.bank().entries[0];
    assert_eq!(entry.labels.iter().map(String::as_str).collect::<Vec<_>>(), ["harassment", "reviewed"]);
    let pdq = SignalType::Pdq.format_hash(&entry.hash);
    let (_, found) = s.get(&format!("/m/lookup?signal_type=pdq&signal={pdq}&include_metadata=true")).await;
    assert!(found["REVIEWED"][0]["note"].as_str().unwrap().contains("attachment 0"), "{found}");
    let admin = s.h.sign_in("boss", Role::Admin).await;
    let (_, _, audit) = s.h.get("/admin/audit", Some(&admin.cookie)).await;
    assert!(audit.contains("add-to-bank") && audit.contains("report:"), "audited");
}
