//! `frankly demo` as a newcomer runs it: the narrated script, then the
//! review UI left up with a demo moderator account until Ctrl-C; and
//! `--headless`, as CI runs it.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn frankly() -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("frankly"));
    c.current_dir(repo());
    c
}

#[test]
fn headless_runs_the_whole_script_and_exits() {
    let out = frankly().args(["demo", "--headless"]).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for step in ["[1] The platform and the moderation server start", "[14] What each party learned", "demo finished in"]
    {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("review UI is up"), "headless leaves nothing running");
}

#[test]
fn a_kept_data_directory_is_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = frankly().args(["demo", "--headless", "--data-dir"]).arg(&data).output().unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(std::fs::read_dir(&data).unwrap().next().is_some(), "the first run kept its data");
    let second = frankly().args(["demo", "--headless", "--data-dir"]).arg(&data).output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("is not empty: the demo needs a fresh data directory"), "{stderr}");
}

#[test]
fn headless_outside_the_repository_says_where_the_policies_are() {
    let dir = tempfile::tempdir().unwrap();
    let out = frankly().current_dir(dir.path()).args(["demo", "--headless"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read policy policies/adult.toml"), "{stderr}");
    assert!(stderr.contains("run from the repository root, or pass --policies"), "{stderr}");
}

/// One HTTP/1.1 request; returns the whole response as text.
fn http(address: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap() + start.len();
    let len = text[from..].find(end).unwrap();
    &text[from..from + len]
}

#[test]
fn interactive_leaves_the_review_ui_up_with_a_working_account_until_ctrl_c() {
    let mut child = frankly().arg("demo").stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut url, mut password) = (String::new(), String::new());
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        if let Some(u) = line.trim().strip_prefix("The review UI is up at ") {
            url = u.to_owned();
        }
        if let Some(p) = line.trim().strip_prefix("sign in as demo with password ") {
            password = p.to_owned();
            break;
        }
        line.clear();
    }
    let address = between(&url, "http://", "/").to_owned();
    assert!(!password.is_empty(), "the demo prints the moderator's password");

    // Sign in as the demo moderator through the login form (CSRF cookie and field).
    let page = http(&address, "GET /login HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n");
    let csrf = between(&page, "name=\"csrf\" value=\"", "\"");
    // Header names arrive in lower case; the cookie value keeps its case.
    let at = page.to_ascii_lowercase().find("set-cookie: ").unwrap();
    let cookie = between(&page[at..], ": ", ";");
    let form = format!("csrf={csrf}&username=demo&password={password}");
    let answer = http(
        &address,
        &format!(
            "POST /login HTTP/1.1\r\nHost: demo\r\nConnection: close\r\nCookie: {cookie}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 303"), "signed in and sent to the queues: {answer}");

    // Ctrl-C stops it cleanly.
    rustix::process::kill_process(rustix::process::Pid::from_child(&child), rustix::process::Signal::INT).unwrap();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(TcpStream::connect(&address).is_err(), "the server is down after Ctrl-C");
}
