use super::*;
use serde_json::json;

fn kinds_in(text: &str) -> Vec<&'static str> {
    find(text).unwrap().into_iter().map(|f| f.kind).collect()
}

fn redactor() -> Redactor {
    Redactor::new(b"0123456789abcdef0123456789abcdef").unwrap()
}

#[test]
fn rules_compile() {
    assert!(engine().is_ok(), "{:?}", Engine::build().err());
}

#[test]
fn finds_each_family_in_context() {
    let cases: &[(&str, &str)] = &[
        ("key id AKIAQ3EGRZ7VXMP4JD2K in use", "aws_access_key_id"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENGbPxRfiCYzEXAMPLEKEy",
            "aws_secret_access_key",
        ),
        (
            "url?key=AIzaSyD3f9xQ2vL0mN8bT4cR6eW1yU7iO5pA9sK&x",
            "gcp_api_key",
        ),
        (
            "token ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5 ok",
            "github_token",
        ),
        ("glpat-xK3mN9pQ2rT5vW8yZ1bC here", "gitlab_token"),
        (
            "SLACK=xoxb-1234567890-1234567890123-aBcDeFgHiJkLmNoPqRsTuVwX",
            "slack_token",
        ),
        ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe_key"),
        (
            "TELEGRAM 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw2",
            "telegram_bot_token",
        ),
        ("email me at jane.doe+ops@example.co.uk please", "email"),
        ("card 4111 1111 1111 1111 exp 12/29", "card_number"),
        ("ssn: 123-45-6789.", "us_ssn"),
        ("IBAN GB82 WEST 1234 5698 7654 32 for payment", "iban"),
        ("call +44 20 7946 0958 now", "phone"),
        ("call (415) 555-2671 now", "phone"),
        (
            "postgres://app:Sup3rS3cr3t!@db.internal:5432/app",
            "connection_password",
        ),
        ("DB_PASSWORD=Xy7#kq2!Lm", "secret_assignment"),
        (
            "curl -H 'Authorization: Bearer abcDEF123456ghiJKL789' x",
            "authorization",
        ),
    ];
    for (text, kind) in cases {
        let got = kinds_in(text);
        assert!(got.contains(kind), "{text}: expected {kind}, got {got:?}");
    }
}

#[test]
fn keeps_lookalikes() {
    for text in [
        "commit 3f786850e387550fdab836ed7e6dc881de23001b merged",
        "id 123e4567-e89b-12d3-a456-426614174000",
        "card 4111 1111 1111 1112 is invalid",
        "version 1.24.3-beta.2 released 2024-11-26",
        "order ORD-2024-00018833 shipped",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host",
        "icon@2x.png",
        "password = os.getenv(\"DB_PASSWORD\")",
        "postgres://app:${DB_PASSWORD}@db/app",
        "max_tokens: 4096",
        "SSN 000-12-3456 is not issued",
        "pk_live_51HxyzAbCdEfGhIjKlMnOpQrStUv publishable",
    ] {
        assert_eq!(kinds_in(text), Vec::<&str>::new(), "{text}");
    }
}

#[test]
fn markers_are_keyed_and_stable() {
    let r = redactor();
    let mut st = RedactionStats::default();
    let a = r
        .redact_text("a ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5 b", &mut st)
        .into_owned();
    assert!(a.starts_with("a [REDACTED:github_token:"), "{a}");
    assert!(!a.contains("ghp_"));
    let b = r
        .redact_text("x ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5", &mut st)
        .into_owned();
    assert_eq!(a.get(2..a.len() - 2), b.get(2..));
    let other = Redactor::new(b"another key, another correlation").unwrap();
    let c = other
        .redact_text("a ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5 b", &mut st)
        .into_owned();
    assert_ne!(a, c);
    // Idempotent: redacting the output again changes nothing.
    assert_eq!(r.redact_text(&a, &mut st), a.as_str());
    assert_eq!(st.counts.get("github_token"), Some(&3));
}

#[test]
fn json_walk_redacts_named_fields_and_strings() {
    let r = redactor();
    let mut st = RedactionStats::default();
    let mut v = json!({
        "user": {"password": "hunter2", "pin": 1234, "name": "Ada"},
        "note": "reach me at ada@example.org",
        "max_tokens": 256,
        "items": ["AKIAQ3EGRZ7VXMP4JD2K", true, null],
        "token_type": "Bearer"
    });
    r.redact_json(&mut v, &mut st);
    let text = v.to_string();
    for gone in ["hunter2", "1234", "ada@example.org", "AKIAQ3EGRZ7VXMP4JD2K"] {
        assert!(!text.contains(gone), "{gone} in {text}");
    }
    assert_eq!(v["user"]["name"], "Ada");
    assert_eq!(v["max_tokens"], 256);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(st.counts.get(SECRET_FIELD_KIND), Some(&2));
}

#[test]
fn private_key_blocks_even_when_cut_off() {
    let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7".repeat(10);
    let full =
        format!("k = \"-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n\"");
    let r = redactor();
    let mut st = RedactionStats::default();
    let out = r.redact_text(&full, &mut st);
    assert!(!out.contains("MIIEvQ"), "{out}");
    let cut = format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{body}");
    let out = r.redact_text(&cut, &mut st);
    assert!(!out.contains("MIIEvQ"), "{out}");
}

#[test]
fn unicode_around_matches_is_kept_whole() {
    let r = redactor();
    let mut st = RedactionStats::default();
    let text = "пароль: ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5 — ✓ é@exámple.com";
    let out = r.redact_text(text, &mut st);
    assert!(out.starts_with("пароль: [REDACTED:github_token:"));
    assert!(out.ends_with("✓ é@exámple.com") || !out.contains("ghp_"));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics_and_idempotent(s in "\\PC{0,300}") {
            let r = redactor();
            let mut st = RedactionStats::default();
            let once = r.redact_text(&s, &mut st).into_owned();
            let twice = r.redact_text(&once, &mut st).into_owned();
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn planted_token_never_survives(prefix in "[a-z .:=\n]{0,40}", suffix in "[a-z .,\n]{0,40}",
                                        body in "[A-Za-z0-9]{36}") {
            let token = format!("ghp_{body}");
            let text = format!("{prefix} {token} {suffix}");
            let r = redactor();
            let mut st = RedactionStats::default();
            let out = r.redact_text(&text, &mut st);
            prop_assert!(!out.contains(&token));
        }
    }
}

/// Found by the fuzz target `redact_text`: an e-mail address right after another one was left
/// in the clear by the first pass (its widened local part overlapped the first match and was
/// dropped) and redacted by the second.
#[test]
fn regression_adjacent_emails_are_both_redacted_in_one_pass() {
    let r = redactor();
    for text in [
        "r.vvvv487.@r.rz.@r.vvvvv",
        "a@x.com.b@y.org",
        "write to alice@example.com.b@example.org now",
    ] {
        let mut stats = RedactionStats::default();
        let once = r.redact_text(text, &mut stats).into_owned();
        let twice = r.redact_text(&once, &mut stats).into_owned();
        assert_eq!(once, twice, "{text}");
        assert!(!once.contains("@"), "{text} -> {once}");
    }
}

/// Found by the fuzz target `redact_text`: a phone number glued to a redacted one was kept by
/// the first pass (a digit before it) and redacted by the second (a marker before it).
#[test]
fn regression_a_value_glued_to_a_redacted_one_is_redacted_in_the_same_call() {
    let r = redactor();
    let bytes = b"86440\x86\xc5\x00\x003678/\xbe+345)686985+3433678-44440344";
    let text = String::from_utf8_lossy(bytes);
    let mut stats = RedactionStats::default();
    let once = r.redact_text(&text, &mut stats).into_owned();
    assert!(!once.contains("3433678"), "{once}");
    let twice = r.redact_text(&once, &mut stats).into_owned();
    assert_eq!(once, twice);
}
