//! Signed checkpoints of the ledger's Merkle tree, made off the commit path.
//!
//! A task of its own keeps the right edge of the tree ([`Frontier`]), reads the leaf hashes of
//! records committed since the last checkpoint (the writer only bumps a counter and, every
//! `every_records`, wakes it), signs a C2SP tlog-checkpoint note with the ledger key every
//! `every_records` records or `every` seconds, stores it in `ledger_checkpoints` and hands it
//! to the publisher (witnesses). The edge is stored with each checkpoint, so a restart resumes
//! without rehashing the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Row, SqlitePool};
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{info, warn};
use warden_verify::encoding::{hash_from_hex, hex_encode};
use warden_verify::{Checkpoint, Frontier, Hash, NoteSigner};

use crate::StoreError;

/// How checkpoints are made.
#[derive(Debug, Clone)]
pub struct CheckpointOptions {
    /// Signs the notes; its key name is the checkpoint's origin line.
    pub signer: Arc<NoteSigner>,
    /// A checkpoint after this many new records...
    pub every_records: u64,
    /// ... or after this long when any record is new.
    pub every: Duration,
    /// Receives each new checkpoint after it is stored (for witnesses).
    pub publish: Option<mpsc::UnboundedSender<StoredCheckpoint>>,
}

/// A checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub root: Hash,
    /// The signed note, as written to witnesses.
    pub note: String,
    /// Unix time in milliseconds.
    pub created_ms: i64,
}

/// Count-triggered checkpoints come at most this often (Tessera, for comparison, batches for
/// 250 ms and publishes checkpoints every few seconds).
const MIN_GAP: Duration = Duration::from_millis(250);

pub(crate) enum CheckpointCmd {
    /// Make a checkpoint of everything committed now (or return the latest if nothing is new).
    Now(oneshot::Sender<Result<Option<StoredCheckpoint>, String>>),
}

/// What the writer shares with the checkpointer.
#[derive(Debug, Default)]
pub(crate) struct CommitSignal {
    /// The last committed sequence number.
    pub committed: AtomicU64,
    pub wake: Notify,
}

pub(crate) async fn latest(pool: &SqlitePool) -> Result<Option<StoredCheckpoint>, StoreError> {
    let row = sqlx::query(
        "SELECT tree_size, root, note, created_ms FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        let size: i64 = r.try_get(0)?;
        let root: String = r.try_get(1)?;
        Ok(StoredCheckpoint {
            size: u64::try_from(size).unwrap_or(0),
            root: hash_from_hex(&root).ok_or_else(|| {
                StoreError::Verify(format!("checkpoint {size}: stored root is not a hash"))
            })?,
            note: r.try_get(2)?,
            created_ms: r.try_get(3)?,
        })
    })
    .transpose()
}

/// The right edge stored with the latest checkpoint, or the empty tree.
async fn stored_frontier(pool: &SqlitePool) -> Result<Frontier, StoreError> {
    let row = sqlx::query(
        "SELECT tree_size, root, frontier FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(Frontier::new());
    };
    let size: i64 = row.try_get(0)?;
    let root: String = row.try_get(1)?;
    let text: String = row.try_get(2)?;
    let hashes: Option<Vec<Hash>> = if text.is_empty() {
        Some(Vec::new())
    } else {
        text.split(',').map(hash_from_hex).collect()
    };
    let f = hashes
        .and_then(|h| Frontier::from_parts(u64::try_from(size).unwrap_or(0), h))
        .filter(|f| hash_from_hex(&root) == Some(f.root()));
    f.ok_or_else(|| {
        StoreError::Verify(format!(
            "the stored right edge of checkpoint {size} does not match its root; run `warden audit verify`"
        ))
    })
}

pub(crate) struct Checkpointer {
    pool: SqlitePool,
    opts: CheckpointOptions,
    frontier: Frontier,
    /// Size of the last stored checkpoint (`None` before the first).
    last_size: Option<u64>,
    signal: Arc<CommitSignal>,
}

impl Checkpointer {
    pub(crate) async fn start(
        pool: SqlitePool,
        opts: CheckpointOptions,
        signal: Arc<CommitSignal>,
    ) -> Result<mpsc::Sender<CheckpointCmd>, StoreError> {
        let frontier = stored_frontier(&pool).await?;
        let last_size = latest(&pool).await?.map(|c| c.size);
        let (tx, rx) = mpsc::channel(16);
        let task = Self {
            pool,
            opts,
            frontier,
            last_size,
            signal,
        };
        tokio::spawn(task.run(rx));
        Ok(tx)
    }

    async fn run(mut self, mut cmds: mpsc::Receiver<CheckpointCmd>) {
        let mut tick = tokio::time::interval(self.opts.every.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut last_made: Option<tokio::time::Instant> = None;
        // A count-triggered checkpoint held back by `MIN_GAP`, and when it is due.
        let mut deferred: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(CheckpointCmd::Now(reply)) => {
                        let made = self.make(true).await.map_err(|e| e.to_string());
                        let _ = reply.send(made);
                    }
                    None => {
                        // Every handle is gone; `Ledger::close` already made the final one
                        // unless the handles were only dropped.
                        if !self.pool.is_closed() {
                            if let Err(error) = self.make(false).await {
                                warn!(message = "final ledger checkpoint failed", %error);
                            }
                        }
                        break;
                    }
                },
                // The writer wakes this task each time the committed count crosses a
                // multiple of `every_records`; under heavy load, at most one such checkpoint
                // per `MIN_GAP` (the next wake or the timer covers what is skipped).
                () = self.signal.wake.notified() => {
                    if self.signal.committed.load(Ordering::Acquire) > self.frontier.size() {
                        match last_made {
                            Some(t) if t.elapsed() < MIN_GAP => {
                                deferred.get_or_insert(t + MIN_GAP);
                            }
                            _ => {
                                self.make_logged().await;
                                last_made = Some(tokio::time::Instant::now());
                                deferred = None;
                            }
                        }
                    }
                }
                () = tokio::time::sleep_until(deferred.unwrap_or_else(tokio::time::Instant::now)), if deferred.is_some() => {
                    deferred = None;
                    self.make_logged().await;
                    last_made = Some(tokio::time::Instant::now());
                }
                _ = tick.tick() => {
                    if self.signal.committed.load(Ordering::Acquire) > self.frontier.size() {
                        self.make_logged().await;
                    }
                }
            }
        }
    }

    async fn make_logged(&mut self) {
        if let Err(error) = self.make(false).await {
            warn!(message = "ledger checkpoint failed; will retry", %error);
        }
    }

    /// Extend the tree with every committed record and sign a checkpoint if it grew (or, when
    /// `force`, return the latest one even if nothing is new).
    async fn make(&mut self, force: bool) -> Result<Option<StoredCheckpoint>, StoreError> {
        let mut grown = self.frontier.clone();
        loop {
            let after = i64::try_from(grown.size()).unwrap_or(i64::MAX);
            let rows =
                sqlx::query("SELECT seq, hash FROM ledger WHERE seq > ? ORDER BY seq LIMIT 65536")
                    .bind(after)
                    .fetch_all(&self.pool)
                    .await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let seq: i64 = r.try_get(0)?;
                let hash: String = r.try_get(1)?;
                let expected = grown.size() + 1;
                if u64::try_from(seq).ok() != Some(expected) {
                    return Err(StoreError::Verify(format!(
                        "ledger record {expected} is missing (found {seq}); no checkpoint is signed over a gap"
                    )));
                }
                let leaf = hash_from_hex(&hash).ok_or_else(|| {
                    StoreError::Verify(format!("ledger record {seq}: stored hash is malformed"))
                })?;
                grown.push(leaf);
            }
        }
        if self.last_size == Some(grown.size()) {
            self.frontier = grown;
            return if force {
                latest(&self.pool).await
            } else {
                Ok(None)
            };
        }
        if grown.size() == 0 && !force {
            return Ok(None);
        }
        let cp = Checkpoint {
            origin: self.opts.signer.name().to_string(),
            size: grown.size(),
            root: grown.root(),
            extensions: Vec::new(),
        };
        let note = cp
            .sign(&self.opts.signer)
            .map_err(|e| StoreError::Verify(format!("signing the checkpoint: {e}")))?;
        let created_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let edge: Vec<String> = grown.hashes().iter().map(|h| hex_encode(h)).collect();
        sqlx::query(
            "INSERT OR IGNORE INTO ledger_checkpoints (tree_size, root, note, frontier, created_ms) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(i64::try_from(cp.size).unwrap_or(i64::MAX))
        .bind(hex_encode(&cp.root))
        .bind(&note)
        .bind(edge.join(","))
        .bind(created_ms)
        .execute(&self.pool)
        .await?;
        self.frontier = grown;
        self.last_size = Some(cp.size);
        let stored = StoredCheckpoint {
            size: cp.size,
            root: cp.root,
            note,
            created_ms,
        };
        info!(message = "ledger checkpoint", size = cp.size, root = %hex_encode(&cp.root));
        if let Some(p) = &self.opts.publish {
            let _ = p.send(stored.clone());
        }
        Ok(Some(stored))
    }
}
