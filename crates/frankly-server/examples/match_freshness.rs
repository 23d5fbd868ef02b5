//! Index freshness of the match API across instances: how long after a
//! curation request returns on instance A does instance B (another server
//! on the same database, following the change log under `serve`) match
//! the new hash?
//!
//! Two instances on one database (SQLite in a temp directory, or the
//! PostgreSQL database given by `--database-url`), `--base` hashes banked
//! first; then `--changes` times, each at a random point of B's poll
//! period: A banks a new hash over its HTTP API and, from the moment A
//! answered, B is asked every `--probe-us` microseconds
//! until it matches it. Prints p50/p99/max of that delay, with B's
//! `match_poll_ms`. A's own lookups see the change before A answers (the
//! writer applies it first), so A's delay is zero by construction.
//!
//! ```text
//! cargo run --release -p frankly-server --example match_freshness -- --changes 200
//! cargo run --release -p frankly-server --example match_freshness -- --database-url postgres://... --base 100000
//! ```

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr, missing_docs)]

#[path = "../tests/common/random.rs"]
#[allow(unreachable_pub)]
mod random;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use frankly_server::{AppState, Config, Scope};
use tower::ServiceExt;

struct Args {
    changes: usize,
    base: usize,
    probe_us: u64,
    poll_ms: u64,
    database_url: Option<String>,
}

fn args() -> Args {
    let mut a = Args { changes: 200, base: 10_000, probe_us: 200, poll_ms: 250, database_url: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--changes" => a.changes = value().parse().unwrap(),
            "--base" => a.base = value().parse().unwrap(),
            "--probe-us" => a.probe_us = value().parse().unwrap(),
            "--poll-ms" => a.poll_ms = value().parse().unwrap(),
            "--database-url" => a.database_url = Some(value()),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

async fn call(app: &axum::Router, key: &str, req: axum::http::request::Builder, body: Body) -> (StatusCode, Vec<u8>) {
    let req = req.header(header::AUTHORIZATION, format!("Bearer {key}")).body(body).unwrap();
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    (status, axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().join("data"),
        database_url: args.database_url.clone(),
        match_api: true,
        match_poll_ms: args.poll_ms,
        ..Config::default()
    };
    let a = AppState::open(config.clone(), Default::default()).await.unwrap();
    let (_, key) = frankly_server::create_api_key(a.db(), "bench", "bench", &Scope::MATCH_API, None).await.unwrap();
    let key = key.to_string();
    let hashes = random::pdqs(7, args.base + args.changes);
    let base_list = hashes[..args.base].to_vec();
    frankly_server::import_signals(a.db(), "bench", "FRESHNESS", frankly_bank::SignalType::Pdq, &base_list, &[])
        .await
        .unwrap();
    let b = AppState::open(config, Default::default()).await.unwrap();
    let a_app = frankly_server::app(a.clone());
    let b_app = frankly_server::app(b.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(frankly_server::serve(b.clone(), listener, async move {
        let _ = stopped.await;
    }));
    let backend = if args.database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    eprintln!("{backend}, {} banked hashes, B polls every {} ms", args.base, args.poll_ms);
    let mut delays = Vec::with_capacity(args.changes);
    // Changes arrive at random points of B's poll period (uniform, from a
    // fixed-seed generator): right after each match, the next change would
    // otherwise always land just after B's poll and wait a whole period.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for hash in &hashes[args.base..] {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_micros(seed % (args.poll_ms * 1000))).await;
        let body = Body::from(format!("{{\"pdq\": \"{hash}\"}}"));
        let post = Request::post("/c/bank/FRESHNESS/signal").header(header::CONTENT_TYPE, "application/json");
        let (status, answer) = call(&a_app, &key, post, body).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
        let answered = Instant::now();
        let path = format!("/m/raw_lookup?signal_type=pdq&signal={hash}");
        let (_, on_a) = call(&a_app, &key, Request::get(&path), Body::empty()).await;
        assert!(on_a.ends_with(b"]}") && !on_a.ends_with(b"[]}"), "A matches its own change at once");
        loop {
            let (status, found) = call(&b_app, &key, Request::get(&path), Body::empty()).await;
            assert_eq!(status, StatusCode::OK);
            if !found.ends_with(b"[]}") {
                break;
            }
            assert!(answered.elapsed() < Duration::from_secs(30), "B never matched the change");
            tokio::time::sleep(Duration::from_micros(args.probe_us)).await;
        }
        delays.push(answered.elapsed());
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    delays.sort();
    println!(
        "{backend}: {} changes on A matched by B after p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (match_poll_ms {})",
        delays.len(),
        percentile(&delays, 0.5).as_secs_f64() * 1e3,
        percentile(&delays, 0.99).as_secs_f64() * 1e3,
        delays.last().unwrap().as_secs_f64() * 1e3,
        args.poll_ms
    );
}
