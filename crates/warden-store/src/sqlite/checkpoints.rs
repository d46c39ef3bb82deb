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

use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{info, warn};
use warden_core::clock::Clock;
use warden_verify::encoding::{hash_from_hex, hex_encode};
use warden_verify::{Checkpoint, Frontier, Hash};

use super::seq_param;
use crate::{CheckpointOptions, StoreError, StoredCheckpoint};

/// Count-triggered checkpoints come at most this often (Tessera, for comparison, batches for
/// 250 ms and publishes checkpoints every few seconds).
const MIN_GAP: Duration = Duration::from_millis(250);

pub(crate) enum CheckpointCmd {
    /// Make a checkpoint of everything committed now (or return the latest if nothing is new).
    Now(oneshot::Sender<Result<Option<StoredCheckpoint>, StoreError>>),
}

/// What the writer shares with the checkpointer.
#[derive(Debug, Default)]
pub(crate) struct CommitSignal {
    /// The last committed sequence number.
    pub committed: AtomicU64,
    pub wake: Notify,
}

/// A stored checkpoint row: (tree_size, root hex, note, created_ms).
type CheckpointRow = (i64, String, String, i64);

pub(crate) async fn latest(pool: &SqlitePool) -> Result<Option<StoredCheckpoint>, StoreError> {
    // Hand-mapped, not `FromRow`: the root is stored as hex and must parse as a hash.
    let row: Option<CheckpointRow> = sqlx::query_as(
        "SELECT tree_size, root, note, created_ms FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    row.map(|(size, root, note, created_ms)| {
        let size = u64::try_from(size).unwrap_or(0);
        Ok(StoredCheckpoint {
            size,
            root: hash_from_hex(&root).ok_or(StoreError::BadCheckpoint {
                size,
                what: "the stored root is not a hash",
            })?,
            note,
            created_ms,
        })
    })
    .transpose()
}

/// The right edge stored with the latest checkpoint, or the empty tree.
async fn stored_frontier(pool: &SqlitePool) -> Result<Frontier, StoreError> {
    let row: Option<(i64, String, String)> = sqlx::query_as(
        "SELECT tree_size, root, frontier FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    let Some((size, root, text)) = row else {
        return Ok(Frontier::new());
    };
    let size = u64::try_from(size).unwrap_or(0);
    let hashes: Option<Vec<Hash>> = if text.is_empty() {
        Some(Vec::new())
    } else {
        text.split(',').map(hash_from_hex).collect()
    };
    let f = hashes
        .and_then(|h| Frontier::from_parts(size, h))
        .filter(|f| hash_from_hex(&root) == Some(f.root()));
    f.ok_or(StoreError::BadCheckpoint {
        size,
        what: "the stored right edge does not match its root",
    })
}

pub(crate) struct Checkpointer {
    pool: SqlitePool,
    opts: CheckpointOptions,
    frontier: Frontier,
    /// Size of the last stored checkpoint (`None` before the first).
    last_size: Option<u64>,
    signal: Arc<CommitSignal>,
    /// The checkpoints' `created_ms`.
    clock: Clock,
}

impl Checkpointer {
    pub(crate) async fn start(
        pool: SqlitePool,
        opts: CheckpointOptions,
        signal: Arc<CommitSignal>,
        clock: Clock,
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
            clock,
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
                        let made = self.make(true).await;
                        let _ = reply.send(made);
                    }
                    None => {
                        // Every handle is gone; `close` already made the final one
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
            let rows: Vec<(i64, String)> = sqlx::query_as(
                "SELECT seq, hash FROM ledger WHERE seq > ? ORDER BY seq LIMIT 65536",
            )
            .bind(seq_param(grown.size()))
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                break;
            }
            for (seq, hash) in &rows {
                let expected = grown.size() + 1;
                let found = u64::try_from(*seq).unwrap_or(0);
                if found != expected {
                    return Err(StoreError::Gap { expected, found });
                }
                let leaf = hash_from_hex(hash).ok_or(StoreError::BadRecord { seq: found })?;
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
        let note = cp.sign(&self.opts.signer).map_err(StoreError::Sign)?;
        let created_ms = self.clock.unix_ms();
        let edge: Vec<String> = grown.hashes().iter().map(|h| hex_encode(h)).collect();
        sqlx::query(
            "INSERT OR IGNORE INTO ledger_checkpoints (tree_size, root, note, frontier, created_ms) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(seq_param(cp.size))
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
