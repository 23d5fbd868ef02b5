//! `frankly eval`: the research harness (robustness, false positives,
//! attacks, privacy table). The studies live in `frankly-eval`; this file
//! parses flags, shows progress, prints summaries and writes files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use frankly_eval::{
    AttackConfig, AttackOutcome, CorpusImage, FprConfig, HashAlgo, MAX_ATTACK_QUERIES, RobustnessConfig, Transform,
    VideoRobustnessConfig, VideoTransform,
};
use frankly_hash::{DecodeOptions, PdqHasher};
use rayon::prelude::*;

use crate::output::{out, progress_bar, say};

#[derive(Subcommand, Debug)]
pub(crate) enum EvalCommand {
    /// How robust hashes are to transforms: recall at a fixed precision and
    /// false-positive rate, ROC curves, distance histograms (CSV, HTML, PNG, SVG).
    Robustness(RobustnessArgs),
    /// How often distinct images match by accident, and what that means for
    /// a deployment (bank size, images per account, per-account threshold).
    Fpr(FprArgs),
    /// Black-box attacks that only query the hash.
    #[command(subcommand)]
    Attack(AttackCommand),
    /// What each party learns in each flow, measured on real franked
    /// messages and sealed reports.
    Privacy(PrivacyArgs),
}

#[derive(Args, Debug)]
pub(crate) struct Common {
    /// Directory of images (walked recursively).
    #[arg(long)]
    corpus: PathBuf,

    /// Hash algorithms, comma-separated: pdq, phash, dhash, ahash, blockhash.
    #[arg(long, value_delimiter = ',', default_value = "pdq,phash,dhash,ahash,blockhash")]
    algos: Vec<HashAlgo>,

    /// Directory for the CSV files, plots and report.
    #[arg(long, default_value = "eval-out")]
    out: PathBuf,

    /// Write only CSV files, no plots or HTML.
    #[arg(long)]
    no_plots: bool,

    /// Worker threads (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

#[derive(Args, Debug)]
pub(crate) struct RobustnessArgs {
    #[command(flatten)]
    common: Common,

    /// What the corpus holds: images (hashed with --algos), or videos
    /// (vPDQ; copies made by ffmpeg, kept under OUT/videos).
    #[arg(long, value_enum, default_value_t = Media::Image)]
    media: Media,

    /// Transforms, comma-separated. Images (default
    /// "jpeg:95,jpeg:50,resize:0.5,crop:0.05,pad:0.2,rotate:4,flip,blur:2,noise:0.2,gamma,watermark,gray"):
    /// jpeg:Q, resize:F, crop:F, pad:F, rotate:DEG, flip, blur:SIGMA,
    /// noise:STD, gamma[:G], watermark[:SIZE], gray, brightness:D,
    /// contrast:F. Videos (default
    /// "bitrate:250,resize:0.5,crop:0.1,flip,trim:0.5,letterbox:0.25,speed:1.5,fps:10"):
    /// bitrate:KBIT, resize:F, crop:F, flip, trim:F, letterbox:F, speed:F, fps:N.
    #[arg(long)]
    transforms: Option<String>,

    /// Videos: seconds between hashed frames of the copies, as a device
    /// hashes them (0: every frame).
    #[arg(long, default_value_t = 1.0)]
    seconds_per_hash: f64,

    /// Videos: seconds between hashed frames of the originals, as a bank
    /// holds them (default: --seconds-per-hash; 0: every frame).
    #[arg(long)]
    bank_seconds_per_hash: Option<f64>,

    /// Videos: files whose names agree before this character are one
    /// source (re-encodes of one clip), never counted as false positives.
    #[arg(long)]
    group_delimiter: Option<char>,

    /// Seed of the transforms' random choices.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Precision target of the perception-style recall (0..1).
    #[arg(long, default_value_t = frankly_eval::DEFAULT_PRECISION_TARGET)]
    precision: f64,

    /// False-positive-rate target (0..1).
    #[arg(long, default_value_t = frankly_eval::DEFAULT_FPR_TARGET)]
    fpr: f64,

    /// Also write every original and transformed image as PNG into this
    /// directory (to hash them with other tools, e.g. bench/perception_robustness.py).
    #[arg(long)]
    save_images: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct FprArgs {
    #[command(flatten)]
    common: Common,

    /// Hashes in the bank each image is checked against.
    #[arg(long, default_value_t = 1_000_000)]
    bank_size: u64,

    /// Images one account sends over the period considered.
    #[arg(long, default_value_t = 10_000)]
    images_per_account: u64,

    /// Acceptable probability of falsely reporting an account over that period.
    #[arg(long, default_value_t = 1e-12)]
    target: f64,

    /// Compare pixel-identical images too (by default each picture counts once).
    #[arg(long)]
    keep_duplicates: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum AttackCommand {
    /// Perturb each image until its hash no longer matches its original.
    Evade(AttackArgs),
    /// Perturb each image until its hash matches a target's (by default,
    /// the next image of the corpus).
    Collide(CollideArgs),
}

#[derive(Args, Debug)]
pub(crate) struct AttackArgs {
    /// Directory of images (walked recursively).
    #[arg(long)]
    corpus: PathBuf,

    /// The hash attacked: pdq, phash, dhash, ahash, blockhash.
    #[arg(long, default_value = "pdq")]
    algo: HashAlgo,

    /// Match threshold in bits (default: 31 for 256-bit hashes, 8 for 64-bit).
    #[arg(long)]
    threshold: Option<u32>,

    /// Hash queries per image.
    #[arg(long, default_value_t = frankly_eval::DEFAULT_ATTACK_QUERIES,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_ATTACK_QUERIES)))]
    max_queries: u32,

    /// PSNR floor in dB: perturbations more visible than this are not tried.
    #[arg(long, default_value_t = frankly_eval::DEFAULT_MIN_PSNR)]
    min_psnr: f64,

    /// Attack at most this many images (the first, by name).
    #[arg(long)]
    limit: Option<usize>,

    /// Seed of the random search.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Directory for the adversarial images and `attack.csv`.
    #[arg(long, default_value = "eval-out/attack")]
    out: PathBuf,

    /// Worker threads (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

#[derive(Args, Debug)]
pub(crate) struct CollideArgs {
    #[command(flatten)]
    attack: AttackArgs,

    /// Image whose hash every image is pulled towards (default: each
    /// image's successor in the corpus).
    #[arg(long)]
    target: Option<PathBuf>,

    /// Attack PDQ knowing its structure (its DCT coefficients) instead of
    /// by hash queries alone; the PSNR floor does not apply.
    #[arg(long)]
    white_box: bool,
}

#[derive(Args, Debug)]
pub(crate) struct PrivacyArgs {
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,

    /// Attachment of the sample message (default: 100 kB of bytes).
    #[arg(long)]
    attachment: Option<PathBuf>,

    /// Text of the sample message.
    #[arg(long, default_value = "see you at six")]
    text: String,
}

pub(crate) fn run(command: &EvalCommand) -> anyhow::Result<ExitCode> {
    match command {
        EvalCommand::Robustness(args) => robustness(args),
        EvalCommand::Fpr(args) => fpr(args),
        EvalCommand::Attack(AttackCommand::Evade(args)) => attack(args, None, false, false),
        EvalCommand::Attack(AttackCommand::Collide(args)) => {
            attack(&args.attack, args.target.as_deref(), true, args.white_box)
        }
        EvalCommand::Privacy(args) => privacy(args),
    }
}

fn pool(threads: Option<u16>) -> anyhow::Result<rayon::ThreadPool> {
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        pool = pool.num_threads(n.into());
    }
    pool.build().context("cannot start worker threads")
}

fn corpus(dir: &Path) -> anyhow::Result<Vec<CorpusImage>> {
    let images = frankly_eval::list_images(dir).with_context(|| format!("cannot list corpus {}", dir.display()))?;
    if images.is_empty() {
        anyhow::bail!("no images under {} (extensions: {})", dir.display(), frankly_eval::IMAGE_EXTENSIONS.join(", "));
    }
    Ok(images)
}

fn dedup(algos: &[HashAlgo]) -> Vec<HashAlgo> {
    let mut seen = Vec::new();
    for &a in algos {
        if !seen.contains(&a) {
            seen.push(a);
        }
    }
    seen
}

fn check_rate(name: &str, v: f64) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&v) {
        anyhow::bail!("--{name} must be between 0 and 1, got {v}");
    }
    Ok(())
}

/// What a robustness study hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Media {
    /// Images, with the perceptual hashes of --algos.
    Image,
    /// Videos, with vPDQ.
    Video,
}

fn robustness(args: &RobustnessArgs) -> anyhow::Result<ExitCode> {
    check_rate("precision", args.precision)?;
    check_rate("fpr", args.fpr)?;
    if args.media == Media::Video {
        return video_robustness(args);
    }
    if args.group_delimiter.is_some() {
        anyhow::bail!("--group-delimiter is for --media video");
    }
    let transforms = Transform::parse_list(args.transforms.as_deref().unwrap_or(frankly_eval::DEFAULT_TRANSFORMS))?;
    if transforms.is_empty() {
        anyhow::bail!("--transforms lists no transform");
    }
    let config = RobustnessConfig {
        transforms,
        algos: dedup(&args.common.algos),
        seed: args.seed,
        precision_target: args.precision,
        fpr_target: args.fpr,
        decode: DecodeOptions::default(),
        save_images: args.save_images.clone(),
    };
    let images = corpus(&args.common.corpus)?;
    let bar = progress_bar(images.len() as u64, "hashing");
    let report =
        pool(args.common.threads)?.install(|| frankly_eval::run_robustness(&images, &config, &|| bar.inc(1)))?;
    bar.finish_and_clear();
    let files = frankly_eval::write_robustness(&report, &args.common.out, !args.common.no_plots)?;
    out(&format!(
        "{:<10} {:<14} {:>9} {:>6} {:>9} {:>6} {:>7}",
        "algorithm",
        "transform",
        format!("@{}%P", 100.0 * args.precision),
        "thr",
        format!("@{}FPR", args.fpr),
        "thr",
        "AUC"
    ))?;
    for cell in &report.cells {
        out(&format!(
            "{:<10} {:<14} {:>8.2}% {:>6} {:>8.2}% {:>6} {:>7.4}",
            cell.algo.name(),
            cell.transform,
            100.0 * cell.at_precision.map_or(0.0, |p| p.recall),
            cell.at_precision.map_or(String::new(), |p| p.threshold.to_string()),
            100.0 * cell.at_fpr.recall,
            cell.at_fpr.threshold.map_or("-".to_owned(), |t| t.to_string()),
            cell.auc
        ))?;
    }
    finish(&report.failures, report.images.len(), &files)
}

fn video_robustness(args: &RobustnessArgs) -> anyhow::Result<ExitCode> {
    let bank_seconds = args.bank_seconds_per_hash.unwrap_or(args.seconds_per_hash);
    for (name, s) in [("--seconds-per-hash", args.seconds_per_hash), ("--bank-seconds-per-hash", bank_seconds)] {
        if !(s.is_finite() && (0.0..=3600.0).contains(&s)) {
            anyhow::bail!("{name} must be in 0..=3600");
        }
    }
    let transforms =
        VideoTransform::parse_list(args.transforms.as_deref().unwrap_or(frankly_eval::DEFAULT_VIDEO_TRANSFORMS))?;
    if transforms.is_empty() {
        anyhow::bail!("--transforms lists no transform");
    }
    let config = VideoRobustnessConfig {
        transforms,
        seconds_per_hash: args.seconds_per_hash,
        bank_seconds_per_hash: bank_seconds,
        thresholds: frankly_bank::vpdq::VpdqThresholds::default(),
        precision_target: args.precision,
        fpr_target: args.fpr,
        group_delimiter: args.group_delimiter,
        work_dir: args.common.out.join("videos"),
        limits: frankly_video::VideoLimits::default(),
    };
    let videos = frankly_eval::list_videos(&args.common.corpus)
        .with_context(|| format!("cannot list {}", args.common.corpus.display()))?;
    if videos.is_empty() {
        anyhow::bail!("{}: no video files (recognised by their bytes)", args.common.corpus.display());
    }
    let bar = progress_bar(videos.len() as u64, "transforming and hashing");
    let report =
        pool(args.common.threads)?.install(|| frankly_eval::run_video_robustness(&videos, &config, &|| bar.inc(1)))?;
    bar.finish_and_clear();
    let files = frankly_eval::write_video_robustness(&report, &args.common.out, !args.common.no_plots)?;
    out(&format!(
        "{:<16} {:>6} {:>8} {:>9} {:>8} {:>8} {:>9} {:>6} {:>7}",
        "transform",
        "copies",
        "matched",
        "false",
        "copy %",
        "orig %",
        format!("@{}FPR", args.fpr),
        "min %",
        "AUC"
    ))?;
    for cell in &report.cells {
        out(&format!(
            "{:<16} {:>6} {:>7.1}% {:>9} {:>8.1} {:>8.1} {:>8.1}% {:>6} {:>7.4}",
            cell.transform,
            cell.queries.len(),
            100.0 * cell.rule_recall,
            format!("{}/{}", cell.rule_false_matches, cell.negatives.total()),
            cell.mean_query_percent(),
            cell.mean_compared_percent(),
            100.0 * cell.at_fpr.recall,
            cell.at_fpr.threshold.map_or("-".to_owned(), |t| (100 - t).to_string()),
            cell.auc
        ))?;
    }
    finish_named(&report.failures, report.videos.len(), "videos", &files)
}

fn finish(failures: &[(String, String)], images: usize, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    finish_named(failures, images, "images", files)
}

fn finish_named(
    failures: &[(String, String)],
    count: usize,
    what: &str,
    files: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    say(&format!(
        "{count} {what}; wrote {} files, e.g. {}",
        files.len(),
        files.first().map_or(String::new(), |f| f.display().to_string())
    ));
    for (what, why) in failures {
        say(&format!("frankly: {what}: {why}"));
    }
    Ok(if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn fpr(args: &FprArgs) -> anyhow::Result<ExitCode> {
    check_rate("target", args.target)?;
    let config = FprConfig {
        algos: dedup(&args.common.algos),
        decode: DecodeOptions::default(),
        bank_size: args.bank_size,
        images_per_account: args.images_per_account,
        target_account_rate: args.target,
        dedup: !args.keep_duplicates,
    };
    let images = corpus(&args.common.corpus)?;
    let bar = progress_bar(images.len() as u64, "hashing");
    let report = pool(args.common.threads)?.install(|| frankly_eval::run_fpr(&images, &config, &|| bar.inc(1)))?;
    bar.finish_and_clear();
    let files = frankly_eval::write_fpr(&report, &args.common.out, !args.common.no_plots)?;
    let pairs = report.rows.first().map_or(0, |r| r.pairs);
    let sources = report.sources.iter().filter(|r| r.algo == config.algos[0] && r.source.is_some()).count();
    out(&format!(
        "{} images from {sources} sources ({} pixel-identical copies left out), {pairs} pairs; \
         bank of {} hashes, {} images per account, target {:e}",
        report.images.len(),
        report.duplicates.len(),
        args.bank_size,
        args.images_per_account,
        args.target
    ))?;
    let all: Vec<_> = report
        .deployments
        .iter()
        .map(|d| {
            let row = report.rows.iter().find(|r| r.algo == d.algo && r.threshold == d.threshold);
            (d, row.map_or(0, |r| r.false_matches), row.map_or(0, |r| r.pairs))
        })
        .collect();
    deployment_table("all pairs", &all)?;
    let cross: Vec<_> = report
        .cross_source_deployments
        .iter()
        .map(|d| {
            let row = report.sources.iter().find(|r| r.algo == d.algo && r.source.is_none());
            (d, row.map_or(0, |r| r.matches), row.map_or(0, |r| r.pairs))
        })
        .collect();
    deployment_table("pairs from different sources only", &cross)?;
    out("\nmatches at the default threshold within a source (sources with any):")?;
    for r in report.sources.iter().filter(|r| r.source.is_some() && r.matches > 0) {
        out(&format!(
            "  {:<10} {:<32} {:>6} of {:>9} pairs ({} images)",
            r.algo.name(),
            r.source.as_deref().unwrap_or(""),
            r.matches,
            r.pairs,
            r.images
        ))?;
    }
    finish(&report.failures, report.images.len(), &files)
}

/// Prints the deployment numbers of one set of pairs: per algorithm, the
/// matches at its default threshold and the pairs they are out of.
fn deployment_table(title: &str, rows: &[(&frankly_eval::Deployment, u64, u64)]) -> anyhow::Result<()> {
    out(&format!("\n{title}:"))?;
    out(&format!(
        "{:<10} {:>4} {:>9} {:>11} {:>14} {:>12} {:>14} {:>12} {:>6}",
        "algorithm", "thr", "matches", "pairs", "per million", "per image", "per account", "P(k>=30)", "k"
    ))?;
    for &(d, matches, pairs) in rows {
        out(&format!(
            "{:<10} {:>4} {:>9} {:>11} {:>14} {:>12.3e} {:>14.3e} {:>12.3e} {:>6}",
            d.algo.name(),
            d.threshold,
            matches,
            pairs,
            format!("{}{:.3}", if d.rate_is_bound { "<" } else { "" }, 1e6 * d.rate),
            d.per_image,
            d.expected_per_account,
            d.account_rate_at_apple_k,
            d.account_threshold
        ))?;
    }
    Ok(())
}

fn attack(args: &AttackArgs, target: Option<&Path>, collide: bool, white_box: bool) -> anyhow::Result<ExitCode> {
    let mut images = corpus(&args.corpus)?;
    if let Some(n) = args.limit {
        images.truncate(n);
    }
    let config = AttackConfig {
        algo: args.algo,
        threshold: args.threshold.unwrap_or(args.algo.default_threshold()),
        max_queries: args.max_queries,
        min_psnr: args.min_psnr,
        seed: args.seed,
    };
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let decode = DecodeOptions::default();
    let load = |p: &Path| -> anyhow::Result<frankly_hash::RgbImage> {
        Ok(frankly_eval::prepare_attack_image(&frankly_eval::load_image(p, &decode)?))
    };
    // Targets: one fixed hash, or each image's successor.
    let fixed_target = match target {
        Some(p) => Some(args.algo.hash(&load(p)?, &mut PdqHasher::new())),
        None => None,
    };
    if collide && fixed_target.is_none() && images.len() < 2 {
        anyhow::bail!("collide without --target needs at least 2 images");
    }
    let bar = progress_bar(images.len() as u64, if collide { "colliding" } else { "evading" });
    let results: Vec<(String, Result<AttackOutcome, String>)> = pool(args.threads)?.install(|| {
        images
            .par_iter()
            .enumerate()
            .map(|(i, image)| {
                let run = || -> anyhow::Result<AttackOutcome> {
                    let img = load(&image.path)?;
                    let mut seeded = config;
                    seeded.seed = config.seed.wrapping_add(i as u64);
                    if collide {
                        let target_hash = match &fixed_target {
                            Some(h) => h.clone(),
                            None => args.algo.hash(&load(&images[(i + 1) % images.len()].path)?, &mut PdqHasher::new()),
                        };
                        if white_box {
                            Ok(frankly_eval::collide_pdq(&img, &target_hash, &seeded)?)
                        } else {
                            Ok(frankly_eval::collide(&img, &target_hash, &seeded)?)
                        }
                    } else {
                        Ok(frankly_eval::evade(&img, &seeded)?)
                    }
                };
                let r = run().map_err(|e| format!("{e:#}"));
                bar.inc(1);
                (image.name.clone(), r)
            })
            .collect()
    });
    bar.finish_and_clear();
    let mode = if collide { "collide" } else { "evade" };
    let mut csv =
        String::from("image,algorithm,goal,threshold,success,queries,start_distance,final_distance,psnr,ssim,output\n");
    let mut failures = Vec::new();
    let mut ok = Vec::new();
    for (name, r) in &results {
        match r {
            Ok(o) => {
                let flat: String = name.chars().map(|c| if c == '/' { '_' } else { c }).collect();
                let path = args.out.join(format!("{mode}_{}_{flat}.png", args.algo));
                o.image.save(&path).with_context(|| format!("cannot write {}", path.display()))?;
                csv.push_str(&format!(
                    "{},{},{mode},{},{},{},{},{},{:.3},{:.5},{}\n",
                    frankly_eval::csv_field(name),
                    args.algo,
                    config.threshold,
                    o.success,
                    o.queries,
                    o.start_distance,
                    o.final_distance,
                    o.psnr,
                    o.ssim,
                    frankly_eval::csv_field(&path.display().to_string())
                ));
                ok.push(o);
            }
            Err(e) => failures.push((name.clone(), e.clone())),
        }
    }
    let csv_path = args.out.join("attack.csv");
    std::fs::write(&csv_path, csv).with_context(|| format!("cannot write {}", csv_path.display()))?;
    let wins: Vec<&&AttackOutcome> = ok.iter().filter(|o| o.success).collect();
    let mean = |f: &dyn Fn(&AttackOutcome) -> f64, set: &[&&AttackOutcome]| {
        if set.is_empty() { f64::NAN } else { set.iter().map(|o| f(o)).sum::<f64>() / set.len() as f64 }
    };
    let mut queries: Vec<u32> = wins.iter().map(|o| o.queries).collect();
    queries.sort_unstable();
    out(&format!(
        "{mode} {} (threshold {}): {}/{} succeeded ({:.1}%), median queries {}, mean PSNR {:.2} dB, mean SSIM {:.4} (successes)",
        args.algo,
        config.threshold,
        wins.len(),
        ok.len(),
        100.0 * wins.len() as f64 / ok.len().max(1) as f64,
        queries.get(queries.len().saturating_sub(1) / 2).map_or("-".to_owned(), |q| q.to_string()),
        mean(&|o| o.psnr, &wins),
        mean(&|o| o.ssim, &wins),
    ))?;
    let all: Vec<&&AttackOutcome> = ok.iter().collect();
    out(&format!(
        "mean distance {:.2} -> {:.2} bits over all {} images",
        mean(&|o| f64::from(o.start_distance), &all),
        mean(&|o| f64::from(o.final_distance), &all),
        all.len()
    ))?;
    finish(&failures, ok.len(), &[csv_path])
}

fn privacy(args: &PrivacyArgs) -> anyhow::Result<ExitCode> {
    /// Size of the default sample attachment.
    const DEFAULT_ATTACHMENT_BYTES: usize = 100_000;
    let attachment = match &args.attachment {
        Some(p) => std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
        None => (0..DEFAULT_ATTACHMENT_BYTES).map(|i| (i % 251) as u8).collect(),
    };
    let rows = frankly_eval::privacy_table(&args.text, "image/jpeg", &attachment)?;
    if args.json {
        for r in &rows {
            out(&serde_json::to_string(r)?)?;
        }
    } else {
        out("| party | flow | learns | bytes | verifiable by a third party |")?;
        out("|---|---|---|---:|---|")?;
        for r in &rows {
            out(&format!("| {} | {} | {} | {} | {} |", r.party, r.flow, r.learns, r.bytes, r.third_party_verifiable))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
