//! The vote parsers that face the network: the JSON body of
//! `POST /v1/approvals/{id}/approve|deny` and the web UI's approve/deny form. Any bytes must be
//! refused or parsed without panicking; what parses obeys the limits (reason trimmed, at most
//! 2000 characters, no control or bidirectional-override characters besides line breaks and
//! tabs; one-time code of 6 to 8 digits), and parses again to itself once re-encoded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::approval::{
    parse_vote_form, parse_vote_json, VoteInput, MAX_REASON_CHARS, MAX_VOTE_BODY,
};

fn check(v: &VoteInput) {
    if let Some(r) = &v.reason {
        assert!(!r.is_empty() && r.trim() == r);
        assert!(r.chars().count() <= MAX_REASON_CHARS);
        assert!(!r
            .chars()
            .any(|c| (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
                || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')));
    }
    if let Some(t) = &v.totp {
        assert!((6..=8).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()));
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 16 * 1024 {
        return;
    }
    if let Ok(v) = parse_vote_json(data) {
        check(&v);
        let again = serde_json::to_vec(&v).expect("a parsed vote serialises");
        if again.len() <= MAX_VOTE_BODY {
            assert_eq!(parse_vote_json(&again).expect("re-encoded vote parses"), v);
        }
    }
    if let Ok(f) = parse_vote_form(data) {
        check(&f.input);
        let mut enc = form_urlencoded::Serializer::new(String::new());
        if let Some(c) = &f.csrf {
            enc.append_pair("csrf", c);
        }
        if let Some(a) = f.action {
            enc.append_pair("action", a.as_str());
        }
        if let Some(r) = &f.input.reason {
            enc.append_pair("reason", r);
        }
        if let Some(t) = &f.input.totp {
            enc.append_pair("totp", t);
        }
        let again = enc.finish();
        if again.len() <= MAX_VOTE_BODY {
            assert_eq!(
                parse_vote_form(again.as_bytes()).expect("re-encoded form parses"),
                f
            );
        }
    }
});
