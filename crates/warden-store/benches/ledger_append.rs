//! Durable ledger appends (group commit) and verification, each beside a baseline measured in
//! the same run on the same machine.
//!
//! - appends: `LedgerLog::append` from N concurrent writers, in `process` and `fsync` durability,
//!   against the baseline of one record per SQLite transaction (same pragmas, same records);
//! - verify: `LedgerLog::verify` over the ledger written, against a bare in-memory SHA-256 chain
//!   over the same record bytes.
//!
//! - criterion, last: time per durable append when 256 appends are in flight together
//!   (group commit) beside 256 appends one after another, `process` durability.
//!
//! Run: `cargo bench -p warden-store --bench ledger_append`
//! (`WARDEN_BENCH_RECORDS=N` sets the records per configuration; default 20,000.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Instant;

use serde_json::json;
use sha2::{Digest, Sha256};
use warden_core::ledger::{seal, LedgerEvent, LedgerRecord, OutcomeEvent, GENESIS_HASH};
use warden_store::{CheckpointOptions, Durability, Store, StoreOptions};

fn event(i: u64) -> LedgerEvent {
    // About the size of a real decision record (~600 bytes of canonical JSON).
    LedgerEvent::Outcome(OutcomeEvent {
        decision_id: format!("0193c1d2-7448-7522-bb17-{i:012}"),
        agent: "crm-writer".into(),
        tool: "update_account".into(),
        correlation_id: Some(format!("CRM-{i}")),
        status: "success".into(),
        output: json!({"account_id": "ACC-0002", "field": "phone", "before": "+1 555 0000", "after": "+1 555 0100",
            "note": "x".repeat(300)}),
        output_bytes: 420,
        output_truncated: false,
        duration_ms: Some(3),
    })
}

const TS: &str = "2026-11-25T10:00:00.000Z";

async fn group_commit(
    dir: &std::path::Path,
    durability: Durability,
    writers: usize,
    n: u64,
) -> (f64, Store) {
    group_commit_with(dir, durability, writers, n, None).await
}

async fn group_commit_with(
    dir: &std::path::Path,
    durability: Durability,
    writers: usize,
    n: u64,
    checkpoints: Option<CheckpointOptions>,
) -> (f64, Store) {
    let signed = checkpoints.is_some();
    let path = dir.join(format!("gc-{durability:?}-{writers}-{n}-{signed}.db"));
    let store = Store::open_sqlite(
        &path,
        StoreOptions {
            durability,
            checkpoints,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let per = n / writers as u64;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let l = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                l.ledger()
                    .append(TS.to_string(), event(w as u64 * per + i))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rate = (per * writers as u64) as f64 / start.elapsed().as_secs_f64();
    (rate, store)
}

/// The baseline: one record per transaction on a synchronous SQLite handle (the same driver
/// and pragmas the ledger's writer uses), no batching.
async fn one_per_commit(dir: &std::path::Path, durability: Durability, n: u64) -> f64 {
    let path = dir.join(format!("raw-{durability:?}.db"));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let synchronous = match durability {
        Durability::Process => "NORMAL",
        Durability::Fsync => "FULL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA wal_autocheckpoint = 0; \
         PRAGMA journal_size_limit = 268435456; PRAGMA temp_store = MEMORY; \
         CREATE TABLE ledger (seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, record TEXT NOT NULL) STRICT; \
         CREATE TABLE decision_records (decision_id TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (decision_id, seq)) STRICT, WITHOUT ROWID;"
    ))
    .unwrap();
    let mut prev = GENESIS_HASH.to_string();
    let start = Instant::now();
    for i in 0..n {
        let (json, hash) = seal(&LedgerRecord {
            seq: i + 1,
            prev_hash: prev,
            ts: TS.into(),
            event: event(i),
        })
        .unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        conn.prepare_cached("INSERT INTO ledger (seq, hash, record) VALUES (?1, ?2, ?3)")
            .unwrap()
            .execute(rusqlite::params![i as i64 + 1, hash, json])
            .unwrap();
        conn.prepare_cached("INSERT INTO decision_records (decision_id, seq) VALUES (?1, ?2)")
            .unwrap()
            .execute(rusqlite::params![
                format!("0193c1d2-7448-7522-bb17-{i:012}"),
                i as i64 + 1
            ])
            .unwrap();
        conn.execute_batch("COMMIT").unwrap();
        prev = hash;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn bare_chain(records: &[String]) -> f64 {
    let start = Instant::now();
    let mut prev = [0u8; 32];
    for r in records {
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(prev);
        h.update(r.as_bytes());
        prev = h.finalize().into();
    }
    std::hint::black_box(prev);
    records.len() as f64 / start.elapsed().as_secs_f64()
}

/// Criterion: the per-append cost with and without a full queue.
fn criterion_appends(rt: &tokio::runtime::Runtime) {
    use criterion::{BenchmarkId, Criterion, Throughput};
    let dir = tempfile::tempdir().unwrap();
    let store = rt
        .block_on(Store::open_sqlite(
            &dir.path().join("criterion.db"),
            StoreOptions::default(),
        ))
        .unwrap();
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .measurement_time(std::time::Duration::from_secs(5));
    let mut g = c.benchmark_group("ledger_append_process");
    g.throughput(Throughput::Elements(256));
    let mut n = 0u64;
    g.bench_function(BenchmarkId::new("256_in_flight", "group_commit"), |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut tasks = Vec::with_capacity(256);
                for _ in 0..256 {
                    n += 1;
                    let l = store.clone();
                    let e = event(n);
                    tasks.push(tokio::spawn(async move {
                        l.ledger().append(TS.to_string(), e).await.unwrap()
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    g.bench_function(
        BenchmarkId::new("256_in_sequence", "one_commit_each"),
        |b| {
            b.iter(|| {
                rt.block_on(async {
                    for _ in 0..256 {
                        n += 1;
                        store
                            .ledger()
                            .append(TS.to_string(), event(n))
                            .await
                            .unwrap();
                    }
                })
            })
        },
    );
    g.finish();
    c.final_summary();
}

fn main() {
    let n: u64 = std::env::var("WARDEN_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        println!("ledger append, {n} records per row (records/s; ratio = group commit / one record per commit)");
        let only = std::env::var("WARDEN_BENCH_ONLY").unwrap_or_default();
        let only_verify = only == "verify";
        if only == "checkpoints" || only.is_empty() {
            // Signed checkpoints every 1,000 records (the default), made off the commit path,
            // against the same appends without them; alternating runs, best of three each.
            let signer = std::sync::Arc::new(
                warden_verify::NoteSigner::from_seed("bench.example/ledger", &[5u8; 32]).unwrap(),
            );
            for durability in [Durability::Process, Durability::Fsync] {
                let (mut off, mut on) = (0f64, 0f64);
                let mut sizes = 0;
                for _ in 0..3 {
                    let (rate, l) = group_commit_with(dir.path(), durability, 256, n, None).await;
                    off = off.max(rate);
                    l.close().await;
                    let cp = CheckpointOptions {
                        signer: signer.clone(),
                        every_records: 1000,
                        every: std::time::Duration::from_secs(10),
                        publish: None,
                    };
                    let (rate, l) = group_commit_with(dir.path(), durability, 256, n, Some(cp)).await;
                    on = on.max(rate);
                    sizes = l.ledger().latest_checkpoint().await.unwrap().map_or(0, |c| c.size);
                    l.close().await;
                    let _ = std::fs::remove_dir_all(dir.path());
                    std::fs::create_dir_all(dir.path()).unwrap();
                }
                println!(
                    "  {durability:?}: 256 writers, checkpoints off {off:>10.0}/s, every 1000 records {on:>10.0}/s  ratio {:.2} (last checkpoint before close: size {sizes})",
                    on / off
                );
            }
            if only == "checkpoints" {
                return;
            }
        }
        if only == "append" {
            let (rate, _) = group_commit(dir.path(), Durability::Process, 256, n * 5).await;
            println!("  Process: 256 concurrent writers: {rate:>10.0}/s");
            return;
        }
        for durability in [Durability::Process, Durability::Fsync] {
            if only_verify {
                break;
            }
            let base_n = if durability == Durability::Fsync { n / 4 } else { n };
            let base = one_per_commit(dir.path(), durability, base_n).await;
            println!("  {durability:?}: baseline one record per commit: {base:>10.0}/s");
            for writers in [1usize, 16, 64, 256] {
                let (rate, store) = group_commit(dir.path(), durability, writers, n).await;
                println!("  {durability:?}: {writers:>3} concurrent writers:          {rate:>10.0}/s  ratio {:>6.1}x", rate / base);
                store.close().await;
            }
        }

        // Verification of a large ledger.
        let count = n * 5;
        let (_, store) = group_commit(dir.path(), Durability::Process, 256, count).await;
        let records: Vec<String> = store
            .ledger()
            .tail(u32::try_from(count).unwrap())
            .await
            .unwrap()
            .iter()
            .map(|r| warden_core::ledger::canonical_json(&r.record).unwrap())
            .collect();
        let mean_len = records.iter().map(String::len).sum::<usize>() / records.len().max(1);
        let start = Instant::now();
        let report = store.ledger().verify(Box::new(|_| {})).await.unwrap();
        assert!(report.first_break.is_none());
        let verify_rate = report.verified as f64 / start.elapsed().as_secs_f64();
        let chain_rate = bare_chain(&records);
        println!(
            "ledger verify, {} records of {mean_len} bytes: {verify_rate:>10.0}/s; bare SHA-256 chain in memory {chain_rate:>10.0}/s; ratio {:.2}",
            report.verified,
            verify_rate / chain_rate
        );
    });
    if std::env::var("WARDEN_BENCH_ONLY").is_err() {
        criterion_appends(&rt);
    }
}
