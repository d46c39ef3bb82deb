//! [`ApprovalStore`]: the queue of held calls and each person's vote. The checks (binding,
//! MFA, self-approval, signatures) live in the gateway; a store only keeps rows, with
//! conditional updates so two requests cannot both move one approval.

use async_trait::async_trait;

use crate::StoreError;

/// A held call as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ApprovalRow {
    /// The decision id of the held call.
    pub id: String,
    /// The agent that proposed it.
    pub agent: String,
    /// The person the agent acts for, if it said.
    pub on_behalf_of: Option<String>,
    /// The tool as the agent named it.
    pub tool: String,
    /// `server/name`.
    pub qualified_tool: String,
    /// The upstream server.
    pub upstream: String,
    /// The arguments (redacted; sealed at rest when the store seals payloads).
    #[sqlx(json)]
    pub arguments: serde_json::Value,
    /// The hash the approval is bound to.
    pub arguments_hash: String,
    /// Why it was held.
    #[sqlx(json)]
    pub reasons: Vec<String>,
    /// The policies that decided.
    #[sqlx(json)]
    pub policies: Vec<String>,
    /// `approve` or `two_person`.
    pub tier: String,
    /// Approvals needed.
    #[sqlx(try_from = "i64")]
    pub required: u32,
    /// The agent's session.
    pub session: Option<String>,
    /// The caller's correlation id.
    pub correlation_id: Option<String>,
    /// Which door it came through.
    pub source: String,
    /// What the call would change, read before it.
    #[sqlx(json(nullable))]
    pub before_state: Option<serde_json::Value>,
    /// `snapshot` (read by Warden through the card's snapshot read) or `caller` (reported by
    /// the agent's framework); `None` when there is no before-state.
    pub before_state_source: Option<String>,
    /// Why a configured snapshot read gave no before-state.
    pub before_state_error: Option<String>,
    /// The ledger record of the held decision.
    #[sqlx(try_from = "i64")]
    pub ledger_seq: u64,
    /// `pending`, `approved`, `denied` or `expired`.
    pub state: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix seconds, once settled.
    pub decided_at: Option<i64>,
    /// The denier's reason.
    pub deny_reason: Option<String>,
    /// Unix seconds, once the approved call ran.
    pub used_at: Option<i64>,
    /// Who ran it.
    pub used_by: Option<String>,
}

/// One person's vote as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct VoteRow {
    /// The request voted on.
    pub approval_id: String,
    /// Who voted.
    pub approver: String,
    /// `approve` or `deny`.
    pub verdict: String,
    /// Their reason.
    pub reason: Option<String>,
    /// Unix seconds.
    pub at: i64,
    /// Unix seconds of the TOTP check the vote was made with.
    pub mfa_at: i64,
    /// The ledger record of the signed vote.
    #[sqlx(try_from = "i64")]
    pub ledger_seq: u64,
}

/// Which approvals to list.
#[derive(Debug, Clone, Default)]
pub struct ApprovalFilter {
    /// In this state.
    pub state: Option<String>,
    /// Of this agent.
    pub agent: Option<String>,
    /// Of this tool (name or `server/name`).
    pub tool: Option<String>,
    /// At most this many (1..=1000).
    pub limit: u32,
}

/// The approval queue.
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Queue a held call (state `pending`). Refused for an agent whose records are kept in
    /// another region's store.
    async fn insert_approval(&self, a: &ApprovalRow) -> Result<(), StoreError>;

    /// A request by id.
    async fn approval(&self, id: &str) -> Result<Option<ApprovalRow>, StoreError>;

    /// Approvals matching a filter, newest first.
    async fn list_approvals(&self, f: &ApprovalFilter) -> Result<Vec<ApprovalRow>, StoreError>;

    /// The votes on a request, in order.
    async fn approval_votes(&self, id: &str) -> Result<Vec<VoteRow>, StoreError>;

    /// Every vote with the request's agent and creation time, for fatigue statistics.
    async fn all_votes(&self) -> Result<Vec<(VoteRow, String, i64)>, StoreError>;

    /// Store a vote and, when it settles the request, its new state — in one transaction,
    /// only while the request is still pending. `Ok(false)` if it was no longer pending or the
    /// person had already voted.
    async fn record_vote(
        &self,
        v: &VoteRow,
        settle: Option<&str>,
        deny_reason: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// Use an approved request for one execution. `Ok(true)` for exactly one caller: the
    /// request must be approved, unused and unexpired.
    async fn claim_approval(&self, id: &str, by: &str, now: i64) -> Result<bool, StoreError>;

    /// Give back a claim whose execution could not be recorded (the call did not run).
    async fn release_claim(&self, id: &str, by: &str) -> Result<bool, StoreError>;

    /// Requests past their expiry that are still pending, or approved but never used.
    async fn due_to_expire(&self, now: i64) -> Result<Vec<ApprovalRow>, StoreError>;

    /// Mark a request expired if it still may be. `Ok(true)` for exactly one caller.
    async fn mark_expired(&self, id: &str, now: i64) -> Result<bool, StoreError>;

    /// The newest live request of an agent for exactly this call (same tool, same argument
    /// hash): pending, or approved and not yet used. A retried MCP call waits on it instead of
    /// opening a second request.
    async fn live_approval_for(
        &self,
        agent: &str,
        qualified_tool: &str,
        arguments_hash: &str,
        now: i64,
    ) -> Result<Option<ApprovalRow>, StoreError>;
}
