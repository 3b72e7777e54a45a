//! The push payload parser on arbitrary bytes: it must answer a payload or a typed error, never
//! panic, and a payload it accepts must be valid and survive a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::push::{PushPayload, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(payload) = parse(text) {
        payload.validate().expect("an accepted payload is valid");
        let again = serde_json::json!({ "tessera": payload }).to_string();
        let back: PushPayload = parse(&again).expect("a payload survives a round trip");
        assert_eq!(back, payload);
    }
});
