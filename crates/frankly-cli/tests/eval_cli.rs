//! `frankly eval` as a researcher runs it: a corpus in, CSV, HTML and plots out.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn frankly() -> Command {
    let mut cmd = Command::cargo_bin("frankly").unwrap();
    cmd.current_dir(repo());
    cmd
}

fn photos() -> PathBuf {
    repo().join("tests/data/photos")
}

#[test]
fn robustness_writes_csv_html_and_plots() {
    let out = tempfile::tempdir().unwrap();
    let assert = frankly()
        .args(["eval", "robustness", "--transforms", "jpeg:50,crop:0.05", "--threads", "2", "--corpus"])
        .arg(photos())
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(stdout.contains("crop:0.05"), "{stdout}");

    let csv = std::fs::read_to_string(out.path().join("robustness.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(frankly_eval::ROBUSTNESS_COLUMNS));
    let columns: Vec<&str> = frankly_eval::ROBUSTNESS_COLUMNS.split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 5 * 2, "{csv}");
    let col = |name: &str| columns.iter().position(|c| *c == name).unwrap();
    for row in &rows {
        assert_eq!(row.len(), columns.len());
        assert_eq!(row[col("queries")], "6");
        let recall: f64 = row[col("recall_at_precision")].parse().unwrap();
        assert!((0.0..=1.0).contains(&recall));
        let auc: f64 = row[col("auc")].parse().unwrap();
        assert!((0.0..=1.0).contains(&auc));
    }
    assert_eq!(rows.iter().filter(|r| r[col("algorithm")] == "pdq").count(), 2);

    for name in ["distances.csv", "roc.csv", "hashes.csv"] {
        assert!(std::fs::metadata(out.path().join(name)).unwrap().len() > 0, "{name}");
    }
    for stem in ["recall", "roc_pdq", "roc_blockhash", "histogram_phash"] {
        let png = std::fs::read(out.path().join(format!("{stem}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{stem}");
        let decoded = image::load_from_memory(&png).unwrap();
        assert!(decoded.width() >= 600);
        let svg = std::fs::read_to_string(out.path().join(format!("{stem}.svg"))).unwrap();
        assert!(svg.starts_with("<svg"), "{stem}");
    }
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("crop:0.05") && html.contains("</html>"));
}

#[test]
fn robustness_refuses_bad_transforms() {
    let out = tempfile::tempdir().unwrap();
    let assert = frankly()
        .args(["eval", "robustness", "--transforms", "jpeg:500", "--corpus"])
        .arg(photos())
        .arg("--out")
        .arg(out.path())
        .assert()
        .failure();
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("jpeg"), "{stderr}");
}

#[test]
fn fpr_and_privacy_print_tables() {
    let out = tempfile::tempdir().unwrap();
    let assert = frankly()
        .args(["eval", "fpr", "--algos", "pdq,phash", "--no-plots", "--corpus"])
        .arg(photos())
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(stdout.starts_with("6 images from 3 sources (0 pixel-identical copies left out), 15 pairs"), "{stdout}");
    assert!(stdout.contains("pairs from different sources only:"), "{stdout}");
    let by_source = std::fs::read_to_string(out.path().join("by_source.csv")).unwrap();
    assert_eq!(by_source.lines().count(), 1 + 2 * (3 + 1), "{by_source}");
    let fpr = std::fs::read_to_string(out.path().join("fpr.csv")).unwrap();
    assert_eq!(fpr.lines().count(), 1 + 257 + 65);

    let assert = frankly().args(["eval", "privacy"]).assert().success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert_eq!(stdout.lines().count(), 2 + 8, "{stdout}");
    assert!(stdout.contains("moderation server"));
}

#[test]
fn evade_writes_adversarial_images() {
    let out = tempfile::tempdir().unwrap();
    frankly()
        .args(["eval", "attack", "evade", "--limit", "1", "--max-queries", "40", "--corpus"])
        .arg(photos())
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let csv = std::fs::read_to_string(out.path().join("attack.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    let queries: u32 = row[5].parse().unwrap();
    assert!((1..=40).contains(&queries));
    assert!(Path::new(row[10]).exists(), "{}", row[10]);
}

/// Three of Meta's sample videos, of three sources, in a corpus directory.
fn video_corpus() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["doorknob-hd-no-bar", "pattern-sd-grey-bar", "test-padded-dimensions"] {
        let from = repo().join("../shared/vectors/vpdq/videos").join(format!("{name}.mp4"));
        std::fs::copy(&from, dir.path().join(format!("{name}.mp4"))).unwrap();
    }
    // Not a video, whatever its name: left out by its bytes.
    std::fs::write(dir.path().join("notes.mp4"), "not a video").unwrap();
    dir
}

#[test]
fn video_robustness_matches_reencodes_and_shows_that_vpdq_misses_mirrored_copies() {
    let corpus = video_corpus();
    let out = tempfile::tempdir().unwrap();
    let assert = frankly()
        .args(["eval", "robustness", "--media", "video", "--transforms", "bitrate:250,flip", "--threads", "2"])
        // Originals banked at every frame, copies hashed one frame a second.
        .args(["--group-delimiter", "-", "--bank-seconds-per-hash", "0", "--corpus"])
        .arg(corpus.path())
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(stdout.contains("bitrate:250") && stdout.contains("flip"), "{stdout}");

    let csv = std::fs::read_to_string(out.path().join("video_robustness.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(frankly_eval::VIDEO_ROBUSTNESS_COLUMNS));
    let columns: Vec<&str> = frankly_eval::VIDEO_ROBUSTNESS_COLUMNS.split(',').collect();
    let col = |name: &str| columns.iter().position(|c| *c == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    let (bitrate, flip) = (&rows[0], &rows[1]);
    assert_eq!((bitrate[col("transform")], bitrate[col("queries")]), ("bitrate:250", "3"));
    // A re-encode at 250 kbit/s keeps every hashed frame within 31 bits.
    assert_eq!(bitrate[col("rule_recall")], "1.0000", "{csv}");
    assert_eq!(bitrate[col("mean_query_percent")], "100.00", "{csv}");
    // One frame a second of the copy finds a small share of a bank of every frame.
    let compared: f64 = bitrate[col("mean_compared_percent")].parse().unwrap();
    assert!(compared < 50.0, "{csv}");
    // PDQ is not mirror-invariant: a flipped copy matches nothing.
    assert_eq!(flip[col("rule_recall")], "0.0000", "{csv}");
    for row in &rows {
        assert_eq!(row[col("rule_false_matches")], "0", "{csv}");
        assert_eq!(row[col("negative_pairs")], "6", "3 copies against the 2 other sources: {csv}");
    }
    let queries = std::fs::read_to_string(out.path().join("video_queries.csv")).unwrap();
    assert_eq!(queries.lines().count(), 1 + 2 * 3, "{queries}");
    assert!(!queries.contains("notes.mp4"));
    // The copies are kept for other tools to hash.
    let copy = out.path().join("videos/bitrate_250/doorknob-hd-no-bar.mp4");
    assert!(frankly_hash::sniff(&std::fs::read(&copy).unwrap()).is_video(), "{}", copy.display());
    for stem in ["video_roc", "video_histogram"] {
        let png = std::fs::read(out.path().join(format!("{stem}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{stem}");
    }
    let html = std::fs::read_to_string(out.path().join("video_report.html")).unwrap();
    assert!(html.contains("vPDQ robustness") && html.contains("<svg") && html.contains("</html>"));
    assert!(html.contains("originals at one every 0 s"), "the bank's rate is reported");
}

#[test]
fn video_robustness_without_ffmpeg_says_how_to_get_it() {
    let corpus = video_corpus();
    let out = tempfile::tempdir().unwrap();
    let assert = frankly()
        .env("FRANKLY_FFMPEG", "/nonexistent/ffmpeg")
        .args(["eval", "robustness", "--media", "video", "--corpus"])
        .arg(corpus.path())
        .arg("--out")
        .arg(out.path())
        .assert()
        .failure();
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("/nonexistent/ffmpeg") && stderr.contains("apt install ffmpeg"), "{stderr}");
    let bad = frankly()
        .args(["eval", "robustness", "--media", "video", "--transforms", "speed:9", "--corpus"])
        .arg(corpus.path())
        .assert()
        .failure();
    let stderr = String::from_utf8(bad.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("speed:9") && stderr.contains("0.25..=4"), "{stderr}");
    let bad = frankly()
        .args(["eval", "robustness", "--media", "video", "--bank-seconds-per-hash=-1", "--corpus"])
        .arg(corpus.path())
        .assert()
        .failure();
    let stderr = String::from_utf8(bad.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("--bank-seconds-per-hash must be in 0..=3600"), "{stderr}");
}
