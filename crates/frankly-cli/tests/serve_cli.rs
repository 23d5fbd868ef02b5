//! `frankly serve` as an operator runs it: first start on embedded
//! defaults, account bootstrap, audit verification, and a crash under load
//! (`kill -9`) that loses no acknowledged report.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use frankly_franking::{Commitment, DeliveryContext, FrankingKey, MessageContext, PlatformTag, commit};
use frankly_report::{Reason, Report, ReportedMessage, ServerPublicKey, seal_report};

fn frankly() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("frankly"))
}

/// Starts `frankly serve` on a free port with `data` as data directory and
/// returns the child and its address, read from its first line.
fn start(data: &Path) -> (Child, SocketAddr) {
    let mut child = frankly()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    // Keep reading, so the server never writes into a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let address = line.split("http://").nth(1).unwrap().split('/').next().unwrap().parse().unwrap();
    (child, address)
}

/// One HTTP/1.1 request; returns status and body.
fn http(
    address: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let auth = auth.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let status = text.get(9..12).and_then(|s| s.parse().ok()).ok_or_else(|| std::io::Error::other("no status"))?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |p| p + 4);
    Ok((status, response[split..].to_vec()))
}

/// A franked message tagged by the running server's `/v1/frank`.
fn franked(address: SocketAddr, token: &str, sender: &str, i: u64, previous: Option<Commitment>) -> ReportedMessage {
    let key = FrankingKey::generate().unwrap();
    let context = MessageContext {
        conversation_id: "c1".into(),
        sender_id: sender.into(),
        message_id: format!("m{i}"),
        sequence: i,
        previous,
    };
    let body = format!("message {i}").into_bytes();
    let commitment = commit(&key, &context, &body).unwrap();
    let delivery = DeliveryContext {
        sender_id: sender.into(),
        conversation_id: "c1".into(),
        timestamp_ms: u64::try_from(frankly_server::now_ms()).unwrap(),
        server_message_id: format!("s{i}"),
    };
    let request = serde_json::json!({ "commitment": commitment, "delivery": delivery });
    let (status, response) = http(address, "POST", "/v1/frank", Some(token), request.to_string().as_bytes()).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&response));
    let out: serde_json::Value = serde_json::from_slice(&response).unwrap();
    let tag: PlatformTag = serde_json::from_value(out["tag"].clone()).unwrap();
    ReportedMessage { body, franking_key: (&key).into(), commitment, context, delivery, tag, attachments: Vec::new() }
}

fn server_key(address: SocketAddr) -> ServerPublicKey {
    let (_, body) = http(address, "GET", "/v1/keys", None, b"").unwrap();
    let keys: serde_json::Value = serde_json::from_slice(&body).unwrap();
    ServerPublicKey::from_bytes(&hex::decode(keys["report_public_key"].as_str().unwrap()).unwrap()).unwrap()
}

#[test]
fn first_start_bootstrap_and_audit_verify() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, address) = start(&data);
    assert_eq!(http(address, "GET", "/healthz", None, b"").unwrap().0, 200);
    for file in ["frankly.db", "report-key.secret", "delivery-key.secret", "platform-token.secret"] {
        assert!(data.join(file).exists(), "{file} created on first start");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("report-key.secret")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = frankly()
        .args(["serve", "admin", "create-user", "--username", "root", "--role", "admin", "--data-dir"])
        .arg(&data)
        .env("FRANKLY_PASSWORD", "a long admin password")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "created root (admin)\n");
    let short = frankly()
        .args(["serve", "admin", "create-user", "--username", "x", "--data-dir"])
        .arg(&data)
        .env("FRANKLY_PASSWORD", "short")
        .output()
        .unwrap();
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));
    let verify = frankly().args(["audit", "verify", "--data-dir"]).arg(&data).output().unwrap();
    assert!(verify.status.success());
    assert!(String::from_utf8_lossy(&verify.stdout).starts_with("audit log verified: 1 entries, head "));
    child.kill().unwrap();
    child.wait().unwrap();
    // The keys survive a restart: same report key.
    let before = std::fs::read(data.join("report-key.secret")).unwrap();
    let (mut child, _) = start(&data);
    assert_eq!(std::fs::read(data.join("report-key.secret")).unwrap(), before);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `kill -9` during a load of reports; after a restart, every report the
/// server acknowledged is there (a second submission is refused as a replay,
/// which only a stored report can cause), and the count matches.
#[test]
fn acknowledged_reports_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, address) = start(&data);
    let token = std::fs::read_to_string(data.join("platform-token.secret")).unwrap();
    let key = server_key(address);
    let mut context = Vec::new();
    let mut previous = None;
    for i in 0..5 {
        let m = franked(address, &token, if i % 2 == 0 { "mallory" } else { "bob" }, i, previous);
        previous = Some(m.commitment);
        context.push(m);
    }
    const REPORTS: usize = 3000;
    let envelopes: Vec<(String, Vec<u8>)> = (0..REPORTS)
        .map(|i| {
            let mut messages = context.clone();
            let reported = messages.pop().unwrap();
            let report = Report::new(&format!("reporter{i}"), Reason::Spam, "", messages, reported).unwrap();
            (report.report_id.clone(), seal_report(&report, &key).unwrap())
        })
        .collect();
    let envelopes = Arc::new(envelopes);
    let acked = Arc::new(Mutex::new(Vec::<usize>::new()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (envelopes, acked, next) = (Arc::clone(&envelopes), Arc::clone(&acked), Arc::clone(&next));
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= REPORTS {
                        return;
                    }
                    match http(address, "POST", "/v1/reports", None, &envelopes[i].1) {
                        Ok((201, _)) => acked.lock().unwrap().push(i),
                        Ok((status, body)) => panic!("report {i}: {status} {}", String::from_utf8_lossy(&body)),
                        Err(_) => return, // the server is gone
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    while acked.lock().unwrap().len() < 300 && started.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300 && acked.len() < REPORTS, "killed mid-load after {} acks", acked.len());

    let (mut child, address) = start(&data);
    for &i in &acked {
        let (status, body) = http(address, "POST", "/v1/reports", None, &envelopes[i].1).unwrap();
        assert_eq!(
            status,
            409,
            "acknowledged report {} ({}) was lost: {}",
            i,
            envelopes[i].0,
            String::from_utf8_lossy(&body)
        );
    }
    let (_, metrics) = http(address, "GET", "/metrics", None, b"").unwrap();
    let metrics = String::from_utf8(metrics).unwrap();
    let queued: usize = metrics
        .lines()
        .find(|l| l.starts_with("frankly_queue_depth{queue=\"spam\",status=\"queued\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    // Stored: every acknowledged report, plus at most those in flight at the kill.
    assert!(queued >= acked.len() && queued <= acked.len() + 8, "{queued} stored, {} acked", acked.len());
    eprintln!(
        "kill -9 after {} acknowledged reports: {} stored after restart, all acknowledged ids present",
        acked.len(),
        queued
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
