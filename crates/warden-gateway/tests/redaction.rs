//! No planted secret reaches the SQLite file: every document of the planted-secret corpus
//! (tests/redaction/corpus.jsonl: logs, env files, JSON, e-mails, code around each value) is
//! sent through the decision API — as call arguments, as the line holding the value in a
//! subject, in correlation ids, as an argument that breaks a constraint (the violation message
//! quotes it), and as tool outputs and errors — then the ledger is closed and the database,
//! WAL and shared-memory files are searched for every planted value.

// Test code: a panic is a failed assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;
use warden_core::redact::{Redactor, Withholding};
use warden_gateway::{app, AppState};
use warden_store::StoreOptions;

/// The example's static agent keys in the shared harness: each agent's key is its name.
const TRIAGE_KEY: &str = "support-triage";
const CRM_KEY: &str = "crm-writer";

async fn call(state: &AppState, uri: &str, key: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::builder()
        .method("POST")
        .uri(uri)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

struct Doc {
    family: String,
    text: String,
    planted: Vec<String>,
}

fn corpus() -> Vec<Doc> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/redaction/corpus.jsonl"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            Doc {
                family: v["family"].as_str().unwrap().to_string(),
                text: v["text"].as_str().unwrap().to_string(),
                planted: v["planted"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["value"].as_str().unwrap().to_string())
                    .collect(),
            }
        })
        .filter(|d| !d.planted.is_empty())
        .collect()
}

#[tokio::test]
async fn no_planted_value_reaches_the_sqlite_file() {
    // Hundreds of calls in a few seconds: lift the example's rate limits.
    let env = common::setup_store(
        |config| config.to_string(),
        |_, card| {
            card.replace("calls_per_minute = ", "calls_per_minute = 100000 # ")
                .replace("writes_per_hour = ", "writes_per_hour = 100000 # ")
        },
        |project| {
            let redactor =
                Redactor::new(&[7u8; 32])
                    .unwrap()
                    .with_withholding(Withholding::from_cards(
                        project.policy.cards.values(),
                        &project.config.retention.not_stored(),
                    ));
            StoreOptions {
                redactor: Some(redactor),
                ..Default::default()
            }
        },
    )
    .await;
    let common::Env {
        dir, state, store, ..
    } = env;
    let docs = corpus();
    let mut planted: Vec<String> = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        planted.extend(d.planted.iter().cloned());
        // An allowed call with the document as its arguments, then its output (or error).
        // The subject is the line holding the value, when it fits the card's 200 characters
        // (not where what makes it a secret is on another line: one line of a key's body, a
        // wrapped token's tail, a Secret's `data` value or an SMTP `334` reply without the
        // lines before it, a `-p` under a `docker login \` — alone, each is any string).
        let line = d
            .text
            .lines()
            .find(|l| d.planted.iter().any(|p| l.contains(p.as_str())))
            .unwrap_or_default();
        let context_elsewhere = matches!(
            d.family.as_str(),
            "private_key" | "wrapped" | "base64" | "shell"
        );
        let subject = if line.len() <= 190 && !context_elsewhere {
            format!("re: {line}")
        } else {
            format!("re: ticket {i}")
        };
        let (st, v) = call(
            &state,
            "/v1/decisions",
            CRM_KEY,
            json!({
                "tool": "send_email",
                "arguments": {"to": "ops@example.com", "subject": subject, "body": d.text},
                "correlation_id": format!("TICKET-{i}: {}", d.text),
            }),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["decision"], "allow", "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        let output = if i % 3 == 0 {
            json!({"status": "error", "output": {"error": format!("upstream rejected: {}", d.text)}})
        } else {
            json!({"status": "success", "output": {"content": [{"type": "text", "text": d.text}], "echo": {"body": d.text}}})
        };
        let (st, v) = call(
            &state,
            &format!("/v1/decisions/{id}/outcome"),
            CRM_KEY,
            output,
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        // A denied call whose bad argument carries the secret (the violation quotes it).
        let (st, v) = call(
            &state,
            "/v1/decisions",
            TRIAGE_KEY,
            json!({"tool": "get_ticket", "arguments": {"ticket_id": d.text}}),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["decision"], "deny", "{v}");
    }
    let records = store.ledger().count().await.unwrap();
    assert_eq!(records, docs.len() as u64 * 3);
    assert!(store.ledger().redacted_values() >= planted.len() as u64);
    let report = store.ledger().verify(Box::new(|_| {})).await.unwrap();
    assert!(report.first_break.is_none());
    drop(state);
    store.close().await;

    let mut files = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let p = dir.path().join(format!("w.db{suffix}"));
        if let Ok(bytes) = std::fs::read(&p) {
            // Lossy text keeps every ASCII run as it is; the values searched are ASCII.
            files.push((p, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    assert!(
        total > 100_000,
        "the ledger holds the records ({total} bytes)"
    );
    let mut leaked = Vec::new();
    for value in &planted {
        for (p, bytes) in &files {
            if bytes.contains(value.as_str()) {
                leaked.push(format!("{value} in {}", p.display()));
            }
        }
    }
    println!(
        "{} planted values, {records} records, {total} bytes of SQLite files searched, {} leaks",
        planted.len(),
        leaked.len()
    );
    assert!(
        leaked.is_empty(),
        "planted values in the store: {leaked:#?}"
    );
}
