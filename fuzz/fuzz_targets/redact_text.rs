//! Tool outputs and arguments as they arrive from agents and upstreams: any bytes through the
//! redaction engine. It must never panic, its output must be valid UTF-8 on character
//! boundaries (it is a `String`), and redacting its own output must change nothing.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warden_core::redact::{RedactionStats, Redactor};

fn redactor() -> &'static Redactor {
    static R: OnceLock<Redactor> = OnceLock::new();
    R.get_or_init(|| match Redactor::new(b"fuzz key, thirty-two bytes long!") {
        Ok(r) => r,
        Err(e) => panic!("redaction engine must start: {e}"),
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    let text = String::from_utf8_lossy(data);
    let r = redactor();
    let mut stats = RedactionStats::default();
    let once = r.redact_text(&text, &mut stats).into_owned();
    let twice = r.redact_text(&once, &mut stats);
    assert_eq!(once, twice, "redaction is not idempotent");
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(data) {
        r.redact_json(&mut v, &mut stats);
    }
});
