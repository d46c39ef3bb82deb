//! [`PinStore`]: tool pins (first-seen definition hashes of upstream tools, rug-pull
//! detection) and the after-the-fact review queue of calls allowed at tier `review`.

use async_trait::async_trait;
use warden_core::ledger::ReviewEvent;

use crate::StoreError;

/// What comparing an announced definition with its pin found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinCheck {
    /// Never seen before; pinned now.
    New,
    /// Same as the pin.
    Same,
    /// Different from an approved pin: the tool is blocked from now on.
    Changed {
        /// The pinned hash it differs from.
        previous: String,
    },
    /// Already blocked, awaiting review.
    Blocked,
}

/// A pin as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Pin {
    /// The upstream server.
    pub server: String,
    /// The tool's name on it.
    pub tool: String,
    /// The pinned definition's hash.
    pub hash: String,
    /// Blocked until a person approves the new definition.
    pub blocked: bool,
    /// The announced definition's hash, while blocked.
    pub new_hash: Option<String>,
    /// RFC 3339.
    pub updated_at: String,
    /// The pinned definition, canonical JSON.
    pub definition: String,
    /// The announced definition that blocked it, while blocked.
    pub new_definition: Option<String>,
}

/// One queued review of a call allowed at tier `review`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReviewRow {
    /// The decision reviewed.
    pub decision_id: String,
    /// Its ledger record.
    #[sqlx(try_from = "i64")]
    pub seq: u64,
    /// The agent that made the call.
    pub agent: String,
    /// The tool (`server/name` when the card grants it).
    pub tool: String,
    /// Unix seconds when the call was allowed (and ran).
    pub created_at: i64,
    /// Unix seconds, once reviewed.
    pub reviewed_at: Option<i64>,
    /// Who reviewed it.
    pub reviewer: Option<String>,
    /// Their verdict.
    pub verdict: Option<String>,
    /// Their note.
    pub note: Option<String>,
}

/// Tool pins and the review queue.
#[async_trait]
pub trait PinStore: Send + Sync {
    // ---- pins ------------------------------------------------------------------------------

    /// Compare an announced tool definition hash with its pin, pinning it if new and blocking
    /// the tool if it changed. `now` is RFC 3339.
    async fn check_pin(
        &self,
        server: &str,
        tool: &str,
        hash: &str,
        definition: &str,
        now: &str,
    ) -> Result<PinCheck, StoreError>;

    /// Whether a tool is blocked by its pin (unknown tools are not). A block made through this
    /// handle applies at once; one made by another process within about a second.
    async fn is_blocked(&self, server: &str, tool: &str) -> Result<bool, StoreError>;

    /// Every pin, blocked ones first.
    async fn pins(&self) -> Result<Vec<Pin>, StoreError>;

    /// Approve the announced definition of a blocked tool: it becomes the pin. Returns
    /// `(previous, approved)` hashes, or `None` if the tool is not blocked.
    async fn approve_pin(
        &self,
        server: &str,
        tool: &str,
        now: &str,
    ) -> Result<Option<(String, String)>, StoreError>;

    // ---- the review queue (rows added with the decision record) ---------------------------

    /// Reviews, oldest first: only those still open unless `all`.
    async fn reviews(&self, all: bool, limit: u32) -> Result<Vec<ReviewRow>, StoreError>;

    /// One review by decision id.
    async fn review(&self, id: &str) -> Result<Option<ReviewRow>, StoreError>;

    /// Record a person's review: the queue row is closed only if it was open, and then the
    /// `call_reviewed` record is appended (at `ts`). Returns the record's seq, or `None` if the
    /// call was already reviewed (or is not in the queue).
    async fn record_review(
        &self,
        review: ReviewEvent,
        now: i64,
        ts: String,
    ) -> Result<Option<u64>, StoreError>;

    /// Record a `review_overdue` alert (at `ts`), once, for each open review older than the
    /// deadline. Returns how many were recorded.
    async fn alert_overdue_reviews(
        &self,
        now: i64,
        deadline_hours: u64,
        ts: &str,
    ) -> Result<u32, StoreError>;
}
