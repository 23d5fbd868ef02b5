//! `frankly serve` and `frankly audit`: run the moderation server, manage
//! its accounts, check its audit log.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use frankly_bank::{Matcher, VideoMatcher};
use frankly_review::Role;
use frankly_server::{AppState, Config, Db, Scope, ServerBanks};
use zeroize::Zeroizing;

use crate::output::out;

/// Where the server's configuration comes from.
#[derive(Args, Debug, Clone)]
pub(crate) struct ServerOptions {
    /// Configuration file (TOML); see docs/server.md.
    #[arg(long, env = "FRANKLY_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (database and keys) [default: ./frankly-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://...` [default: SQLite in the data directory].
    #[arg(long)]
    database_url: Option<String>,
}

impl ServerOptions {
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(dir) = &self.data_dir {
            config.data_dir.clone_from(dir);
        }
        if let Some(url) = &self.database_url {
            config.database_url = Some(url.clone());
        }
        Ok(config)
    }
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ServeArgs {
    #[command(subcommand)]
    command: Option<ServeCommand>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    options: ServerOptions,
}

#[derive(Subcommand, Debug)]
enum ServeCommand {
    /// Manage moderator accounts.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Create an account (the first admin, for instance). Reads the password
    /// from FRANKLY_PASSWORD, or from standard input.
    CreateUser {
        /// Login name.
        #[arg(long)]
        username: String,
        /// admin, moderator or child-safety.
        #[arg(long, default_value = "admin")]
        role: String,
        #[command(flatten)]
        options: ServerOptions,
    },
    /// Create an API key for the HMA-compatible match API or the moderation
    /// API (docs/server.md); prints the key once.
    CreateApiKey {
        /// Who or what uses it (shown in the admin page and the audit log).
        #[arg(long)]
        name: String,
        /// Comma-separated: hash, match, curate, bundle, review.
        #[arg(long, default_value = "match", value_delimiter = ',')]
        scopes: Vec<String>,
        /// The moderator account a review key acts for (its role decides what the key may do).
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        options: ServerOptions,
    },
    /// List the API keys (never their secrets).
    ListApiKeys {
        #[command(flatten)]
        options: ServerOptions,
    },
    /// Revoke an API key (the number in frk_<id>_...).
    RevokeApiKey {
        /// The key's id.
        #[arg(long)]
        id: i64,
        #[command(flatten)]
        options: ServerOptions,
    },
    /// Import hashes into a bank of the match API (created if missing): one
    /// hash per line (`#` comments and blank lines skipped), one content
    /// each, logged as changes like any other.
    ImportSignals {
        /// The bank (HMA's rule: capitals, digits, underscores).
        #[arg(long)]
        bank: String,
        /// pdq or video_md5.
        #[arg(long, default_value = "pdq")]
        signal_type: String,
        /// The list.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// Comma-separated labels put on every imported content.
        #[arg(long, value_delimiter = ',')]
        labels: Vec<String>,
        #[command(flatten)]
        options: ServerOptions,
    },
    /// Write a bank of the match API as a plain bank file at its current
    /// version, to sign offline (`frankly bank sign --bank-version V`) and
    /// publish with `publish-bundle`.
    ExportBank {
        /// The bank.
        #[arg(long)]
        bank: String,
        /// pdq or video_md5.
        #[arg(long, default_value = "pdq")]
        signal_type: String,
        /// The bank file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        options: ServerOptions,
    },
    /// Publish a bank bundle signed offline, for devices to fetch from
    /// /v1/banks/<name>/bundle; checked under the configured
    /// bank_public_key, against the bank's current version and entries.
    PublishBundle {
        /// The signed bundle.
        #[arg(long, value_name = "BUNDLE")]
        file: PathBuf,
        #[command(flatten)]
        options: ServerOptions,
    },
    /// Replace the report key devices seal to now (after a suspected leak,
    /// say). The old key keeps opening reports for `report_key_grace_days`;
    /// running instances serve the new key within a minute.
    RotateReportKey {
        #[command(flatten)]
        options: ServerOptions,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum AuditCommand {
    /// Recompute the audit log's hash chain and report the first break;
    /// with `--checkpoints`, also check that no entry a signed checkpoint
    /// vouches for was removed from the end.
    Verify {
        /// A copy of the server's audit checkpoint file (one JSON object a line).
        #[arg(long)]
        checkpoints: Option<std::path::PathBuf>,
        /// The audit public key (64 hex digits); default: `audit-signing.public`
        /// in the data directory. Use a copy kept where the server cannot change it.
        #[arg(long)]
        public_key: Option<std::path::PathBuf>,
        #[command(flatten)]
        options: ServerOptions,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// The server's banks: every bundle in `banks`, verified under
/// `bank_public_key` (the configuration refuses banks without it).
fn load_server_banks(config: &Config) -> anyhow::Result<ServerBanks> {
    let (banks, videos) = crate::bank_cmd::load_banks(&config.banks, config.bank_public_key.as_deref())?;
    Ok(ServerBanks { matcher: Matcher::new(banks), videos: VideoMatcher::new(videos) })
}

pub(crate) fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        Some(ServeCommand::Admin(AdminCommand::CreateUser { username, role, options })) => {
            create_user(options, username, role)
        }
        Some(ServeCommand::Admin(AdminCommand::RotateReportKey { options })) => {
            let config = options.config()?;
            let id = runtime()?.block_on(frankly_server::rotate_report_key(&config))?;
            out(&format!("report key {id} is current"))?;
            Ok(ExitCode::SUCCESS)
        }
        Some(ServeCommand::Admin(AdminCommand::CreateApiKey { name, scopes, account, options })) => {
            let scopes = scopes
                .iter()
                .map(|s| {
                    Scope::parse(s.trim())
                        .with_context(|| format!("unknown scope {s:?}: hash, match, curate, bundle or review"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            with_db(options, |db| async move {
                let (id, key) = frankly_server::create_api_key(&db, "cli", name, &scopes, account.as_deref()).await?;
                out(&format!("created API key {id} ({name}); it is not shown again:\n{}", key.as_str()))?;
                Ok(())
            })
        }
        Some(ServeCommand::Admin(AdminCommand::ListApiKeys { options })) => with_db(options, |db| async move {
            for k in frankly_server::api_keys(&db).await? {
                let state = if k.revoked_ms.is_some() { "revoked" } else { "active" };
                out(&format!("{}\t{}\t{}\t{state}", k.id, k.name, k.scopes))?;
            }
            Ok(())
        }),
        Some(ServeCommand::Admin(AdminCommand::RevokeApiKey { id, options })) => with_db(options, |db| async move {
            if !frankly_server::revoke_api_key(&db, "cli", *id).await? {
                anyhow::bail!("no live API key {id}");
            }
            out(&format!("revoked API key {id}"))?;
            Ok(())
        }),
        Some(ServeCommand::Admin(AdminCommand::ImportSignals { bank, signal_type, file, labels, options })) => {
            let signal = match_signal(signal_type)?;
            let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
            let mut lines: Vec<(usize, String)> = Vec::new();
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if !line.is_empty() && !line.starts_with('#') {
                    lines.push((i + 1, line.to_owned()));
                }
            }
            drop(text);
            // Every line is checked before anything is written, so a bad
            // line imports nothing and is named by its line number.
            for (k, (line, hash)) in lines.iter().enumerate() {
                frankly_match::parse_signal(signal, hash).map_err(|e| {
                    anyhow::anyhow!("{}: line {line} (hash {}): {e}; nothing was imported", file.display(), k + 1)
                })?;
            }
            with_db(options, |db| async move {
                let mut total = 0;
                let mut created = false;
                let progress = crate::output::progress_bar(lines.len() as u64, "importing");
                for chunk in lines.chunks(IMPORT_CHUNK) {
                    let hashes: Vec<String> = chunk.iter().map(|(_, h)| h.clone()).collect();
                    let (n, made) = frankly_server::import_signals(&db, "cli", bank, signal, &hashes, labels).await?;
                    total += n;
                    created |= made;
                    progress.inc(n as u64);
                }
                progress.finish_and_clear();
                let made = if created { " (created)" } else { "" };
                out(&format!("imported {total} {} hashes into bank {bank}{made}", signal.name()))?;
                Ok(())
            })
        }
        Some(ServeCommand::Admin(AdminCommand::ExportBank { bank, signal_type, out: path, options })) => {
            let signal = match_signal(signal_type)?;
            with_db(options, |db| async move {
                let (plain, version) = frankly_server::export_bank(&db, bank, signal).await?;
                std::fs::write(path, plain.to_bytes()?).with_context(|| format!("cannot write {}", path.display()))?;
                out(&format!(
                    "bank {bank} version {version}: {} entries written to {}\nsign it offline: frankly bank sign \
                     --key KEY --bank-version {version} {} -o BUNDLE\nthen publish it: frankly serve admin \
                     publish-bundle --file BUNDLE",
                    plain.len(),
                    path.display(),
                    path.display()
                ))?;
                Ok(())
            })
        }
        Some(ServeCommand::Admin(AdminCommand::PublishBundle { file, options })) => {
            let config = options.config()?;
            let key_path = config.bank_public_key.clone().context(
                "publish-bundle needs bank_public_key in the configuration: the public key the bundle is checked under",
            )?;
            let key = crate::signing::read_public_key(&key_path)?;
            let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            with_db(options, |db| async move {
                let version = frankly_server::publish_bundle(&db, &bytes, &key)
                    .await
                    .with_context(|| format!("{} was not published", file.display()))?;
                out(&format!("published {} (version {version})", file.display()))?;
                Ok(())
            })
        }
        None => serve(args),
    }
}

/// Hashes per call of `import_signals` (each a few transactions).
const IMPORT_CHUNK: usize = 100_000;

/// A signal type the match API serves.
fn match_signal(name: &str) -> anyhow::Result<frankly_bank::SignalType> {
    frankly_server::MATCH_SIGNAL_TYPES
        .into_iter()
        .map(|(s, _)| s)
        .find(|s| s.name() == name.trim())
        .with_context(|| format!("signal type {name:?} is not served by the match API (pdq, video_md5)"))
}

/// Runs `f` on the configured database.
fn with_db<F, Fut>(options: &ServerOptions, f: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(Db) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let config = options.config()?;
    runtime()?.block_on(async move {
        // Creates the data directory (0700) on a first run, as the server does.
        frankly_server::Secrets::load_or_create(&config.data_dir)?;
        let db = Db::connect(&config.database_url(), 2).await?;
        f(db).await?;
        Ok(ExitCode::SUCCESS)
    })
}

fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = args.options.config()?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let banks = load_server_banks(&config)?;
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = listener.local_addr()?;
        let state = AppState::open(config, banks).await?;
        let users: i64 = state.user_count().await?;
        out(&format!("frankly serve: listening on http://{address}/ (data in {})", state.config().data_dir.display()))?;
        if users == 0 {
            out("no accounts yet: create the first admin with `frankly serve admin create-user --username NAME`")?;
        }
        frankly_server::serve(state, listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        Ok(ExitCode::SUCCESS)
    })
}

fn read_password() -> anyhow::Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var("FRANKLY_PASSWORD") {
        return Ok(Zeroizing::new(p));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        #[allow(clippy::print_stderr)]
        {
            eprint!("password (input is shown; prefer FRANKLY_PASSWORD or a pipe): ");
        }
    }
    let mut line = Zeroizing::new(String::new());
    stdin.lock().read_line(&mut line).context("cannot read the password from standard input")?;
    Ok(Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string()))
}

fn create_user(options: &ServerOptions, username: &str, role: &str) -> anyhow::Result<ExitCode> {
    let role: Role = role.parse().map_err(|e| anyhow::anyhow!("{e}: admin, moderator or child-safety"))?;
    let config = options.config()?;
    let password = read_password()?;
    runtime()?.block_on(async move {
        frankly_server::Secrets::load_or_create(&config.data_dir)?;
        let db = Db::connect(&config.database_url(), 2).await?;
        frankly_server::create_user(&db, "cli", username, &password, role).await?;
        out(&format!("created {username} ({})", role.name()))?;
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn audit(command: &AuditCommand) -> anyhow::Result<ExitCode> {
    let AuditCommand::Verify { checkpoints, public_key, options } = command;
    let config = options.config()?;
    let checkpoints = match checkpoints {
        None => None,
        Some(path) => {
            let size = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
            anyhow::ensure!(
                size <= frankly_server::audit::MAX_CHECKPOINT_FILE_BYTES,
                "{} is {size} bytes (limit {})",
                path.display(),
                frankly_server::audit::MAX_CHECKPOINT_FILE_BYTES
            );
            let key_path =
                public_key.clone().unwrap_or_else(|| config.data_dir.join(frankly_server::AUDIT_PUBLIC_KEY_FILE));
            let key_text =
                std::fs::read_to_string(&key_path).with_context(|| format!("cannot read {}", key_path.display()))?;
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(key_text.trim(), &mut bytes)
                .with_context(|| format!("{} must hold 64 hex digits", key_path.display()))?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .with_context(|| format!("{} is not an Ed25519 public key", key_path.display()))?;
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Some((text, key))
        }
    };
    runtime()?.block_on(async move {
        let db = Db::connect(&config.database_url(), 2).await?;
        let outcome = match &checkpoints {
            None => frankly_server::audit::verify(&db)
                .await
                .map(|check| format!("audit log verified: {} entries, head {}", check.entries, check.head)),
            Some((text, key)) => frankly_server::audit::verify_checkpoints(&db, text, key).await.map(|check| {
                format!(
                    "audit log verified: {} entries, head {}; {} checkpoints, the newest vouches for entry {}",
                    check.chain.entries, check.chain.head, check.checkpoints, check.latest
                )
            }),
        };
        match outcome {
            Ok(line) => {
                out(&line)?;
                Ok(ExitCode::SUCCESS)
            }
            Err(frankly_server::ServerError::AuditChain(why)) => {
                out(&format!("audit log does NOT verify: {why}"))?;
                Ok(ExitCode::FAILURE)
            }
            Err(e) => Err(e.into()),
        }
    })
}
