//! The data lifecycle against a real SQLite file: payloads sealed at rest, retention purges
//! and subject erasure by destroying keys, with the chain and signed checkpoints intact.

// Test code: a panic is a failed assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};
use warden_core::ledger::{DecisionEvent, LedgerEvent, OutcomeEvent};
use warden_core::policy::{Decision, Verdict};
use warden_core::scope_card::Tier;
use warden_core::vault::{AgentPlan, PayloadPlan};
use warden_store::{day_start_ms, Store, StoreOptions, VaultOptions};

const MASTER: [u8; 32] = [11; 32];
const OLD_DAY: &str = "2026-01-10";

fn plan() -> PayloadPlan {
    let mut plan = PayloadPlan {
        default_days: Some(90),
        ..Default::default()
    };
    plan.class_days.insert("support_tickets".into(), 30);
    plan.agents.insert(
        "crm".into(),
        AgentPlan {
            retention: Some(Some(365)),
            subject_args: vec!["account_id".into()],
            tool_classes: HashMap::from([(
                "get_ticket".to_string(),
                vec!["support_tickets".to_string()],
            )]),
        },
    );
    plan
}

async fn open(path: &Path, master: [u8; 32]) -> Store {
    Store::open_sqlite(
        path,
        StoreOptions {
            vault: Some(VaultOptions {
                master,
                plan: plan(),
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

fn decision(id: &str, tool: &str, args: Value) -> LedgerEvent {
    LedgerEvent::Decision(Box::new(DecisionEvent {
        decision_id: id.into(),
        agent: "crm".into(),
        environment: "prod".into(),
        tool: tool.into(),
        qualified_tool: Some(format!("crm/{tool}")),
        arguments: args,
        session: Some("s-1".into()),
        correlation_id: None,
        source: "test".into(),
        mcp_request_id: None,
        user_request: Some("please look at my account".into()),
        decision: Decision {
            decision: Verdict::Allow,
            tier: Tier::Auto,
            reasons: vec!["granted".into()],
            policies: vec![],
            violations: vec![],
            tool: Some(format!("crm/{tool}")),
            policy_version: "v".into(),
            taint: None,
            provenance: vec![],
            egress_off_list: vec![],
        },
        approval_id: None,
        on_behalf_of: None,
    }))
}

fn outcome(id: &str, tool: &str, output: Value) -> LedgerEvent {
    LedgerEvent::Outcome(OutcomeEvent {
        decision_id: id.into(),
        agent: "crm".into(),
        tool: tool.into(),
        correlation_id: None,
        status: "success".into(),
        output,
        output_bytes: 10,
        output_truncated: false,
        duration_ms: Some(1),
    })
}

/// Decision `id` and its outcome, on `day`, about account `account`.
async fn call(l: &Store, day: &str, id: &str, tool: &str, account: &str, secret_word: &str) {
    l.ledger()
        .append(
            format!("{day}T09:00:00.000Z"),
            decision(
                id,
                tool,
                json!({"account_id": account, "note": secret_word}),
            ),
        )
        .await
        .unwrap();
    l.ledger()
        .append(
            format!("{day}T09:00:01.000Z"),
            outcome(id, tool, json!({"text": format!("{secret_word} output")})),
        )
        .await
        .unwrap();
}

fn today() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    )
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Every byte of the database and its WAL.
fn file_bytes(path: &Path) -> Vec<u8> {
    let mut out = std::fs::read(path).unwrap();
    for ext in ["db-wal", "db-shm"] {
        if let Ok(b) = std::fs::read(path.with_extension(ext)) {
            out.extend(b);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The opened payloads of decision `id`: (arguments, outcome output).
async fn payloads(l: &Store, id: &str) -> (Value, Value) {
    let recs = l.ledger().records_of_decision(id).await.unwrap();
    let mut args = Value::Null;
    let mut out = Value::Null;
    for r in recs {
        match r.record.event {
            LedgerEvent::Decision(d) => args = d.arguments,
            LedgerEvent::Outcome(o) => out = o.output,
            _ => {}
        }
    }
    (args, out)
}

async fn verified(l: &Store) -> u64 {
    let report = l.ledger().verify(Box::new(|_| {})).await.unwrap();
    assert!(report.first_break.is_none(), "{:?}", report.first_break);
    report.verified
}

#[tokio::test]
async fn payloads_are_sealed_at_rest_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let l = open(&path, MASTER).await;
    call(&l, &today(), "d1", "get_account", "ACC-0001", "pineapple").await;
    let (args, out) = payloads(&l, "d1").await;
    assert_eq!(args, json!({"account_id": "ACC-0001", "note": "pineapple"}));
    assert_eq!(out, json!({"text": "pineapple output"}));
    let tail = l.ledger().tail(5).await.unwrap();
    let LedgerEvent::Decision(d) = &tail[0].record.event else {
        panic!("first record is the decision")
    };
    assert_eq!(d.user_request.as_deref(), Some("please look at my account"));
    l.close().await;
    let bytes = file_bytes(&path);
    for planted in ["pineapple", "ACC-0001", "look at my account"] {
        assert!(
            !contains(&bytes, planted),
            "`{planted}` is in the SQLite file in the clear"
        );
    }
    // Another master key cannot open the ledger for writing or reading payloads.
    let wrong = Store::open_sqlite(
        &path,
        StoreOptions {
            vault: Some(VaultOptions {
                master: [12; 32],
                plan: plan(),
            }),
            ..Default::default()
        },
    )
    .await;
    assert!(wrong.unwrap_err().to_string().contains("master key"));
    // Without the vault, records read back with their payloads still sealed.
    let plain = Store::open_sqlite(&path, StoreOptions::default())
        .await
        .unwrap();
    let (args, _) = payloads(&plain, "d1").await;
    assert!(args.as_str().unwrap().starts_with("wdn1:p-"), "{args}");
    plain.close().await;
}

#[tokio::test]
async fn retention_purges_old_payloads_and_the_chain_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(&dir.path().join("l.db"), MASTER).await;
    // 2026-01-10: a ticket read (support_tickets: 30 days) and an account read (card: 365).
    call(&l, OLD_DAY, "old-ticket", "get_ticket", "ACC-0002", "kiwi").await;
    call(
        &l,
        OLD_DAY,
        "old-account",
        "get_account",
        "ACC-0002",
        "mango",
    )
    .await;
    call(&l, &today(), "new-ticket", "get_ticket", "ACC-0002", "plum").await;
    let checkpoint_head = l.ledger().verify(Box::new(|_| {})).await.unwrap().head;
    let before = verified(&l).await;

    // As of 31 days after the old day, only the ticket key is due.
    let as_of = day_start_ms(OLD_DAY).unwrap() + 32 * 86_400_000;
    let dry = l
        .lifecycle()
        .retention_run(
            as_of,
            "as-of",
            "test",
            format!("{}T10:00:00.000Z", today()),
            true,
        )
        .await
        .unwrap();
    assert_eq!(dry.keys.len(), 1);
    assert_eq!(dry.records, 2, "the ticket decision and its outcome");
    assert_eq!(
        payloads(&l, "old-ticket").await.0["note"],
        "kiwi",
        "a dry run destroys nothing"
    );

    let run = l
        .lifecycle()
        .retention_run(
            as_of,
            "as-of",
            "test",
            format!("{}T10:00:00.000Z", today()),
            false,
        )
        .await
        .unwrap();
    assert_eq!(run.keys.len(), 1);
    assert_eq!(run.keys[0].classes, vec!["support_tickets"]);
    assert_eq!(run.keys[0].retention_days, 30);
    assert_eq!(run.records, 2);
    let (args, out) = payloads(&l, "old-ticket").await;
    assert_eq!(args, json!("[purged: past retention]"));
    assert_eq!(out, json!("[purged: past retention]"));
    assert_eq!(payloads(&l, "old-account").await.0["note"], "mango");
    assert_eq!(payloads(&l, "new-ticket").await.0["note"], "plum");

    // Nothing was rewritten: the old head is still a prefix, and the whole chain verifies.
    assert_eq!(
        verified(&l).await,
        before + 1,
        "only the purge record was added"
    );
    let recs = l.ledger().tail(1).await.unwrap();
    assert_eq!(recs[0].record.event.kind(), "retention_purged");
    assert_eq!(recs[0].record.prev_hash, checkpoint_head);

    // Nothing more is due at the same time; a year later the account key is.
    let again = l
        .lifecycle()
        .retention_run(
            as_of,
            "as-of",
            "test",
            format!("{}T10:00:01.000Z", today()),
            false,
        )
        .await
        .unwrap();
    assert!(again.keys.is_empty() && again.recorded_seq.is_none());
    let later = day_start_ms(OLD_DAY).unwrap() + 367 * 86_400_000;
    let run = l
        .lifecycle()
        .retention_run(
            later,
            "later",
            "test",
            format!("{}T10:00:02.000Z", today()),
            false,
        )
        .await
        .unwrap();
    assert!(run.keys.iter().any(|k| k.retention_days == 365));
    assert_eq!(
        payloads(&l, "old-account").await.0,
        json!("[purged: past retention]")
    );
    verified(&l).await;
}

#[tokio::test]
async fn erasure_destroys_one_subject_and_leaves_the_chain_verifiable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let l = open(&path, MASTER).await;
    let day = today();
    call(&l, &day, "a1", "get_account", "ACC-0007", "banana").await;
    call(&l, &day, "a2", "get_account", "acc-0007 ", "cherry").await;
    call(&l, &day, "b1", "get_account", "ACC-0008", "grape").await;
    let (sref, held) = l.lifecycle().subject_records("ACC-0007").await.unwrap();
    assert_eq!(held.len(), 4, "two decisions and two outcomes");
    assert!(held.iter().any(|r| matches!(&r.record.event,
        LedgerEvent::Outcome(o) if o.output == json!({"text": "cherry output"}))));
    let wrapped: Vec<u8> = {
        use sqlx::Connection as _;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query_scalar("SELECT wrapped FROM vault_keys WHERE subject_ref = ?")
            .bind(&sref)
            .fetch_one(&mut c)
            .await
            .unwrap()
    };

    let report = l
        .lifecycle()
        .erase_subject(
            "ACC-0007",
            "test",
            "DSAR-42",
            format!("{day}T10:00:00.000Z"),
        )
        .await
        .unwrap();
    assert_eq!(report.subject_ref, sref);
    assert_eq!(report.keys.len(), 1);
    assert_eq!(report.records, 4);
    for id in ["a1", "a2"] {
        let (args, out) = payloads(&l, id).await;
        assert_eq!(args, json!("[erased: data subject]"), "{id}");
        assert_eq!(out, json!("[erased: data subject]"), "{id}");
    }
    assert_eq!(
        payloads(&l, "b1").await.0["note"],
        "grape",
        "other subjects untouched"
    );
    verified(&l).await;
    let (_, held) = l.lifecycle().subject_records("ACC-0007").await.unwrap();
    assert_eq!(held.last().unwrap().record.event.kind(), "subject_erased");

    // The subject comes back: a new key, readable, and erased again by a second request.
    call(&l, &day, "a3", "get_account", "ACC-0007", "durian").await;
    assert_eq!(payloads(&l, "a3").await.0["note"], "durian");
    let again = l
        .lifecycle()
        .erase_subject(
            "ACC-0007",
            "test",
            "DSAR-43",
            format!("{day}T10:00:01.000Z"),
        )
        .await
        .unwrap();
    assert_eq!(again.keys.len(), 1);
    assert_ne!(again.keys, report.keys);
    assert_eq!(payloads(&l, "a3").await.1, json!("[erased: data subject]"));
    verified(&l).await;
    l.close().await;

    // The destroyed key's wrapped bytes are gone from the file and its WAL (secure delete).
    let bytes = file_bytes(&path);
    assert!(!bytes
        .windows(wrapped.len())
        .any(|w| w == wrapped.as_slice()));
    // Reopened, the erasure holds.
    let l = open(&path, MASTER).await;
    assert_eq!(payloads(&l, "a1").await.0, json!("[erased: data subject]"));
    l.close().await;
}

#[tokio::test]
async fn master_key_rotation_rewraps_keys_without_touching_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let l = open(&path, MASTER).await;
    call(&l, &today(), "r1", "get_account", "ACC-0009", "lemon").await;
    let head = l.ledger().verify(Box::new(|_| {})).await.unwrap().head;
    let n = l
        .lifecycle()
        .rewrap_vault_keys(&MASTER, &[13; 32])
        .await
        .unwrap();
    assert!(n >= 3, "index, period and subject keys: {n}");
    l.close().await;
    let l = open(&path, [13; 32]).await;
    assert_eq!(payloads(&l, "r1").await.0["note"], "lemon");
    assert_eq!(
        l.ledger().verify(Box::new(|_| {})).await.unwrap().head,
        head,
        "no record changed"
    );
    l.close().await;
    // The old master key opens nothing any more.
    assert!(
        Store::open_sqlite(
            &path,
            StoreOptions {
                vault: Some(VaultOptions {
                    master: MASTER,
                    plan: plan(),
                }),
                ..Default::default()
            },
        )
        .await
        .is_err(),
        "the subject index key does not open with the old master key"
    );
}

#[tokio::test]
async fn a_retention_run_that_could_not_record_is_recorded_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(&dir.path().join("l.db"), MASTER).await;
    call(&l, OLD_DAY, "x1", "get_ticket", "ACC-0003", "fig").await;
    // Simulate a run that destroyed the key and stopped before writing its record.
    {
        use sqlx::Connection as _;
        let mut c =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}", l.path().unwrap().display()))
                .await
                .unwrap();
        sqlx::query("UPDATE vault_keys SET wrapped = NULL, destroyed_by = 'retention', destroyed_ms = 1 WHERE kind = 'period'")
            .execute(&mut c)
            .await
            .unwrap();
    }
    let run = l
        .lifecycle()
        .retention_run(
            now_ms(),
            "now",
            "test",
            format!("{}T10:00:00.000Z", today()),
            false,
        )
        .await
        .unwrap();
    assert_eq!(run.keys.len(), 1, "the unrecorded destruction is recorded");
    assert_eq!(run.records, 2);
    assert!(run.recorded_seq.is_some());
    verified(&l).await;
}

#[tokio::test]
async fn approval_requests_are_sealed_with_their_decision_and_erased_with_its_subject() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let l = open(&path, MASTER).await;
    let day = today();
    call(&l, &day, "held-1", "issue_refund", "ACC-0555", "papaya").await;
    let now = now_ms() / 1000;
    let row = warden_store::ApprovalRow {
        id: "held-1".into(),
        agent: "crm".into(),
        on_behalf_of: None,
        tool: "issue_refund".into(),
        qualified_tool: "crm/issue_refund".into(),
        upstream: "crm".into(),
        arguments: json!({"account_id": "ACC-0555", "note": "papaya", "amount": 40}),
        arguments_hash: "00".repeat(32),
        reasons: vec!["refunds wait for a person (papaya)".into()],
        policies: vec!["card/crm/crm/issue_refund".into()],
        tier: "approve".into(),
        required: 1,
        session: None,
        correlation_id: None,
        source: "test".into(),
        before_state: Some(json!({"balance": "papaya-balance"})),
        before_state_source: Some("snapshot".into()),
        before_state_error: None,
        ledger_seq: 1,
        state: "pending".into(),
        created_at: now,
        expires_at: now + 3600,
        decided_at: None,
        deny_reason: None,
        used_at: None,
        used_by: None,
    };
    l.approvals().insert_approval(&row).await.unwrap();
    let back = l.approvals().approval("held-1").await.unwrap().unwrap();
    assert_eq!(back, row, "read back exactly as proposed");
    l.ledger().flush().await.unwrap();
    let bytes = file_bytes(&path);
    assert!(
        !contains(&bytes, "papaya"),
        "the approval's payloads are sealed at rest"
    );

    l.lifecycle()
        .erase_subject("ACC-0555", "test", "DSAR-7", format!("{day}T11:00:00.000Z"))
        .await
        .unwrap();
    let gone = l.approvals().approval("held-1").await.unwrap().unwrap();
    assert_eq!(gone.arguments, json!("[erased: data subject]"));
    assert_eq!(gone.reasons, vec!["[erased: data subject]"]);
    assert_eq!(gone.before_state, Some(json!("[erased: data subject]")));
    assert_eq!(
        gone.arguments_hash, row.arguments_hash,
        "the binding hash stays"
    );
    l.close().await;
}
