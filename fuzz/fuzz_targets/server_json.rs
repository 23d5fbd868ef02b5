//! The relay's and the franking service's JSON request bodies, as axum's
//! `Json` extractor parses them (`serde_json::from_slice`).
#![no_main]

use frankly_server::{AckRequest, ConversationRequest, DeviceRequest, FrankRequest, MemberRequest, SendRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<SendRequest>(data);
    let _ = serde_json::from_slice::<FrankRequest>(data);
    let _ = serde_json::from_slice::<DeviceRequest>(data);
    let _ = serde_json::from_slice::<ConversationRequest>(data);
    let _ = serde_json::from_slice::<MemberRequest>(data);
    let _ = serde_json::from_slice::<AckRequest>(data);
});
