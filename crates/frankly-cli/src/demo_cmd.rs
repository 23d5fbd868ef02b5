//! `frankly demo`: the whole loop, narrated (see `frankly-demo`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use frankly_demo::DemoOptions;

use crate::output::out;

#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// Run the script and stop, instead of leaving the review UI up (for CI).
    #[arg(long)]
    headless: bool,
    /// The shipped policies.
    #[arg(long, env = "FRANKLY_POLICIES", default_value = "policies")]
    policies: PathBuf,
    /// The shipped models.
    #[arg(long, env = "FRANKLY_MODELS", default_value = "models")]
    models_dir: PathBuf,
    /// Keep the server's data here (a new or empty directory) instead of a temporary one.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where the server listens (port 0: a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
}

pub(crate) fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let options = DemoOptions {
        policies_dir: args.policies.clone(),
        models_dir: args.models_dir.clone(),
        data_dir: args.data_dir.clone(),
        listen: args.listen,
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let mut stdout = std::io::stdout();
        let running = frankly_demo::run(&options, &mut stdout).await?;
        stdout.flush()?;
        if !args.headless {
            out(&format!(
                "\nThe review UI is up at {}\nsign in as {} with password {}\n\
                 (c claims the next report, r reveals media, d decides); Ctrl-C stops the server",
                running.url,
                running.username,
                running.password.as_str()
            ))?;
            tokio::signal::ctrl_c().await.context("cannot wait for Ctrl-C")?;
        }
        running.stop().await?;
        Ok(ExitCode::SUCCESS)
    })
}
