//! The only writer: a dedicated thread with a synchronous SQLite handle and group commit, and
//! the WAL checkpointer that runs beside it in idle gaps.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::SqliteConnection;
use sqlx::Connection as _;
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::warn;
use warden_core::clock::Clock;
use warden_core::config::Durability;
use warden_core::ledger::{assemble_record, leaf_hash, GENESIS_HASH};

use super::checkpoints::CommitSignal;
use super::seq_param;
use crate::{Appended, StoreError};

/// One record to link onto the chain and commit.
pub(super) struct AppendRequest {
    pub ts: String,
    /// The decision the record is about, for the lookup table.
    pub decision_id: Option<String>,
    /// Canonical JSON of the event, prepared by the caller.
    pub event_json: String,
    /// (agent, tool) of a call allowed at tier `review`: queued for after-the-fact review in
    /// the same transaction as its record.
    pub review: Option<(String, String)>,
    pub reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// What the writer's queue carries.
pub(super) enum WriterMsg {
    Append(AppendRequest),
    /// Answered once everything queued before it is committed (or its commit failed).
    Flush(oneshot::Sender<()>),
    /// Commit everything queued before it, then stop and close the connection; answered
    /// after the connection is closed.
    Stop(oneshot::Sender<()>),
}

/// The writer's SQLite handle: same file, same pragmas as the pool, synchronous.
pub(super) fn open_writer(
    path: &Path,
    durability: Durability,
) -> Result<rusqlite::Connection, StoreError> {
    let err = |e: rusqlite::Error| StoreError::driver("opening the ledger writer", e);
    let conn = rusqlite::Connection::open(path).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
    let synchronous = match durability {
        Durability::Process => "NORMAL",
        Durability::Fsync => "FULL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
         PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 268435456; \
         PRAGMA temp_store = MEMORY;"
    ))
    .map_err(err)?;
    Ok(conn)
}

/// What the writer thread owns besides its connection and queue.
pub(super) struct WriterState {
    pub next_seq: u64,
    pub prev_hash: String,
    /// Most records in one group commit.
    pub max_batch: usize,
    /// Bytes after which the writer itself checkpoints and resets the WAL.
    pub wal_cap_bytes: u64,
    pub healthy: Arc<AtomicBool>,
    /// Bytes appended since the last WAL checkpoint.
    pub written: Arc<AtomicU64>,
    /// Tells the checkpointer what is committed; woken every `every_records`.
    pub signal: Arc<CommitSignal>,
    pub every_records: u64,
    /// The review queue's `created_at`.
    pub clock: Clock,
}

/// A failed write lock or commit, answered to every call of the batch.
fn shared(what: &'static str, error: rusqlite::Error) -> Arc<dyn std::error::Error + Send + Sync> {
    warn!(message = "ledger write failed; the calls it would record are denied", what, %error);
    Arc::new(error)
}

/// The only writer: a dedicated thread with a synchronous SQLite handle, so a commit costs no
/// async hand-offs. It takes whatever appends are queued (group commit), seals them onto the
/// chain, commits them in one transaction, then answers each caller.
pub(super) fn write_thread(
    conn: rusqlite::Connection,
    mut rx: mpsc::Receiver<WriterMsg>,
    mut st: WriterState,
) {
    let max = st.max_batch;
    let mut batch: Vec<AppendRequest> = Vec::with_capacity(max);
    let mut barriers: Vec<oneshot::Sender<()>> = Vec::new();
    let mut stop: Option<oneshot::Sender<()>> = None;
    while stop.is_none() {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(msg) = next.take() {
            taken += 1;
            match msg {
                WriterMsg::Append(a) => batch.push(a),
                WriterMsg::Flush(reply) => barriers.push(reply),
                WriterMsg::Stop(reply) => {
                    stop = Some(reply);
                    break;
                }
            }
            if taken < max {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            write_batch(&conn, &mut batch, &mut st);
        }
        for reply in barriers.drain(..) {
            let _ = reply.send(());
        }
    }
    drop(rx);
    // Closing the connection lets SQLite checkpoint the WAL when it is the last one.
    drop(conn);
    if let Some(reply) = stop {
        let _ = reply.send(());
    }
}

/// Seal a batch onto the chain as it is stored and commit it in one transaction; answer
/// each caller.
fn write_batch(conn: &rusqlite::Connection, batch: &mut Vec<AppendRequest>, st: &mut WriterState) {
    // Take the write lock, then seal onto the chain as it is stored: another process on the
    // same ledger (`warden mcp stdio` beside `warden serve`) may have appended since this
    // writer's last commit.
    let head = conn
        .prepare_cached("BEGIN IMMEDIATE")
        .and_then(|mut begin| begin.execute([]))
        .and_then(|_| writer_head(conn));
    match head {
        Ok((s, h)) => {
            st.next_seq = s;
            st.prev_hash = h;
        }
        Err(error) => {
            let _ = conn.execute_batch("ROLLBACK");
            st.healthy.store(false, Ordering::Relaxed);
            let source = shared("write lock", error);
            for a in batch.drain(..) {
                let _ = a.reply.send(Err(StoreError::Driver {
                    what: "write lock",
                    source: Arc::clone(&source),
                }));
            }
            return;
        }
    }
    // Seal each record onto the chain.
    let mut rows: Vec<PendingRow> = Vec::with_capacity(batch.len());
    let mut waiting = Vec::with_capacity(batch.len());
    let mut seq = st.next_seq;
    let mut prev = st.prev_hash.clone();
    let mut bytes = 0u64;
    for a in batch.drain(..) {
        match assemble_record(seq, &prev, &a.ts, &a.event_json) {
            Ok(json) => {
                let hash = leaf_hash(json.as_bytes());
                bytes += json.len() as u64;
                waiting.push((
                    a.reply,
                    Appended {
                        seq,
                        hash: hash.clone(),
                    },
                ));
                rows.push(PendingRow {
                    seq,
                    hash: hash.clone(),
                    json,
                    decision_id: a.decision_id,
                    review: a.review,
                });
                prev = hash;
                seq += 1;
            }
            Err(e) => {
                let _ = a.reply.send(Err(StoreError::Serialise(e)));
            }
        }
    }
    if rows.is_empty() {
        let _ = conn.execute_batch("ROLLBACK");
        return;
    }
    match commit(conn, &rows, st.clock.unix()) {
        Ok(()) => {
            let before = st.next_seq.saturating_sub(1);
            let now = seq.saturating_sub(1);
            st.signal.committed.store(now, Ordering::Release);
            if now / st.every_records != before / st.every_records {
                st.signal.wake.notify_one();
            }
            st.next_seq = seq;
            st.prev_hash = prev;
            st.healthy.store(true, Ordering::Relaxed);
            for (reply, appended) in waiting {
                let _ = reply.send(Ok(appended));
            }
            let total = st.written.fetch_add(bytes, Ordering::Relaxed) + bytes;
            if total >= st.wal_cap_bytes {
                // Past the cap, on the writer itself between two commits: no other writer can
                // hold the lock, so the RESTART checkpoint only waits (busy timeout) for readers
                // of old frames, and the next commit starts the WAL from its beginning. The
                // checkpointer's PASSIVE checkpoints in idle gaps never reset the WAL while
                // some reader is always open, so under steady load the file grew without bound
                // (2.7 GB in ten minutes of the soak). This stalls appends for one checkpoint
                // per `wal_cap_bytes` written.
                st.written.store(0, Ordering::Relaxed);
                if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
                {
                    warn!(message = "WAL checkpoint failed", %error);
                }
            }
        }
        Err(error) => {
            st.healthy.store(false, Ordering::Relaxed);
            let source = shared("commit", error);
            for (reply, _) in waiting {
                let _ = reply.send(Err(StoreError::Driver {
                    what: "commit",
                    source: Arc::clone(&source),
                }));
            }
        }
    }
}

fn writer_head(conn: &rusqlite::Connection) -> Result<(u64, String), rusqlite::Error> {
    use rusqlite::OptionalExtension as _;
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        Some((seq, hash)) => (u64::try_from(seq).unwrap_or(0) + 1, hash),
        None => (1, GENESIS_HASH.to_string()),
    })
}

/// A sealed record waiting for its commit.
struct PendingRow {
    seq: u64,
    hash: String,
    json: String,
    decision_id: Option<String>,
    review: Option<(String, String)>,
}

/// Insert sealed rows and commit, inside the `BEGIN IMMEDIATE` transaction the writer opened
/// (the write lock is taken up front, so a commit never fails half-way for a lock). `now` is
/// the review queue's `created_at` (Unix seconds).
fn commit(
    conn: &rusqlite::Connection,
    rows: &[PendingRow],
    now: i64,
) -> Result<(), rusqlite::Error> {
    let result = (|| {
        let mut insert =
            conn.prepare_cached("INSERT INTO ledger (seq, hash, record) VALUES (?1, ?2, ?3)")?;
        let mut link =
            conn.prepare_cached("INSERT INTO decision_records (decision_id, seq) VALUES (?1, ?2)")?;
        for r in rows {
            let seq = seq_param(r.seq);
            insert.execute(rusqlite::params![seq, r.hash, r.json])?;
            if let Some(id) = &r.decision_id {
                link.execute(rusqlite::params![id, seq])?;
                if let Some((agent, tool)) = &r.review {
                    conn.prepare_cached(
                        "INSERT OR IGNORE INTO reviews (decision_id, seq, agent, tool, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(rusqlite::params![id, seq, agent, tool, now])?;
                }
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn
            .prepare_cached("COMMIT")
            .and_then(|mut commit| commit.execute([]))
            .map(|_| ()),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// How long the ledger must see no append before the WAL is checkpointed.
const CHECKPOINT_IDLE: Duration = Duration::from_millis(200);

/// Moves WAL frames into the database file off the commit path, in idle gaps: once no record
/// has been appended for [`CHECKPOINT_IDLE`], or at once when the WAL has grown past the cap
/// (the writer wakes it). A PASSIVE checkpoint never blocks the writer, but it does cost a
/// pass over the WAL and an fsync of the database file: after every commit it would sit beside
/// every call (measured: most of the store's CPU under sequential calls). Stops when the store
/// is closed or its last handle dropped.
pub(super) async fn wal_checkpointer(
    mut conn: SqliteConnection,
    wake: Arc<Notify>,
    written: Arc<AtomicU64>,
    closed: Arc<AtomicBool>,
    alive: mpsc::WeakSender<WriterMsg>,
) {
    let mut seen = 0u64;
    loop {
        let over_cap = tokio::time::timeout(CHECKPOINT_IDLE, wake.notified())
            .await
            .is_ok();
        if closed.load(Ordering::Acquire) || alive.upgrade().is_none() {
            break;
        }
        let now = written.load(Ordering::Relaxed);
        if now == 0 {
            seen = 0;
            continue;
        }
        if !over_cap && now != seen {
            // Records were appended during the last period: not idle yet.
            seen = now;
            continue;
        }
        written.swap(0, Ordering::Relaxed);
        seen = 0;
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await
        {
            warn!(message = "WAL checkpoint failed", %error);
        }
    }
    let _ = conn.close().await;
}
