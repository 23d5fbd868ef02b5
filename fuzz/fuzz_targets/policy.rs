//! Policies: TOML text (`Policy::from_toml`) and signed policy bundles
//! (`peek_policy`, `verify_policy` with a fixed key, i.e.
//! `frankly_bundle::peek` / `verify` in the policy domain).
#![no_main]

use frankly_policy::{Policy, peek_policy, verify_policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Policy::from_toml(text);
    }
    let _ = peek_policy(data);
    let _ = verify_policy(data, &frankly_fuzz::bundle_key(), frankly_fuzz::NOW_SECS, None);
});
