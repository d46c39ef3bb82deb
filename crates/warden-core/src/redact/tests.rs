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
            "aws_secret_access_key = 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",
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

fn redacted(text: &str) -> String {
    let mut st = RedactionStats::default();
    redactor().redact_text(text, &mut st).into_owned()
}

/// Assert that none of `secrets` survives in the redaction of `text`.
fn assert_gone(text: &str, secrets: &[&str]) {
    let out = redacted(text);
    for s in secrets {
        assert!(
            !out.contains(s),
            "{s:?} survived in {out:?} (from {text:?})"
        );
    }
    let mut st = RedactionStats::default();
    assert_eq!(
        redactor().redact_text(&out, &mut st),
        out.as_str(),
        "not idempotent"
    );
}

fn assert_kept(text: &str) {
    assert_eq!(redacted(text), text);
}

const GHP: &str = "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5";

/// Issue 15, item 4: tokens glued to other text with `-` or `_` (`sess-ghp_…`, `tool_ghp_…`,
/// `x-AKIA…`) were refused as "inside a longer token" and reached the ledger in the clear
/// through a decision's `session` and `correlation_id`.
#[test]
fn regression_tokens_glued_with_dash_or_underscore_are_redacted() {
    for text in [
        format!("sess-{GHP}"),
        format!("tool_{GHP}"),
        format!("corr.{GHP}-retry2"),
        "x-AKIAQ3EGRZ7VXMP4JD2K".to_string(),
        "run_AKIAQ3EGRZ7VXMP4JD2K_2".to_string(),
        "job-xoxb-1234567890-1234567890123-aBcDeFgHiJkLmNoPqRsTuVwX".to_string(),
    ] {
        assert_gone(
            &text,
            &["aB3dE5fG7hJ9kL1m", "Q3EGRZ7VXMP4JD2K", "aBcDeFgHiJkLmNoP"],
        );
    }
    // Through the ledger event, as the gateway stores it.
    let mut event: crate::ledger::LedgerEvent = serde_json::from_value(json!({
        "kind": "decision", "decision_id": "d-1", "agent": "a", "environment": "prod",
        "tool": "t", "qualified_tool": "s/t", "arguments": {},
        "session": format!("sess-{GHP}"), "correlation_id": format!("tool_{GHP}"),
        "source": "api",
        "decision": {"decision": "allow", "tier": "auto", "reasons": [], "policies": [],
                     "violations": [], "tool": "s/t", "policy_version": "v"}
    }))
    .unwrap();
    let mut st = RedactionStats::default();
    redactor().redact_event(&mut event, &mut st);
    let stored = serde_json::to_string(&event).unwrap();
    assert!(!stored.contains("aB3dE5fG7hJ9kL1m"), "{stored}");
    assert_eq!(st.counts.get("github_token"), Some(&2));
    // Still not inside base64 or a longer word.
    assert_kept("iVBORw0KGgoAAAANSUhEUgAAAKIAQ3EGRZ7VXMP4JD2K9xQ");
    assert_kept("xAKIAQ3EGRZ7VXMP4JD2K");
}

#[test]
fn data_stored_in_the_clear_tool_on_behalf_of_and_argument_names_are_redacted() {
    // Before: the tool, `on_behalf_of` and violation argument names went to the store as sent.
    let key = "AKIAQ3EGRZ7VXMP4JD2K";
    let mut event: crate::ledger::LedgerEvent = serde_json::from_value(json!({
        "kind": "decision", "decision_id": "d-1", "agent": "a", "environment": "prod",
        "tool": key, "qualified_tool": format!("s/{key}"), "arguments": {},
        "source": "api", "on_behalf_of": format!("user-{GHP}"),
        "decision": {"decision": "deny", "tier": "auto", "reasons": [], "policies": [],
                     "violations": [{"argument": format!("x_{GHP}"), "message": "not listed"}],
                     "tool": format!("s/{key}"), "policy_version": "v"}
    }))
    .unwrap();
    let mut st = RedactionStats::default();
    redactor().redact_event(&mut event, &mut st);
    let stored = serde_json::to_string(&event).unwrap();
    assert!(!stored.contains("Q3EGRZ7VXMP4JD2K"), "{stored}");
    assert!(!stored.contains("aB3dE5fG7hJ9kL1m"), "{stored}");
    let mut outcome: crate::ledger::LedgerEvent = serde_json::from_value(json!({
        "kind": "outcome", "decision_id": "d-1", "agent": "a", "tool": key,
        "status": "success", "output": {}, "output_bytes": 0, "output_truncated": false
    }))
    .unwrap();
    redactor().redact_event(&mut outcome, &mut st);
    assert!(!serde_json::to_string(&outcome)
        .unwrap()
        .contains("Q3EGRZ7VXMP4JD2K"));
}

#[test]
fn secrets_split_across_lines_are_redacted_whole() {
    // A token hard-wrapped at 76 columns in an e-mail, also quoted.
    let token =
        "sk-proj-Xq7Lm2Np9Rt4Vw8Zb3Cd6Fg1Hj5Kl0Mn2Pq7Rs4Tu9Vw3Xy8Za1Bc6De0Fg5Hi2Jk7Lm4No9Pq";
    let (a, b) = token.split_at(60);
    let text = format!("Hi,\n\nthe key for staging is {a}\n{b}\n\nThanks,\nOps\n");
    assert_gone(&text, &[a, b]);
    let quoted = format!("> the key for staging is {a}\n> {b}\n");
    assert_gone(&quoted, &[&a[8..], b]);
    // A GitHub token cut inside its body, at a 64-column wrap.
    let pad = "x".repeat(40);
    let (g1, g2) = GHP.split_at(20);
    assert_gone(&format!("{pad} token {g1}\n{g2} ok\n"), &[&g1[4..], g2]);
    // A shell continuation inside a value and between a flag and its value.
    assert_gone(
        &format!("export GITHUB_TOKEN={g1}\\\n{g2}\n"),
        &[&g1[4..], g2],
    );
    assert_gone(
        "docker login registry.acme.io -u deploy \\\n  --password \\\n  'Tr0ub4dor&3xyz'\n",
        &["Tr0ub4dor"],
    );
    // A PEM body wrapped at 64 columns, indented in YAML.
    let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj";
    let pem = format!(
        "tls:\n  key: |\n    -----BEGIN RSA PRIVATE KEY-----\n    {body}\n    {body}\n    -----END RSA PRIVATE KEY-----\n"
    );
    assert_gone(&pem, &[body]);
}

fn b64(s: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in s.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_wrapped_credentials_are_decoded() {
    let basic = b64(b"deploy:w1nter-Is-c0ming");
    assert_gone(&format!("> Authorization: Basic {basic}\n"), &[&basic]);
    let plain = b64(b"\0alice@example.com\0s3cret pass");
    assert_gone(
        &format!("C: AUTH PLAIN {plain}\nS: 235 2.7.0 ok\n"),
        &[&plain],
    );
    assert_gone(&format!("C: AUTH PLAIN\nS: 334 \nC: {plain}\n"), &[&plain]);
    let login = b64(b"hunter2hunter2");
    assert_gone(
        &format!(
            "C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: YWxpY2U=\nS: 334 UGFzc3dvcmQ6\nC: {login}\n"
        ),
        &[&login],
    );
    // A Kubernetes Secret: values whose decoded text is a secret go; others stay.
    let url = b64(b"postgres://app:Sup3rS3cr3t@db.internal:5432/app");
    let pw = b64(b"correct horse");
    let user = b64(b"admin");
    let cfg = b64(format!(
        "{{\"auths\":{{\"registry.acme.io\":{{\"auth\":\"{}\"}}}}}}",
        b64(b"ci:Gh7-pQ9-zX2")
    )
    .as_bytes());
    let yaml = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\ndata:\n  DATABASE_URL: {url}\n  password: {pw}\n  username: {user}\n  .dockerconfigjson: {cfg}\n"
    );
    let out = redacted(&yaml);
    for gone in [&url, &pw, &cfg] {
        assert!(!out.contains(gone.as_str()), "{gone} in {out}");
    }
    assert!(out.contains(&format!("username: {user}")), "{out}");
    let json = format!(
        "{{\"kind\":\"Secret\",\"data\":{{\"DATABASE_URL\":\"{url}\",\"username\":\"{user}\"}}}}"
    );
    let out = redacted(&json);
    assert!(!out.contains(&url) && out.contains(&user), "{out}");
}

/// Decode-and-rescan is bounded: base64 nested far deeper than [`MAX_DECODE_DEPTH`], and a
/// value larger than [`MAX_DECODED_VALUE`], are redacted whole without being decoded to the
/// bottom; nothing panics and the work stays proportional to the input.
#[test]
fn nested_base64_is_decoded_within_the_bound() {
    let mut inner = "token: ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5".to_string();
    for _ in 0..2 {
        inner = format!("data:\n  v: {}\n", b64(inner.as_bytes()));
    }
    // Within the bound: found by decoding.
    let out = redacted(&inner);
    assert!(out.contains("[REDACTED:encoded_secret:"), "{out}");
    // Harmless text nested 40 levels deep: past the bound, so redacted whole (fail closed).
    let mut deep = "hello".to_string();
    for _ in 0..40 {
        deep = format!("data:\n  v: {}\n", b64(deep.as_bytes()));
    }
    assert!(deep.len() < 16 * 1024 * 1024);
    let out = redacted(&deep);
    assert!(out.contains("[REDACTED:encoded_secret:"));
    assert!(out.len() < 200, "{}", out.len());
    // Harmless text nested within the bound is kept.
    let shallow = format!("data:\n  v: {}\n", b64(b"hello world"));
    assert_kept(&shallow);
    // Too large to decode: redacted whole.
    let big = format!("data:\n  blob: {}\n", b64(&vec![b'a'; MAX_DECODED_VALUE]));
    assert!(redacted(&big).contains("[REDACTED:encoded_secret:"));
    // Many values: each decoded once, the total bounded by the budget.
    let many: String = (0..2000)
        .map(|i| format!("  k{i}: {}\n", b64(format!("value number {i}").as_bytes())))
        .collect();
    let _ = redacted(&format!("data:\n{many}"));
}

#[test]
fn url_encoded_values_are_decoded() {
    assert_gone(
        "GET /unsubscribe?email=jane.doe%40example.com&list=news HTTP/1.1",
        &["jane.doe%40example.com", "jane.doe"],
    );
    let hook = "https%3A%2F%2Fhooks.slack.com%2Fservices%2FT0ABCDEFG%2FB0HIJKLMNO%2FaBcDeFgHiJkLmNoPqRsTuVwX";
    assert_gone(
        &format!("POST /alerts?target={hook}&v=2"),
        &["aBcDeFgHiJkLmNoPqRsTuVwX"],
    );
    assert_gone(
        "https://api.acme.io/v1/export?format=csv&auth=9fQ2xL7mPz4KcV1r&limit=10",
        &["9fQ2xL7mPz4KcV1r"],
    );
    assert_gone(
        &format!("redirect_uri=https%3A%2F%2Fx.io%2Fcb%3Faccess_token%3D{GHP}"),
        &["aB3dE5fG7hJ9kL1m"],
    );
}

#[test]
fn json_escaped_values_are_redacted() {
    assert_gone(
        r#"{"log": "{\"user\": \"ada\", \"password\": \"correct horse battery\"}"}"#,
        &["correct", "horse", "battery"],
    );
    assert_gone(
        r#"{"raw": "{\\\"db_password\\\": \\\"Xy7#kq2!Lm zz\\\"}"}"#,
        &["Xy7#kq2!Lm", "zz\\"],
    );
    assert_gone(
        r#"{"body": "{\"Authorization\": \"Bearer abcDEF123456ghiJKL789\"}"}"#,
        &["abcDEF123456ghiJKL789"],
    );
}

#[test]
fn command_line_passwords_are_redacted() {
    assert_gone(
        "mysql -h db -uroot -p'S3cr3t pass' app",
        &["S3cr3t", "pass'"],
    );
    assert_gone(
        "mysqldump -u root -pHunter22x shop > dump.sql",
        &["Hunter22x"],
    );
    assert_gone(
        "PGPASSWORD='p@ss w(rd);x' psql -h db -U app",
        &["p@ss", "w(rd)"],
    );
    assert_gone(
        "curl -u 'deploy:Wint3r is coming' https://x.io",
        &["Wint3r", "coming"],
    );
    assert_gone("curl --user ci:Qz8-hw2-Lp4 https://x.io", &["Qz8-hw2-Lp4"]);
    assert_gone("tool --password=Sup3rS3cr3t! --verbose", &["Sup3rS3cr3t"]);
    assert_gone("tool --db-password 'two words' --verbose", &["two words"]);
    assert_gone("sshpass -p 'Tr0ub4dor&3' ssh admin@host", &["Tr0ub4dor"]);
    assert_gone("redis-cli -h cache -a r3dis-S3cret ping", &["r3dis-S3cret"]);
    // Not passwords.
    assert_kept("mysql -u root -p shop");
    assert_kept("docker run -u 1000:1000 img");
    assert_kept("git push -u origin main");
    assert_kept("tool --password-file /run/secrets/db --token-file=/x");
    assert_kept("mysql -uroot -p\"$DB_PASSWORD\" shop");
}

#[test]
fn quoted_passphrases_are_redacted_whole() {
    for text in [
        "passphrase: \"correct horse battery staple\"",
        "DB_PASSWORD='correct horse battery staple'",
        "password = \"correct horse battery staple\"",
        "{\"password\": \"correct horse battery staple\"}",
    ] {
        assert_gone(text, &["horse", "battery", "staple"]);
    }
    assert_kept("password: \"${DB_PASSWORD}\"");
    assert_kept("token_type: \"Bearer\"");
}

#[test]
fn national_and_00_phone_numbers() {
    for (text, number) in [
        ("call me on 020 7946 0958 tomorrow", "7946 0958"),
        ("Tel.: 030/12345678", "12345678"),
        ("mobile 06-12345678", "12345678"),
        ("ring 0044 20 7946 0958", "7946 0958"),
        ("WhatsApp: 0049 171 1234567", "1234567"),
        ("phone: 07700900123", "07700900123"),
        ("+33 1 23 45 67 89", "45 67 89"),
    ] {
        assert_gone(text, &[number]);
    }
    for text in [
        "on 01.12.2025 14:30 the job ran",
        "order ORD-2024-00018833 shipped",
        "build 0123456789 finished",
        "took 0.1234567891 s",
        "v0.12.3456789",
    ] {
        assert_kept(text);
    }
}

#[test]
fn national_identifiers_with_check_digits() {
    let cases = [
        ("SSN: 123456789", "123456789", "us_ssn"),
        (
            "social security number 123 45 6789",
            "123 45 6789",
            "us_ssn",
        ),
        ("NI number AB123456C on file", "AB123456C", "uk_nino"),
        ("NINO: AB 12 34 56 C", "AB 12 34 56 C", "uk_nino"),
        (
            "Aadhaar 2345 6789 0124 verified",
            "2345 6789 0124",
            "in_aadhaar",
        ),
        ("aadhaar_no=234567890124", "234567890124", "in_aadhaar"),
        ("Steuer-IdNr: 86095742719", "86095742719", "de_tax_id"),
        ("tax id 86 095 742 719", "86 095 742 719", "de_tax_id"),
        ("DNI 12345678Z", "12345678Z", "es_dni"),
        ("NIE: X1234567L", "X1234567L", "es_dni"),
        ("BSN 111222333", "111222333", "nl_bsn"),
        ("burgerservicenummer: 1112.22.333", "1112.22.333", "nl_bsn"),
    ];
    for (text, value, kind) in cases {
        let got = kinds_in(text);
        assert!(got.contains(&kind), "{text}: expected {kind}, got {got:?}");
        assert_gone(text, &[value]);
    }
    // Failing their checks, or without the label an unformatted number needs.
    for text in [
        "SSN: 000123456",
        "SSN 987654321",
        "NI number DA123456C",
        "NI number AB123456E",
        "Aadhaar 2345 6789 0123",
        "ref 234567890124",
        "Steuer-IdNr: 86095742718",
        "Steuer-IdNr: 12345678901",
        "ticket 86095742719",
        "DNI 12345678A",
        "NIE: X1234567A",
        "BSN 111222334",
        "invoice 111222333",
    ] {
        assert_kept(text);
    }
}

#[test]
fn documentation_examples_and_lookalikes_are_kept() {
    for text in [
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "id 123e4567-e89b-12d3-a456-426614174000",
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b\nAuthor: Ada",
        "order 4111111111111112 refunded",
    ] {
        assert_kept(text);
    }
}
