//! The ledger's records and hash chain.
//!
//! Each record is serialised as canonical JSON (RFC 8785, JSON Canonicalization Scheme) and
//! hashed as an RFC 6962 leaf: `SHA-256(0x00 || record)`. A record carries its sequence number
//! and the hash of the record before it (`prev_hash`; 64 zeros for the first), so changing,
//! removing or reordering any stored record breaks the chain at that point. The leaf hashes are
//! also what a Merkle tree over the ledger is built from (RFC 6962 §2.1).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::policy::Decision;

/// `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The RFC 6962 leaf-hash prefix.
const LEAF_PREFIX: u8 = 0x00;

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
    /// A person approved or denied a held call: the signed vote (approver, MFA, reason,
    /// argument hash, Ed25519 signature by Warden's key).
    ApprovalVote(ApprovalVoteEvent),
    /// A held call reached an end without running: expired (not approved).
    ApprovalExpired(ApprovalExpiredEvent),
    /// Alert: an approver's votes look like rubber-stamping (approval fatigue).
    ApprovalFatigue(ApprovalFatigueEvent),
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
            Self::ApprovalVote(_) => "approval_vote",
            Self::ApprovalExpired(_) => "approval_expired",
            Self::ApprovalFatigue(_) => "approval_fatigue",
        }
    }

    /// The decision a record is about, if any.
    pub fn decision_id(&self) -> Option<&str> {
        match self {
            Self::Decision(d) => Some(&d.decision_id),
            Self::Outcome(o) => Some(&o.decision_id),
            Self::ApprovalVote(v) => Some(&v.vote.statement.approval_id),
            Self::ApprovalExpired(e) => Some(&e.approval_id),
            Self::ToolPinned(_)
            | Self::ToolChanged(_)
            | Self::ToolApproved(_)
            | Self::Identity(_)
            | Self::AccessCertified(_)
            | Self::ApprovalFatigue(_) => None,
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

/// Canonical JSON (RFC 8785) of a record.
pub fn canonical_json<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    serde_jcs::to_string(value)
}

/// RFC 6962 leaf hash of canonical record bytes: `SHA-256(0x00 || bytes)`, hex.
pub fn leaf_hash(record_bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(record_bytes);
    hex::encode(h.finalize())
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

/// Where and why the chain broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ledger chain broken at record {seq}: {reason}")]
pub struct ChainBreak {
    /// The first sequence number that does not verify.
    pub seq: u64,
    pub reason: String,
}

/// The fields verification needs.
#[derive(Debug, PartialEq, Eq)]
struct ChainFields<'a> {
    seq: u64,
    prev_hash: &'a str,
}

/// Read `seq` and `prev_hash` from a record in Warden's canonical layout. RFC 8785 orders the
/// top-level members `event`, `prev_hash`, `seq`, `ts`, so they close the record:
/// `{"event":…,"prev_hash":"<64 hex>","seq":<n>,"ts":"<time>"}`. Reading the tail instead of
/// parsing the whole record keeps verification at hashing speed. Anything else — including
/// valid JSON in another layout — is `None`, which the verifier reports as a break: the writer
/// only ever writes this layout, and the record's bytes are what its hash covers.
fn chain_fields(record: &[u8]) -> Option<ChainFields<'_>> {
    let text = std::str::from_utf8(record).ok()?;
    if !text.starts_with("{\"event\":{") || !text.ends_with("\"}") {
        return None;
    }
    let ts_at = text.rfind(",\"ts\":\"")?;
    let ts = text.get(ts_at + 7..text.len() - 2)?;
    if ts.contains(['"', '\\']) {
        return None;
    }
    let head = text.get(..ts_at)?;
    let seq_at = head.rfind(",\"seq\":")?;
    let seq_text = head.get(seq_at + 7..)?;
    if seq_text.is_empty()
        || !seq_text.bytes().all(|b| b.is_ascii_digit())
        || (seq_text.len() > 1 && seq_text.starts_with('0'))
    {
        return None;
    }
    let seq = seq_text.parse().ok()?;
    let head = head.get(..seq_at)?;
    let prev_at = head.len().checked_sub(79)?;
    let tail = head.get(prev_at..)?;
    let prev_hash = tail.strip_prefix(",\"prev_hash\":\"")?.strip_suffix('"')?;
    if prev_hash.len() != 64 {
        return None;
    }
    // What remains is `{"event":{…}`: the event object must close right before the tail.
    if !head.get(..prev_at)?.ends_with('}') {
        return None;
    }
    Some(ChainFields { seq, prev_hash })
}

/// Streams stored rows through the chain check. Rows must be fed in storage order.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_seq: u64,
    prev_hash: [u8; 32],
    count: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

fn leaf_hash_bytes(record_bytes: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(record_bytes);
    h.finalize().into()
}

/// Decode a stored hash; only the lower-case hex Warden writes is accepted, so that any changed
/// byte (even `a` to `A`) is a mismatch.
fn decode_hash(hex_str: &str) -> Option<[u8; 32]> {
    if !hex_str
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_str, &mut out).ok()?;
    Some(out)
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self {
            expected_seq: 1,
            prev_hash: [0u8; 32],
            count: 0,
        }
    }

    /// Check one stored row: its `seq` column, its stored `hash` column and the record bytes.
    pub fn push(&mut self, row_seq: i64, row_hash: &str, record: &[u8]) -> Result<(), ChainBreak> {
        let expected = self.expected_seq;
        let fail = |seq: u64, reason: String| Err(ChainBreak { seq, reason });
        if row_seq != expected as i64 {
            if row_seq > expected as i64 {
                return fail(
                    expected,
                    format!("record {expected} is missing (the next stored record is {row_seq})"),
                );
            }
            return fail(
                expected,
                format!("stored sequence number {row_seq} where {expected} was expected"),
            );
        }
        let computed = leaf_hash_bytes(record);
        if decode_hash(row_hash) != Some(computed) {
            return fail(
                expected,
                "the record's content does not match its stored hash (content or hash altered)"
                    .to_string(),
            );
        }
        let Some(fields) = chain_fields(record) else {
            return fail(
                expected,
                "the record is not in the ledger's canonical form (content altered)".to_string(),
            );
        };
        if fields.seq != expected {
            return fail(
                expected,
                format!(
                    "the record says it is number {}, stored as {expected}",
                    fields.seq
                ),
            );
        }
        if decode_hash(fields.prev_hash) != Some(self.prev_hash) {
            return fail(
                expected,
                "the record does not link to the hash of the record before it (a record before it was altered, removed or inserted)"
                    .to_string(),
            );
        }
        self.prev_hash = computed;
        self.expected_seq += 1;
        self.count += 1;
        Ok(())
    }

    /// Records verified so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Hash (hex) of the last verified record: the chain head.
    pub fn head(&self) -> String {
        hex::encode(self.prev_hash)
    }
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
    fn chain_fields_read_the_canonical_tail_only() {
        let h = "ab".repeat(32);
        let ok = format!(
            r#"{{"event":{{"kind":"x","prev_hash":"zz"}},"prev_hash":"{h}","seq":12,"ts":"2026-11-25T00:00:00.000Z"}}"#
        );
        assert_eq!(
            chain_fields(ok.as_bytes()),
            Some(ChainFields {
                seq: 12,
                prev_hash: &h
            })
        );
        for bad in [
            ok.replace("\"seq\":12", "\"seq\":012"),
            ok.replace("\"seq\":12", "\"seq\":-1"),
            ok.replace("{\"event\":", "{ \"event\":"),
            ok.replace(&h, &h[..62]),
            format!("{ok} "),
            ok.replace(",\"ts\"", ",\"tz\""),
        ] {
            assert_eq!(chain_fields(bad.as_bytes()), None, "{bad}");
        }
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
