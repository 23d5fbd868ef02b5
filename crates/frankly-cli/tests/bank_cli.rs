//! `frankly keygen`, `frankly bank ...` and `frankly match` as a user runs them.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn haystack() -> PathBuf {
    repo().join("tests/vectors/pdq/threatexchange/pdq/data/reg-test-input/haystack.txt")
}

fn frankly(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("frankly").unwrap();
    cmd.current_dir(dir);
    cmd
}

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = frankly(dir).args(args).output().unwrap();
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn keygen_writes_a_private_secret_key_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(dir.path(), &["keygen", "-o", "signer"]);
    assert_eq!(code, 0, "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("signer")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let public = std::fs::read_to_string(dir.path().join("signer.pub")).unwrap();
    assert!(public.starts_with("frankly-public-key-v1:"));
    let (code, _, err) = run(dir.path(), &["keygen", "-o", "signer"]);
    assert_eq!(code, 1);
    assert!(err.contains("use --force to replace it"), "{err}");
}

#[test]
fn build_sign_verify_info_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hay = haystack();
    run(d, &["keygen", "-o", "k"]);
    run(d, &["keygen", "-o", "other"]);
    let (code, out, err) =
        run(d, &["bank", "build", "--input", hay.to_str().unwrap(), "--name", "hay", "-o", "hay.bank"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("1350 entries (1350 lines, 0 duplicates merged, 0 invalid lines skipped), pdq threshold 31"),
        "{out}"
    );

    let (code, out, err) =
        run(d, &["bank", "sign", "--key", "k", "--bank-version", "5", "hay.bank", "-o", "hay.bundle"]);
    assert_eq!(code, 0, "{err}");
    let digest = out.rsplit("digest ").next().unwrap().trim().to_string();
    assert_eq!(digest.len(), 64);

    let (code, out, _) = run(d, &["bank", "verify", "--pubkey", "k.pub", "hay.bundle"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("OK hay.bundle: bank hay (1350 pdq entries), version 5"), "{out}");
    assert!(out.contains(&digest), "the verified digest is the signed one");

    let (code, out, _) = run(d, &["bank", "info", "hay.bundle"]);
    assert_eq!(code, 0);
    assert!(out.contains("entries:       1350") && out.contains(&digest), "{out}");

    // Wrong key, tampered byte, rollback, unsigned: each refused with exit 1 and its reason.
    let (code, _, err) = run(d, &["bank", "verify", "--pubkey", "other.pub", "hay.bundle"]);
    assert_eq!(code, 1);
    assert!(err.contains("signature does not verify"), "{err}");
    let mut bytes = std::fs::read(d.join("hay.bundle")).unwrap();
    bytes[1000] ^= 1;
    std::fs::write(d.join("tampered.bundle"), &bytes).unwrap();
    let (code, _, err) = run(d, &["bank", "verify", "--pubkey", "k.pub", "tampered.bundle"]);
    assert_eq!(code, 1);
    assert!(err.contains("REFUSED tampered.bundle: signature does not verify"), "{err}");
    let (code, _, err) = run(d, &["bank", "verify", "--pubkey", "k.pub", "--loaded-version", "6", "hay.bundle"]);
    assert_eq!(code, 1);
    assert!(err.contains("older than the loaded version 6"), "{err}");
    let (code, _, err) = run(d, &["bank", "verify", "--pubkey", "k.pub", "hay.bank"]);
    assert_eq!(code, 1);
    assert!(err.contains("unsigned bank"), "{err}");

    // match refuses a bundle without a key, and an unsigned bank with one.
    let (code, _, err) = run(d, &["match", "--bank", "hay.bundle", "--hashes", hay.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("is a signed bundle: pass --pubkey"), "{err}");
    let (code, _, err) =
        run(d, &["match", "--bank", "hay.bank", "--pubkey", "k.pub", "--hashes", hay.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("unsigned bank"), "{err}");

    // Export round trip.
    let (code, _, _) =
        run(d, &["bank", "export", "--format", "pdq-hex", "--pubkey", "k.pub", "hay.bundle", "-o", "out.txt"]);
    assert_eq!(code, 0);
    let original: Vec<String> = std::fs::read_to_string(&hay).unwrap().lines().map(|l| l.trim().to_string()).collect();
    let exported: Vec<String> = std::fs::read_to_string(d.join("out.txt")).unwrap().lines().map(String::from).collect();
    assert_eq!(exported, original);
}

#[test]
fn match_hashes_and_images_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hay = haystack();
    run(d, &["bank", "build", "--input", hay.to_str().unwrap(), "--name", "hay", "-o", "hay.bank"]);
    let needles = hay.with_file_name("needles.txt");
    let (code, out, err) = run(d, &["match", "--bank", "hay.bank", "--json", "--hashes", needles.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 100);
    let hay_hashes: Vec<String> =
        std::fs::read_to_string(&hay).unwrap().lines().map(|l| l.trim().to_string()).collect();
    for line in &lines {
        let query = line["pdq"].as_str().unwrap();
        let matches = line["matches"].as_array().unwrap();
        // Brute force over the haystack, by hand.
        let distance = |a: &str, b: &str| {
            let (a, b) = (hex_bits(a), hex_bits(b));
            a.iter().zip(&b).filter(|(x, y)| x != y).count() as u64
        };
        let mut want: Vec<u64> = hay_hashes.iter().map(|h| distance(h, query)).filter(|&d| d <= 31).collect();
        want.sort_unstable();
        let got: Vec<u64> = matches.iter().map(|m| m["distance"].as_u64().unwrap()).collect();
        assert_eq!(got, want, "{query}");
        assert!(matches.iter().all(|m| m["bank"] == "hay"));
    }

    // Images: a bank made of the shipped photos' own hashes matches each photo at distance 0.
    let photos = repo().join("tests/data/photos");
    let rocket = photos.join("skimage_rocket.jpg");
    let out = frankly(d).args(["hash", "--json"]).arg(&rocket).output().unwrap();
    let pdq = serde_json::from_slice::<Value>(&out.stdout).unwrap()["pdq"].as_str().unwrap().to_string();
    std::fs::write(d.join("list.csv"), format!("hash,label\n{pdq},rocket\n")).unwrap();
    run(d, &["bank", "build", "--input", "list.csv", "--format", "csv", "--name", "mine", "-o", "mine.bank"]);
    let (code, out, err) = run(
        d,
        &[
            "match",
            "--bank",
            "mine.bank",
            "--json",
            rocket.to_str().unwrap(),
            photos.join("skimage_coffee.png").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["pdq"], pdq.as_str());
    assert_eq!(lines[0]["quality"], 100);
    assert_eq!(lines[0]["matches"][0]["distance"], 0);
    assert_eq!(lines[0]["matches"][0]["labels"][0], "rocket");
    assert_eq!(lines[1]["matches"].as_array().unwrap().len(), 0);
}

fn hex_bits(h: &str) -> Vec<bool> {
    h.chars()
        .flat_map(|c| {
            let v = c.to_digit(16).unwrap();
            (0..4).map(move |i| (v >> i) & 1 == 1)
        })
        .collect()
}

#[test]
fn video_banks_from_metas_files_are_built_signed_verified_exported_and_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shared = repo().join("../shared/vectors/vpdq");
    // Two of Meta's published vPDQ files, one video each.
    let meta = d.join("meta");
    std::fs::create_dir(&meta).unwrap();
    for name in ["chair-orig-22-sd-bar", "pattern-hd-no-bar"] {
        std::fs::copy(shared.join(format!("sample-hashes/{name}.txt")), meta.join(format!("{name}.txt"))).unwrap();
    }
    run(d, &["keygen", "-o", "k"]);
    let (code, out, err) = run(
        d,
        &[
            "bank",
            "build",
            "--signal",
            "vpdq",
            "--format",
            "meta",
            "--input",
            "meta",
            "--label",
            "csam",
            "--name",
            "clips",
            "-o",
            "clips.bank",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("clips.bank: 2 videos, 879 frames"), "{out}");
    assert!(out.contains("vpdq distance 31, query 80 %, compared 0 %"), "{out}");
    let (code, out, err) = run(d, &["bank", "sign", "--key", "k", "clips.bank", "-o", "clips.bundle"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("video bank clips (2 videos)"), "{out}");
    let (code, out, err) = run(d, &["bank", "verify", "--pubkey", "k.pub", "clips.bundle"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("video bank clips (2 videos, 879 frames)"), "{out}");
    let (code, out, _) = run(d, &["bank", "info", "clips.bundle"]);
    assert_eq!(code, 0);
    assert!(out.contains("videos:        2") && out.contains("label:         csam (2)"), "{out}");
    let (code, out, err) = run(
        d,
        &["bank", "export", "--format", "threatexchange", "--pubkey", "k.pub", "clips.bundle", "-o", "clips.csv"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 videos"), "{out}");
    // The export reads back as the same videos.
    let (code, out, err) = run(
        d,
        &[
            "bank",
            "build",
            "--signal",
            "vpdq",
            "--format",
            "threatexchange",
            "--input",
            "clips.csv",
            "--name",
            "again",
            "-o",
            "again.bank",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 videos, 879 frames"), "{out}");

    // Scanning a variant of the banked clip with the signed bundles: blocked.
    let policy = repo().join("policies/child.toml");
    let (code, _, err) = run(d, &["policy", "sign", "--key", "k", policy.to_str().unwrap(), "-o", "child.bundle"]);
    assert_eq!(code, 0, "{err}");
    let video = shared.join("videos/chair-22-sd-sepia-bar.mp4");
    let (code, out, err) = run(
        d,
        &[
            "scan",
            "--policy",
            "child.bundle",
            "--models-dir",
            repo().join("models").to_str().unwrap(),
            "--bank",
            "clips.bundle",
            "--pubkey",
            "k.pub",
            "--direction",
            "outgoing",
            "--json",
            video.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let line: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(line["decision"]["actions"], serde_json::json!(["show_resources", "block_send"]), "{line}");
    assert_eq!(line["signals"]["video_matches"][0]["bank"], "clips");

    // `frankly match` on videos: the variant matches the chair clip only.
    let (code, out, err) =
        run(d, &["match", "--bank", "clips.bundle", "--pubkey", "k.pub", "--json", video.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let line: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(line["signal"], "vpdq", "{line}");
    let matched: Vec<&str> =
        line["video_matches"].as_array().unwrap().iter().map(|m| m["source_id"].as_str().unwrap()).collect();
    assert_eq!(matched, ["chair-orig-22-sd-bar"], "{line}");
}
