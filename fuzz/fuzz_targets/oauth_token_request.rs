//! The `/oauth/token` request parser (form body, HTTP Basic header) and the credential
//! format parser: any bytes must be rejected or parsed without panicking, and a parsed
//! credential must re-parse to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::identity::{parse_credential, parse_token_request};

fuzz_target!(|data: &[u8]| {
    if data.len() > 16 * 1024 {
        return;
    }
    // First byte splits the input into an Authorization header and a body.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(split).min(rest.len());
    let (header, body) = rest.split_at(at);
    let header = std::str::from_utf8(header).ok();
    let _ = parse_token_request(Some("application/x-www-form-urlencoded"), header, body);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(c) = parse_credential(text) {
            assert!(text.contains(c.id));
            assert_eq!(parse_credential(text), Some(c.clone()));
        }
    }
});
