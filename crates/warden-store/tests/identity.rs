//! Identity tables and a second writer on the same ledger file, against real SQLite.

// Test code: a panic is a failed assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::json;
use warden_core::ledger::{IdentityEvent, LedgerEvent};
use warden_store::{Store, StoreOptions, TokenRow, UserRow};

fn event(n: u64) -> LedgerEvent {
    LedgerEvent::Identity(IdentityEvent {
        action: "token_issued".into(),
        actor: "test".into(),
        subject: format!("agent-{n}"),
        severity: "info".into(),
        break_glass: false,
        details: json!({"n": n}),
    })
}

/// Regression: a record appended by another process (the CLI issuing a token while the
/// gateway serves) made the gateway's next append fail, denying that call.
#[tokio::test]
async fn an_append_after_another_process_appended_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let gateway = Store::open_sqlite(&path, StoreOptions::default())
        .await
        .unwrap();
    gateway
        .ledger()
        .append("2026-11-26T00:00:00.000Z".into(), event(1))
        .await
        .unwrap();
    let cli = Store::open_sqlite(&path, StoreOptions::default())
        .await
        .unwrap();
    let c = cli
        .ledger()
        .append("2026-11-26T00:00:01.000Z".into(), event(2))
        .await
        .unwrap();
    assert_eq!(c.seq, 2);
    cli.close().await;
    let g = gateway
        .ledger()
        .append("2026-11-26T00:00:02.000Z".into(), event(3))
        .await
        .unwrap();
    assert_eq!(g.seq, 3);
    let report = gateway.ledger().verify(Box::new(|_| {})).await.unwrap();
    assert_eq!(report.verified, 3);
    assert!(report.first_break.is_none());
}

#[tokio::test]
async fn tokens_revocation_and_totp_steps() {
    let dir = tempfile::tempdir().unwrap();
    let l = Store::open_sqlite(&dir.path().join("w.db"), StoreOptions::default())
        .await
        .unwrap();
    let row = TokenRow {
        id: "00112233aabbccdd".into(),
        hash: vec![7; 32],
        agent: "a".into(),
        environment: "prod".into(),
        tools: Some(vec!["s/t".into()]),
        issued_at: 100,
        expires_at: 200,
        revoked_at: None,
        issued_by: "test".into(),
    };
    l.identities().insert_token(&row).await.unwrap();
    assert_eq!(
        l.identities().token(&row.id).await.unwrap(),
        Some(row.clone())
    );
    assert_eq!(l.identities().tokens(150, false).await.unwrap().len(), 1);
    assert_eq!(
        l.identities().tokens(200, false).await.unwrap().len(),
        0,
        "expired tokens are not active"
    );
    assert!(l.identities().revoke_token(&row.id, 160).await.unwrap());
    assert!(
        !l.identities().revoke_token(&row.id, 161).await.unwrap(),
        "revoking twice is a no-op"
    );
    assert_eq!(
        l.identities()
            .token(&row.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(160)
    );

    l.identities()
        .insert_user(&UserRow {
            name: "alice".into(),
            role: "approver".into(),
            password_hash: "$argon2id$...".into(),
            mfa: true,
            disabled: false,
            failed_logins: 0,
            locked_until: 0,
            last_totp_step: None,
            created_at: 1,
        })
        .await
        .unwrap();
    assert!(l.identities().use_totp_step("alice", 10).await.unwrap());
    assert!(
        !l.identities().use_totp_step("alice", 10).await.unwrap(),
        "a step is spent once"
    );
    assert!(
        !l.identities().use_totp_step("alice", 9).await.unwrap(),
        "an older step is refused"
    );
    assert!(l.identities().use_totp_step("alice", 11).await.unwrap());
    assert!(l.identities().disable_user("alice", 5).await.unwrap());
    assert!(
        l.identities()
            .user("alice")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
}
