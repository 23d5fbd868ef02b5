//! `frankly hash` as a user runs it: arguments in, exit code and output out.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn frankly() -> Command {
    let mut cmd = Command::cargo_bin("frankly").unwrap();
    cmd.current_dir(repo());
    cmd
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    std::str::from_utf8(stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn vector(file: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("tests/vectors/pdq/vectors.json")).unwrap();
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    all.into_iter().find(|v| v["file"] == file).unwrap()
}

#[test]
fn json_pdq_and_dihedral_equal_metas_outputs() {
    let file = "te_dih_bridge-2-rotate-90.png";
    let want = vector(file);
    let out = frankly()
        .args(["hash", "--json", "--algo", "pdq,pdq-dihedral"])
        .arg(format!("tests/vectors/pdq/{file}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line["path"], format!("tests/vectors/pdq/{file}"));
    assert_eq!(line["pdq"], want["pdq"]);
    assert_eq!(line["quality"], want["quality"]);
    assert_eq!(line["pdq_dihedral"], want["dihedral"]);
    // Only what was asked for.
    assert!(line.get("phash").is_none() && line.get("sha256").is_none() && line.get("error").is_none());
}

#[test]
fn table_output_snapshot() {
    let out = frankly()
        .args(["hash", "--algo", "md5,pdq", "tests/vectors/pdq/te_bridge-mods_square-128x128.png"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let want = vector("te_bridge-mods_square-128x128.png");
    let md5 = frankly_hash::md5_hex(
        &std::fs::read(repo().join("tests/vectors/pdq/te_bridge-mods_square-128x128.png")).unwrap(),
    );
    let path = "tests/vectors/pdq/te_bridge-mods_square-128x128.png";
    let expected = format!(
        "{:w$}  {:64}  {:32}  QUALITY\n{path}  {}  {md5}      100\n",
        "PATH",
        "PDQ",
        "MD5",
        want["pdq"].as_str().unwrap(),
        w = path.len()
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
}

#[test]
fn directories_are_walked_in_order_and_failures_do_not_stop_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let photos = repo().join("tests/data/photos");
    std::fs::create_dir_all(dir.path().join("b/nested")).unwrap();
    std::fs::copy(photos.join("skimage_rocket.jpg"), dir.path().join("b/nested/rocket.JPG")).unwrap();
    std::fs::copy(photos.join("skimage_chelsea.png"), dir.path().join("a.png")).unwrap();
    std::fs::write(dir.path().join("b/broken.jpg"), b"\xff\xd8\xff\xe0 truncated").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"not an image, not picked up").unwrap();

    let out = frankly().args(["hash", "--json", "--algo", "pdq,sha256"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a failed input makes the exit code 1");
    let lines = json_lines(&out.stdout);
    let names: Vec<String> = lines
        .iter()
        .map(|l| Path::new(l["path"].as_str().unwrap()).strip_prefix(dir.path()).unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["a.png", "b/broken.jpg", "b/nested/rocket.JPG"]);
    assert!(lines[0]["pdq"].is_string() && lines[2]["pdq"].is_string());
    let broken = &lines[1];
    assert!(broken["error"].as_str().unwrap().contains("cannot decode Jpeg image"), "{broken}");
    assert!(broken["sha256"].is_string(), "digests are kept for undecodable files");
    assert!(broken.get("pdq").is_none());
}

#[test]
fn thread_count_does_not_change_output() {
    let run = |threads: &str| {
        let out = frankly()
            .args(["hash", "--json", "--algo", "pdq,phash,dhash,ahash,blockhash,md5", "--threads", threads])
            .arg("tests/data/photos")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        out.stdout
    };
    let one = run("1");
    assert_eq!(json_lines(&one).len(), 6);
    assert_eq!(one, run("2"));
}

#[test]
fn missing_paths_are_reported_per_path() {
    let out = frankly()
        .args(["hash", "--json", "does/not/exist.jpg", "tests/data/photos/skimage_rocket.jpg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out.stdout);
    assert_eq!(lines[0]["path"], "does/not/exist.jpg");
    assert!(lines[0]["error"].as_str().unwrap().contains("No such file"));
    assert!(lines[1]["pdq"].is_string());
}

#[test]
fn digests_of_any_named_file_need_no_decoding() {
    let out = frankly().args(["hash", "--json", "--algo", "sha256,md5", "Cargo.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let line = &json_lines(&out.stdout)[0];
    let bytes = std::fs::read(repo().join("Cargo.toml")).unwrap();
    assert_eq!(line["sha256"], frankly_hash::sha256_hex(&bytes));
    assert_eq!(line["md5"], frankly_hash::md5_hex(&bytes));
}

#[test]
fn limits_are_enforced_and_overridable() {
    let out = frankly()
        .args(["hash", "--json", "--max-pixels", "1000", "tests/data/photos/skimage_rocket.jpg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let line = &json_lines(&out.stdout)[0];
    assert_eq!(line["error"], "image is 640x427, over the limit of 1000 pixels in all");

    let out = frankly()
        .args(["hash", "--json", "--max-file-bytes", "100", "tests/data/photos/skimage_rocket.jpg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_lines(&out.stdout)[0]["error"], "file is over the limit of 100 bytes");
}

#[test]
fn usage_errors_exit_2() {
    for args in
        [vec!["hash", "--algo", "sha1", "x.jpg"], vec!["hash"], vec!["hash", "--threads", "0", "x.jpg"], vec!["nope"]]
    {
        let out = frankly().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
    }
    let out = frankly().args(["hash", "--algo", "sha1", "x.jpg"]).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("unknown hash algorithm \"sha1\"; known: pdq,pdq-dihedral,phash"), "{stderr}");
}

#[test]
fn exif_orientation_is_opt_in() {
    let path = "tests/data/exif/orientation-6.jpg";
    let dims = |extra: &[&str]| {
        let out = frankly().args(["hash", "--json"]).args(extra).arg(path).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let line = &json_lines(&out.stdout)[0];
        (line["width"].as_u64().unwrap(), line["height"].as_u64().unwrap())
    };
    assert_eq!(dims(&[]), (64, 32));
    assert_eq!(dims(&["--exif-orient"]), (32, 64));
}

#[test]
fn classify_prints_per_label_scores() {
    let out = frankly()
        .args(["classify", "--json", "tests/data/photos/skimage_rocket.jpg", "does/not/exist.png"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "one input failed");
    let lines = json_lines(&out.stdout);
    assert_eq!(lines[0]["input"], "tests/data/photos/skimage_rocket.jpg");
    assert_eq!(lines[0]["model"], "open_nsfw");
    let (sfw, nsfw) = (lines[0]["scores"]["sfw"].as_f64().unwrap(), lines[0]["scores"]["nsfw"].as_f64().unwrap());
    assert!((sfw + nsfw - 1.0).abs() < 1e-4 && nsfw < 0.01, "{sfw} {nsfw}");
    assert!(lines[1]["error"].as_str().unwrap().contains("No such file"));
    let out = frankly().args(["classify", "--model", "nope", "x.jpg"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("cannot load model nope"));
}

#[test]
fn classify_text_gives_one_line_per_message() {
    let out =
        frankly().args(["classify", "--json", "--text", "have a nice day", "--text", "you idiot"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["input"], "have a nice day");
    assert_eq!(lines[0]["model"], "profanity_check");
    assert!(lines[0]["scores"]["profanity"].as_f64().unwrap() < 0.5);
    assert!(lines[1]["scores"]["profanity"].as_f64().unwrap() > 0.9);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("messages.txt");
    std::fs::write(&file, "hello\nshut up, loser\n\n").unwrap();
    let out = frankly().args(["classify", "--json", "--text-file"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines = json_lines(&out.stdout);
    let inputs: Vec<&str> = lines.iter().map(|l| l["input"].as_str().unwrap()).collect();
    assert_eq!(inputs, ["hello", "shut up, loser", ""]);

    // An image model cannot read text, and images and text do not mix.
    let out = frankly().args(["classify", "--model", "open_nsfw", "--text", "hi"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("does not classify text"));
    let out = frankly().args(["classify", "--text", "hi", "tests/data/photos/skimage_rocket.jpg"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

fn sample_video(name: &str) -> PathBuf {
    repo().join("../shared/vectors/vpdq/videos").join(format!("{name}.mp4"))
}

#[test]
fn vpdq_files_are_metas_published_ones_and_video_md5_is_the_file_md5() {
    let dir = tempfile::tempdir().unwrap();
    let video = sample_video("doorknob-hd-no-bar");
    let out = frankly()
        .args(["hash", "--algo", "vpdq", "--seconds-per-hash", "0", "--meta-timestamps", "--output-dir"])
        .arg(dir.path())
        .arg(&video)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let ours = std::fs::read_to_string(dir.path().join("doorknob-hd-no-bar.txt")).unwrap();
    let published = repo().join("../shared/vectors/vpdq/sample-hashes/doorknob-hd-no-bar.txt");
    let theirs = frankly_hash::parse_meta(&std::fs::read_to_string(published).unwrap()).unwrap();
    let ours = frankly_hash::parse_meta(&ours).unwrap();
    assert_eq!(ours.len(), 120);
    assert!(
        ours.iter()
            .zip(&theirs)
            .all(|(a, b)| (a.frame_number, a.quality, a.hash) == (b.frame_number, b.quality, b.hash))
    );

    // JSON: HMA's one frame a second by default, and the MD5 of the bytes
    // as coreutils' md5sum computes it.
    let out = frankly().args(["hash", "--algo", "vpdq,video_md5", "--json"]).arg(&video).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let line = &json_lines(&out.stdout)[0];
    let md5sum = std::process::Command::new("md5sum").arg(&video).output().unwrap();
    let md5sum = String::from_utf8(md5sum.stdout).unwrap();
    assert_eq!(line["video_md5"].as_str(), md5sum.split_whitespace().next());
    assert_eq!(line["vpdq"].as_array().unwrap().len(), 4, "4 seconds at one frame a second");
    assert_eq!(line["decoded_frames"], 120);
    // Text: the MD5 line, then the Meta lines under a comment naming the file.
    let out = frankly().args(["hash", "--algo", "vpdq,video_md5"]).arg(&video).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with(md5sum.split_whitespace().next().unwrap()), "{text}");
    assert_eq!(frankly_hash::parse_meta(text.split_once('\n').unwrap().1).unwrap().len(), 4);
}

#[test]
fn bad_videos_and_mixed_algorithms_follow_the_exit_code_rules() {
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(sample_video("doorknob-hd-no-bar")).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &whole[..4096]).unwrap();
    let good = sample_video("test-padded-dimensions");
    let out = frankly().args(["hash", "--algo", "vpdq", "--json"]).arg(&cut).arg(&good).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a bad input fails the run");
    let lines = json_lines(&out.stdout);
    assert_eq!(lines[0]["error"], "the video ends inside its container header (truncated)");
    assert!(lines[1]["error"].is_null() && !lines[1]["vpdq"].as_array().unwrap().is_empty(), "{}", lines[1]);
    for args in [
        vec!["hash", "--algo", "pdq,vpdq", "x.mp4"],
        vec!["hash", "--algo", "vpdq", "--seconds-per-hash", "-1", "x.mp4"],
    ] {
        let out = frankly().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
