//! `frankly`: the command-line front end of the frankly toolkit.
//!
//! The binary parses flags, sets up logging, calls the libraries and maps
//! their outcomes to exit codes: 0 success, 1 when some input failed,
//! 2 for usage errors.

mod bank_cmd;
mod classify_cmd;
mod demo_cmd;
mod eval_cmd;
mod hash_cmd;
mod hash_video;
mod match_cmd;
mod output;
mod policy_cmd;
mod scan_cmd;
mod serve_cmd;
mod signing;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A usage error found after the arguments parsed (options that do not go
/// together): exit code 2, as clap's own usage errors.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Safety tooling for end-to-end encrypted messengers.
#[derive(Parser, Debug)]
#[command(name = "frankly", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Watch the whole loop: E2EE devices, scanning, franking, a report, review.
    Demo(demo_cmd::DemoArgs),
    /// Hash images (PDQ, pHash, dHash, ...), videos (vPDQ, video MD5) and files (SHA-256, MD5).
    Hash(hash_cmd::HashArgs),
    /// Make, sign, verify and inspect hash banks.
    #[command(subcommand)]
    Bank(bank_cmd::BankCommand),
    /// Make an Ed25519 key pair for signing bank bundles.
    Keygen(bank_cmd::KeygenArgs),
    /// Match images or hashes against banks.
    Match(match_cmd::MatchArgs),
    /// Classify images or text with an on-device model.
    Classify(classify_cmd::ClassifyArgs),
    /// Check, sign and verify policies.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Scan messages as the on-device module would: signals, policy, verdict.
    Scan(scan_cmd::ScanArgs),
    /// Run the moderation server (tagging, relay, report intake, review UI).
    Serve(serve_cmd::ServeArgs),
    /// Check the moderation server's audit log.
    #[command(subcommand)]
    Audit(serve_cmd::AuditCommand),
    /// Research harness: hash robustness, false positives, attacks, privacy table.
    #[command(subcommand)]
    Eval(eval_cmd::EvalCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FRANKLY_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let outcome = match cli.command {
        Command::Demo(args) => demo_cmd::run(&args),
        Command::Hash(args) => hash_cmd::run(&args),
        Command::Bank(command) => bank_cmd::run(&command),
        Command::Keygen(args) => bank_cmd::keygen(&args),
        Command::Match(args) => match_cmd::run(&args),
        Command::Classify(args) => classify_cmd::run(&args),
        Command::Policy(command) => policy_cmd::run(&command),
        Command::Scan(args) => scan_cmd::run(&args),
        Command::Serve(args) => serve_cmd::run(&args),
        Command::Audit(command) => serve_cmd::audit(&command),
        Command::Eval(command) => eval_cmd::run(&command),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("frankly: {err:#}");
            }
            if err.downcast_ref::<UsageError>().is_some() { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}
