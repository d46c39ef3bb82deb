//! What auditors and tracing back-ends read: OCSF API Activity events and OpenTelemetry
//! `execute_tool` spans built from ledger records, as golden snapshots, plus the properties
//! that must hold for any record (no argument value in a span, no nulls in OCSF).

// Test code: a panic is a failed assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use serde_json::{json, Value};
use warden_core::ledger::{DecisionEvent, OutcomeEvent};
use warden_core::ocsf::{decision_event, LedgerPosition};
use warden_core::otel::{otlp_json, Resource, ToolCallSpan};

fn decision(verdict: &str, extra: Value) -> DecisionEvent {
    let mut v = json!({
        "decision_id": "0190b7a0-0000-7000-8000-000000000001",
        "agent": "crm-writer",
        "environment": "prod",
        "tool": "issue_refund",
        "qualified_tool": "payments/issue_refund",
        "arguments": {"account_id": "ACME-7", "amount_eur": 420},
        "session": "s-1",
        "correlation_id": null,
        "source": "api",
        "decision": {
            "decision": verdict,
            "tier": "approve",
            "reasons": ["refunds need a human approval"],
            "policies": ["card/crm-writer/payments/issue_refund"],
            "violations": [],
            "tool": "payments/issue_refund",
            "policy_version": "pv-1234",
        },
    });
    if let (Some(obj), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in extra {
            obj.insert(k.clone(), x.clone());
        }
    }
    serde_json::from_value(v).unwrap()
}

const AT: LedgerPosition<'static> = LedgerPosition {
    seq: 42,
    hash: "ab12",
    ts: "2026-11-25T10:00:00.000Z",
};

#[test]
fn ocsf_events_for_each_kind_of_decision() {
    let held = decision_event(
        &decision("approval_required", json!({})),
        1_795_000_000_000,
        AT,
    );
    let approved = decision_event(
        &decision(
            "allow",
            json!({"approval_id": "0190b7a0-0000-7000-8000-0000000000aa", "correlation_id": "TICKET-9"}),
        ),
        1_795_000_000_000,
        AT,
    );
    let denied = decision_event(
        &decision(
            "deny",
            json!({"source": "mcp-http", "mcp_request_id": 7, "session": null}),
        ),
        1_795_000_000_000,
        AT,
    );
    for e in [&held, &approved, &denied] {
        // Base attributes and the ones API Activity requires.
        for k in [
            "activity_id",
            "category_uid",
            "class_uid",
            "metadata",
            "severity_id",
            "time",
            "type_uid",
            "actor",
            "api",
            "src_endpoint",
        ] {
            assert!(e.get(k).is_some(), "{k} missing: {e}");
        }
        assert!(!e.to_string().contains("null"), "{e}");
        assert!(!e.to_string().contains("ACME-7"), "arguments stay out: {e}");
    }
    assert_eq!(approved["disposition"], "Approved");
    assert_eq!(denied["api"]["request"]["uid"], "7");
    insta::assert_json_snapshot!("ocsf_held", held);
    insta::assert_json_snapshot!("ocsf_approved", approved);
    insta::assert_json_snapshot!("ocsf_denied", denied);
}

fn outcome(status: &str) -> OutcomeEvent {
    serde_json::from_value(json!({
        "decision_id": "0190b7a0-0000-7000-8000-000000000001",
        "agent": "crm-writer",
        "tool": "issue_refund",
        "correlation_id": null,
        "status": status,
        "output": {"refund_id": "R-1"},
        "output_bytes": 18,
        "output_truncated": false,
        "duration_ms": 12,
    }))
    .unwrap()
}

fn resource() -> Resource {
    Resource {
        service_name: "warden".into(),
        service_version: "0.1.0".into(),
        environment: "prod".into(),
    }
}

#[test]
fn otel_spans_from_ledger_records() {
    let t0 = 1_795_000_000_000_000_000u64;
    let denied = ToolCallSpan::from_ledger(&decision("deny", json!({})), t0, None).unwrap();
    let failed = ToolCallSpan::from_ledger(
        &decision("allow", json!({"correlation_id": "call_abc"})),
        t0,
        Some((&outcome("error"), t0 + 5_000_000)),
    )
    .unwrap();
    // An allowed call with no outcome yet has not finished: no span.
    assert!(ToolCallSpan::from_ledger(&decision("allow", json!({})), t0, None).is_none());
    assert_eq!(failed.call_id.as_deref(), Some("call_abc"));
    assert_eq!(failed.error_type.as_deref(), Some("tool_error"));
    let body = otlp_json(&resource(), &[denied, failed]);
    assert!(!body.to_string().contains("ACME-7"));
    insta::assert_json_snapshot!("otlp_spans", body);
}

proptest! {
    /// Whatever the arguments and outputs hold, no value of theirs reaches a span.
    #[test]
    fn no_argument_or_output_value_in_a_span(
        arg in "[A-Za-z0-9]{12,40}",
        out in "[A-Za-z0-9]{12,40}",
        verdict in prop::sample::select(vec!["allow", "deny", "approval_required"]),
    ) {
        let mut d = decision(verdict, json!({}));
        d.arguments = json!({"note": arg, "nested": {"list": [arg.clone()]}});
        let mut o = outcome("success");
        o.output = json!({"text": out});
        let span = ToolCallSpan::from_ledger(&d, 1, Some((&o, 2)));
        let text = otlp_json(&resource(), span.as_slice()).to_string();
        prop_assert!(!text.contains(&arg));
        prop_assert!(!text.contains(&out));
    }
}

#[test]
fn tls_and_telemetry_settings_parse_with_their_defaults() {
    let base = "[gateway]\nenvironment = \"prod\"\n";
    let cfg = warden_core::config::parse_config("warden.toml", base).unwrap();
    assert!(cfg.gateway.tls_enabled().is_none());
    assert_eq!(cfg.telemetry.traces_url(), None);
    assert_eq!(cfg.telemetry.service_name, "warden");
    let text = format!(
        "{base}[gateway.tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318/\"\n"
    );
    let cfg = warden_core::config::parse_config("warden.toml", &text).unwrap();
    assert_eq!(
        cfg.gateway.tls_enabled().unwrap().cert_file.get_ref(),
        "c.pem"
    );
    assert_eq!(
        cfg.telemetry.traces_url().as_deref(),
        Some("http://127.0.0.1:4318/v1/traces")
    );
    let off = text.replace("[gateway.tls]\n", "[gateway.tls]\nenabled = false\n");
    let cfg = warden_core::config::parse_config("warden.toml", &off).unwrap();
    assert!(cfg.gateway.tls_enabled().is_none());
    // A key file without a certificate is a located error.
    let half = format!("{base}[gateway.tls]\nkey_file = \"k.pem\"\n");
    let e = warden_core::config::parse_config("warden.toml", &half).unwrap_err();
    assert!(
        e[0].to_string()
            .starts_with("warden.toml:3:1: error: missing field `cert_file`"),
        "{}",
        e[0]
    );
    for bad in ["ftp://x", "http://", "http://user:pw@host:4318"] {
        let t = format!("{base}[telemetry]\notlp_endpoint = \"{bad}\"\n");
        let e = warden_core::config::parse_config("warden.toml", &t).unwrap_err();
        assert!(
            e[0].to_string()
                .starts_with("warden.toml:4:17: error: [telemetry] otlp_endpoint"),
            "{bad}: {}",
            e[0]
        );
    }
}
