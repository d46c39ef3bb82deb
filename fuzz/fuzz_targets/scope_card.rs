//! Scope cards come from people and pull requests: any text must parse or fail with a
//! located error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::scope_card::parse_scope_card;

fuzz_target!(|data: &[u8]| {
    if data.len() > 16 * 1024 {
        return;
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_scope_card("agents/fuzz.toml", text);
    }
});
