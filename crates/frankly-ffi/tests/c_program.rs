//! C programs built with gcc under AddressSanitizer, LeakSanitizer and
//! UBSan against `libfrankly.so`, every handle and buffer freed:
//! - `tests/c/scan.c`: PDQ equal to the Rust library's, refusals with the
//!   library's message, a bank and a scan with the child policy and the
//!   shipped models;
//! - `tests/c/franking.c`: the device side of franking with a platform
//!   written in C on OpenSSL's HMAC (an implementation of the tag and
//!   delivery-MAC layouts outside Rust); the report it seals is opened and
//!   verified here.
//!
//! Fails (never skips) when gcc or OpenSSL's headers are missing.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "../../../tests/support/device_story.rs"]
mod device_story;

use device_story::repo;

/// Builds `tests/c/<name>.c` into `dir` with the sanitizers, linked to
/// libfrankly (and `extra` libraries).
fn build(name: &str, dir: &Path, extra: &[&str]) -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // This test binary is target/<profile>/deps/c_program-*; cargo builds the
    // library for it in the same deps/ directory.
    let exe = std::env::current_exe().unwrap();
    let lib_dir = exe.parent().unwrap().to_path_buf();
    assert!(lib_dir.join("libfrankly.so").exists(), "no libfrankly.so in {}", lib_dir.display());
    let program = dir.join(name);
    let built = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-fno-omit-frame-pointer"])
        .args(["-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
        .arg("-I")
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join(format!("tests/c/{name}.c")))
        .arg(format!("-L{}", lib_dir.display()))
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-lfrankly")
        .args(extra)
        .arg("-o")
        .arg(&program)
        .output()
        .expect("gcc is needed for the C ABI test (Debian: apt install gcc)");
    assert!(built.status.success(), "gcc failed on {name}.c:\n{}", String::from_utf8_lossy(&built.stderr));
    program
}

/// Runs a built program under the sanitizers' settings; it must pass clean.
fn run_clean(program: &Path, args: &[&std::ffi::OsStr]) {
    // The library next to this test binary, not another build's: cargo's
    // LD_LIBRARY_PATH also names target/<profile>, where `cargo build -p
    // frankly-ffi` leaves its own copy, and it overrides the RUNPATH.
    let lib_dir = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let run = Command::new(program)
        .args(args)
        .env("LD_LIBRARY_PATH", &lib_dir)
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=23")
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    println!("{stdout}{stderr}");
    assert!(run.status.success(), "{} failed ({}):\n{stdout}\n{stderr}", program.display(), run.status);
    assert!(stdout.ends_with("all checks passed\n"), "{stdout}");
    assert!(!stderr.contains("Sanitizer"), "{stderr}");
}

#[test]
fn the_c_program_runs_clean_under_asan() {
    let out_dir = tempfile::tempdir().unwrap();
    let program = build("scan", out_dir.path(), &[]);

    let photo = repo().join("tests/data/photos/lomiri_Bridge_by_Sander_Klootwijk.jpg");
    let bytes = std::fs::read(&photo).unwrap();
    let image = frankly_hash::decode(&bytes, &frankly_hash::DecodeOptions::default()).unwrap().rgb;
    let expected = frankly_hash::pdq(&image);
    let (hash, quality) = (expected.hash.to_string(), expected.quality.to_string());
    let (policy, models) = (repo().join("policies/child.toml"), repo().join("models"));
    run_clean(&program, &[photo.as_os_str(), hash.as_ref(), quality.as_ref(), policy.as_os_str(), models.as_os_str()]);
}

#[test]
fn the_c_device_franks_receives_refuses_forgeries_and_reports_what_the_server_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let program = build("franking", d, &["-lcrypto"]);
    let now_s = frankly_bundle::unix_now();
    let keys = device_story::prepare(d, now_s);
    let now = (now_s * 1000).to_string();
    run_clean(&program, &[d.as_os_str(), now.as_ref()]);
    device_story::check_report(d, now_s, keys);
}
