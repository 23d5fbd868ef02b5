//! `frankly scan`: what the on-device module would do with a message.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use frankly_client::{Attachment, Message, Scanner, Verdict};
use frankly_policy::{Audience, Direction, Facts};
use rayon::prelude::*;

use crate::bank_cmd::{load_bank, load_video_bank_bytes, read_limited};
use crate::policy_cmd::load_policy;

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("inputs").required(true).args(["files", "text"])))]
pub(crate) struct ScanArgs {
    /// Policy file, or policy bundle (then with --pubkey).
    #[arg(long, value_name = "POLICY")]
    policy: PathBuf,
    /// Banks or bank bundles to match against, hash banks or video (vPDQ) banks (repeatable).
    #[arg(long = "bank", value_name = "BANK_OR_BUNDLE")]
    banks: Vec<PathBuf>,
    /// Public key that bundles (policy and banks) must verify with.
    #[arg(long, value_name = "PUB")]
    pubkey: Option<PathBuf>,
    /// The device owner's audience (default: the policy's first).
    #[arg(long, value_parser = |s: &str| s.parse::<Audience>())]
    audience: Option<Audience>,
    /// Scan as a message received (after decryption) or about to be sent (before encryption).
    #[arg(long, default_value = "incoming", value_parser = |s: &str| s.parse::<Direction>())]
    direction: Direction,
    /// A policy setting, NAME=true|false (repeatable).
    #[arg(long = "setting", value_name = "NAME=BOOL", value_parser = parse_setting)]
    settings: Vec<(String, bool)>,
    /// The app's fact: the sender is (true) or is not (false) a contact.
    #[arg(long)]
    contact: Option<bool>,
    /// The app's fact: this is (true) or is not (false) the sender's first message.
    #[arg(long)]
    first_message: Option<bool>,
    /// Directory of model manifests; the models the policy reads are loaded from it.
    #[arg(long, env = "FRANKLY_MODELS", default_value = "models")]
    models_dir: PathBuf,
    /// One JSON object per message and line.
    #[arg(long)]
    json: bool,
    /// A text message to scan (repeatable; one message each).
    #[arg(long, conflicts_with = "files")]
    text: Vec<String>,
    /// Files to scan (images, animations, videos), each as a message with one attachment.
    files: Vec<PathBuf>,
}

fn parse_setting(s: &str) -> Result<(String, bool), String> {
    let (name, value) = s.split_once('=').ok_or("expected NAME=true or NAME=false")?;
    let on = value.parse::<bool>().map_err(|_| format!("{value:?} is not true or false"))?;
    Ok((name.to_owned(), on))
}

#[derive(serde::Serialize)]
struct Line<'a> {
    input: String,
    #[serde(flatten)]
    verdict: Option<&'a Verdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn media_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("jpg" | "jpeg" | "jfif") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("bmp") => "image/bmp",
        Some("tif" | "tiff") => "image/tiff",
        Some("mp4" | "m4v") => "video/mp4",
        Some("mov") => "video/quicktime",
        Some("webm") => "video/webm",
        _ => "application/octet-stream",
    }
}

/// A scanner for the policy, with the banks and the models its rules read.
fn build_scanner(args: &ScanArgs) -> anyhow::Result<Scanner> {
    let policy = load_policy(&args.policy, args.pubkey.as_deref())?;
    let audience = args.audience.unwrap_or_else(|| policy.policy().default_audience());
    let mut builder = Scanner::builder(policy, audience);
    for path in &args.banks {
        let bytes = read_limited(path)?;
        builder = match load_video_bank_bytes(&bytes, path, args.pubkey.as_deref())? {
            Some(videos) => builder.video_bank(videos.into_verified()?),
            None => builder.bank(load_bank(path, args.pubkey.as_deref())?.into_verified()?),
        };
    }
    builder = builder.models_from_dir(&args.models_dir)?;
    for (name, on) in &args.settings {
        builder = builder.setting(name, *on);
    }
    Ok(builder.build()?)
}

pub(crate) fn run(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let scanner = build_scanner(args)?;
    let facts = Facts { sender_is_contact: args.contact, first_message_from_sender: args.first_message };
    let inputs: Vec<(String, Result<Message, String>)> = if args.files.is_empty() {
        args.text.iter().map(|t| (t.clone(), Ok(Message::text(t)))).collect()
    } else {
        args.files
            .iter()
            .map(|p| {
                // The larger of the image and video limits; the scanner applies each.
                let limit = frankly_hash::MAX_FILE_BYTES.max(frankly_video::MAX_VIDEO_BYTES);
                let message = crate::hash_cmd::read_limited(p, limit)
                    .map(|bytes| Message::text("").with_attachment(Attachment::new(bytes, media_type(p))));
                (p.display().to_string(), message)
            })
            .collect()
    };
    let verdicts: Vec<Result<Verdict, String>> = inputs
        .par_iter()
        .map(|(_, m)| m.as_ref().map(|m| scanner.scan(args.direction, m, facts)).map_err(Clone::clone))
        .collect();
    let stdout = std::io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    for ((input, _), verdict) in inputs.iter().zip(&verdicts) {
        if args.json {
            let line = Line { input: input.clone(), verdict: verdict.as_ref().ok(), error: verdict.clone().err() };
            serde_json::to_writer(&mut w, &line)?;
            writeln!(w)?;
        } else {
            write_text(&mut w, input, verdict)?;
        }
    }
    w.flush()?;
    Ok(if verdicts.iter().any(Result::is_err) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn write_text(w: &mut impl Write, input: &str, verdict: &Result<Verdict, String>) -> std::io::Result<()> {
    let v = match verdict {
        Ok(v) => v,
        Err(e) => return writeln!(w, "{input}  error: {e}"),
    };
    let actions: Vec<String> = v.decision.actions.iter().map(|a| format!("{a:?}")).collect();
    writeln!(w, "{input}  {}", actions.join(" + "))?;
    for f in &v.decision.fired {
        writeln!(w, "    rule {}: {}", f.id, f.reasons.join("; "))?;
    }
    for m in &v.signals.bank_matches {
        writeln!(w, "    match {} {:?} {} distance {} on {}", m.bank, m.labels, m.algorithm, m.distance, m.source)?;
    }
    for m in &v.signals.video_matches {
        writeln!(
            w,
            "    video match {} {:?} vpdq {:.1} % of its frames, {:.1} % of the banked video's, on {}",
            m.bank, m.labels, m.query_percent, m.compared_percent, m.source
        )?;
    }
    for s in &v.signals.scores {
        let frame = if s.frame > 0 { format!(" frame {}", s.frame) } else { String::new() };
        writeln!(w, "    score {}/{} {:.4} on {}{frame}", s.model, s.label, s.score, s.source)?;
    }
    for u in &v.signals.unscannable {
        writeln!(w, "    unscannable {} ({}): {}", u.source, u.reason.name(), u.detail)?;
    }
    for m in &v.signals.type_mismatches {
        writeln!(w, "    type mismatch on {}: declared {:?}, bytes are {}", m.source, m.declared, m.sniffed)?;
    }
    for k in &v.skipped {
        writeln!(w, "    skipped {}: {}", k.source, k.reason)?;
    }
    let t = &v.timings;
    writeln!(
        w,
        "    time {:.1} ms (decode {:.1}, hash {:.1}, match {:.2}, image models {:.1}, text models {:.2}, policy {:.3})",
        t.total_us as f64 / 1e3,
        t.decode_us as f64 / 1e3,
        t.hash_us as f64 / 1e3,
        t.match_us as f64 / 1e3,
        t.classify_image_us as f64 / 1e3,
        t.classify_text_us as f64 / 1e3,
        t.policy_us as f64 / 1e3
    )
}
