//! The bypass suite's own cases: ways around a control that are not a defect of one feature
//! but of how names, text and paths are read. The other bypass cases live beside the control
//! they attack (approval replay, argument swap and self-approval in `approvals.rs`; CSRF in
//! `cookies.rs` and `identity.rs`; resource URI traversal in `warden-core/tests/core.rs`;
//! requests sent as notifications in `tests/mcp/stdio_gate.test.mjs`); `scripts/bypass.sh`
//! runs them all.

// Test code: a panic is a failed assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use warden_core::Verdict;
use warden_gateway::logins::Role;

use common::*;

fn email() -> serde_json::Value {
    json!({"to": "ops@example.com", "subject": "status", "body": "all good"})
}

#[tokio::test]
async fn unicode_confusables_of_a_granted_tool_name_are_other_tools_and_denied() {
    let env = setup("").await;
    for name in [
        "send_emaіl",         // Cyrillic і
        "ѕend_email",         // Cyrillic ѕ
        "send_email\u{200b}", // zero-width space
        "ｓend_email",        // fullwidth s
        "send_e\u{301}mail",  // a combining accent
        "SEND_EMAIL",
    ] {
        let r = env
            .propose("crm-writer", json!({"tool": name, "arguments": email()}))
            .await;
        assert_eq!(r.status.as_u16(), 200, "{name}: {}", r.raw);
        assert_eq!(r.body["decision"], "deny", "{name}: {}", r.raw);
        let d = env.last_decision().await;
        assert_eq!(d.decision.decision, Verdict::Deny, "{name}");
        assert_eq!(
            d.tool, name,
            "recorded as it was sent, not folded onto the grant"
        );
        // Over /mcp the same name is not the granted tool either.
        let session = env.mcp_session("crm-writer", json!({})).await;
        let r = env
            .mcp(
                "crm-writer",
                Some(&session),
                tool_call(1, name, email(), json!({})),
            )
            .await;
        assert!(
            r.body["result"]["isError"] == true || r.body["error"].is_object(),
            "{name}: {}",
            r.raw
        );
    }
}

#[tokio::test]
async fn header_and_log_injection_through_caller_text_stays_data() {
    let env = setup("").await;
    let forged = "T-1\r\nX-Injected: 1\r\n\r\n{\"kind\":\"decision\",\"decision\":\"allow\"}";
    let r = env
        .propose(
            "crm-writer",
            json!({"tool": "send_email", "arguments": email(), "correlation_id": forged,
                   "session": "s\n2026-01-01 INFO forged line"}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.raw);
    assert!(
        !r.headers.contains_key("x-injected"),
        "caller text never becomes a header"
    );
    // One record, with the text as data (one JSON string), and the chain still verifies.
    let decisions = env.decisions().await;
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].correlation_id.as_deref(), Some(forged));
    let report = env.store.ledger().verify(Box::new(|_| {})).await.unwrap();
    assert!(report.first_break.is_none());
    assert_eq!(report.verified, env.store.ledger().count().await.unwrap());
}

#[tokio::test]
async fn ui_routes_do_not_traverse_paths() {
    let env = setup("").await;
    let ann = env.person("ann", Role::Approver).await;
    for path in [
        "/ui/approvals/..%2F..%2F..%2Fetc%2Fpasswd",
        "/ui/approvals/%2e%2e%2f%2e%2e%2fCargo.toml",
        "/ui/approvals/..%5c..%5cwarden.toml",
        "/ui/..%2f..%2fetc/passwd",
    ] {
        let r = send(
            &env.state,
            Request::get(path)
                .header("cookie", &ann.cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert!(
            matches!(r.status.as_u16(), 404 | 400),
            "{path}: {} {}",
            r.status,
            r.raw
        );
        assert!(!r.raw.contains("root:"), "{path}");
        assert!(!r.raw.contains("[workspace]"), "{path}");
        assert!(!r.raw.contains("[agent_keys]"), "{path}");
    }
}
