//! Load generator for report intake and claims.
//!
//! Starts a server on a fresh database (SQLite in a temp directory, or the
//! PostgreSQL database given by `--database-url`), seals `--reports` valid
//! reports of `--context` context messages each (before timing), then posts
//! them over HTTP from `--concurrency` connections and prints sustained
//! verified reports per second with latency percentiles. With
//! `--fill N`, it instead fills the queue with N reports (copies of one
//! stored report, inserted by SQL) and times `--claims` claims.
//!
//! ```text
//! cargo run --release -p frankly-server --example loadgen -- --context 5
//! cargo run --release -p frankly-server --example loadgen -- --fill 1000000 --claims 2000
//! cargo run --release -p frankly-server --example loadgen -- --decisions 20000 --moderators 16
//! cargo run --release -p frankly-server --example loadgen -- --decisions 20000 --moderators 4 --bulk 500
//! ```
//!
//! `--decisions N` fills the queue with N reports, then `--moderators`
//! review keys each claim and decide (`--bulk K`: decide K at a time with
//! `POST /api/v1/decisions`) through the moderation API over HTTP, with
//! webhooks on to a receiver in the same process; it prints decisions per
//! second, the API latency, and the webhook delivery lag (receipt minus
//! the event's `created_ms`) percentiles.

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr, missing_docs)]

#[path = "../tests/common/franked.rs"]
mod franked;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use frankly_report::Reason;
use frankly_review::{Queue, Role};
use frankly_server::{AppState, Config};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

struct Args {
    reports: usize,
    context: usize,
    concurrency: usize,
    database_url: Option<String>,
    fill: usize,
    claims: usize,
    decisions: usize,
    moderators: usize,
    bulk: usize,
    webhook_poll_ms: u64,
}

fn args() -> Args {
    let mut a = Args {
        reports: 20_000,
        context: 5,
        concurrency: 64,
        database_url: None,
        fill: 0,
        claims: 1000,
        decisions: 0,
        moderators: 16,
        bulk: 0,
        webhook_poll_ms: 500,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--reports" => a.reports = value().parse().unwrap(),
            "--context" => a.context = value().parse().unwrap(),
            "--concurrency" => a.concurrency = value().parse().unwrap(),
            "--database-url" => a.database_url = Some(value()),
            "--fill" => a.fill = value().parse().unwrap(),
            "--claims" => a.claims = value().parse().unwrap(),
            "--decisions" => a.decisions = value().parse().unwrap(),
            "--moderators" => a.moderators = value().parse().unwrap(),
            "--bulk" => a.bulk = value().parse().unwrap(),
            "--webhook-poll-ms" => a.webhook_poll_ms = value().parse().unwrap(),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let a = args();
    if a.decisions > 0 {
        return decisions(&a).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        database_url: a.database_url.clone(),
        reports_per_reporter_per_minute: 1_000_000,
        intake_queue: 65_536,
        ..Config::default()
    };
    let state = AppState::open(config, Default::default()).await.unwrap();
    let engine = format!("{:?}", state.db().backend());
    if a.fill > 0 {
        return claims(&state, &a, &engine).await;
    }
    let keyring = state.platform_keys().keyring();
    let key = report_key(&state);
    eprintln!(
        "registering {} reporter devices, sealing their reports with {} context messages...",
        a.reports, a.context
    );
    let now = u64::try_from(frankly_server::now_ms()).unwrap();
    // 64 distinct conversations; every report has its own id and reporter
    // device (its credential, and the copies tagged for it).
    let mut envelopes: Vec<(String, Bytes)> = Vec::with_capacity(a.reports);
    for i in 0..a.reports {
        let reporter = format!("reporter{i}");
        let token = register(&state, &reporter).await;
        let msgs = franked::conversation(
            &keyring,
            &format!("conv{}", i % 64),
            &format!("sender{}", i % 64),
            &reporter,
            a.context + 1,
            now,
        );
        envelopes.push((token, Bytes::from(franked::seal(msgs, Reason::Harassment, &key).1)));
    }
    let bytes = envelopes.iter().map(|(_, e)| e.len()).sum::<usize>() / envelopes.len();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/reports", listener.local_addr().unwrap());
    tokio::spawn(frankly_server::serve(state.clone(), listener, std::future::pending()));

    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let envelopes = Arc::new(envelopes);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..a.concurrency)
        .map(|_| {
            let (client, envelopes, next, url) =
                (client.clone(), Arc::clone(&envelopes), Arc::clone(&next), url.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= envelopes.len() {
                        return latencies;
                    }
                    let at = Instant::now();
                    let (token, envelope) = &envelopes[i];
                    let req = axum::http::Request::post(&url)
                        .header("authorization", format!("Bearer {token}"))
                        .body(Full::new(envelope.clone()))
                        .unwrap();
                    let response = client.request(req).await.unwrap();
                    let status = response.status();
                    let body = response.into_body().collect().await.unwrap().to_bytes();
                    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
                    latencies.push(at.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let metrics = state.metrics().render(state.db()).await.unwrap();
    let batches =
        metrics.lines().find(|l| l.starts_with("frankly_intake_batches_total")).unwrap_or_default().to_string();
    println!(
        "{engine}: {} reports, {} context messages ({bytes} bytes each), {} connections: {:.0} verified reports/s; \
         latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {batches}",
        a.reports,
        a.context,
        a.concurrency,
        a.reports as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
}

fn report_key(state: &AppState) -> (u32, frankly_report::ServerPublicKey) {
    let (id, key) = state.report_keys().keyring().current().map(|(i, k)| (i, k.public().clone())).unwrap();
    (id, key)
}

/// Registers `user`'s device `phone` with the platform; returns its token.
async fn register(state: &AppState, user: &str) -> String {
    let body = format!(r#"{{"user_id":"{user}","device_id":"phone"}}"#);
    let response = tower::ServiceExt::oneshot(
        frankly_server::app(state.clone()),
        axum::http::Request::post("/v1/devices")
            .header("authorization", format!("Bearer {}", state.secrets().platform_token()))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .unwrap(),
    )
    .await
    .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["token"].as_str().unwrap().to_owned()
}

/// Fills the queue with `--fill` reports and times `--claims` claims.
async fn claims(state: &AppState, a: &Args, engine: &str) {
    let keyring = state.platform_keys().keyring();
    let key = report_key(state);
    let now = u64::try_from(frankly_server::now_ms()).unwrap();
    let token = register(state, "bob").await;
    let msgs = franked::conversation(&keyring, "conv", "sender", "bob", a.context + 1, now);
    let (_, envelope) = franked::seal(msgs, Reason::Harassment, &key);
    let app = frankly_server::app(state.clone());
    let response = tower::ServiceExt::oneshot(
        app,
        axum::http::Request::post("/v1/reports")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::from(envelope))
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 202);
    eprintln!("filling the queue with {} reports...", a.fill);
    let at = Instant::now();
    fill(&state.config().database_url(), a.fill).await;
    eprintln!("filled in {:.1} s", at.elapsed().as_secs_f64());
    let mut moderators = Vec::new();
    for i in 0..8 {
        let name = format!("mod{i}");
        let id = frankly_server::create_user(state.db(), "bench", &name, "a long bench password", Role::Moderator)
            .await
            .unwrap();
        moderators.push(frankly_server::User { id, username: name, role: Role::Moderator, reveal_media: false });
    }
    let mut latencies = Vec::new();
    let started = Instant::now();
    for i in 0..a.claims {
        let user = &moderators[i % moderators.len()];
        let at = Instant::now();
        let id = frankly_server::queue::claim(state.db(), user, Queue::Harassment, 600_000).await.unwrap().unwrap();
        latencies.push(at.elapsed());
        let input = frankly_review::DecisionInput::dismiss();
        frankly_server::queue::decide(state.db(), user, id, &input, state.config().strike_days).await.unwrap();
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    println!(
        "{engine}: {} queued reports; {} claims (each followed by a decision): claim latency p50 {:.2} ms, p99 {:.2} ms, \
         max {:.2} ms; {:.0} claim+decide/s",
        a.fill + 1,
        a.claims,
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        a.claims as f64 / elapsed.as_secs_f64(),
    );
}

/// Copies the newest report `n` times into the queue (fresh report ids,
/// distinct senders), for benchmarks of claims on a deep queue. Not for
/// production data: the copies share one franked content. (SQL shared by
/// SQLite and PostgreSQL.)
async fn fill(url: &str, n: usize) {
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    const CHUNK: i64 = 50_000;
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let mut done = 0i64;
    while done < n {
        let count = CHUNK.min(n - done);
        let mut tx = pool.begin().await.unwrap();
        sqlx::query(
            "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $1) \
             INSERT INTO reports (report_id, received_ms, reporter_id, reason, sender_id, conversation_id, queue, \
             stage, priority, status, messages, verified, chain_ok, server_matches, content) \
             SELECT 'bench-' || CAST(seq.i + $2 AS TEXT), r.received_ms + seq.i, r.reporter_id, r.reason, \
             'sender-' || CAST((seq.i + $2) % 100000 AS TEXT), r.conversation_id, r.queue, r.stage, \
             r.priority + ((seq.i + $2) % 7), 'queued', r.messages, r.verified, r.chain_ok, r.server_matches, r.content \
             FROM seq, (SELECT * FROM reports ORDER BY id DESC LIMIT 1) r",
        )
        .bind(count)
        .bind(done)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        done += count;
    }
}

/// What the webhook receiver saw: per delivery, receipt minus `created_ms`.
#[derive(Default)]
struct Received {
    lags_ms: std::sync::Mutex<Vec<i64>>,
    ids: std::sync::Mutex<std::collections::HashSet<String>>,
}

async fn receiver() -> (String, Arc<Received>) {
    let seen = Arc::new(Received::default());
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |axum::extract::State(s): axum::extract::State<Arc<Received>>, body: Bytes| async move {
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let lag = frankly_server::now_ms() - v["created_ms"].as_i64().unwrap();
                    s.lags_ms.lock().unwrap().push(lag);
                    s.ids.lock().unwrap().insert(v["id"].as_str().unwrap().to_string());
                    "ok"
                },
            ),
        )
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn api_call(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    url: &str,
    key: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let req = axum::http::Request::post(url)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = client.request(req).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert!(status.is_success(), "{url}: {status} {}", String::from_utf8_lossy(&bytes));
    serde_json::from_slice(&bytes).unwrap()
}

/// `--decisions`: decisions through the API with webhooks on.
async fn decisions(a: &Args) {
    let dir = tempfile::tempdir().unwrap();
    let (hook, received) = receiver().await;
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        database_url: a.database_url.clone(),
        webhooks: vec![frankly_server::WebhookEndpoint {
            url: hook,
            events: vec!["report.decided".into()],
            format: frankly_server::EndpointFormat::Frankly,
        }],
        webhook_poll_ms: a.webhook_poll_ms,
        ..Config::default()
    };
    let state = AppState::open(config, Default::default()).await.unwrap();
    let engine = format!("{:?}", state.db().backend());
    let keyring = state.platform_keys().keyring();
    let key = report_key(&state);
    let token = register(&state, "bob").await;
    let now = u64::try_from(frankly_server::now_ms()).unwrap();
    let msgs = franked::conversation(&keyring, "conv", "sender", "bob", a.context + 1, now);
    let (_, envelope) = franked::seal(msgs, Reason::Harassment, &key);
    let response = tower::ServiceExt::oneshot(
        frankly_server::app(state.clone()),
        axum::http::Request::post("/v1/reports")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::from(envelope))
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 202);
    // Wait for the intake writer, then copy it.
    while sqlx::query("SELECT id FROM reports")
        .fetch_optional(&sqlx::AnyPool::connect(&state.config().database_url()).await.unwrap())
        .await
        .unwrap()
        .is_none()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fill(&state.config().database_url(), a.decisions - 1).await;
    let mut keys = Vec::new();
    for i in 0..a.moderators {
        let name = format!("mod{i}");
        frankly_server::create_user(state.db(), "bench", &name, "a long bench password", Role::Moderator)
            .await
            .unwrap();
        let (_, key) =
            frankly_server::create_api_key(state.db(), "bench", &name, &[frankly_server::Scope::Review], Some(&name))
                .await
                .unwrap();
        keys.push(key.to_string());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(frankly_server::serve(state.clone(), listener, std::future::pending()));
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let ids: Vec<i64> = {
        use sqlx::Row;
        let pool = sqlx::AnyPool::connect(&state.config().database_url()).await.unwrap();
        sqlx::query("SELECT id FROM reports ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    assert_eq!(ids.len(), a.decisions);
    eprintln!("{} queued reports, {} moderators; deciding...", ids.len(), a.moderators);
    let ids = Arc::new(ids);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = keys
        .into_iter()
        .map(|key| {
            let (client, base, ids, next) = (client.clone(), base.clone(), Arc::clone(&ids), Arc::clone(&next));
            let bulk = a.bulk;
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut decided = 0usize;
                let dismiss = serde_json::json!({"action": "dismiss", "ground": "terms"});
                loop {
                    let at = Instant::now();
                    if bulk > 0 {
                        let from = next.fetch_add(bulk, Ordering::Relaxed);
                        if from >= ids.len() {
                            return (latencies, decided);
                        }
                        let batch = &ids[from..(from + bulk).min(ids.len())];
                        let body = serde_json::json!({"reports": batch, "decision": dismiss});
                        let done = api_call(&client, &format!("{base}/api/v1/decisions"), &key, body).await;
                        let results = done["results"].as_array().unwrap();
                        assert!(results.iter().all(|r| r["error"].is_null()), "{done}");
                        decided += results.len();
                    } else {
                        let claimed = api_call(
                            &client,
                            &format!("{base}/api/v1/queues/harassment/claim"),
                            &key,
                            serde_json::json!({}),
                        )
                        .await;
                        let Some(id) = claimed["report"].as_i64() else { return (latencies, decided) };
                        api_call(&client, &format!("{base}/api/v1/reports/{id}/decision"), &key, dismiss.clone()).await;
                        decided += 1;
                    }
                    latencies.push(at.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut decided = 0;
    for w in workers {
        let (l, d) = w.await.unwrap();
        latencies.extend(l);
        decided += d;
    }
    let elapsed = started.elapsed();
    assert_eq!(decided, a.decisions);
    while received.ids.lock().unwrap().len() < a.decisions {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drained = started.elapsed();
    latencies.sort_unstable();
    let mut lags = received.lags_ms.lock().unwrap().clone();
    lags.sort_unstable();
    let lag = |p: f64| lags[(((lags.len() - 1) as f64) * p).round() as usize];
    let requests = lags.len();
    let what = if a.bulk > 0 { format!("bulk decisions of {}", a.bulk) } else { "claim + decide".to_string() };
    println!(
        "{engine}: {} decisions by {} moderators through the API ({what}): {:.0} decisions/s; request latency p50 {:.1} ms, \
         p99 {:.1} ms; webhooks (poll {} ms): {} delivered ({requests} requests) {:.1} s after the start, delivery lag p50 {} ms, \
         p99 {} ms, max {} ms",
        a.decisions,
        a.moderators,
        a.decisions as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        a.webhook_poll_ms,
        received.ids.lock().unwrap().len(),
        drained.as_secs_f64(),
        lag(0.5),
        lag(0.99),
        lags.last().unwrap(),
    );
}
