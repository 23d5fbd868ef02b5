//! FMB1 message bodies (`Body::decode`, which must round-trip through
//! `Body::encode`) and delivery contexts in their binary layout
//! (`read_delivery`).
#![no_main]

use frankly_franking::{Body, read_delivery};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = Body::decode(data) {
        assert_eq!(body.encode().expect("a decoded body encodes"), data);
    }
    if let Ok((delivery, rest)) = read_delivery(data) {
        let mut encoded = delivery.encode().expect("a decoded delivery context encodes");
        encoded.extend_from_slice(rest);
        assert_eq!(encoded, data);
    }
});
