//! The two output streams: results on stdout, messages on stderr.

#![allow(clippy::print_stderr)]

use std::io::Write;

/// Writes a line of results to stdout.
pub(crate) fn out(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
}

/// Writes a message for the user to stderr.
pub(crate) fn say(text: &str) {
    eprintln!("{text}");
}

/// A progress bar on stderr (drawn only when it is a terminal): `what`,
/// the bar, the count and the time left.
pub(crate) fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} [{elapsed_precise}, eta {eta}]") {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar
}
