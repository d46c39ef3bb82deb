//! The SQLite ledger against a real database file.

// Test code: a panic is a failed assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::json;
use sqlx::{Connection, SqliteConnection};
use warden_core::ledger::{LedgerEvent, OutcomeEvent};
use warden_store::{Durability, Store, StoreOptions};

fn event(n: u64) -> LedgerEvent {
    LedgerEvent::Outcome(OutcomeEvent {
        decision_id: format!("d-{n}"),
        agent: if n.is_multiple_of(2) {
            "crm-writer".into()
        } else {
            "support-triage".into()
        },
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

async fn filled(n: u64, durability: Durability) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(
        &dir.path().join("l.db"),
        StoreOptions {
            durability,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for i in 0..n {
        let l = store.clone();
        tasks.push(tokio::spawn(async move {
            l.ledger().append(ts(i), event(i)).await.unwrap()
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().seq);
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=n).collect::<Vec<_>>(),
        "every append gets its own sequence number"
    );
    (dir, store)
}

async fn raw(store: &Store) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}", store.path().unwrap().display()))
        .await
        .unwrap()
}

async fn first_break(store: &Store) -> Option<u64> {
    store
        .ledger()
        .verify(Box::new(|_| {}))
        .await
        .unwrap()
        .first_break
        .map(|b| b.seq)
}

#[tokio::test]
async fn concurrent_appends_form_one_verifiable_chain() {
    let (_d, store) = filled(500, Durability::Process).await;
    let report = store.ledger().verify(Box::new(|_| {})).await.unwrap();
    assert!(report.first_break.is_none(), "{:?}", report.first_break);
    assert_eq!(report.verified, 500);
    assert_eq!(store.ledger().count().await.unwrap(), 500);
}

#[tokio::test]
async fn fsync_mode_appends_verify_too() {
    let (_d, store) = filled(50, Durability::Fsync).await;
    assert_eq!(first_break(&store).await, None);
}

#[tokio::test]
async fn reopening_continues_the_chain() {
    let (dir, store) = filled(10, Durability::Process).await;
    let path = store.path().unwrap().to_path_buf();
    store.close().await;
    let again = Store::open_sqlite(&path, StoreOptions::default())
        .await
        .unwrap();
    let a = again.ledger().append(ts(11), event(11)).await.unwrap();
    assert_eq!(a.seq, 11);
    assert_eq!(first_break(&again).await, None);
    drop(dir);
}

#[tokio::test]
async fn two_writers_on_one_file_extend_one_chain() {
    // `warden serve` and a `warden mcp stdio` beside it each open the same ledger: neither
    // may fork the chain or refuse a call because the other wrote in between.
    let (dir, first) = filled(5, Durability::Process).await;
    let second = Store::open_sqlite(first.path().unwrap(), StoreOptions::default())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let l = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            l.ledger().append(ts(i), event(i)).await
        }));
    }
    for t in tasks {
        t.await
            .unwrap()
            .expect("no append refused for the other writer's records");
    }
    assert_eq!(first.ledger().count().await.unwrap(), 205);
    assert_eq!(first_break(&first).await, None);
    drop(dir);
}

#[tokio::test]
async fn editing_any_column_of_a_row_is_detected_at_that_row() {
    for (column, sql) in [
        ("record", "UPDATE ledger SET record = replace(record, '\"ok\"', '\"OK\"') WHERE seq = 7"),
        ("record whitespace", "UPDATE ledger SET record = record || ' ' WHERE seq = 7"),
        ("hash", "UPDATE ledger SET hash = substr(hash, 1, 63) || CASE substr(hash, 64) WHEN '0' THEN '1' ELSE '0' END WHERE seq = 7"),
        ("seq", "UPDATE ledger SET seq = 1007 WHERE seq = 7"),
    ] {
        let (_d, store) = filled(20, Durability::Process).await;
        let mut c = raw(&store).await;
        let changed = sqlx::query(sql).execute(&mut c).await.unwrap().rows_affected();
        assert_eq!(changed, 1, "{column}");
        assert_eq!(first_break(&store).await, Some(7), "edit of {column}");
    }
}

#[tokio::test]
async fn deleting_a_row_in_the_middle_is_detected() {
    let (_d, store) = filled(20, Durability::Process).await;
    let mut c = raw(&store).await;
    sqlx::query("DELETE FROM ledger WHERE seq = 12")
        .execute(&mut c)
        .await
        .unwrap();
    let report = store.ledger().verify(Box::new(|_| {})).await.unwrap();
    let b = report.first_break.expect("must break");
    assert_eq!(b.seq, 12);
    assert_eq!(report.verified, 11);
    assert!(b.reason.contains("missing"), "{}", b.reason);
}

#[tokio::test]
async fn search_filters_by_agent_tool_and_time() {
    let (_d, store) = filled(30, Durability::Process).await;
    let f = warden_store::SearchFilter {
        agent: Some("crm-writer".into()),
        tool: Some("get_ticket".into()),
        since: Some(ts(20)),
        limit: 100,
        ..Default::default()
    };
    let found = store.ledger().search(&f).await.unwrap();
    assert_eq!(found.len(), 5, "even n in 20..30");
    assert!(found.windows(2).all(|w| w[0].seq < w[1].seq));
    let tail = store.ledger().tail(3).await.unwrap();
    assert_eq!(
        tail.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![28, 29, 30]
    );
}

#[tokio::test]
async fn a_failed_write_is_reported_not_acknowledged() {
    let (_d, store) = filled(3, Durability::Process).await;
    let mut c = raw(&store).await;
    sqlx::query("DROP TABLE ledger")
        .execute(&mut c)
        .await
        .unwrap();
    let err = store.ledger().append(ts(4), event(4)).await;
    assert!(
        err.is_err(),
        "an append that could not be written must fail"
    );
    assert!(!store.ledger().is_healthy());
}

#[tokio::test]
async fn verification_spans_pages_and_finds_breaks_in_later_pages() {
    // Verification reads 4,096 rows a page; cover several pages and a break past the first.
    let (_d, store) = filled(9_000, Durability::Process).await;
    let report = store.ledger().verify(Box::new(|_| {})).await.unwrap();
    assert!(report.first_break.is_none(), "{:?}", report.first_break);
    assert_eq!(report.verified, 9_000);
    let mut c = raw(&store).await;
    sqlx::query("UPDATE ledger SET hash = 'x,y' WHERE seq = 4097")
        .execute(&mut c)
        .await
        .unwrap();
    assert_eq!(first_break(&store).await, Some(4097));
    sqlx::query("DELETE FROM ledger WHERE seq = 4097")
        .execute(&mut c)
        .await
        .unwrap();
    assert_eq!(first_break(&store).await, Some(4097));
}

#[tokio::test]
async fn the_decision_lookup_table_cannot_redirect_a_lookup() {
    // `decision_records` is not covered by the chain; a forged row must not make another
    // decision's record come back for an id.
    let (_d, store) = filled(5, Durability::Process).await;
    let mut c = raw(&store).await;
    sqlx::query("INSERT INTO decision_records (decision_id, seq) VALUES ('d-1', 4)")
        .execute(&mut c)
        .await
        .unwrap();
    let found = store.ledger().records_of_decision("d-1").await.unwrap();
    assert_eq!(found.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![2]);
}

#[tokio::test]
async fn a_store_refuses_records_about_agents_kept_in_another_region() {
    let dir = tempfile::tempdir().unwrap();
    let residency = warden_store::Residency {
        region: Some("eu".into()),
        elsewhere: [("crm-writer".to_string(), None)].into_iter().collect(),
    };
    let store = Store::open_sqlite(
        &dir.path().join("eu").join("l.db"),
        StoreOptions {
            residency: Some(residency),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // event(0) is about crm-writer (the home store's), event(1) about support-triage.
    let refused = store.ledger().append(ts(0), event(0)).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("`crm-writer` keeps its records in the home store"),
        "{refused}"
    );
    assert!(store.ledger().enqueue(ts(0), event(0)).await.is_err());
    assert_eq!(store.ledger().append(ts(1), event(1)).await.unwrap().seq, 1);
    store.ledger().flush().await.unwrap();
    assert_eq!(
        store.ledger().count().await.unwrap(),
        1,
        "nothing about crm-writer landed"
    );
    assert_eq!(first_break(&store).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wal_growth_under_steady_load_with_readers_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let store = Store::open_sqlite(
        &path,
        StoreOptions {
            durability: Durability::Fsync,
            wal_cap_bytes: 1024 * 1024,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // Readers that always have a read open, as the decision path and the UI have under load.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (s, stop) = (store.clone(), std::sync::Arc::clone(&stop));
        readers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = s.ledger().tail(50).await.unwrap();
            }
        }));
    }
    let wal = path.with_extension("db-wal");
    let mut largest = 0u64;
    let big = "x".repeat(4000);
    for batch in 0..60u64 {
        let mut tasks = Vec::new();
        for i in 0..200u64 {
            let (l, n, big) = (store.clone(), batch * 200 + i, big.clone());
            tasks.push(tokio::spawn(async move {
                let mut e = event(n);
                if let LedgerEvent::Outcome(o) = &mut e {
                    o.output = json!({"n": n, "text": big});
                }
                l.ledger().append(ts(n), e).await.unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    // 12,000 records of ~4 KB (~50 MB) went through the WAL; it was reset along the way.
    assert!(
        largest < 24 * 1024 * 1024,
        "the WAL grew to {} MiB",
        largest / (1024 * 1024)
    );
}
