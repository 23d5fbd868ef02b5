//! Writes the generated seeds of `seeds/<target>/` from the repository's
//! own files: policies, franking and report vectors, and banks and bundles
//! built here and signed or sealed with the fixed fuzz keys of `src/lib.rs`.
//! Image seeds are made by `make-image-seeds.sh` (ImageMagick).
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds` (from the
//! repository root; a plain build, no fuzzing flags).

use std::fs;
use std::path::{Path, PathBuf};

use frankly_bank::{Bank, SignalType, TextFormat, sign_bundle};
use frankly_policy::sign_policy;
use frankly_report::{decode_report, seal_report};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn write(target: &str, name: &str, bytes: &[u8]) -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
    fs::create_dir_all(&dir)?;
    fs::write(dir.join(name), bytes)?;
    Ok(())
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn hex_lines(signal: SignalType, n: usize, salt: u8) -> String {
    let chars = (signal.bits() / 4) as usize;
    (0..n)
        .map(|i| {
            (0..chars)
                .map(|j| char::from(b"0123456789abcdef"[(i * 7 + j * 3 + salt as usize) % 16]))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn banks() -> Result<()> {
    let key = frankly_fuzz::bundle_signing_key();
    let now = frankly_fuzz::NOW_SECS;
    for (i, signal) in SignalType::ALL.into_iter().enumerate() {
        let hex = hex_lines(signal, 3, i as u8);
        let csv = hex.lines().enumerate().map(|(j, h)| format!("{h},label{j},other")).collect::<Vec<_>>().join("\n");
        let csv = format!("hash,labels\n{csv}\n");
        if i < 2 {
            write("bank", &format!("{}.hex", signal.name()), hex.as_bytes())?;
            write("bank", &format!("{}.csv", signal.name()), csv.as_bytes())?;
        }
        let (bank, _) = Bank::import_text(signal.name(), signal, TextFormat::Csv, &csv, true)?;
        write("bank", &format!("{}.bank", signal.name()), &bank.to_bytes()?)?;
        let (bundle, _) = sign_bundle(&bank, &key, 3, now - 60, now + 86_400)?;
        write("bank", &format!("{}.bundle", signal.name()), &bundle)?;
    }
    Ok(())
}

fn policies() -> Result<()> {
    let key = frankly_fuzz::bundle_signing_key();
    let now = frankly_fuzz::NOW_SECS;
    for entry in fs::read_dir(repo().join("policies"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = fs::read_to_string(&path)?;
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("policy");
            write("policy", &format!("{stem}.toml"), text.as_bytes())?;
            let (bundle, _) = sign_policy(&text, &key, 2, now - 60, now + 86_400)?;
            write("policy", &format!("{stem}.bundle"), &bundle)?;
        }
    }
    Ok(())
}

fn vectors() -> Result<()> {
    let key = frankly_fuzz::report_key();
    let mut dirs: Vec<_> = ["valid", "invalid"].iter().map(|d| repo().join("tests/vectors/franking").join(d)).collect();
    dirs.sort();
    for dir in dirs {
        let mut files: Vec<_> = fs::read_dir(&dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for path in files {
            let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path)?)?;
            let name = v["name"].as_str().unwrap_or("vector").to_owned();
            let field = |k: &str| v[k].as_str().and_then(|s| hex::decode(s).ok());
            if let Some(report) = field("report") {
                write("report", &format!("{name}.frp2"), &report)?;
                write("report_roundtrip", &format!("{name}.frp2"), &report)?;
                if let Ok(decoded) = decode_report(&report) {
                    let envelope = seal_report(&decoded, frankly_fuzz::REPORT_KEY_ID, key.public())?;
                    write("report", &format!("{name}.sealed"), &envelope)?;
                }
            }
            if let Some(envelope) = field("envelope") {
                write("report", &format!("{name}.envelope"), &envelope)?;
            }
            if let Some(body) = field("body") {
                write("franking_body", &format!("{name}.fmb1"), &body)?;
            }
            if let Some(delivery) = field("delivery") {
                write("franking_body", &format!("{name}.delivery"), &delivery)?;
            }
        }
    }
    Ok(())
}

fn json() -> Result<()> {
    let c = "be98e4deee38c9053284661d84d281b4eac332a98d32523f0ab0b4277504a786";
    let seeds = [
        (
            "send.json",
            format!(
                r#"{{"conversation_id":"c1","copies":[{{"recipient":{{"user_id":"bob","device_id":"phone"}},"ciphertext":"aGVsbG8="}}],"attachments":["AAEC"],"commitment":"{c}"}}"#
            ),
        ),
        (
            "frank.json",
            format!(
                r#"{{"commitment":"{c}","delivery":{{"conversation_id":"c1","sequence":7,"sender":{{"user_id":"alice","device_id":"laptop"}},"recipient":{{"user_id":"bob","device_id":"phone"}},"timestamp_ms":1800000000000,"server_message_id":"m7"}}}}"#
            ),
        ),
        ("device.json", r#"{"user_id":"alice","device_id":"laptop"}"#.to_owned()),
        ("conversation.json", r#"{"conversation_id":"c1","members":["alice","bob","carol"]}"#.to_owned()),
        ("member.json", r#"{"conversation_id":"c1","user_id":"dave"}"#.to_owned()),
        ("ack.json", r#"{"up_to":12}"#.to_owned()),
    ];
    for (name, text) in seeds {
        write("server_json", name, text.as_bytes())?;
    }
    Ok(())
}

fn main() -> Result<()> {
    banks()?;
    policies()?;
    vectors()?;
    json()?;
    Ok(())
}
