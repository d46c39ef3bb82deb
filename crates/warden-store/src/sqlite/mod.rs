//! The SQLite store (WAL): one writer thread with group commit ([`writer`]), a WAL
//! checkpointer in idle gaps, signed Merkle checkpoints ([`checkpoints`]), a reader pool
//! ([`reads`]), a verifier on its own read-only handle ([`verify`]), the payload vault
//! ([`vault`]), and the tables beside the ledger ([`identity`], [`approvals`], [`pins`],
//! [`lifecycle`], [`sessions`]).

mod approvals;
mod checkpoints;
mod identity;
mod lifecycle;
mod pins;
mod reads;
mod sessions;
mod vault;
mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection as _};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};
use warden_core::clock::Clock;
use warden_core::config::Durability;
use warden_core::ledger::{canonical_json, LedgerEvent, GENESIS_HASH};
use warden_core::redact::{RedactionStats, Redactor};
use warden_verify::Hash;

use self::checkpoints::{CheckpointCmd, Checkpointer, CommitSignal};
use self::vault::Vault;
use self::writer::{AppendRequest, WriterMsg};
use crate::ledger::{ExportSink, Progress};
use crate::{
    Appended, LedgerLog, Residency, SearchFilter, StoreError, StoreOptions, StoredCheckpoint,
    StoredRecord, VerifyReport,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The SQLite implementation of every store trait. [`crate::Store`] holds it behind an `Arc`.
pub(crate) struct SqliteStore {
    /// The writer's queue.
    tx: mpsc::Sender<WriterMsg>,
    pool: SqlitePool,
    /// Whether the last commit succeeded.
    healthy: Arc<AtomicBool>,
    /// Set by `close`: the WAL checkpointer stops.
    closed: Arc<AtomicBool>,
    /// Wakes the WAL checkpointer.
    wal_wake: Arc<tokio::sync::Notify>,
    path: PathBuf,
    blocked_cache: pins::BlockedCache,
    checkpointer: Option<mpsc::Sender<CheckpointCmd>>,
    redactor: Redactor,
    redacted: AtomicU64,
    vault: Option<Vault>,
    residency: Option<Residency>,
    clock: Clock,
}

/// A redactor with a random key, for stores opened without one.
fn ephemeral_redactor() -> Result<Redactor, StoreError> {
    use rand::RngCore as _;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    Ok(Redactor::new(&key)?)
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
        StoreError::io(
            format!("cannot create the store directory {}", parent.display()),
            e,
        )
    })
}

fn connect_options(path: &Path, durability: Durability) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match durability {
            Durability::Process => SqliteSynchronous::Normal,
            Durability::Fsync => SqliteSynchronous::Full,
        })
        .busy_timeout(Duration::from_secs(5))
        // Checkpoints run off the commit path (see `writer::wal_checkpointer`).
        .pragma("wal_autocheckpoint", "0")
        // Keep up to 64 MiB of the WAL file after a checkpoint resets it: rewriting allocated blocks is
        // much cheaper than growing the file again (ext4 zeroes every new block).
        .pragma("journal_size_limit", "67108864")
        // Statement journals of multi-row inserts stay in memory, not in temporary files.
        .pragma("temp_store", "memory")
        .disable_statement_logging()
}

/// The next sequence number and the hash of the last record.
async fn chain_head(conn: &mut SqliteConnection) -> Result<(u64, String), StoreError> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match row {
        Some((seq, hash)) => (u64::try_from(seq).unwrap_or(0) + 1, hash),
        None => (1, GENESIS_HASH.to_string()),
    })
}

/// A sequence number as SQLite stores it.
pub(crate) fn seq_param(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A call allowed at tier `review` goes to the review queue: (agent, tool).
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

impl SqliteStore {
    /// Open (creating and migrating if needed) the store at `path`.
    pub(crate) async fn open(path: &Path, mut opts: StoreOptions) -> Result<Self, StoreError> {
        let checkpoint_opts = opts.checkpoints.take();
        let residency = opts.residency.take();
        let redactor = match opts.redactor.take() {
            Some(r) => r,
            None => ephemeral_redactor()?,
        };
        let clock = opts.clock.clone();
        create_store_dir(path)?;
        let connect = connect_options(path, opts.durability);
        let mut setup = connect.connect().await?;
        MIGRATOR.run(&mut setup).await?;
        let (next_seq, prev_hash) = chain_head(&mut setup).await?;
        setup.close().await?;
        let writer_conn = writer::open_writer(path, opts.durability)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(connect.clone())
            .await?;
        let vault = match opts.vault.take() {
            Some(v) => Some(Vault::open(pool.clone(), v, clock.clone()).await?),
            None => None,
        };
        let wal_conn = connect.connect().await?;
        let (tx, rx) = mpsc::channel(opts.max_batch.max(1) * 64);
        let healthy = Arc::new(AtomicBool::new(true));
        let closed = Arc::new(AtomicBool::new(false));
        let wal_wake = Arc::new(tokio::sync::Notify::new());
        let written = Arc::new(AtomicU64::new(0));
        let signal = Arc::new(CommitSignal::default());
        signal
            .committed
            .store(next_seq.saturating_sub(1), Ordering::Release);
        let every_records = checkpoint_opts
            .as_ref()
            .map_or(u64::MAX, |c| c.every_records.max(1));
        let signed_checkpoints = match checkpoint_opts {
            Some(c) => Some(
                Checkpointer::start(pool.clone(), c, Arc::clone(&signal), clock.clone()).await?,
            ),
            None => None,
        };
        tokio::spawn(writer::wal_checkpointer(
            wal_conn,
            Arc::clone(&wal_wake),
            Arc::clone(&written),
            Arc::clone(&closed),
            tx.downgrade(),
        ));
        let state = writer::WriterState {
            next_seq,
            prev_hash,
            max_batch: opts.max_batch.max(1),
            wal_cap_bytes: opts.wal_cap_bytes,
            healthy: Arc::clone(&healthy),
            written,
            signal,
            every_records,
            clock: clock.clone(),
        };
        std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer::write_thread(writer_conn, rx, state))
            .map_err(|e| StoreError::io("cannot start the ledger writer", e))?;
        info!(message = "ledger open", path = %path.display(), next_seq);
        Ok(Self {
            tx,
            pool,
            healthy,
            closed,
            wal_wake,
            path: path.to_path_buf(),
            blocked_cache: pins::BlockedCache::default(),
            checkpointer: signed_checkpoints,
            redactor,
            redacted: AtomicU64::new(0),
            vault,
            residency,
            clock,
        })
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Refuse anything about an agent whose records are kept in another region's store.
    pub(crate) fn check_residency(&self, agent: &str) -> Result<(), StoreError> {
        match &self.residency {
            Some(r) => r.check(agent),
            None => Ok(()),
        }
    }

    /// Redact, then seal: what every event goes through before it is serialised. A record
    /// about an agent kept in another region is refused first.
    async fn prepare(&self, ts: &str, event: &mut LedgerEvent) -> Result<(), StoreError> {
        if let Some(agent) = event.agent() {
            self.check_residency(agent)?;
        }
        // The subject is read from the arguments before redaction replaces them.
        let subject = self.vault.as_ref().and_then(|v| v.subject_of(event));
        let mut stats = RedactionStats::default();
        self.redactor.redact_event(event, &mut stats);
        if stats.total() > 0 {
            self.redacted.fetch_add(stats.total(), Ordering::Relaxed);
        }
        if let Some(v) = &self.vault {
            v.seal(ts, event, subject).await?;
        }
        Ok(())
    }

    /// Prepare an event and hand it to the writer; `reply` hears when it is durable.
    async fn submit(
        &self,
        ts: String,
        mut event: LedgerEvent,
        reply: oneshot::Sender<Result<Appended, StoreError>>,
    ) -> Result<(), StoreError> {
        self.prepare(&ts, &mut event).await?;
        // Canonicalise in the caller's task, in parallel; the writer only links records.
        let event_json = canonical_json(&event)?;
        let request = AppendRequest {
            ts,
            decision_id: event.decision_id().map(str::to_string),
            event_json,
            review: review_of(&event),
            reply,
        };
        self.tx
            .send(WriterMsg::Append(request))
            .await
            .map_err(|_| StoreError::WriterGone)
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
}

#[async_trait]
impl LedgerLog for SqliteStore {
    async fn append(&self, ts: String, event: LedgerEvent) -> Result<Appended, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.submit(ts, event, reply).await?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    async fn enqueue(&self, ts: String, event: LedgerEvent) -> Result<(), StoreError> {
        let (reply, _ignored) = oneshot::channel();
        self.submit(ts, event, reply).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(WriterMsg::Flush(reply))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)
    }

    fn redact_value(&self, value: &mut serde_json::Value) {
        let mut stats = RedactionStats::default();
        self.redactor.redact_json(value, &mut stats);
    }

    fn redacted_values(&self) -> u64 {
        self.redacted.load(Ordering::Relaxed)
    }

    fn seals_payloads(&self) -> bool {
        self.vault.is_some()
    }

    fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed) && !self.tx.is_closed()
    }

    async fn ready(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        if self.is_healthy() {
            Ok(())
        } else {
            Err(StoreError::WriterGone)
        }
    }

    async fn count(&self) -> Result<u64, StoreError> {
        reads::count(self).await
    }

    async fn tail(&self, n: u32) -> Result<Vec<StoredRecord>, StoreError> {
        reads::tail(self, n).await
    }

    async fn after(&self, seq: u64, limit: u32) -> Result<Vec<StoredRecord>, StoreError> {
        reads::after(self, seq, limit).await
    }

    async fn search(&self, filter: &SearchFilter) -> Result<Vec<StoredRecord>, StoreError> {
        reads::search(self, filter).await
    }

    async fn records_of_decision(&self, id: &str) -> Result<Vec<StoredRecord>, StoreError> {
        reads::records_of_decision(self, id).await
    }

    async fn session_outputs(
        &self,
        session: &str,
        before_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        reads::session_outputs(self, session, before_seq, limit).await
    }

    async fn vote_records(&self) -> Result<Vec<(u64, String)>, StoreError> {
        reads::vote_records(self).await
    }

    async fn decision_usage(&self, since: &str) -> Result<Vec<(String, String, u64)>, StoreError> {
        reads::decision_usage(self, since).await
    }

    async fn seq_range(
        &self,
        since: Option<&str>,
        until: Option<&str>,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        reads::seq_range(self, since, until).await
    }

    async fn verify(&self, progress: Progress) -> Result<VerifyReport, StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || verify::verify_file(&path, progress)).await?
    }

    async fn leaf_hashes(&self, up_to: u64) -> Result<Vec<Hash>, StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || verify::leaf_hashes(&path, up_to)).await?
    }

    async fn export_raw(&self, first: u64, last: u64, sink: ExportSink) -> Result<u64, StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || verify::export_raw(&path, first, last, sink)).await?
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        checkpoints::latest(&self.pool).await
    }

    async fn checkpoint_now(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let Some(cmds) = &self.checkpointer else {
            return Err(StoreError::NoSigner);
        };
        let (reply, rx) = oneshot::channel();
        cmds.send(CheckpointCmd::Now(reply))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    async fn close(&self) {
        // Everything queued before this (appended or `enqueue`d) is committed first, then the
        // writer thread stops and closes its connection.
        let (reply, rx) = oneshot::channel();
        if self.tx.send(WriterMsg::Stop(reply)).await.is_err() || rx.await.is_err() {
            warn!(message = "ledger writer already stopped at close");
        }
        self.closed.store(true, Ordering::Release);
        self.wal_wake.notify_one();
        if let Some(cmds) = &self.checkpointer {
            let (reply, rx) = oneshot::channel();
            if cmds.send(CheckpointCmd::Now(reply)).await.is_ok() {
                if let Ok(Err(error)) = rx.await {
                    warn!(message = "final ledger checkpoint failed", %error);
                }
            }
        }
        // The writer had its own connection; closing the pool waits for readers.
        self.pool.close().await;
    }
}
