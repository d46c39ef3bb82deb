//! Signed checkpoints against real SQLite files: made every N records or T seconds, resumed
//! after a restart, and tamper tests — a changed byte, a deleted row, two swapped rows, and
//! a truncated tail with every hash after it recomputed (caught only by an older checkpoint).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::{Connection, SqliteConnection};
use warden_core::ledger::{seal, LedgerEvent, LedgerRecord, OutcomeEvent};
use warden_store::{CheckpointOptions, Store, StoreOptions, StoredCheckpoint};
use warden_verify::merkle::{
    consistency_proof, inclusion_proof, root, verify_consistency, verify_inclusion,
};
use warden_verify::{Checkpoint, NoteSigner, NoteVerifier};

fn event(n: u64) -> LedgerEvent {
    LedgerEvent::Outcome(OutcomeEvent {
        decision_id: format!("d-{n}"),
        agent: "crm-writer".into(),
        tool: "get_ticket".into(),
        correlation_id: Some(format!("T-{n}")),
        status: "success".into(),
        output: json!({"n": n, "text": "ok"}),
        output_bytes: 20,
        output_truncated: false,
        duration_ms: Some(n),
    })
}

fn ts(n: u64) -> String {
    format!("2026-11-25T10:{:02}:{:02}.000Z", (n / 60) % 60, n % 60)
}

fn signer() -> Arc<NoteSigner> {
    Arc::new(NoteSigner::from_seed("test.example/ledger", &[3u8; 32]).unwrap())
}

fn opts(every_records: u64, every: Duration) -> StoreOptions {
    StoreOptions {
        checkpoints: Some(CheckpointOptions {
            signer: signer(),
            every_records,
            every,
            publish: None,
        }),
        ..Default::default()
    }
}

/// A ledger whose checkpoints come only when asked for.
async fn open(path: &std::path::Path) -> Store {
    Store::open_sqlite(path, opts(1_000_000, Duration::from_secs(3600)))
        .await
        .unwrap()
}

async fn append(store: &Store, from: u64, to: u64) {
    for i in from..=to {
        assert_eq!(store.ledger().append(ts(i), event(i)).await.unwrap().seq, i);
    }
}

fn key() -> NoteVerifier {
    signer().verifier()
}

async fn raw(store: &Store) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}", store.path().unwrap().display()))
        .await
        .unwrap()
}

/// What `warden audit verify --checkpoint` decides: the chain verifies and the stored log
/// extends the older checkpoint.
async fn extends(store: &Store, older: &StoredCheckpoint) -> Result<(), String> {
    let report = store.ledger().verify(Box::new(|_| {})).await.unwrap();
    if let Some(b) = report.first_break {
        return Err(format!("chain: {b}"));
    }
    let old = Checkpoint::open(&older.note, &key()).map_err(|e| e.to_string())?;
    let n = report.verified;
    if old.size > n {
        return Err(format!("truncated: checkpoint {} > log {n}", old.size));
    }
    let leaves = store.ledger().leaf_hashes(n).await.unwrap();
    let proof = consistency_proof(&leaves, old.size).unwrap();
    verify_consistency(old.size, n, &old.root, &root(&leaves), &proof)
        .map_err(|e| format!("consistency: {e}"))
}

#[tokio::test]
async fn checkpoints_are_signed_notes_over_the_merkle_root_and_proofs_verify() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("l.db")).await;
    append(&store, 1, 100).await;
    let cp1 = store.ledger().checkpoint_now().await.unwrap().unwrap();
    assert_eq!(cp1.size, 100);
    assert!(
        cp1.note.starts_with("test.example/ledger\n100\n"),
        "{}",
        cp1.note
    );
    let opened = Checkpoint::open(&cp1.note, &key()).unwrap();
    let leaves = store.ledger().leaf_hashes(100).await.unwrap();
    assert_eq!(opened.root, root(&leaves));
    // Nothing new: the same checkpoint comes back.
    assert_eq!(store.ledger().checkpoint_now().await.unwrap().unwrap(), cp1);
    append(&store, 101, 157).await;
    let cp2 = store.ledger().checkpoint_now().await.unwrap().unwrap();
    assert_eq!(cp2.size, 157);
    assert_eq!(
        store.ledger().latest_checkpoint().await.unwrap().unwrap(),
        cp2
    );
    let all = store.ledger().leaf_hashes(157).await.unwrap();
    assert_eq!(cp2.root, root(&all));
    for seq in [1u64, 2, 64, 100, 128, 157] {
        let p = inclusion_proof(&all, seq - 1).unwrap();
        verify_inclusion(seq - 1, 157, &all[(seq - 1) as usize], &p, &cp2.root).unwrap();
    }
    extends(&store, &cp1).await.unwrap();
}

#[tokio::test]
async fn a_checkpoint_comes_every_n_records_and_every_t_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(
        &dir.path().join("l.db"),
        opts(50, Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    append(&store, 1, 120).await;
    let mut size = 0;
    for _ in 0..200 {
        size = store
            .ledger()
            .latest_checkpoint()
            .await
            .unwrap()
            .map_or(0, |c| c.size);
        if size >= 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        size >= 100,
        "a checkpoint after 50 new records, twice; got {size}"
    );
    store.close().await;

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(
        &dir.path().join("l.db"),
        opts(1_000_000, Duration::from_millis(100)),
    )
    .await
    .unwrap();
    append(&store, 1, 3).await;
    let mut size = 0;
    for _ in 0..200 {
        size = store
            .ledger()
            .latest_checkpoint()
            .await
            .unwrap()
            .map_or(0, |c| c.size);
        if size == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        size, 3,
        "the timer checkpoints records below the count threshold"
    );
}

#[tokio::test]
async fn close_checkpoints_and_a_restart_extends_the_stored_right_edge() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let store = open(&path).await;
    append(&store, 1, 77).await;
    store.close().await;
    let again = open(&path).await;
    let at_close = again.ledger().latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(at_close.size, 77, "clean shutdown writes a checkpoint");
    append(&again, 78, 200).await;
    let cp = again.ledger().checkpoint_now().await.unwrap().unwrap();
    assert_eq!(
        cp.root,
        root(&again.ledger().leaf_hashes(200).await.unwrap())
    );
    extends(&again, &at_close).await.unwrap();
}

async fn exec(c: &mut SqliteConnection, sql: &str) {
    sqlx::query(sql).execute(&mut *c).await.unwrap();
}

#[tokio::test]
async fn changing_one_byte_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("l.db")).await;
    append(&store, 1, 30).await;
    let cp = store.ledger().checkpoint_now().await.unwrap().unwrap();
    let mut c = raw(&store).await;
    exec(
        &mut c,
        "UPDATE ledger SET record = replace(record, '\"T-12\"', '\"T-13\"') WHERE seq = 12",
    )
    .await;
    let b = store
        .ledger()
        .verify(Box::new(|_| {}))
        .await
        .unwrap()
        .first_break
        .unwrap();
    assert_eq!(b.seq, 12);
    assert!(extends(&store, &cp).await.is_err());
}

#[tokio::test]
async fn deleting_a_row_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("l.db")).await;
    append(&store, 1, 30).await;
    let mut c = raw(&store).await;
    exec(&mut c, "DELETE FROM ledger WHERE seq = 20").await;
    let b = store
        .ledger()
        .verify(Box::new(|_| {}))
        .await
        .unwrap()
        .first_break
        .unwrap();
    assert_eq!(b.seq, 20);
}

#[tokio::test]
async fn swapping_two_rows_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("l.db")).await;
    append(&store, 1, 30).await;
    let mut c = raw(&store).await;
    // Swap the contents (record and hash) of rows 8 and 9, keeping the seq column in order.
    exec(&mut c, "UPDATE ledger SET seq = -8 WHERE seq = 8").await;
    exec(&mut c, "UPDATE ledger SET seq = 8 WHERE seq = 9").await;
    exec(&mut c, "UPDATE ledger SET seq = 9 WHERE seq = -8").await;
    let b = store
        .ledger()
        .verify(Box::new(|_| {}))
        .await
        .unwrap()
        .first_break
        .unwrap();
    assert_eq!(b.seq, 8);
}

/// Rewrite records from `from` on so every hash and link is valid again: the chain alone
/// cannot tell.
async fn rewrite_from(c: &mut SqliteConnection, from: u64, mutate: impl Fn(&mut LedgerRecord)) {
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, record FROM ledger WHERE seq >= ? ORDER BY seq")
            .bind(from as i64)
            .fetch_all(&mut *c)
            .await
            .unwrap();
    let mut prev: String = sqlx::query_scalar("SELECT hash FROM ledger WHERE seq = ?")
        .bind(from as i64 - 1)
        .fetch_one(&mut *c)
        .await
        .unwrap();
    for (seq, text) in rows {
        let mut rec: LedgerRecord = serde_json::from_str(&text).unwrap();
        mutate(&mut rec);
        rec.prev_hash = prev.clone();
        let (json, hash) = seal(&rec).unwrap();
        sqlx::query("UPDATE ledger SET record = ?, hash = ? WHERE seq = ?")
            .bind(&json)
            .bind(&hash)
            .bind(seq)
            .execute(&mut *c)
            .await
            .unwrap();
        prev = hash;
    }
}

#[tokio::test]
async fn truncating_the_tail_and_recomputing_every_hash_is_caught_by_an_older_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("l.db")).await;
    append(&store, 1, 60).await;
    let older = store.ledger().checkpoint_now().await.unwrap().unwrap();
    append(&store, 61, 80).await;
    extends(&store, &older).await.unwrap();
    let mut c = raw(&store).await;
    // Truncate: drop records 50.. — the remaining prefix is a perfectly valid chain.
    exec(&mut c, "DELETE FROM ledger WHERE seq >= 50").await;
    let report = store.ledger().verify(Box::new(|_| {})).await.unwrap();
    assert!(
        report.first_break.is_none(),
        "the chain alone cannot see a truncation"
    );
    let err = extends(&store, &older).await.unwrap_err();
    assert!(err.contains("truncated"), "{err}");
}

#[tokio::test]
async fn rewriting_a_record_and_recomputing_every_hash_after_it_is_caught_by_an_older_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("l.db")).await;
    append(&store, 1, 60).await;
    let older = store.ledger().checkpoint_now().await.unwrap().unwrap();
    append(&store, 61, 90).await;
    let mut c = raw(&store).await;
    // Rewrite record 40 (a different outcome), drop 85.., and fix every hash and link after.
    exec(&mut c, "DELETE FROM ledger WHERE seq >= 85").await;
    rewrite_from(&mut c, 40, |r| {
        if r.seq == 40 {
            if let LedgerEvent::Outcome(o) = &mut r.event {
                o.status = "error".into();
            }
        }
    })
    .await;
    let report = store.ledger().verify(Box::new(|_| {})).await.unwrap();
    assert!(
        report.first_break.is_none(),
        "every hash was recomputed: {:?}",
        report.first_break
    );
    let err = extends(&store, &older).await.unwrap_err();
    assert!(err.contains("consistency"), "{err}");
    // The stored checkpoint table can be rewritten too, but the older note was signed and
    // kept elsewhere: a forged note without the key does not open.
    let forged = older.note.replacen("\n60\n", "\n84\n", 1);
    assert!(Checkpoint::open(&forged, &key()).is_err());
}
