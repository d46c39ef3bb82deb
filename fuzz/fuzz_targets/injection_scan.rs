//! Tool outputs come from anywhere: the injection detector and session provenance must take
//! any text without panicking, and every finding's span must lie inside the text on character
//! boundaries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::injection::Detector;
use warden_core::scope_card::Trust;
use warden_core::SessionState;

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    let text = String::from_utf8_lossy(data);
    let detector = Detector::new(&["issue_refund".to_string(), "send_email".to_string()]);
    for f in detector.scan(&text) {
        assert!(f.start <= f.end && f.end <= text.len());
        assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
    }
    let mut s = SessionState::default();
    s.record_text("a/b", Trust::Untrusted, &[], &text, 1, &detector);
    let arg = text.chars().take(200).collect::<String>();
    let _ = s.provenance(&serde_json::json!({ "to": arg, "n": 42 }));
});
