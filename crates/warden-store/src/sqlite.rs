//! The SQLite ledger: one writer task with group commit, a checkpointer, and a reader pool.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Row};
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{info, warn};
use warden_core::config::Durability;
use warden_core::ledger::{
    assemble_record, canonical_json, leaf_hash, ChainBreak, ChainVerifier, LedgerEvent,
    LedgerRecord, GENESIS_HASH,
};

use crate::StoreError;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Tuning of the ledger.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    pub durability: Durability,
    /// Most records in one group commit.
    pub max_batch: usize,
    /// Bytes appended after which the WAL is checkpointed even under constant load.
    pub wal_cap_bytes: u64,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Process,
            max_batch: 256,
            wal_cap_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Where an appended record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub hash: String,
}

/// A record as stored.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub seq: u64,
    pub hash: String,
    pub record: LedgerRecord,
}

/// The result of a full verification.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// Records that verified before the first break (all of them when there is none).
    pub verified: u64,
    /// Hash of the last verified record.
    pub head: String,
    pub first_break: Option<ChainBreak>,
}

/// What to look for in `warden audit search`.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    pub agent: Option<String>,
    /// The tool's name or `server/name`.
    pub tool: Option<String>,
    /// RFC 3339 timestamp; records at or after it.
    pub since: Option<String>,
    pub decision_id: Option<String>,
    pub limit: u32,
}

struct AppendRequest {
    ts: String,
    /// The decision the record is about, for the lookup table.
    decision_id: Option<String>,
    /// Canonical JSON of the event, prepared by the caller.
    event_json: String,
    reply: oneshot::Sender<Result<Appended, String>>,
}

/// Handle to the ledger. Cheap to clone; the writer stops when the last handle is dropped or
/// [`Ledger::close`] is called.
#[derive(Clone)]
pub struct Ledger {
    tx: mpsc::Sender<AppendRequest>,
    pool: SqlitePool,
    healthy: Arc<AtomicBool>,
    path: PathBuf,
    pub(crate) blocked_cache: Arc<crate::pins::BlockedCache>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Resolve `sqlite://PATH` against the project directory.
pub fn sqlite_path(url: &str, base: &Path) -> Result<PathBuf, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .ok_or_else(|| StoreError::BadUrl(url.to_string()))?;
    if rest.is_empty() {
        return Err(StoreError::BadUrl(url.to_string()));
    }
    let p = PathBuf::from(rest);
    Ok(if p.is_absolute() { p } else { base.join(p) })
}

fn options(path: &Path, durability: Durability) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match durability {
            Durability::Process => SqliteSynchronous::Normal,
            Durability::Fsync => SqliteSynchronous::Full,
        })
        .busy_timeout(Duration::from_secs(5))
        // Checkpoints run off the commit path (see `checkpointer`).
        .pragma("wal_autocheckpoint", "0")
        // Keep the WAL file's blocks after a checkpoint resets it: rewriting allocated blocks is
        // much cheaper than growing the file again (ext4 zeroes every new block).
        .pragma("journal_size_limit", "268435456")
        // Statement journals of multi-row inserts stay in memory, not in temporary files.
        .pragma("temp_store", "memory")
        .disable_statement_logging()
}

impl Ledger {
    /// Open (creating and migrating if needed) the ledger named by a `sqlite://` url, relative
    /// to `base`.
    pub async fn open_url(url: &str, base: &Path, opts: LedgerOptions) -> Result<Self, StoreError> {
        let path = sqlite_path(url, base)?;
        Self::open(&path, opts).await
    }

    /// Open (creating and migrating if needed) the ledger at `path`.
    pub async fn open(path: &Path, opts: LedgerOptions) -> Result<Self, StoreError> {
        let connect = options(path, opts.durability);
        let mut setup = connect.connect().await?;
        MIGRATOR.run(&mut setup).await?;
        let (next_seq, prev_hash) = chain_head(&mut setup).await?;
        setup.close().await?;
        let writer = open_writer(path, opts.durability)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(connect.clone())
            .await?;
        let checkpoint_conn = connect.connect().await?;
        let (tx, rx) = mpsc::channel(opts.max_batch.max(1) * 64);
        let healthy = Arc::new(AtomicBool::new(true));
        let wake = Arc::new(Notify::new());
        let written = Arc::new(AtomicU64::new(0));
        tokio::spawn(checkpointer(
            checkpoint_conn,
            Arc::clone(&wake),
            Arc::clone(&written),
            tx.downgrade(),
        ));
        let state = WriterState {
            next_seq,
            prev_hash,
            opts,
            healthy: Arc::clone(&healthy),
            wake,
            written,
        };
        std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || write_thread(writer, rx, state))
            .map_err(|e| StoreError::Verify(format!("cannot start the ledger writer: {e}")))?;
        info!(message = "ledger open", path = %path.display(), next_seq);
        Ok(Self {
            tx,
            pool,
            healthy,
            path: path.to_path_buf(),
            blocked_cache: Arc::new(crate::pins::BlockedCache::default()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Append one record and wait until it is durable. An error means the record was not
    /// written: the caller must not run the call it describes.
    pub async fn append(&self, ts: String, event: LedgerEvent) -> Result<Appended, StoreError> {
        // Canonicalise in the caller's task, in parallel; the writer only links records.
        let event_json = canonical_json(&event)?;
        let decision_id = event.decision_id().map(str::to_string);
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(AppendRequest {
                ts,
                decision_id,
                event_json,
                reply,
            })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        match rx.await {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(e)) => Err(StoreError::Database(sqlx::Error::Protocol(e))),
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    /// Whether the last commit succeeded and the writer is running.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed) && !self.tx.is_closed()
    }

    /// Readiness: the database answers and the writer is healthy.
    pub async fn ready(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        if self.is_healthy() {
            Ok(())
        } else {
            Err(StoreError::WriterGone)
        }
    }

    /// Number of records.
    pub async fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Recompute the whole chain, in order. `progress` is called with the count so far every
    /// 50,000 records.
    ///
    /// Runs on a blocking thread with its own read-only SQLite handle: stepping a prepared
    /// statement directly avoids an async hand-off per row, which bounded verification speed
    /// (see BENCHMARKS.md).
    pub async fn verify(
        &self,
        progress: impl FnMut(u64) + Send + 'static,
    ) -> Result<VerifyReport, StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || verify_file(&path, progress))
            .await
            .map_err(|e| StoreError::Verify(format!("verification thread failed: {e}")))?
    }

    /// The last `n` records, oldest first.
    pub async fn tail(&self, n: u32) -> Result<Vec<StoredRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, hash, record FROM (SELECT seq, hash, record FROM ledger ORDER BY seq DESC LIMIT ?) ORDER BY seq",
        )
        .bind(i64::from(n))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(to_stored).collect()
    }

    /// Records after `seq`, oldest first (for following the ledger).
    pub async fn after(&self, seq: u64, limit: u32) -> Result<Vec<StoredRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT seq, hash, record FROM ledger WHERE seq > ? ORDER BY seq LIMIT ?")
                .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(to_stored).collect()
    }

    /// Records matching a filter, oldest first, at most `filter.limit`.
    pub async fn search(&self, filter: &SearchFilter) -> Result<Vec<StoredRecord>, StoreError> {
        let mut q = QueryBuilder::<sqlx::Sqlite>::new(
            "SELECT seq, hash, record FROM (SELECT seq, hash, record FROM ledger WHERE 1=1",
        );
        if let Some(agent) = &filter.agent {
            q.push(" AND json_extract(record, '$.event.agent') = ")
                .push_bind(agent.clone());
        }
        if let Some(tool) = &filter.tool {
            q.push(" AND (json_extract(record, '$.event.tool') = ")
                .push_bind(tool.clone())
                .push(" OR json_extract(record, '$.event.qualified_tool') = ")
                .push_bind(tool.clone())
                .push(")");
        }
        if let Some(since) = &filter.since {
            q.push(" AND json_extract(record, '$.ts') >= ")
                .push_bind(since.clone());
        }
        if let Some(id) = &filter.decision_id {
            q.push(" AND seq IN (SELECT seq FROM decision_records WHERE decision_id = ")
                .push_bind(id.clone())
                .push(")");
        }
        q.push(" ORDER BY seq DESC LIMIT ")
            .push_bind(i64::from(filter.limit.max(1)))
            .push(") ORDER BY seq");
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(to_stored).collect()
    }

    /// All records about one decision (its decision record, then any outcome).
    pub async fn records_of_decision(&self, id: &str) -> Result<Vec<StoredRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT l.seq, l.hash, l.record FROM decision_records d JOIN ledger l ON l.seq = d.seq \
             WHERE d.decision_id = ? ORDER BY l.seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        // The lookup table is not covered by the chain: trust only records that name the id.
        let records: Vec<StoredRecord> = rows.iter().map(to_stored).collect::<Result<_, _>>()?;
        Ok(records
            .into_iter()
            .filter(|r| r.record.event.decision_id() == Some(id))
            .collect())
    }

    /// Stop accepting appends and wait for those in flight to commit.
    pub async fn close(self) {
        let Self { tx, pool, .. } = self;
        drop(tx);
        // The writer holds its own connection; closing the pool waits for readers.
        pool.close().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A batch of stored rows: (seq, hash column bytes, record column bytes).
type RowBatch = Vec<(i64, Vec<u8>, Vec<u8>)>;

/// Read every row of the ledger in order, in batches, on the calling thread.
fn read_rows(path: &Path, out: &std::sync::mpsc::SyncSender<Result<RowBatch, String>>) {
    use rusqlite::types::ValueRef;
    use rusqlite::{Connection, OpenFlags};
    let run = || -> Result<(), String> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| e.to_string())?;
        let mut stmt = conn
            .prepare("SELECT seq, hash, record FROM ledger ORDER BY seq")
            .map_err(|e| e.to_string())?;
        let mut rows = stmt.query([]).map_err(|e| e.to_string())?;
        let bytes = |v: ValueRef<'_>| match v {
            ValueRef::Text(t) | ValueRef::Blob(t) => t.to_vec(),
            _ => Vec::new(),
        };
        let mut batch = Vec::with_capacity(1024);
        while let Some(row) = rows.next().map_err(|e| e.to_string())? {
            let seq: i64 = row.get(0).map_err(|e| e.to_string())?;
            // Stored bytes as they are: a tampered value need not be valid UTF-8.
            let hash = bytes(row.get_ref(1).map_err(|e| e.to_string())?);
            let record = bytes(row.get_ref(2).map_err(|e| e.to_string())?);
            batch.push((seq, hash, record));
            if batch.len() == 1024 {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(1024));
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

/// Verify the chain in the SQLite file at `path`, reading it read-only. One thread steps the
/// SQLite statement while this one hashes and links, so reading and hashing overlap.
fn verify_file(path: &Path, mut progress: impl FnMut(u64)) -> Result<VerifyReport, StoreError> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<RowBatch, String>>(8);
    let reader_path = path.to_path_buf();
    let reader = std::thread::Builder::new()
        .name("ledger-verify-reader".into())
        .spawn(move || read_rows(&reader_path, &tx))
        .map_err(|e| StoreError::Verify(format!("cannot start the reader thread: {e}")))?;
    let mut v = ChainVerifier::new();
    let mut result = None;
    'batches: for batch in &rx {
        let batch = batch.map_err(StoreError::Verify)?;
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

pub(crate) fn to_stored(row: &sqlx::sqlite::SqliteRow) -> Result<StoredRecord, StoreError> {
    let seq: i64 = row.try_get(0)?;
    let hash: String = row.try_get(1)?;
    let record: String = row.try_get(2)?;
    Ok(StoredRecord {
        seq: u64::try_from(seq).unwrap_or(0),
        hash,
        record: serde_json::from_str(&record)?,
    })
}

async fn chain_head(conn: &mut SqliteConnection) -> Result<(u64, String), StoreError> {
    let row = sqlx::query("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(r) => {
            let seq: i64 = r.try_get(0)?;
            (u64::try_from(seq).unwrap_or(0) + 1, r.try_get(1)?)
        }
        None => (1, GENESIS_HASH.to_string()),
    })
}

/// The writer's SQLite handle: same file, same pragmas as the pool, synchronous.
fn open_writer(path: &Path, durability: Durability) -> Result<rusqlite::Connection, StoreError> {
    let err = |e: rusqlite::Error| StoreError::Verify(format!("opening the ledger writer: {e}"));
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
struct WriterState {
    next_seq: u64,
    prev_hash: String,
    opts: LedgerOptions,
    healthy: Arc<AtomicBool>,
    wake: Arc<Notify>,
    written: Arc<AtomicU64>,
}

/// The only writer: a dedicated thread with a synchronous SQLite handle, so a commit costs no
/// async hand-offs. It takes whatever appends are queued (group commit), seals them onto the
/// chain, commits them in one transaction, then answers each caller.
fn write_thread(
    conn: rusqlite::Connection,
    mut rx: mpsc::Receiver<AppendRequest>,
    mut st: WriterState,
) {
    let max = st.opts.max_batch.max(1);
    let mut batch: Vec<AppendRequest> = Vec::with_capacity(max);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max {
            match rx.try_recv() {
                Ok(a) => batch.push(a),
                Err(_) => break,
            }
        }
        // Seal each record onto the chain.
        let mut rows: Vec<PendingRow> = Vec::with_capacity(batch.len());
        let mut waiting: Vec<(oneshot::Sender<Result<Appended, String>>, Appended)> =
            Vec::with_capacity(batch.len());
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
                    });
                    prev = hash;
                    seq += 1;
                }
                Err(e) => {
                    let _ = a
                        .reply
                        .send(Err(format!("record could not be serialised: {e}")));
                }
            }
        }
        if rows.is_empty() {
            continue;
        }
        match commit(&conn, &rows) {
            Ok(()) => {
                st.next_seq = seq;
                st.prev_hash = prev;
                st.healthy.store(true, Ordering::Relaxed);
                for (reply, appended) in waiting {
                    let _ = reply.send(Ok(appended));
                }
                let total = st.written.fetch_add(bytes, Ordering::Relaxed) + bytes;
                if total >= st.opts.wal_cap_bytes || rx.is_empty() {
                    st.wake.notify_one();
                }
            }
            Err(error) => {
                st.healthy.store(false, Ordering::Relaxed);
                warn!(message = "ledger commit failed; the calls it recorded are denied", %error);
                let msg = error.to_string();
                for (reply, _) in waiting {
                    let _ = reply.send(Err(msg.clone()));
                }
                // Another writer may have moved the chain; start again from what is stored.
                match writer_head(&conn) {
                    Ok((s, h)) => {
                        st.next_seq = s;
                        st.prev_hash = h;
                    }
                    Err(error) => warn!(message = "ledger head could not be re-read", %error),
                }
            }
        }
    }
}

fn writer_head(conn: &rusqlite::Connection) -> Result<(u64, String), rusqlite::Error> {
    use rusqlite::OptionalExtension as _;
    let row: Option<(i64, String)> = conn
        .query_row(
            "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
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
}

fn commit(conn: &rusqlite::Connection, rows: &[PendingRow]) -> Result<(), rusqlite::Error> {
    // IMMEDIATE: take the write lock up front, so a commit never fails half-way for a lock.
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let mut insert =
            conn.prepare_cached("INSERT INTO ledger (seq, hash, record) VALUES (?1, ?2, ?3)")?;
        let mut link =
            conn.prepare_cached("INSERT INTO decision_records (decision_id, seq) VALUES (?1, ?2)")?;
        for r in rows {
            let seq = i64::try_from(r.seq).unwrap_or(i64::MAX);
            insert.execute(rusqlite::params![seq, r.hash, r.json])?;
            if let Some(id) = &r.decision_id {
                link.execute(rusqlite::params![id, seq])?;
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Moves WAL frames into the database file off the commit path: after a burst ends (the writer
/// found its queue empty) or when the WAL has grown past the cap. A PASSIVE checkpoint never
/// blocks the writer.
async fn checkpointer(
    mut conn: SqliteConnection,
    wake: Arc<Notify>,
    written: Arc<AtomicU64>,
    alive: mpsc::WeakSender<AppendRequest>,
) {
    loop {
        let woke = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
        if alive.upgrade().is_none() {
            break;
        }
        if woke.is_err() && written.load(Ordering::Relaxed) == 0 {
            continue;
        }
        if written.swap(0, Ordering::Relaxed) == 0 {
            continue;
        }
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await
        {
            warn!(message = "WAL checkpoint failed", %error);
        }
    }
    let _ = conn.close().await;
}
