//! Reading the ledger file in bulk on a read-only SQLite handle of its own: the full chain
//! verification, the leaf hashes behind proofs, and raw exports.
//!
//! One thread steps the SQLite statement while the caller's thread hashes, links or writes,
//! so reading and the work on what is read overlap. Stepping a prepared statement directly
//! avoids an async hand-off per row, which bounded verification speed (see BENCHMARKS.md).

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use warden_core::ledger::{ChainBreak, ChainVerifier};
use warden_verify::encoding::hash_from_hex;
use warden_verify::Hash;

use crate::ledger::{ExportSink, Progress};
use crate::{StoreError, VerifyReport};

/// A batch of stored rows: (seq, hash column bytes, record column bytes).
type RowBatch = Vec<(i64, Vec<u8>, Vec<u8>)>;

/// What the reader thread sends: a batch, or why reading stopped.
type Batches = Receiver<Result<RowBatch, rusqlite::Error>>;

/// Rows in one batch handed from the reader thread.
const BATCH: usize = 1024;

/// Read the rows `first..=last` of the ledger in order, in batches, on the calling thread.
fn read_rows(
    path: &Path,
    first: u64,
    last: u64,
    with_records: bool,
    out: &SyncSender<Result<RowBatch, rusqlite::Error>>,
) {
    use rusqlite::types::ValueRef;
    use rusqlite::{Connection, OpenFlags};
    let run = || -> Result<(), rusqlite::Error> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let sql = if with_records {
            "SELECT seq, hash, record FROM ledger WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq"
        } else {
            "SELECT seq, hash, '' FROM ledger WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq"
        };
        let mut stmt = conn.prepare(sql)?;
        let bound = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut rows = stmt.query(rusqlite::params![bound(first), bound(last)])?;
        let bytes = |v: ValueRef<'_>| match v {
            ValueRef::Text(t) | ValueRef::Blob(t) => t.to_vec(),
            _ => Vec::new(),
        };
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            // Stored bytes as they are: a tampered value need not be valid UTF-8.
            let hash = bytes(row.get_ref(1)?);
            let record = bytes(row.get_ref(2)?);
            batch.push((seq, hash, record));
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if out.send(Ok(full)).is_err() {
                    return Ok(());
                }
            }
        }
        if !batch.is_empty() {
            let _ = out.send(Ok(batch));
        }
        Ok(())
    };
    if let Err(e) = run() {
        let _ = out.send(Err(e));
    }
}

/// Start a reader thread over rows `first..=last`; its batches arrive on the receiver.
fn spawn_reader(
    path: &Path,
    first: u64,
    last: u64,
    with_records: bool,
) -> Result<(Batches, JoinHandle<()>), StoreError> {
    let (tx, rx) = sync_channel(8);
    let path = path.to_path_buf();
    let reader = std::thread::Builder::new()
        .name("ledger-reader".into())
        .spawn(move || read_rows(&path, first, last, with_records, &tx))
        .map_err(|e| StoreError::io("cannot start the ledger reader thread", e))?;
    Ok((rx, reader))
}

fn read_error(e: rusqlite::Error) -> StoreError {
    StoreError::driver("reading the ledger", e)
}

/// Verify the chain in the SQLite file at `path`, reading it read-only.
pub(super) fn verify_file(path: &Path, mut progress: Progress) -> Result<VerifyReport, StoreError> {
    let (rx, reader) = spawn_reader(path, 0, u64::MAX, true)?;
    let mut v = ChainVerifier::new();
    let mut result = None;
    'batches: for batch in &rx {
        let batch = batch.map_err(read_error)?;
        for (seq, hash, record) in &batch {
            let pushed = match std::str::from_utf8(hash) {
                Ok(h) => v.push(*seq, h, record),
                Err(_) => Err(ChainBreak {
                    seq: v.count() + 1,
                    reason: "the stored hash is not text (hash altered)".to_string(),
                }),
            };
            if let Err(b) = pushed {
                result = Some(b);
                break 'batches;
            }
            if v.count().is_multiple_of(50_000) {
                progress(v.count());
            }
        }
    }
    drop(rx);
    let _ = reader.join();
    Ok(VerifyReport {
        verified: v.count(),
        head: v.head(),
        first_break: result,
    })
}

/// The stored leaf hashes of records `1..=up_to`, in order. Fails on a gap or a malformed
/// hash.
pub(super) fn leaf_hashes(path: &Path, up_to: u64) -> Result<Vec<Hash>, StoreError> {
    let (rx, reader) = spawn_reader(path, 1, up_to, false)?;
    // `up_to` may come from a stored (so untrusted) checkpoint: no allocation on its word.
    let mut out = Vec::with_capacity(usize::try_from(up_to.min(1 << 20)).unwrap_or(0));
    for batch in &rx {
        for (seq, hash, _) in batch.map_err(read_error)? {
            let expected = out.len() as u64 + 1;
            let leaf = std::str::from_utf8(&hash).ok().and_then(hash_from_hex);
            match leaf {
                Some(h) if u64::try_from(seq).ok() == Some(expected) => out.push(h),
                _ => return Err(StoreError::BadRecord { seq: expected }),
            }
        }
    }
    let _ = reader.join();
    if (out.len() as u64) < up_to {
        return Err(StoreError::TooFewRecords {
            held: out.len() as u64,
            wanted: up_to,
        });
    }
    Ok(out)
}

/// Stream the stored bytes of records `first..=last` in order to `sink`.
pub(super) fn export_raw(
    path: &Path,
    first: u64,
    last: u64,
    mut sink: ExportSink,
) -> Result<u64, StoreError> {
    let (rx, reader) = spawn_reader(path, first, last, true)?;
    let mut n = 0u64;
    for batch in &rx {
        for (seq, _, record) in batch.map_err(read_error)? {
            sink(u64::try_from(seq).unwrap_or(0), &record)
                .map_err(|e| StoreError::io("writing the export", e))?;
            n += 1;
        }
    }
    let _ = reader.join();
    Ok(n)
}
