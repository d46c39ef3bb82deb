//! [`LedgerLog`]: everything about ledger records — append, read and search, verify, proofs,
//! signed checkpoints — and the types it hands out.

use async_trait::async_trait;
use warden_core::ledger::{ChainBreak, LedgerEvent, LedgerRecord};
use warden_verify::Hash;

use crate::StoreError;

/// Where an appended record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Its sequence number (the first record is 1).
    pub seq: u64,
    /// Its RFC 6962 leaf hash, hex.
    pub hash: String,
}

/// A record as stored, its sealed payloads opened where the keys still exist.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredRecord {
    /// Its sequence number.
    #[sqlx(try_from = "i64")]
    pub seq: u64,
    /// The stored leaf hash, hex.
    pub hash: String,
    /// The record, parsed from its canonical JSON.
    #[sqlx(json)]
    pub record: LedgerRecord,
}

/// The result of a full verification.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// Records that verified before the first break (all of them when there is none).
    pub verified: u64,
    /// Hash of the last verified record.
    pub head: String,
    /// The first record that does not verify, and why.
    pub first_break: Option<ChainBreak>,
}

/// What to look for in `warden audit search`.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    /// Records about this agent.
    pub agent: Option<String>,
    /// The tool's name or `server/name`.
    pub tool: Option<String>,
    /// RFC 3339 timestamp; records at or after it.
    pub since: Option<String>,
    /// Records about this decision.
    pub decision_id: Option<String>,
    /// At most this many (the newest), returned oldest first.
    pub limit: u32,
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The tree size it covers.
    pub size: u64,
    /// The Merkle root (RFC 9162 §2.1.1) over records `1..=size`.
    pub root: Hash,
    /// The signed note, as written to witnesses.
    pub note: String,
    /// Unix time in milliseconds, from the store's clock.
    pub created_ms: i64,
}

/// Reports verification progress: called with the count of records verified so far.
pub type Progress = Box<dyn FnMut(u64) + Send>;

/// Receives exported records: the sequence number and the stored bytes the leaf hash covers.
pub type ExportSink = Box<dyn FnMut(u64, &[u8]) -> std::io::Result<()> + Send>;

/// The ledger: an append-only, hash-chained log of records with signed checkpoints.
///
/// Every event is redacted (and, with a master key, its payloads sealed) before it is stored:
/// [`LedgerLog::append`] and [`LedgerLog::enqueue`] are the one path into storage. Records
/// read back have their sealed payloads opened where the keys still exist.
#[async_trait]
pub trait LedgerLog: Send + Sync {
    // ---- writing ---------------------------------------------------------------------------

    /// Append one record and wait until it is durable. An error means the record was not
    /// written: the caller must not run the call it describes.
    async fn append(&self, ts: String, event: LedgerEvent) -> Result<Appended, StoreError>;

    /// Queue a record for the next group commit without waiting for it to be durable. For
    /// records of what has already happened, such as the outcome of a call that ran: waiting
    /// would not change the fact, only delay the answer. When this returns the record is
    /// queued behind every record appended before it; [`LedgerLog::close`] commits the queue,
    /// and a failed commit is logged and marks the ledger unhealthy.
    async fn enqueue(&self, ts: String, event: LedgerEvent) -> Result<(), StoreError>;

    /// Wait until every record queued before this call is committed (or its commit failed).
    async fn flush(&self) -> Result<(), StoreError>;

    /// Redact a value with the ledger's engine and key, for what is kept beside the ledger
    /// (an approval request's before-state).
    fn redact_value(&self, value: &mut serde_json::Value);

    /// Values redacted from appended events since the ledger was opened.
    fn redacted_values(&self) -> u64;

    /// Whether payloads are sealed (a master key was given).
    fn seals_payloads(&self) -> bool;

    // ---- health ----------------------------------------------------------------------------

    /// Whether the last commit succeeded and the writer is running.
    fn is_healthy(&self) -> bool;

    /// Readiness: the database answers and the writer is healthy.
    async fn ready(&self) -> Result<(), StoreError>;

    // ---- reading ---------------------------------------------------------------------------

    /// Number of records.
    async fn count(&self) -> Result<u64, StoreError>;

    /// The last `n` records, oldest first.
    async fn tail(&self, n: u32) -> Result<Vec<StoredRecord>, StoreError>;

    /// Records after `seq`, oldest first (for following the ledger).
    async fn after(&self, seq: u64, limit: u32) -> Result<Vec<StoredRecord>, StoreError>;

    /// Records matching a filter, oldest first, at most `filter.limit`.
    async fn search(&self, filter: &SearchFilter) -> Result<Vec<StoredRecord>, StoreError>;

    /// All records about one decision (its decision record, then any outcome).
    async fn records_of_decision(&self, id: &str) -> Result<Vec<StoredRecord>, StoreError>;

    /// What the agent saw: outcome records of earlier calls in the same session, before the
    /// record at `before_seq`, oldest first (at most `limit`).
    async fn session_outputs(
        &self,
        session: &str,
        before_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError>;

    /// Every `approval_vote` record as stored (seq, canonical record text), oldest first, for
    /// checking each vote's signature (`warden audit verify`). Read from the ledger itself, so
    /// a vote cannot hide by losing its row in the approval tables.
    async fn vote_records(&self) -> Result<Vec<(u64, String)>, StoreError>;

    /// Decision records since `since` (RFC 3339), counted by (agent, tool as recorded:
    /// `qualified_tool` when the card grants it, else the name used).
    async fn decision_usage(&self, since: &str) -> Result<Vec<(String, String, u64)>, StoreError>;

    /// The first and last sequence numbers of records whose time is in `[since, until)`
    /// (RFC 3339 text as stored), or `None` when there are none.
    async fn seq_range(
        &self,
        since: Option<&str>,
        until: Option<&str>,
    ) -> Result<Option<(u64, u64)>, StoreError>;

    // ---- verification and proofs -----------------------------------------------------------

    /// Recompute the whole chain, in order, from the stored bytes. `progress` is called with
    /// the count so far every 50,000 records.
    async fn verify(&self, progress: Progress) -> Result<VerifyReport, StoreError>;

    /// The stored leaf hashes of records `1..=up_to`, in order (for proofs). Fails on a gap
    /// or a malformed hash.
    async fn leaf_hashes(&self, up_to: u64) -> Result<Vec<Hash>, StoreError>;

    /// Stream the stored bytes of records `first..=last` in order to `sink` (exports: the
    /// exact bytes each leaf hash covers). Returns how many were written.
    async fn export_raw(&self, first: u64, last: u64, sink: ExportSink) -> Result<u64, StoreError>;

    // ---- checkpoints -----------------------------------------------------------------------

    /// The latest signed checkpoint stored.
    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError>;

    /// Sign a checkpoint of every committed record now (or return the latest if nothing is
    /// new since). Fails with [`StoreError::NoSigner`] when opened without a signing key.
    async fn checkpoint_now(&self) -> Result<Option<StoredCheckpoint>, StoreError>;

    // ---- closing ---------------------------------------------------------------------------

    /// Stop accepting appends, commit those queued and, when checkpoints are on, sign a final
    /// checkpoint over them. Appends after this fail with [`StoreError::WriterGone`].
    async fn close(&self);
}
