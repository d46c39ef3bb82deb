//! The ledger's records and hash chain.
//!
//! Each record is serialised as canonical JSON (RFC 8785, JSON Canonicalization Scheme) and
//! hashed as an RFC 6962 leaf: `SHA-256(0x00 || record)`. A record carries its sequence number
//! and the hash of the record before it (`prev_hash`; 64 zeros for the first), so changing,
//! removing or reordering any stored record breaks the chain at that point. The leaf hashes are
//! also what a Merkle tree over the ledger is built from (RFC 6962 §2.1).
//!
//! The hashing, the chain check and the Merkle proofs live in the `warden-verify` crate, which
//! the standalone verifier is built from: one implementation for writer and verifier.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::policy::Decision;

pub use warden_verify::chain::{ChainBreak, ChainVerifier, GENESIS_HASH};

/// What happened, one typed struct per kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LedgerEvent {
    /// A proposed call and the decision on it. Written, and durable, before the call may run.
    Decision(Box<DecisionEvent>),
    /// What happened when an allowed call ran.
    Outcome(OutcomeEvent),
    /// A tool definition seen for the first time and pinned.
    ToolPinned(ToolEvent),
    /// Alert: a pinned tool's definition changed; the tool is blocked until approved.
    ToolChanged(ToolEvent),
    /// A person approved a changed tool definition; the new one is pinned.
    ToolApproved(ToolEvent),
    /// An identity event: a token issued or revoked, a client added, a login or failed login,
    /// an MFA enrolment, break-glass use, a secret stored. Never carries a secret value.
    Identity(IdentityEvent),
    /// An owner's sign-off on an agent's access after a review.
    AccessCertified(CertificationEvent),
    /// Alert: the injection detector found instructions in an untrusted tool output; the
    /// session is now `suspicious`.
    InjectionDetected(InjectionEvent),
    /// A person approved or denied a held call: the signed vote (approver, MFA, reason,
    /// argument hash, Ed25519 signature by Warden's key).
    ApprovalVote(ApprovalVoteEvent),
    /// A held call reached an end without running: expired (not approved).
    ApprovalExpired(ApprovalExpiredEvent),
    /// Alert: an approver's votes look like rubber-stamping (approval fatigue).
    ApprovalFatigue(ApprovalFatigueEvent),
    /// Retention destroyed the keys of payloads past their retention (crypto-shredding):
    /// the records stay, and verify, but their payloads cannot be read any more.
    RetentionPurged(RetentionEvent),
    /// A data subject's key was destroyed (erasure request, offboarding): every payload
    /// sealed for that subject is unreadable; the records stay, and verify.
    SubjectErased(ErasureEvent),
    /// Warden read the before-state of a held call through the scope card's snapshot read.
    SnapshotRead(SnapshotReadEvent),
    /// A person reviewed, after the fact, a call that ran at tier `review`.
    CallReviewed(ReviewEvent),
    /// Alert: a call that ran at tier `review` was not reviewed by its deadline.
    ReviewOverdue(ReviewOverdueEvent),
}

impl LedgerEvent {
    /// The agent a record is about, when it is about one agent: data residency keeps such a
    /// record in the agent's region. Tool pins, approver alerts and lifecycle records belong
    /// to the store they are made in.
    pub fn agent(&self) -> Option<&str> {
        match self {
            LedgerEvent::Decision(d) => Some(&d.agent),
            LedgerEvent::Outcome(o) => Some(&o.agent),
            LedgerEvent::Identity(i)
                if i.action.starts_with("token_") || i.action.starts_with("client_") =>
            {
                Some(&i.subject)
            }
            LedgerEvent::AccessCertified(c) => Some(&c.agent),
            LedgerEvent::InjectionDetected(i) => Some(&i.agent),
            LedgerEvent::ApprovalVote(v) => Some(&v.vote.statement.agent),
            LedgerEvent::ApprovalExpired(e) => Some(&e.agent),
            LedgerEvent::SnapshotRead(s) => Some(&s.agent),
            LedgerEvent::CallReviewed(r) => Some(&r.agent),
            LedgerEvent::ReviewOverdue(r) => Some(&r.agent),
            LedgerEvent::ToolPinned(_)
            | LedgerEvent::ToolChanged(_)
            | LedgerEvent::ToolApproved(_)
            | LedgerEvent::Identity(_)
            | LedgerEvent::ApprovalFatigue(_)
            | LedgerEvent::RetentionPurged(_)
            | LedgerEvent::SubjectErased(_) => None,
        }
    }
}

/// An after-the-fact review of a call allowed at tier `review`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewEvent {
    pub decision_id: String,
    pub agent: String,
    pub tool: String,
    pub reviewer: String,
    /// `ok`, or `flagged` (the call should not have run; follow up).
    pub verdict: String,
    pub note: String,
    /// Unix seconds of the reviewer's TOTP verification.
    pub mfa_at: i64,
}

/// A review past its deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewOverdueEvent {
    pub decision_id: String,
    pub agent: String,
    pub tool: String,
    /// Unix seconds.
    pub ran_at: i64,
    pub deadline_hours: u64,
    pub severity: String,
}

/// One run of the retention job that destroyed keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionEvent {
    /// Each destroyed period key: id, agent, data classes, day, the retention applied.
    pub keys: Vec<PurgedKey>,
    /// Records whose payloads were sealed with those keys.
    pub records: u64,
    /// The time the retention was evaluated at (RFC 3339); normally the run's own time.
    pub as_of: String,
    /// Who ran it: `serve` (the scheduled job) or `cli:<os user>`.
    pub actor: String,
}

/// A period key destroyed by retention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PurgedKey {
    pub key_id: String,
    pub agent: String,
    pub classes: Vec<String>,
    /// The day (`YYYY-MM-DD`, UTC) whose payloads the key sealed.
    pub day: String,
    pub retention_days: u32,
}

/// An erasure of a data subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErasureEvent {
    /// The subject's pseudonymous reference (keyed HMAC); the subject itself is not stored.
    pub subject_ref: String,
    /// The subject keys destroyed.
    pub keys: Vec<String>,
    /// Records whose payloads were sealed for the subject.
    pub records: u64,
    pub actor: String,
    /// Why (a ticket, "DSAR", "offboarding").
    pub reason: String,
}

/// A snapshot read Warden ran (with its own upstream credentials) when a call was held: the
/// read tool, its arguments, and the before-state it returned or why it is unavailable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotReadEvent {
    /// The held call (its approval request).
    pub approval_id: String,
    pub agent: String,
    /// The read tool, `server/name`.
    pub tool: String,
    pub arguments: Value,
    /// `success` or `error`.
    pub status: String,
    /// The before-state (redacted like every stored value); null when unavailable.
    pub before_state: Value,
    /// Why the before-state is unavailable, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: Option<u64>,
}

/// One approver's signed vote on a held call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalVoteEvent {
    #[serde(flatten)]
    pub vote: crate::approval::SignedVote,
    /// The request's state after this vote (`pending`, `approved`, `denied`).
    pub state_after: String,
}

/// A request that expired before enough people approved it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalExpiredEvent {
    pub approval_id: String,
    pub agent: String,
    pub tool: String,
    pub arguments_hash: String,
    /// Always `expired, not approved`.
    pub outcome: String,
    pub expired_at: i64,
}

/// Rubber-stamp alert for one approver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalFatigueEvent {
    pub approver: String,
    pub votes: u32,
    pub approvals: u32,
    pub quick_approvals: u32,
    pub median_secs_to_decide: f64,
    pub severity: String,
}

/// Who did what to which identity. Secrets never appear: only ids and hash prefixes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityEvent {
    /// `token_issued`, `token_revoked`, `client_added`, `client_token_issued`, `login`,
    /// `login_failed`, `logout`, `user_added`, `user_disabled`, `mfa_enrolled`,
    /// `step_up`, `break_glass_sealed`, `break_glass_used`, `secret_set`, `master_key_rotated`.
    pub action: String,
    /// Who acted: a user name, `cli:<os user>`, an OAuth client id, or `break-glass:<id>`.
    pub actor: String,
    /// What it was about: an agent id, a user name, a secret name.
    pub subject: String,
    /// `info`, or `high` for alerts (break-glass use, lock-outs).
    pub severity: String,
    /// True when the action was taken with the break-glass credential.
    #[serde(default)]
    pub break_glass: bool,
    /// Non-secret particulars: token id, expiry, tool subset, hash prefix, reason of failure.
    #[serde(default)]
    pub details: Value,
}

/// A reviewer certified that an agent's access is still needed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificationEvent {
    pub agent: String,
    /// The user who signed off, and their role.
    pub by: String,
    pub role: String,
    /// SHA-256 (hex) of the scope card file as certified.
    pub card_hash: String,
    /// The card's tools (`server/name`) at the time.
    pub tools: Vec<String>,
    /// Tools unused in the review window when certified.
    pub unused: Vec<String>,
    /// The review window, in days.
    pub window_days: u32,
    /// Whether the reviewer proved presence with a TOTP code.
    pub mfa: bool,
}

/// The injection detector fired on a tool output (see `crate::injection`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjectionEvent {
    /// The decision whose outcome carried the output.
    pub decision_id: String,
    pub agent: String,
    pub session: Option<String>,
    /// `server/name`.
    pub tool: String,
    /// Ledger sequence number of the outcome record that carried the output.
    pub outcome_seq: u64,
    /// The session's taint before and after (`clean`/`untrusted`/`suspicious`).
    pub taint_before: String,
    pub taint_after: String,
    /// Each finding: rule id, byte span in the output's text, excerpt.
    pub findings: Vec<crate::injection::Finding>,
}

/// A tool definition event (tool pinning).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolEvent {
    /// The upstream, as named in `warden.toml`.
    pub server: String,
    pub tool: String,
    /// Hash of the definition now pinned or now announced.
    pub hash: String,
    /// The hash pinned before, for changes and approvals.
    pub previous_hash: Option<String>,
    /// Who or what made the change (`gateway`, or the approver).
    pub actor: String,
}

impl LedgerEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Decision(_) => "decision",
            Self::Outcome(_) => "outcome",
            Self::ToolPinned(_) => "tool_pinned",
            Self::ToolChanged(_) => "tool_changed",
            Self::ToolApproved(_) => "tool_approved",
            Self::Identity(_) => "identity",
            Self::AccessCertified(_) => "access_certified",
            Self::InjectionDetected(_) => "injection_detected",
            Self::ApprovalVote(_) => "approval_vote",
            Self::ApprovalExpired(_) => "approval_expired",
            Self::ApprovalFatigue(_) => "approval_fatigue",
            Self::RetentionPurged(_) => "retention_purged",
            Self::SubjectErased(_) => "subject_erased",
            Self::SnapshotRead(_) => "snapshot_read",
            Self::CallReviewed(_) => "call_reviewed",
            Self::ReviewOverdue(_) => "review_overdue",
        }
    }

    /// The decision a record is about, if any.
    pub fn decision_id(&self) -> Option<&str> {
        match self {
            Self::Decision(d) => Some(&d.decision_id),
            Self::Outcome(o) => Some(&o.decision_id),
            Self::InjectionDetected(i) => Some(&i.decision_id),
            Self::ApprovalVote(v) => Some(&v.vote.statement.approval_id),
            Self::ApprovalExpired(e) => Some(&e.approval_id),
            Self::SnapshotRead(r) => Some(&r.approval_id),
            Self::CallReviewed(r) => Some(&r.decision_id),
            Self::ReviewOverdue(r) => Some(&r.decision_id),
            Self::ToolPinned(_)
            | Self::ToolChanged(_)
            | Self::ToolApproved(_)
            | Self::Identity(_)
            | Self::AccessCertified(_)
            | Self::ApprovalFatigue(_)
            | Self::RetentionPurged(_)
            | Self::SubjectErased(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionEvent {
    pub decision_id: String,
    pub agent: String,
    pub environment: String,
    /// The tool as the agent named it.
    pub tool: String,
    /// `server/name` when the scope card grants the tool.
    pub qualified_tool: Option<String>,
    pub arguments: Value,
    pub session: Option<String>,
    /// The ticket or request id the caller passed, linking the call to its business reason.
    pub correlation_id: Option<String>,
    /// Where the proposal came from (`api`, `demo`, `mcp-stdio`).
    pub source: String,
    /// The JSON-RPC id of the MCP `tools/call` request, when the call came over MCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_request_id: Option<Value>,
    /// The user's own request as the caller declared it (trusted input), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_request: Option<String>,
    pub decision: Decision,
    /// The approval this call runs under (the id of the held proposal), when it is the
    /// execution of an approved call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// The person on whose behalf the agent acts, when the caller named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeEvent {
    pub decision_id: String,
    pub agent: String,
    pub tool: String,
    pub correlation_id: Option<String>,
    /// `success` or `error`.
    pub status: String,
    /// The tool's output, cut to the configured bound.
    pub output: Value,
    /// Size of the output as reported, in bytes of JSON.
    pub output_bytes: u64,
    /// True when `output` was cut to the bound; the full output was not kept.
    pub output_truncated: bool,
    pub duration_ms: Option<u64>,
}

/// One ledger record: what is hashed and stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerRecord {
    pub seq: u64,
    pub prev_hash: String,
    /// RFC 3339 UTC timestamp, millisecond precision, fixed width (sorts as text).
    pub ts: String,
    pub event: LedgerEvent,
}

pub use crate::canonical::canonical_json;

/// RFC 6962 leaf hash of canonical record bytes: `SHA-256(0x00 || bytes)`, hex.
pub fn leaf_hash(record_bytes: &[u8]) -> String {
    hex::encode(warden_verify::merkle::leaf_hash(record_bytes))
}

/// Serialise and hash a record. Returns (canonical JSON, leaf hash).
pub fn seal(record: &LedgerRecord) -> Result<(String, String), serde_json::Error> {
    let json = canonical_json(record)?;
    let hash = leaf_hash(json.as_bytes());
    Ok((json, hash))
}

/// Canonical JSON of a record from its parts, where `event_json` is the canonical JSON of
/// the event (from [`canonical_json`]). Byte-identical to `canonical_json(&LedgerRecord{..})`:
/// RFC 8785 orders the members `event`, `prev_hash`, `seq`, `ts`. This lets callers
/// canonicalise events in parallel while the single writer only links them.
pub fn assemble_record(
    seq: u64,
    prev_hash: &str,
    ts: &str,
    event_json: &str,
) -> Result<String, serde_json::Error> {
    let ts = serde_jcs::to_string(ts)?;
    let prev = serde_jcs::to_string(prev_hash)?;
    let mut out = String::with_capacity(event_json.len() + prev.len() + ts.len() + 48);
    out.push_str("{\"event\":");
    out.push_str(event_json);
    out.push_str(",\"prev_hash\":");
    out.push_str(&prev);
    out.push_str(",\"seq\":");
    out.push_str(&seq.to_string());
    out.push_str(",\"ts\":");
    out.push_str(&ts);
    out.push('}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_hash_uses_rfc6962_prefix() {
        // SHA-256 of the single byte 0x00 — the RFC 6962 hash of an empty leaf.
        assert_eq!(
            leaf_hash(b""),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn assembled_records_equal_canonical_records() {
        let event = LedgerEvent::Outcome(OutcomeEvent {
            decision_id: "d\u{e9}\"1".into(),
            agent: "a".into(),
            tool: "t".into(),
            correlation_id: None,
            status: "success".into(),
            output: serde_json::json!({"z": 1.5, "a": [true, null, "x\ny"], "prev_hash": "inner"}),
            output_bytes: 3,
            output_truncated: false,
            duration_ms: Some(7),
        });
        let record = LedgerRecord {
            seq: 42,
            prev_hash: GENESIS_HASH.to_string(),
            ts: "2026-11-25T00:00:00.000Z".into(),
            event: event.clone(),
        };
        let whole = canonical_json(&record).unwrap();
        let parts = assemble_record(
            42,
            GENESIS_HASH,
            &record.ts,
            &canonical_json(&event).unwrap(),
        )
        .unwrap();
        assert_eq!(whole, parts);
    }

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let v: Value = serde_json::from_str(r#"{ "b": 1, "a": [1.0, "x"] }"#).unwrap();
        assert_eq!(canonical_json(&v).unwrap(), r#"{"a":[1,"x"],"b":1}"#);
    }
}
