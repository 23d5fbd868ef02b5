//! Bank files: the binary format (`Bank::from_bytes`), the hex and CSV hash
//! lists (`Bank::import_text`) for every signal type, and signed bank
//! bundles (`peek_bundle`, `verify_bundle` with a fixed key, i.e.
//! `frankly_bundle::peek` / `verify` in the bank's domain).
#![no_main]

use frankly_bank::{Bank, SignalType, TextFormat, peek_bundle, verify_bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(bank) = Bank::from_bytes(data) {
        // A bank that decoded encodes, and decodes to itself.
        let bytes = bank.to_bytes().expect("a decoded bank encodes");
        assert_eq!(Bank::from_bytes(&bytes).expect("an encoded bank decodes"), bank);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        for signal in SignalType::ALL {
            for format in [TextFormat::Hex, TextFormat::Csv] {
                let _ = Bank::import_text("fuzz", signal, format, text, false);
            }
        }
    }
    let _ = peek_bundle(data);
    let _ = verify_bundle(data, &frankly_fuzz::bundle_key(), frankly_fuzz::NOW_SECS, None);
});
