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
use warden_core::redact::{RedactionStats, Redactor};

use crate::checkpoints::{self, CheckpointCmd, CheckpointOptions, CommitSignal, StoredCheckpoint};
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
    /// Signed Merkle checkpoints; `None` for read-only uses (audit commands).
    pub checkpoints: Option<CheckpointOptions>,
    /// The redaction engine every event passes through before it is serialised. `None`
    /// still redacts, with a random key for this process only (tokens then correlate within
    /// one run, not across restarts).
    pub redactor: Option<Redactor>,
    /// Seal payloads (arguments, outputs, the user's request) with per-day and per-subject
    /// keys wrapped by this master key, for retention and erasure. `None`: stored redacted
    /// but not sealed.
    pub vault: Option<crate::vault::VaultOptions>,
    /// Data residency: records about these agents belong to other regions' stores and are
    /// refused here (fail closed), whoever tries to append them.
    pub residency: Option<Residency>,
}

/// Which store this is, and the agents whose records must never land in it.
#[derive(Debug, Clone, Default)]
pub struct Residency {
    /// This store's region (`None`: the home store).
    pub region: Option<String>,
    /// Agent → the region that keeps its records (`None`: the home store), for every agent
    /// whose records are kept elsewhere.
    pub elsewhere: std::collections::HashMap<String, Option<String>>,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Process,
            max_batch: 256,
            wal_cap_bytes: 16 * 1024 * 1024,
            checkpoints: None,
            redactor: None,
            vault: None,
            residency: None,
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
    /// (agent, tool) of a call allowed at tier `review`: queued for after-the-fact review in
    /// the same transaction as its record.
    review: Option<(String, String)>,
    reply: oneshot::Sender<Result<Appended, String>>,
}

/// A call allowed at tier `review` goes to the review queue.
fn review_of(event: &LedgerEvent) -> Option<(String, String)> {
    match event {
        LedgerEvent::Decision(d)
            if d.decision.decision == warden_core::Verdict::Allow
                && d.decision.tier == warden_core::Tier::Review =>
        {
            Some((
                d.agent.clone(),
                d.qualified_tool.clone().unwrap_or_else(|| d.tool.clone()),
            ))
        }
        _ => None,
    }
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
    checkpointer: Option<mpsc::Sender<CheckpointCmd>>,
    redactor: Redactor,
    redacted: Arc<AtomicU64>,
    vault: Option<Arc<crate::vault::Vault>>,
    residency: Option<Arc<Residency>>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A redactor with a random key, for ledgers opened without one.
fn ephemeral_redactor() -> Result<Redactor, StoreError> {
    use rand::RngCore as _;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    Redactor::new(&key).map_err(|e| StoreError::Verify(format!("redaction engine: {e}")))
}

/// Create the directory of a new store (a region's `.warden/eu/`), readable by its owner only.
fn create_store_dir(path: &Path) -> Result<(), StoreError> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if parent.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(parent).map_err(|e| {
        StoreError::Verify(format!(
            "cannot create the store directory {}: {e}",
            parent.display()
        ))
    })
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
    pub async fn open(path: &Path, mut opts: LedgerOptions) -> Result<Self, StoreError> {
        let checkpoint_opts = opts.checkpoints.take();
        let residency = opts.residency.take().map(Arc::new);
        let redactor = match &opts.redactor {
            Some(r) => r.clone(),
            None => ephemeral_redactor()?,
        };
        create_store_dir(path)?;
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
        let vault = match opts.vault.take() {
            Some(v) => Some(Arc::new(crate::vault::Vault::open(pool.clone(), v).await?)),
            None => None,
        };
        let checkpoint_conn = connect.connect().await?;
        let (tx, rx) = mpsc::channel(opts.max_batch.max(1) * 64);
        let healthy = Arc::new(AtomicBool::new(true));
        let wake = Arc::new(Notify::new());
        let written = Arc::new(AtomicU64::new(0));
        let signal = Arc::new(CommitSignal::default());
        signal
            .committed
            .store(next_seq.saturating_sub(1), Ordering::Release);
        let every_records = checkpoint_opts
            .as_ref()
            .map_or(u64::MAX, |c| c.every_records.max(1));
        let signed_checkpoints = match checkpoint_opts {
            Some(c) => {
                Some(checkpoints::Checkpointer::start(pool.clone(), c, Arc::clone(&signal)).await?)
            }
            None => None,
        };
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
            signal,
            every_records,
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
            checkpointer: signed_checkpoints,
            redactor,
            redacted: Arc::new(AtomicU64::new(0)),
            vault,
            residency,
        })
    }

    pub(crate) fn vault(&self) -> Option<&crate::vault::Vault> {
        self.vault.as_deref()
    }

    /// Whether payloads are sealed (a master key was given).
    pub fn seals_payloads(&self) -> bool {
        self.vault.is_some()
    }

    /// Refuse anything about an agent whose records are kept in another region's store.
    pub(crate) fn check_residency(&self, agent: &str) -> Result<(), StoreError> {
        let Some(res) = &self.residency else {
            return Ok(());
        };
        let Some(home) = res.elsewhere.get(agent) else {
            return Ok(());
        };
        let name = |r: &Option<String>| match r {
            Some(r) => format!("region `{r}`"),
            None => "the home store".to_string(),
        };
        Err(StoreError::Residency(format!(
            "agent `{agent}` keeps its records in {}, not in this store ({}); nothing was recorded",
            name(home),
            name(&res.region)
        )))
    }

    /// Redact, then seal: what every event goes through before it is serialised. A record
    /// about an agent kept in another region is refused first.
    async fn prepare(&self, ts: &str, event: &mut LedgerEvent) -> Result<(), StoreError> {
        if let Some(agent) = event.agent() {
            self.check_residency(agent)?;
        }
        // The subject is read from the arguments before redaction replaces them.
        let subject = self.vault.as_ref().and_then(|v| v.subject_of(event));
        self.redact(event);
        if let Some(v) = &self.vault {
            v.seal(ts, event, subject).await?;
        }
        Ok(())
    }

    /// Open the sealed payloads of records read back (what cannot be opened any more shows
    /// why: purged by retention, erased, or key unavailable).
    pub(crate) async fn opened(
        &self,
        mut records: Vec<StoredRecord>,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        if let Some(v) = &self.vault {
            for r in &mut records {
                v.open_payloads(&mut r.record.event).await?;
            }
        }
        Ok(records)
    }

    /// Redact a value with the ledger's engine and key, for what is kept beside the ledger
    /// (an approval request's before-state).
    pub fn redact_value(&self, value: &mut serde_json::Value) {
        let mut stats = RedactionStats::default();
        self.redactor.redact_json(value, &mut stats);
    }

    /// Values redacted from appended events since the ledger was opened.
    pub fn redacted_values(&self) -> u64 {
        self.redacted.load(Ordering::Relaxed)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Append one record and wait until it is durable. An error means the record was not
    /// written: the caller must not run the call it describes.
    ///
    /// Every event is redacted first (arguments, outputs, errors, reasons): this is the one
    /// path into storage, so nothing reaches the database, and nothing read back from it, in
    /// the clear.
    pub async fn append(&self, ts: String, mut event: LedgerEvent) -> Result<Appended, StoreError> {
        self.prepare(&ts, &mut event).await?;
        // Canonicalise in the caller's task, in parallel; the writer only links records.
        let event_json = canonical_json(&event)?;
        let decision_id = event.decision_id().map(str::to_string);
        let review = review_of(&event);
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(AppendRequest {
                ts,
                decision_id,
                event_json,
                review,
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

    /// Run the redaction engine over an event before it is serialised (every path to the
    /// store passes here).
    fn redact(&self, event: &mut LedgerEvent) {
        let mut stats = RedactionStats::default();
        self.redactor.redact_event(event, &mut stats);
        if stats.total() > 0 {
            self.redacted.fetch_add(stats.total(), Ordering::Relaxed);
        }
    }

    /// Queue a record for the next group commit without waiting for it to be durable. For
    /// records of what has already happened, such as the outcome of a call that ran: waiting
    /// would not change the fact, only delay the answer. When this returns the record is in
    /// the writer's queue, behind every record appended before it; [`Ledger::close`] commits
    /// the queue, and a failed commit is logged by the writer and marks the ledger unhealthy.
    pub async fn enqueue(&self, ts: String, mut event: LedgerEvent) -> Result<(), StoreError> {
        self.prepare(&ts, &mut event).await?;
        let event_json = canonical_json(&event)?;
        let decision_id = event.decision_id().map(str::to_string);
        let review = review_of(&event);
        let (reply, _ignored) = oneshot::channel();
        self.tx
            .send(AppendRequest {
                ts,
                decision_id,
                event_json,
                review,
                reply,
            })
            .await
            .map_err(|_| StoreError::WriterGone)
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
        let records = rows.iter().map(to_stored).collect::<Result<_, _>>()?;
        self.opened(records).await
    }

    /// Records after `seq`, oldest first (for following the ledger).
    pub async fn after(&self, seq: u64, limit: u32) -> Result<Vec<StoredRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT seq, hash, record FROM ledger WHERE seq > ? ORDER BY seq LIMIT ?")
                .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        let records = rows.iter().map(to_stored).collect::<Result<_, _>>()?;
        self.opened(records).await
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
        let records = rows.iter().map(to_stored).collect::<Result<_, _>>()?;
        self.opened(records).await
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
        let records = records
            .into_iter()
            .filter(|r| r.record.event.decision_id() == Some(id))
            .collect();
        self.opened(records).await
    }

    /// Wait until every record queued before this call is committed (or its commit failed).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(AppendRequest {
                ts: String::new(),
                decision_id: None,
                event_json: String::new(),
                review: None,
                reply,
            })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map(|_| ()).map_err(|_| StoreError::WriterGone)
    }

    /// The latest signed checkpoint stored.
    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        checkpoints::latest(&self.pool).await
    }

    /// Sign a checkpoint of every committed record now (or return the latest if nothing is
    /// new since). Fails when the ledger was opened without a signing key.
    pub async fn checkpoint_now(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let Some(cmds) = &self.checkpointer else {
            return Err(StoreError::NoSigner);
        };
        let (reply, rx) = oneshot::channel();
        cmds.send(CheckpointCmd::Now(reply))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await
            .map_err(|_| StoreError::WriterGone)?
            .map_err(StoreError::Verify)
    }

    /// The stored leaf hashes of records `1..=up_to`, in order (for proofs). Fails on a gap
    /// or a malformed hash.
    pub async fn leaf_hashes(&self, up_to: u64) -> Result<Vec<warden_verify::Hash>, StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<RowBatch, String>>(8);
            let reader = std::thread::spawn(move || read_rows(&path, 1, up_to, false, &tx));
            // `up_to` may come from a stored (so untrusted) checkpoint: no allocation on its word.
            let mut out = Vec::with_capacity(usize::try_from(up_to.min(1 << 20)).unwrap_or(0));
            for batch in &rx {
                for (seq, hash, _) in batch.map_err(StoreError::Verify)? {
                    let expected = out.len() as u64 + 1;
                    let leaf = std::str::from_utf8(&hash)
                        .ok()
                        .and_then(warden_verify::encoding::hash_from_hex);
                    match leaf {
                        Some(h) if u64::try_from(seq).ok() == Some(expected) => out.push(h),
                        _ => {
                            return Err(StoreError::Verify(format!(
                                "ledger record {expected} is missing or its hash is malformed; run `warden audit verify`"
                            )))
                        }
                    }
                }
            }
            let _ = reader.join();
            if (out.len() as u64) < up_to {
                return Err(StoreError::Verify(format!(
                    "the ledger holds {} records, fewer than {up_to}",
                    out.len()
                )));
            }
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::Verify(format!("reading leaf hashes failed: {e}")))?
    }

    /// Stream the stored bytes of records `first..=last` in order to `sink` (exports: the exact
    /// bytes each leaf hash covers).
    pub async fn export_raw(
        &self,
        first: u64,
        last: u64,
        mut sink: impl FnMut(u64, &[u8]) -> std::io::Result<()> + Send + 'static,
    ) -> Result<u64, StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<RowBatch, String>>(8);
            let reader = std::thread::spawn(move || read_rows(&path, first, last, true, &tx));
            let mut n = 0u64;
            for batch in &rx {
                for (seq, _, record) in batch.map_err(StoreError::Verify)? {
                    sink(u64::try_from(seq).unwrap_or(0), &record)
                        .map_err(|e| StoreError::Verify(format!("writing the export: {e}")))?;
                    n += 1;
                }
            }
            let _ = reader.join();
            Ok(n)
        })
        .await
        .map_err(|e| StoreError::Verify(format!("export failed: {e}")))?
    }

    /// The first and last sequence numbers of records whose time is in `[since, until)`
    /// (RFC 3339 text as stored), or `None` when there are none.
    pub async fn seq_range(
        &self,
        since: Option<&str>,
        until: Option<&str>,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let row = sqlx::query(
            "SELECT min(seq), max(seq) FROM ledger WHERE (?1 IS NULL OR json_extract(record, '$.ts') >= ?1) \
             AND (?2 IS NULL OR json_extract(record, '$.ts') < ?2)",
        )
        .bind(since)
        .bind(until)
        .fetch_one(&self.pool)
        .await?;
        let lo: Option<i64> = row.try_get(0)?;
        let hi: Option<i64> = row.try_get(1)?;
        Ok(match (lo, hi) {
            (Some(a), Some(b)) => {
                Some((u64::try_from(a).unwrap_or(0), u64::try_from(b).unwrap_or(0)))
            }
            _ => None,
        })
    }

    /// Stop accepting appends, wait for those in flight to commit and, when checkpoints are
    /// on, sign a final checkpoint over them.
    pub async fn close(self) {
        // Records queued without waiting (`enqueue`) are committed first.
        if let Err(error) = self.flush().await {
            warn!(message = "ledger queue not flushed at close", %error);
        }
        let Self {
            tx,
            pool,
            checkpointer,
            ..
        } = self;
        drop(tx);
        if let Some(cmds) = checkpointer {
            let (reply, rx) = oneshot::channel();
            if cmds.send(CheckpointCmd::Now(reply)).await.is_ok() {
                if let Ok(Err(error)) = rx.await {
                    warn!(message = "final ledger checkpoint failed", %error);
                }
            }
        }
        // The writer holds its own connection; closing the pool waits for readers.
        pool.close().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A batch of stored rows: (seq, hash column bytes, record column bytes).
type RowBatch = Vec<(i64, Vec<u8>, Vec<u8>)>;

/// Read every row of the ledger in order, in batches, on the calling thread.
fn read_rows(
    path: &Path,
    first: u64,
    last: u64,
    with_records: bool,
    out: &std::sync::mpsc::SyncSender<Result<RowBatch, String>>,
) {
    use rusqlite::types::ValueRef;
    use rusqlite::{Connection, OpenFlags};
    let run = || -> Result<(), String> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| e.to_string())?;
        let sql = if with_records {
            "SELECT seq, hash, record FROM ledger WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq"
        } else {
            "SELECT seq, hash, '' FROM ledger WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq"
        };
        let mut stmt = conn.prepare(sql).map_err(|e| e.to_string())?;
        let bound = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut rows = stmt
            .query(rusqlite::params![bound(first), bound(last)])
            .map_err(|e| e.to_string())?;
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
        .spawn(move || read_rows(&reader_path, 0, u64::MAX, true, &tx))
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
    /// Tells the checkpointer what is committed; woken every `every_records`.
    signal: Arc<CommitSignal>,
    every_records: u64,
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
        // Take the write lock, then seal onto the chain as it is stored: another process on
        // the same ledger (`warden mcp stdio` beside `warden serve`) may have appended since
        // this writer's last commit.
        let head = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut begin| begin.execute([]))
            .and_then(|_| writer_head(&conn));
        match head {
            Ok((s, h)) => {
                st.next_seq = s;
                st.prev_hash = h;
            }
            Err(error) => {
                let _ = conn.execute_batch("ROLLBACK");
                st.healthy.store(false, Ordering::Relaxed);
                warn!(message = "ledger write lock not taken; the calls it would record are denied", %error);
                let msg = error.to_string();
                for a in batch.drain(..) {
                    let _ = a.reply.send(Err(msg.clone()));
                }
                continue;
            }
        }
        // Seal each record onto the chain.
        let mut rows: Vec<PendingRow> = Vec::with_capacity(batch.len());
        let mut waiting: Vec<(oneshot::Sender<Result<Appended, String>>, Appended)> =
            Vec::with_capacity(batch.len());
        let mut seq = st.next_seq;
        let mut prev = st.prev_hash.clone();
        let mut bytes = 0u64;
        let mut barriers = Vec::new();
        for a in batch.drain(..) {
            if a.event_json.is_empty() {
                // A flush barrier: answered once what was queued before it is committed.
                barriers.push(a.reply);
                continue;
            }
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
                    let _ = a
                        .reply
                        .send(Err(format!("record could not be serialised: {e}")));
                }
            }
        }
        if rows.is_empty() {
            let _ = conn.execute_batch("ROLLBACK");
            for reply in barriers {
                let _ = reply.send(Err("flush".to_string()));
            }
            continue;
        }
        let committed = commit(&conn, &rows);
        for reply in barriers {
            let _ = reply.send(Err("flush".to_string()));
        }
        match committed {
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
                if total >= st.opts.wal_cap_bytes {
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
/// (the write lock is taken up front, so a commit never fails half-way for a lock).
fn commit(conn: &rusqlite::Connection, rows: &[PendingRow]) -> Result<(), rusqlite::Error> {
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
                if let Some((agent, tool)) = &r.review {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
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
/// every call (measured: most of the store's CPU under sequential calls).
async fn checkpointer(
    mut conn: SqliteConnection,
    wake: Arc<Notify>,
    written: Arc<AtomicU64>,
    alive: mpsc::WeakSender<AppendRequest>,
) {
    let mut seen = 0u64;
    loop {
        let over_cap = tokio::time::timeout(CHECKPOINT_IDLE, wake.notified())
            .await
            .is_ok();
        if alive.upgrade().is_none() {
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
