//! `frankly scan` and `frankly policy ...` as a user runs them.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("frankly").unwrap().current_dir(dir).args(args).output().unwrap();
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn scan_applies_the_policy_to_banked_photos_and_insults() {
    let repo = repo();
    let dir = tempfile::tempdir().unwrap();
    let photo = repo.join("tests/data/photos/skimage_rocket.jpg");
    let (code, out, err) = run(&repo, &["hash", "--json", photo.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let pdq = json_lines(&out)[0]["pdq"].as_str().unwrap().to_owned();
    std::fs::write(dir.path().join("list.csv"), format!("{pdq},csam\n")).unwrap();
    let bank = dir.path().join("demo.bank");
    let (code, _, err) = run(
        &repo,
        &[
            "bank",
            "build",
            "--input",
            dir.path().join("list.csv").to_str().unwrap(),
            "--format",
            "csv",
            "--name",
            "demo",
            "-o",
            bank.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");

    let args = [
        "scan",
        "--policy",
        "policies/child.toml",
        "--direction",
        "outgoing",
        "--json",
        "--bank",
        bank.to_str().unwrap(),
    ];
    let (code, out, err) = run(
        &repo,
        &[&args[..], &["tests/data/photos/skimage_rocket.jpg", "tests/data/photos/skimage_coffee.png"]].concat(),
    );
    assert_eq!(code, 0, "{err}");
    let lines = json_lines(&out);
    assert_eq!(lines[0]["input"], "tests/data/photos/skimage_rocket.jpg");
    assert_eq!(lines[0]["decision"]["actions"], serde_json::json!(["show_resources", "block_send"]));
    assert_eq!(lines[0]["decision"]["fired"][0]["id"], "known-abuse.outgoing");
    assert_eq!(lines[0]["signals"]["bank_matches"][0]["bank"], "demo");
    assert!(lines[0]["timings"]["decode_us"].as_u64().unwrap() > 0);
    assert_eq!(lines[1]["decision"]["actions"], serde_json::json!(["allow"]));

    let (code, out, _) = run(
        &repo,
        &[
            "scan",
            "--policy",
            "policies/teen.toml",
            "--contact",
            "false",
            "--json",
            "--text",
            "you are a fucking idiot",
        ],
    );
    assert_eq!(code, 0);
    let line = &json_lines(&out)[0];
    assert_eq!(line["input"], "you are a fucking idiot");
    assert_eq!(line["decision"]["actions"], serde_json::json!(["warn", "suggest_report"]));
    assert_eq!(line["signals"]["facts"]["sender_is_contact"], false);

    // The audience is checked against the policy.
    let (code, _, err) =
        run(&repo, &["scan", "--policy", "policies/child.toml", "--audience", "adult", "--text", "hi"]);
    assert_eq!(code, 1);
    assert!(err.contains("not written for the Adult audience"), "{err}");
}

#[test]
fn policies_are_checked_signed_and_verified() {
    let repo = repo();
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let (code, _, err) = run(dir.path(), &["keygen", "-o", "signer"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&repo, &["policy", "check", "policies/child.toml", "policies/adult.toml"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("OK policies/child.toml: policy child"));

    let bad = std::fs::read_to_string(repo.join("policies/adult.toml"))
        .unwrap()
        .replace("actions = [\"blur\"]", "actions = [\"block_send\"]");
    std::fs::write(d("bad.toml"), bad).unwrap();
    let (code, _, err) = run(&repo, &["policy", "check", &d("bad.toml")]);
    assert_eq!(code, 1);
    assert!(err.contains("rule `nudity.incoming`: actions: block_send applies to outgoing messages only"), "{err}");

    let (code, out, err) = run(
        &repo,
        &[
            "policy",
            "sign",
            "--key",
            &d("signer"),
            "--policy-version",
            "3",
            "policies/adult.toml",
            "-o",
            &d("adult.bundle"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("policy bundle, version 3"), "{out}");
    let (code, out, _) = run(&repo, &["policy", "verify", "--pubkey", &d("signer.pub"), &d("adult.bundle")]);
    assert_eq!(code, 0);
    assert!(out.starts_with("OK "), "{out}");
    let (code, _, err) =
        run(&repo, &["policy", "verify", "--pubkey", &d("signer.pub"), "--loaded-version", "4", &d("adult.bundle")]);
    assert_eq!(code, 1);
    assert!(err.contains("refusing a rollback"), "{err}");

    let mut bytes = std::fs::read(d("adult.bundle")).unwrap();
    let at = bytes.windows(5).position(|w| w == b"false").unwrap();
    bytes[at..at + 5].copy_from_slice(b"true ");
    std::fs::write(d("tampered.bundle"), bytes).unwrap();
    let (code, _, err) = run(&repo, &["policy", "verify", "--pubkey", &d("signer.pub"), &d("tampered.bundle")]);
    assert_eq!(code, 1);
    assert!(err.contains("signature does not verify"), "{err}");
    let (code, _, err) = run(&repo, &["policy", "verify", "--pubkey", &d("signer.pub"), "policies/adult.toml"]);
    assert_eq!(code, 1);
    assert!(err.contains("unsigned policy"), "{err}");

    // scan takes the bundle with the key, and refuses it without.
    let (code, _, err) =
        run(&repo, &["scan", "--policy", &d("adult.bundle"), "--pubkey", &d("signer.pub"), "--text", "hi"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&repo, &["scan", "--policy", &d("adult.bundle"), "--text", "hi"]);
    assert_eq!(code, 1);
    assert!(err.contains("is a signed bundle"), "{err}");
}
