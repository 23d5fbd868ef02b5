//! Image decoding with the default limits (`frankly_hash::decode`).
#![no_main]

use frankly_hash::{DecodeOptions, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode(data, &DecodeOptions::default());
    let _ = decode(data, &DecodeOptions { exif_orient: true, ..DecodeOptions::default() });
});
