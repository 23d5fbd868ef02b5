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
