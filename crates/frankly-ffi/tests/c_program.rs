//! A C program (`tests/c/scan.c`) built with gcc under AddressSanitizer,
//! LeakSanitizer and UBSan against `libfrankly.so`: PDQ equal to the Rust
//! library's, refusals with the library's message, a bank and a scan with
//! the child policy and the shipped models, every handle and buffer freed.
//! Fails (never skips) when gcc is missing.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_c_program_runs_clean_under_asan() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // This test binary is target/<profile>/deps/c_program-*; cargo builds the
    // library for it in the same deps/ directory.
    let exe = std::env::current_exe().unwrap();
    let lib_dir = exe.parent().unwrap().to_path_buf();
    assert!(lib_dir.join("libfrankly.so").exists(), "no libfrankly.so in {}", lib_dir.display());
    let out_dir = tempfile::tempdir().unwrap();
    let program = out_dir.path().join("scan");
    let built = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-fno-omit-frame-pointer"])
        .args(["-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
        .arg("-I")
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join("tests/c/scan.c"))
        .arg(format!("-L{}", lib_dir.display()))
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .args(["-lfrankly", "-o"])
        .arg(&program)
        .output()
        .expect("gcc is needed for the C ABI test (Debian: apt install gcc)");
    assert!(built.status.success(), "gcc failed:\n{}", String::from_utf8_lossy(&built.stderr));

    let photo = repo().join("tests/data/photos/lomiri_Bridge_by_Sander_Klootwijk.jpg");
    let bytes = std::fs::read(&photo).unwrap();
    let image = frankly_hash::decode(&bytes, &frankly_hash::DecodeOptions::default()).unwrap().rgb;
    let expected = frankly_hash::pdq(&image);
    let run = Command::new(&program)
        .arg(&photo)
        .arg(expected.hash.to_string())
        .arg(expected.quality.to_string())
        .arg(repo().join("policies/child.toml"))
        .arg(repo().join("models"))
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=23")
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    println!("{stdout}{stderr}");
    assert!(run.status.success(), "the C program failed ({}):\n{stdout}\n{stderr}", run.status);
    assert!(stdout.ends_with("all checks passed\n"), "{stdout}");
    assert!(!stderr.contains("Sanitizer"), "{stderr}");
}
