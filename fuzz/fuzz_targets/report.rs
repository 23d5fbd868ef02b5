//! Report envelopes and the FRP2 encoding inside them: `parse_header`,
//! `decode_report` and `ReportKeyring::open` with the key
//! `ServerKeyPair::derive(&[7u8; 32])` (seeds are sealed to it).
#![no_main]

use std::sync::LazyLock;

use frankly_report::{ReportKeyring, decode_report, parse_header};
use libfuzzer_sys::fuzz_target;

static KEYRING: LazyLock<ReportKeyring> = LazyLock::new(frankly_fuzz::report_keyring);

fuzz_target!(|data: &[u8]| {
    let _ = parse_header(data);
    let _ = decode_report(data);
    let _ = KEYRING.open(data, frankly_fuzz::NOW_MS);
});
