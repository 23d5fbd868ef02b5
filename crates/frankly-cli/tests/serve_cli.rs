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

use frankly_franking::{DeliveryContext, FrankingKey, MessageContext, Party, PlatformTag, commit};
use frankly_report::{KeyBytes, Opening, Reason, Report, ReportedMessage, ServerPublicKey, seal_report};

fn frankly() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("frankly"))
}

/// Starts `frankly serve` on a free port with `data` as data directory and
/// returns the child and its address, read from its first line.
fn start(data: &Path) -> (Child, SocketAddr) {
    start_with(data, &[])
}

/// [`start`] with more arguments (`--config FILE`, say).
fn start_with(data: &Path, args: &[&std::ffi::OsStr]) -> (Child, SocketAddr) {
    let mut child = frankly()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(args)
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

/// A franked message from `sender`, numbered `sequence`, as `recipient`'s
/// copy tagged by the running server's `/v1/frank`.
fn franked(address: SocketAddr, token: &str, sender: &str, recipient: &Party, sequence: u64) -> ReportedMessage {
    let key = FrankingKey::generate().unwrap();
    let sender = Party::new(sender, "phone");
    let message_id = format!("m{sequence}");
    let context =
        MessageContext { conversation_id: "c1".into(), sender: sender.clone(), message_id: message_id.clone() };
    let body = format!("message {sequence}").into_bytes();
    let commitment = commit(&key, &context, &body).unwrap();
    let delivery = DeliveryContext {
        conversation_id: "c1".into(),
        sequence,
        sender,
        recipient: recipient.clone(),
        timestamp_ms: u64::try_from(frankly_server::now_ms()).unwrap(),
        server_message_id: format!("s{sequence}"),
    };
    let request = serde_json::json!({ "commitment": commitment, "delivery": delivery });
    let (status, response) = http(address, "POST", "/v1/frank", Some(token), request.to_string().as_bytes()).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&response));
    let out: serde_json::Value = serde_json::from_slice(&response).unwrap();
    let tag: PlatformTag = serde_json::from_value(out["tag"].clone()).unwrap();
    ReportedMessage {
        commitment,
        delivery,
        tag,
        opening: Some(Opening { franking_key: KeyBytes::from(&key), message_id, body, attachments: Vec::new() }),
    }
}

/// Registers `device` with the running server; returns its bearer token.
fn register(address: SocketAddr, platform: &str, device: &Party) -> String {
    let body = serde_json::json!({ "user_id": device.user_id, "device_id": device.device_id });
    let (status, answer) = http(address, "POST", "/v1/devices", Some(platform), body.to_string().as_bytes()).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let v: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    v["token"].as_str().unwrap().to_owned()
}

fn server_key(address: SocketAddr) -> (u32, ServerPublicKey) {
    let (_, body) = http(address, "GET", "/v1/keys", None, b"").unwrap();
    let keys: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = u32::try_from(keys["report_key_id"].as_u64().unwrap()).unwrap();
    (id, ServerPublicKey::from_bytes(&hex::decode(keys["report_public_key"].as_str().unwrap()).unwrap()).unwrap())
}

/// The report ids stored in the data directory's SQLite database.
fn stored_ids(data: &Path) -> std::collections::HashSet<String> {
    let out = Command::new("sqlite3").arg(data.join("frankly.db")).arg("SELECT report_id FROM reports").output();
    let out = out.expect("sqlite3 (Debian package sqlite3) is needed to read the database");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

#[test]
fn first_start_bootstrap_and_audit_verify() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, address) = start(&data);
    assert_eq!(http(address, "GET", "/healthz", None, b"").unwrap().0, 200);
    let files = ["frankly.db", "tag-keys.chain", "report-keys.chain", "device-master.secret", "platform-token.secret"];
    for file in files {
        assert!(data.join(file).exists(), "{file} created on first start");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700, "data directory");
        for entry in std::fs::read_dir(&data).unwrap() {
            let entry = entry.unwrap();
            let mode = entry.metadata().unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{} (SQLite's -wal and -shm included)", entry.path().display());
        }
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
    // The keys survive a restart: same report key.
    let before = http(address, "GET", "/v1/keys", None, b"").unwrap().1;
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, address) = start(&data);
    let after = http(address, "GET", "/v1/keys", None, b"").unwrap().1;
    assert_eq!(after, before);
    child.kill().unwrap();
    child.wait().unwrap();
    // Rotating the report key by hand: devices get key 2 after a restart.
    let rotate = frankly().args(["serve", "admin", "rotate-report-key", "--data-dir"]).arg(&data).output().unwrap();
    assert!(rotate.status.success(), "{}", String::from_utf8_lossy(&rotate.stderr));
    assert!(String::from_utf8_lossy(&rotate.stdout).contains("report key 2 is current"), "{:?}", rotate);
    let (mut child, address) = start(&data);
    let keys: serde_json::Value =
        serde_json::from_slice(&http(address, "GET", "/v1/keys", None, b"").unwrap().1).unwrap();
    assert_eq!(keys["report_key_id"], 2);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `kill -9` during a load of reports; after a restart, every report the
/// server acknowledged is in the database, and the count matches.
#[test]
fn acknowledged_reports_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, address) = start(&data);
    let token = std::fs::read_to_string(data.join("platform-token.secret")).unwrap();
    let key = server_key(address);
    // 100 reporter devices, each reporting 30 messages with 4 messages of context.
    const REPORTERS: usize = 100;
    const PER_REPORTER: usize = 30;
    const REPORTS: usize = REPORTERS * PER_REPORTER;
    let mut envelopes: Vec<(String, String, Vec<u8>)> = Vec::with_capacity(REPORTS);
    for r in 0..REPORTERS {
        let reporter = Party::new(&format!("reporter{r}"), "phone");
        let device_token = register(address, &token, &reporter);
        let context: Vec<ReportedMessage> =
            (1..=4).map(|i| franked(address, &token, "mallory", &reporter, i)).collect();
        for j in 0..PER_REPORTER {
            let mut messages = context.clone();
            messages.push(franked(address, &token, "mallory", &reporter, 5 + j as u64));
            let report = Report::new(&reporter, Reason::Spam, "", messages, 4).unwrap();
            envelopes.push((report.id_hex(), device_token.clone(), seal_report(&report, key.0, &key.1).unwrap()));
        }
    }
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
                    let (_, device_token, envelope) = &envelopes[i];
                    match http(address, "POST", "/v1/reports", Some(device_token), envelope) {
                        Ok((202, _)) => acked.lock().unwrap().push(i),
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
    let stored = stored_ids(&data);
    for &i in &acked {
        assert!(stored.contains(&envelopes[i].0), "acknowledged report {i} ({}) was lost", envelopes[i].0);
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

/// An HMA client's flow against `frankly serve` with `match_api` on, with
/// keys made, listed and revoked by the CLI.
#[test]
fn the_match_api_takes_keys_made_by_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("frankly.toml");
    std::fs::write(&config, "match_api = true\n").unwrap();
    let run = |args: &[&str]| {
        let out = frankly().args(["serve", "admin"]).args(args).arg("--data-dir").arg(&data).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let created = run(&["create-api-key", "--name", "coop", "--scopes", "curate,match"]);
    assert!(created.starts_with("created API key 1 (coop); it is not shown again:\n"), "{created}");
    let key = created.lines().last().unwrap().to_owned();
    assert!(key.starts_with("frk_1_"), "{key}");
    let bad = frankly()
        .args(["serve", "admin", "create-api-key", "--name", "x", "--scopes", "root", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown scope \"root\""));

    let (mut child, address) = start_with(&data, &["--config".as_ref(), config.as_os_str()]);
    let (status, body) =
        http(address, "POST", "//c/banks", Some(&key), br#"{"name": "COOP_ORG_X", "enabled_ratio": "1.0"}"#).unwrap();
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let pdq = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    let (status, _) =
        http(address, "POST", "/c/bank/COOP_ORG_X/signal", Some(&key), format!(r#"{{"pdq": "{pdq}"}}"#).as_bytes())
            .unwrap();
    assert_eq!(status, 200);
    let (status, body) =
        http(address, "GET", &format!("/m/lookup?signal_type=pdq&signal={pdq}"), Some(&key), b"").unwrap();
    assert_eq!(
        (status, String::from_utf8_lossy(&body).trim()),
        (200, r#"{"COOP_ORG_X":[{"bank_content_id":1,"distance":"0"}]}"#)
    );
    assert_eq!(http(address, "GET", "/c/banks", None, b"").unwrap().0, 401);

    let listed = run(&["list-api-keys"]);
    assert_eq!(listed, "1\tcoop\tcurate,match\tactive\n");
    assert_eq!(run(&["revoke-api-key", "--id", "1"]), "revoked API key 1\n");
    assert_eq!(http(address, "GET", "/c/banks", Some(&key), b"").unwrap().0, 401, "revoked at once");
    assert_eq!(run(&["list-api-keys"]), "1\tcoop\tcurate,match\trevoked\n");
    child.kill().unwrap();
    child.wait().unwrap();
    let verify = frankly().args(["audit", "verify", "--data-dir"]).arg(&data).output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
}

/// An operator bulk-loads a bank, signs it on another machine and
/// publishes it; devices fetch exactly that bundle over HTTP and it
/// verifies under the offline key.
#[test]
fn banks_are_imported_signed_offline_published_and_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hashes = [
        "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22",
        "e64cc9d91c623882f8d1f1d9a398e78c9f199b3bd83924f2b7e11e0bf861b064",
        "6227401f601ff4ccafcc9fad4b0d95d371a2eb7265a3285234d228ca94deeb2d",
    ];
    let list = dir.path().join("list.txt");
    std::fs::write(&list, format!("# three hashes\n{}\n\n{}\n{}\n", hashes[0], hashes[1], hashes[2])).unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, format!("{}\nnot-a-hash\n", hashes[0])).unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        let out = frankly().current_dir(dir.path()).args(args).output().unwrap();
        (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    let admin = |rest: &[&str]| {
        let mut args: Vec<std::ffi::OsString> = ["serve", "admin"].iter().map(|s| os(s)).collect();
        args.extend(rest.iter().map(|s| os(s)));
        args.push(os("--data-dir"));
        args.push(data.clone().into_os_string());
        args
    };
    let call = |args: Vec<std::ffi::OsString>| run(&args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>());

    let (ok, _, err) = call(admin(&["import-signals", "--bank", "OFFLINE_LIST", "--file", bad.to_str().unwrap()]));
    assert!(!ok && err.contains("hash 2") && err.contains("bad.txt"), "{err}");
    let (ok, out, err) = call(admin(&[
        "import-signals",
        "--bank",
        "OFFLINE_LIST",
        "--labels",
        "csam",
        "--file",
        list.to_str().unwrap(),
    ]));
    assert!(ok, "{err}");
    assert_eq!(out, "imported 3 pdq hashes into bank OFFLINE_LIST (created)\n");
    let (ok, out, err) = call(admin(&["export-bank", "--bank", "OFFLINE_LIST", "--out", "list.bank"]));
    assert!(ok, "{err}");
    assert!(out.starts_with("bank OFFLINE_LIST version 4: 3 entries written to list.bank\n"), "{out}");

    // The signing machine.
    assert!(run(&[os("keygen").as_os_str(), os("-o").as_os_str(), os("offline.key").as_os_str()]).0);
    let sign = ["bank", "sign", "--key", "offline.key", "--bank-version", "4", "list.bank", "-o", "list.bundle"];
    let (ok, _, err) = run(&sign.iter().map(std::ffi::OsStr::new).collect::<Vec<_>>());
    assert!(ok, "{err}");
    let config = dir.path().join("frankly.toml");
    std::fs::write(
        &config,
        format!(
            "match_api = true\nmatch_api_open_scopes = [\"bundle\"]\nbank_public_key = \"{}\"\n",
            dir.path().join("offline.key.pub").display()
        ),
    )
    .unwrap();
    let mut publish = admin(&["publish-bundle", "--file", "list.bundle"]);
    publish.push(os("--config"));
    publish.push(config.clone().into_os_string());
    let (ok, out, err) = call(publish.clone());
    assert!(ok, "{err}");
    assert_eq!(out, "published list.bundle (version 4)\n");

    let (mut child, address) = start_with(&data, &["--config".as_ref(), config.as_os_str()]);
    let (status, body) = http(address, "GET", "/v1/banks/OFFLINE_LIST/bundle", None, b"").unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, std::fs::read(dir.path().join("list.bundle")).unwrap(), "the published bundle, byte for byte");
    let key =
        frankly_bank::parse_public_key(&std::fs::read_to_string(dir.path().join("offline.key.pub")).unwrap()).unwrap();
    let bank = frankly_bank::verify_bundle(&body, &key, frankly_bank::unix_now(), None).unwrap();
    assert_eq!(bank.bank().len(), 3);
    assert!(bank.bank().entries.iter().all(|e| e.labels.contains("csam")));
    child.kill().unwrap();
    child.wait().unwrap();
    // Publishing the same bundle again is fine; the audit log holds the import.
    assert!(call(publish).0);
    let verify = frankly().args(["audit", "verify", "--data-dir"]).arg(&data).output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
}

/// (event id, report id) of every webhook request received.
type Deliveries = Arc<Mutex<Vec<(String, String)>>>;

/// A webhook receiver on a thread: records (event id, report id) of every
/// request and answers 204 after `delay`.
fn webhook_receiver(delay: Duration) -> (SocketAddr, Deliveries) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&got);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let record = Arc::clone(&record);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let (mut id, mut length) = (String::new(), 0usize);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        match name.to_ascii_lowercase().as_str() {
                            "frankly-webhook-id" => id = value.trim().to_owned(),
                            "content-length" => length = value.trim().parse().unwrap_or(0),
                            _ => {}
                        }
                    }
                }
                let mut body = vec![0u8; length.min(1 << 20)];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                std::thread::sleep(delay);
                record.lock().unwrap().push((id, v["data"]["report_id"].as_str().unwrap_or_default().to_owned()));
                let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            });
        }
    });
    (address, got)
}

/// `kill -9` while webhooks are being delivered: after a restart every
/// stored report's `report.created` event reaches the receiver, and a
/// repeated delivery always carries the same event id (the idempotency key).
#[test]
fn webhooks_survive_kill_9_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (hook, got) = webhook_receiver(Duration::from_millis(300));
    let config = dir.path().join("frankly.toml");
    std::fs::write(
        &config,
        format!("webhook_poll_ms = 10\nwebhook_backoff_ms = 10\nreports_per_reporter_per_minute = 1000\nwebhook_timeout_seconds = 2\n\n[[webhooks]]\nurl = \"http://{hook}/hook\"\nevents = [\"report.created\"]\n"),
    )
    .unwrap();
    let args = [std::ffi::OsStr::new("--config"), config.as_os_str()];
    let (mut child, address) = start_with(&data, &args);
    let token = std::fs::read_to_string(data.join("platform-token.secret")).unwrap();
    let key = server_key(address);
    const REPORTS: usize = 300;
    let reporter = Party::new("reporter", "phone");
    let device_token = register(address, &token, &reporter);
    let context: Vec<ReportedMessage> = (1..=2).map(|i| franked(address, &token, "mallory", &reporter, i)).collect();
    for j in 0..REPORTS {
        let mut messages = context.clone();
        messages.push(franked(address, &token, "mallory", &reporter, 3 + j as u64));
        let report = Report::new(&reporter, Reason::Spam, "", messages, 2).unwrap();
        let envelope = seal_report(&report, key.0, &key.1).unwrap();
        let (status, body) = http(address, "POST", "/v1/reports", Some(&device_token), &envelope).unwrap();
        assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    }
    // Deliveries take 300 ms each, 64 at a time: kill with a batch in flight.
    let started = Instant::now();
    while got.lock().unwrap().len() < 60 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = got.lock().unwrap().len();
    assert!(before < REPORTS, "killed mid-delivery after {before} deliveries");

    let (mut child, _) = start_with(&data, &args);
    let stored = stored_ids(&data);
    assert_eq!(stored.len(), REPORTS);
    let started = Instant::now();
    let delivered = loop {
        let received: std::collections::HashSet<String> = got.lock().unwrap().iter().map(|(_, r)| r.clone()).collect();
        if received.len() >= REPORTS || started.elapsed() > Duration::from_secs(120) {
            break received;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The batch in flight at the kill was leased for twice the timeout: wait
    // for its repeats, which must carry the same event ids.
    std::thread::sleep(Duration::from_secs(5));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(delivered, stored, "every stored report's event was delivered");
    let requests = got.lock().unwrap().clone();
    let mut by_id: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for (id, report) in &requests {
        assert_eq!(*by_id.entry(id.as_str()).or_insert(report.as_str()), report.as_str(), "one event id, one event");
    }
    assert_eq!(by_id.len(), REPORTS, "one event per report");
    eprintln!(
        "kill -9 after {before} webhook deliveries: {} requests in all for {REPORTS} events ({} repeated under their event id)",
        requests.len(),
        requests.len() - REPORTS
    );
}
