//! Structured: an FRP2 report that decodes re-encodes to a report that
//! decodes to the same value, and sealed to the fuzz report key it opens to
//! the same value again (`decode_report`, `encode_report`, `seal_report`,
//! `ReportKeyring::open`).
#![no_main]

use std::sync::LazyLock;

use frankly_report::{ReportKeyring, decode_report, encode_report, seal_report};
use libfuzzer_sys::fuzz_target;

static KEYRING: LazyLock<ReportKeyring> = LazyLock::new(frankly_fuzz::report_keyring);

fuzz_target!(|data: &[u8]| {
    let Ok(report) = decode_report(data) else { return };
    let encoded = encode_report(&report).expect("a decoded report encodes");
    assert_eq!(decode_report(&encoded).expect("an encoded report decodes"), report);
    let key = frankly_fuzz::report_key();
    let envelope = seal_report(&report, frankly_fuzz::REPORT_KEY_ID, key.public()).expect("a decoded report seals");
    let (id, opened) = KEYRING.open(&envelope, frankly_fuzz::NOW_MS).expect("a sealed report opens");
    assert_eq!(id, frankly_fuzz::REPORT_KEY_ID);
    assert_eq!(opened, report);
});
