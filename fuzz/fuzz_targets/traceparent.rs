//! W3C `traceparent` values as agents send them (an HTTP header, or `params._meta` of an MCP
//! request): parsing must never panic, and whatever parses must describe itself again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::otel::TraceParent;

fuzz_target!(|data: &[u8]| {
    if data.len() > 1024 {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(tp) = TraceParent::parse(text) {
        assert_ne!(tp.trace_id, [0u8; 16]);
        assert_ne!(tp.parent_id, [0u8; 8]);
        let again = format!(
            "00-{}-{}-{}",
            hex(&tp.trace_id),
            hex(&tp.parent_id),
            if tp.sampled { "01" } else { "00" }
        );
        let back = TraceParent::parse(&again).expect("a parsed traceparent re-encodes");
        assert_eq!(back, tp);
    }
});

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
