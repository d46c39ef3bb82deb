//! Human approvals, the pure parts: settings, the argument hash an approval is bound to, the
//! signed statement of an approver's vote (signed with the ledger's key), the parsers of the
//! votes people send over the network, the before-state a snapshot read returns and its diff
//! against the proposed call, and approval-fatigue statistics.
//!
//! No I/O: the gateway passes in times, identities and the signing key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use warden_verify::{NoteSigner, NoteVerifier};

use crate::ledger::canonical_json;

/// `[approvals]` in `warden.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// A pending request expires this long after it was made, in seconds (default 1 h).
    #[serde(default = "default_expiry")]
    pub expiry_secs: u64,
    /// How long a held MCP `tools/call` waits for a decision before answering "pending
    /// approval <id>, retry later", in seconds (default 20).
    #[serde(default = "default_hold")]
    pub hold_secs: u64,
    /// An approver's TOTP verification (login or step-up) must be at most this old when they
    /// vote, in seconds (default 300).
    #[serde(default = "default_mfa_max_age")]
    pub mfa_max_age_secs: u64,
    /// When true (default), the person on whose behalf the agent acted (`on_behalf_of`) and
    /// the owners listed on the agent's scope card (`[owners]`) cannot vote on its requests.
    /// The requesting principal itself (a person named like the agent) never can.
    #[serde(default = "default_true")]
    pub forbid_self_approval: bool,
    /// While an MCP `tools/call` that carries a `progressToken` is held, Warden sends a
    /// `notifications/progress` this often, in seconds (default 5; the first at once).
    #[serde(default = "default_progress")]
    pub progress_secs: u64,
    /// A Slack-compatible incoming webhook; each new request is posted as `{"text": …}`
    /// with the tool, agent, id and a link — never argument values.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// The gateway's public base URL for links (default `http://<listen>`).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Fatigue: a vote faster than this counts as a quick approval (default 3 s).
    #[serde(default = "default_quick")]
    pub quick_secs: u64,
    /// Fatigue: raise an alert when an approver has at least `fatigue_min_votes` votes and
    /// this share or more of their approvals were quick (default 0.5).
    #[serde(default = "default_quick_share")]
    pub fatigue_quick_share: f64,
    #[serde(default = "default_min_votes")]
    pub fatigue_min_votes: u32,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        Self {
            expiry_secs: default_expiry(),
            hold_secs: default_hold(),
            mfa_max_age_secs: default_mfa_max_age(),
            forbid_self_approval: true,
            progress_secs: default_progress(),
            webhook_url: None,
            public_url: None,
            quick_secs: default_quick(),
            fatigue_quick_share: default_quick_share(),
            fatigue_min_votes: default_min_votes(),
        }
    }
}

fn default_expiry() -> u64 {
    3600
}
fn default_hold() -> u64 {
    20
}
fn default_mfa_max_age() -> u64 {
    300
}
fn default_progress() -> u64 {
    5
}
fn default_true() -> bool {
    true
}
fn default_quick() -> u64 {
    3
}
fn default_quick_share() -> f64 {
    0.5
}
fn default_min_votes() -> u32 {
    5
}

/// SHA-256 (hex) of the canonical JSON (RFC 8785) of a call's arguments. An approval is bound
/// to this hash: a call with any other arguments needs a new approval.
pub fn arguments_hash(args: &Value) -> String {
    let text = canonical_json(args).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Approvals needed for a tier (`two_person` → 2, otherwise 1).
pub fn required_approvals(tier: crate::Tier) -> u32 {
    match tier {
        crate::Tier::TwoPerson => 2,
        _ => 1,
    }
}

/// What an approver signed off: every field of an approval or denial record except the
/// signature. The signature is Ed25519 over the canonical JSON (RFC 8785) of this struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoteStatement {
    /// The approval request (the id of the held decision).
    pub approval_id: String,
    /// `approve` or `deny`.
    pub verdict: String,
    /// The person who voted, and their role.
    pub approver: String,
    pub role: String,
    /// MFA at vote time: method and when the TOTP code was verified (Unix seconds).
    pub mfa: MfaAssertion,
    /// Required for denials and for `two_person` approvals.
    pub reason: Option<String>,
    pub agent: String,
    pub tool: String,
    /// SHA-256 of the canonical arguments the vote is bound to.
    pub arguments_hash: String,
    pub tier: String,
    /// When the vote was made (Unix seconds).
    pub at: i64,
    /// The signing key (C2SP key name and key id).
    pub key_name: String,
    pub key_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaAssertion {
    /// `totp` (RFC 6238).
    pub method: String,
    pub verified: bool,
    /// Unix seconds of the TOTP verification this vote relies on.
    pub verified_at: i64,
    /// Seconds between that verification and the vote.
    pub age_secs: i64,
}

/// A signed vote: the statement and the base64 Ed25519 signature over its canonical JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedVote {
    #[serde(flatten)]
    pub statement: VoteStatement,
    pub signature: String,
}

/// What every vote signature starts with: a context string of its own (domain separation).
/// The message is this prefix and the canonical JSON of the statement, which never ends in a
/// newline, so a vote signature cannot pass as a signature of a checkpoint note made with the
/// same ledger key, nor the other way round.
pub const VOTE_SIGNING_CONTEXT: &str = "warden/approval-vote/v1\n";

fn vote_message(statement: &VoteStatement) -> Result<String, String> {
    let text = canonical_json(statement).map_err(|e| e.to_string())?;
    Ok(format!("{VOTE_SIGNING_CONTEXT}{text}"))
}

/// Sign a vote statement with the ledger's key (Ed25519, the key that signs the ledger's
/// checkpoints). The statement's `key_name` and `key_id` are set to that key's.
pub fn sign_vote(mut statement: VoteStatement, key: &NoteSigner) -> Result<SignedVote, String> {
    use base64::Engine as _;
    statement.key_name = key.name().to_string();
    statement.key_id = hex::encode(key.key_id());
    let message = vote_message(&statement)?;
    let sig = key.sign_detached(message.as_bytes());
    Ok(SignedVote {
        statement,
        signature: base64::engine::general_purpose::STANDARD.encode(sig),
    })
}

/// Check a signed vote against the ledger's verifier key: the statement must name that key
/// and the signature must verify over the statement.
pub fn verify_vote(vote: &SignedVote, key: &NoteVerifier) -> bool {
    use base64::Engine as _;
    if vote.statement.key_name != key.name() || vote.statement.key_id != hex::encode(key.key_id()) {
        return false;
    }
    let Ok(message) = vote_message(&vote.statement) else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&vote.signature) else {
        return false;
    };
    key.verify_detached(message.as_bytes(), &bytes)
}

// ---- votes from the network ------------------------------------------------------------

/// Largest vote body accepted (JSON or form), in bytes.
pub const MAX_VOTE_BODY: usize = 16 * 1024;
/// Longest reason accepted, in characters.
pub const MAX_REASON_CHARS: usize = 2000;

/// `approve` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VoteVerdict {
    Approve,
    Deny,
}

impl VoteVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "approve" => Some(Self::Approve),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }
}

/// What a person sends with a vote, checked: a reason (trimmed, at most
/// [`MAX_REASON_CHARS`] characters, no control or bidirectional-override characters besides
/// line breaks and tabs) and a step-up one-time code (6 to 8 ASCII digits). Empty means absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VoteInput {
    pub reason: Option<String>,
    pub totp: Option<String>,
}

/// The approve/deny form of the web UI, parsed. The CSRF field and the action are checked by
/// the caller (the session check comes first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VoteForm {
    pub csrf: Option<String>,
    pub action: Option<VoteVerdict>,
    pub input: VoteInput,
}

/// Why a vote body was refused; the text is safe to show (it never quotes the body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteParseError {
    #[error("the vote body is larger than {MAX_VOTE_BODY} bytes")]
    TooLarge,
    #[error("the body must be JSON: {{\"reason\": \"…\", \"totp\": \"123456\"}} ({0})")]
    Json(String),
    #[error("the form field `{0}` is repeated")]
    Repeated(String),
    #[error("the form has an unknown field `{0}`")]
    UnknownField(String),
    #[error("`action` must be `approve` or `deny`")]
    BadAction,
    #[error("the reason may have at most {MAX_REASON_CHARS} characters")]
    ReasonTooLong,
    #[error("the reason may not hold control or bidirectional-override characters")]
    ReasonCharacters,
    #[error("the one-time code must be 6 to 8 digits")]
    BadTotp,
}

fn check_reason(raw: Option<String>) -> Result<Option<String>, VoteParseError> {
    let Some(raw) = raw else { return Ok(None) };
    let r = raw.trim();
    if r.is_empty() {
        return Ok(None);
    }
    if r.chars().count() > MAX_REASON_CHARS {
        return Err(VoteParseError::ReasonTooLong);
    }
    let bad = |c: char| {
        (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if r.chars().any(bad) {
        return Err(VoteParseError::ReasonCharacters);
    }
    Ok(Some(r.to_string()))
}

fn check_totp(raw: Option<String>) -> Result<Option<String>, VoteParseError> {
    let Some(raw) = raw else { return Ok(None) };
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if !(6..=8).contains(&t.len()) || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VoteParseError::BadTotp);
    }
    Ok(Some(t.to_string()))
}

/// Parse the JSON body of `POST /v1/approvals/{id}/approve|deny`: empty, or
/// `{"reason": …, "totp": …}` (both optional strings or null; no other members).
pub fn parse_vote_json(body: &[u8]) -> Result<VoteInput, VoteParseError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        totp: Option<String>,
    }
    if body.len() > MAX_VOTE_BODY {
        return Err(VoteParseError::TooLarge);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(VoteInput::default());
    }
    let b: Body = serde_json::from_slice(body).map_err(|e| {
        // Say what was wrong without quoting the body.
        let what = match e.classify() {
            serde_json::error::Category::Data => {
                "only `reason` and `totp` are accepted, each once, as strings"
            }
            _ => "not valid JSON",
        };
        VoteParseError::Json(format!(
            "{what}, at line {} column {}",
            e.line(),
            e.column()
        ))
    })?;
    Ok(VoteInput {
        reason: check_reason(b.reason)?,
        totp: check_totp(b.totp)?,
    })
}

/// Parse the UI's vote form (`application/x-www-form-urlencoded`): `csrf`, `action`,
/// `reason`, `totp`, each at most once and nothing else.
pub fn parse_vote_form(body: &[u8]) -> Result<VoteForm, VoteParseError> {
    if body.len() > MAX_VOTE_BODY {
        return Err(VoteParseError::TooLarge);
    }
    let mut seen: Vec<String> = Vec::new();
    let mut form = VoteForm::default();
    let (mut reason, mut totp) = (None, None);
    for (k, v) in form_urlencoded::parse(body) {
        if seen.iter().any(|s| s == k.as_ref()) {
            return Err(VoteParseError::Repeated(printable(&k)));
        }
        seen.push(k.to_string());
        match k.as_ref() {
            "csrf" => form.csrf = Some(v.into_owned()),
            "action" => {
                form.action = Some(VoteVerdict::parse(&v).ok_or(VoteParseError::BadAction)?);
            }
            "reason" => reason = Some(v.into_owned()),
            "totp" => totp = Some(v.into_owned()),
            other => return Err(VoteParseError::UnknownField(printable(other))),
        }
    }
    form.input = VoteInput {
        reason: check_reason(reason)?,
        totp: check_totp(totp)?,
    };
    Ok(form)
}

/// A field name for an error message: at most 32 characters, control characters dropped.
fn printable(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(32).collect()
}

// ---- before-state ----------------------------------------------------------------------

/// The before-state in a snapshot read's `tools/call` result: its `structuredContent` when
/// present, else the JSON of its one text item (or the text itself), else its content list.
/// A result marked `isError` is an `Err` with its text (at most 500 characters).
pub fn snapshot_state(result: &Value) -> Result<Value, String> {
    let content = result.get("content").and_then(Value::as_array);
    let texts: Vec<&str> = content
        .map(|c| {
            c.iter()
                .filter(|i| i.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|i| i.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        let text = texts.join(" ");
        let text: String = text.chars().take(500).collect();
        return Err(if text.is_empty() {
            "the read tool reported an error".to_string()
        } else {
            format!("the read tool reported an error: {text}")
        });
    }
    if let Some(s) = result.get("structuredContent").filter(|v| !v.is_null()) {
        return Ok(s.clone());
    }
    match (texts.as_slice(), content) {
        ([one], Some(c)) if c.len() == 1 => Ok(serde_json::from_str::<Value>(one)
            .unwrap_or_else(|_| Value::String((*one).to_string()))),
        (_, Some(c)) => Ok(Value::Array(c.clone())),
        (_, None) => Err("the read returned no content".to_string()),
    }
}

/// How one field compares between the before-state and the proposed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldChange {
    /// In both, with different values: the call would change it.
    Changes,
    /// In both, equal.
    Same,
    /// In the before-state only: the call does not name it.
    Kept,
    /// In the call only.
    New,
}

/// One row of the before-state → proposed change diff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffRow {
    pub field: String,
    pub before: Option<Value>,
    pub proposed: Option<Value>,
    pub change: FieldChange,
}

/// Compare a before-state with a call's arguments field by field (top-level members matched
/// by name): the before-state's fields in order, then the arguments it does not have. Empty
/// when either is not a JSON object.
pub fn state_diff(before: &Value, proposed: &Value) -> Vec<DiffRow> {
    let (Some(b), Some(p)) = (before.as_object(), proposed.as_object()) else {
        return Vec::new();
    };
    let mut rows = Vec::with_capacity(b.len() + p.len());
    for (k, bv) in b {
        let (proposed, change) = match p.get(k) {
            Some(pv) if pv == bv => (Some(pv.clone()), FieldChange::Same),
            Some(pv) => (Some(pv.clone()), FieldChange::Changes),
            None => (None, FieldChange::Kept),
        };
        rows.push(DiffRow {
            field: k.clone(),
            before: Some(bv.clone()),
            proposed,
            change,
        });
    }
    for (k, pv) in p {
        if !b.contains_key(k) {
            rows.push(DiffRow {
                field: k.clone(),
                before: None,
                proposed: Some(pv.clone()),
                change: FieldChange::New,
            });
        }
    }
    rows
}

/// One vote, for fatigue statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct VoteSample {
    pub approver: String,
    pub agent: String,
    pub approved: bool,
    /// Seconds from the request (or from when the approver first could see it) to the vote.
    pub secs_to_decide: f64,
}

/// Fatigue figures for one approver or one agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FatigueStats {
    pub votes: u32,
    pub approvals: u32,
    /// approvals / votes.
    pub approval_rate: f64,
    pub median_secs_to_decide: f64,
    /// Approvals made faster than the quick threshold.
    pub quick_approvals: u32,
}

fn stats_of(samples: &[&VoteSample], quick_secs: f64) -> FatigueStats {
    let votes = u32::try_from(samples.len()).unwrap_or(u32::MAX);
    let approvals = u32::try_from(samples.iter().filter(|s| s.approved).count()).unwrap_or(0);
    let quick = samples
        .iter()
        .filter(|s| s.approved && s.secs_to_decide < quick_secs)
        .count();
    let mut times: Vec<f64> = samples.iter().map(|s| s.secs_to_decide).collect();
    times.sort_by(f64::total_cmp);
    let median = match times.len() {
        0 => 0.0,
        n if n % 2 == 1 => times.get(n / 2).copied().unwrap_or(0.0),
        n => {
            let a = times.get(n / 2 - 1).copied().unwrap_or(0.0);
            let b = times.get(n / 2).copied().unwrap_or(0.0);
            (a + b) / 2.0
        }
    };
    FatigueStats {
        votes,
        approvals,
        approval_rate: if votes == 0 {
            0.0
        } else {
            f64::from(approvals) / f64::from(votes)
        },
        median_secs_to_decide: median,
        quick_approvals: u32::try_from(quick).unwrap_or(u32::MAX),
    }
}

/// Per-approver and per-agent fatigue statistics.
pub fn fatigue(
    samples: &[VoteSample],
    quick_secs: u64,
) -> (
    BTreeMap<String, FatigueStats>,
    BTreeMap<String, FatigueStats>,
) {
    let q = quick_secs as f64;
    let mut by_approver: BTreeMap<String, Vec<&VoteSample>> = BTreeMap::new();
    let mut by_agent: BTreeMap<String, Vec<&VoteSample>> = BTreeMap::new();
    for s in samples {
        by_approver.entry(s.approver.clone()).or_default().push(s);
        by_agent.entry(s.agent.clone()).or_default().push(s);
    }
    (
        by_approver
            .into_iter()
            .map(|(k, v)| (k, stats_of(&v, q)))
            .collect(),
        by_agent
            .into_iter()
            .map(|(k, v)| (k, stats_of(&v, q)))
            .collect(),
    )
}

/// Whether an approver's figures look like rubber-stamping under the configured thresholds.
pub fn rubber_stamping(stats: &FatigueStats, cfg: &ApprovalsConfig) -> bool {
    stats.votes >= cfg.fatigue_min_votes
        && stats.approvals > 0
        && f64::from(stats.quick_approvals) / f64::from(stats.approvals.max(1))
            >= cfg.fatigue_quick_share
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hash_ignores_member_order_but_not_values() {
        let a = arguments_hash(&json!({"a": 1, "b": "x"}));
        let b = arguments_hash(&json!({"b": "x", "a": 1}));
        let c = arguments_hash(&json!({"b": "x", "a": 2}));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    fn statement() -> VoteStatement {
        VoteStatement {
            approval_id: "a".into(),
            verdict: "approve".into(),
            approver: "ann".into(),
            role: "approver".into(),
            mfa: MfaAssertion {
                method: "totp".into(),
                verified: true,
                verified_at: 10,
                age_secs: 2,
            },
            reason: None,
            agent: "crm".into(),
            tool: "payments/issue_refund".into(),
            arguments_hash: "00".into(),
            tier: "approve".into(),
            at: 12,
            key_name: String::new(),
            key_id: String::new(),
        }
    }

    #[test]
    fn signature_covers_every_field_and_names_the_ledger_key() {
        let key = NoteSigner::from_seed("acme.example/warden", &[7u8; 32]).unwrap();
        let v = sign_vote(statement(), &key).unwrap();
        assert_eq!(v.statement.key_name, "acme.example/warden");
        assert_eq!(v.statement.key_id, hex::encode(key.key_id()));
        assert!(verify_vote(&v, &key.verifier()));
        let mut bad = v.clone();
        bad.statement.arguments_hash = "01".into();
        assert!(!verify_vote(&bad, &key.verifier()));
        let mut bad = v.clone();
        bad.statement.mfa.verified_at = 11;
        assert!(!verify_vote(&bad, &key.verifier()));
        // Another key, even under the same name, does not verify it.
        let other = NoteSigner::from_seed("acme.example/warden", &[8u8; 32]).unwrap();
        assert!(!verify_vote(&v, &other.verifier()));
        // One flipped bit of the signature is caught.
        use base64::Engine as _;
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(&v.signature)
            .unwrap();
        raw[10] ^= 1;
        let mut bad = v;
        bad.signature = base64::engine::general_purpose::STANDARD.encode(raw);
        assert!(!verify_vote(&bad, &key.verifier()));
    }

    #[test]
    fn a_vote_signature_is_not_a_note_signature() {
        // Domain separation: the signed message is never a valid note text.
        let key = NoteSigner::from_seed("log", &[3u8; 32]).unwrap();
        let v = sign_vote(statement(), &key).unwrap();
        let message = vote_message(&v.statement).unwrap();
        assert!(message.starts_with(VOTE_SIGNING_CONTEXT));
        assert!(!message.ends_with('\n'));
    }

    #[test]
    fn vote_json_bodies() {
        assert_eq!(parse_vote_json(b"").unwrap(), VoteInput::default());
        assert_eq!(parse_vote_json(b"{}").unwrap(), VoteInput::default());
        let v = parse_vote_json(br#"{"reason": "  ok  ", "totp": "123456"}"#).unwrap();
        assert_eq!(v.reason.as_deref(), Some("ok"));
        assert_eq!(v.totp.as_deref(), Some("123456"));
        assert_eq!(
            parse_vote_json(br#"{"reason": "", "totp": null}"#).unwrap(),
            VoteInput::default()
        );
        assert!(matches!(
            parse_vote_json(br#"{"reason": "x", "approver": "mallory"}"#),
            Err(VoteParseError::Json(_))
        ));
        assert!(matches!(
            parse_vote_json(br#"{"reason": "a", "reason": "b"}"#),
            Err(VoteParseError::Json(_))
        ));
        assert_eq!(
            parse_vote_json(br#"{"totp": "12a456"}"#),
            Err(VoteParseError::BadTotp)
        );
        assert_eq!(
            parse_vote_json(br#"{"reason": "ok \u202e evil"}"#),
            Err(VoteParseError::ReasonCharacters)
        );
        let long = format!(r#"{{"reason": "{}"}}"#, "é".repeat(2001));
        assert_eq!(
            parse_vote_json(long.as_bytes()),
            Err(VoteParseError::ReasonTooLong)
        );
        assert_eq!(
            parse_vote_json(&vec![b' '; MAX_VOTE_BODY + 1]),
            Err(VoteParseError::TooLarge)
        );
        // The error never quotes the body.
        let e = parse_vote_json(br#"{"reason": "secret-value"#).unwrap_err();
        assert!(!e.to_string().contains("secret-value"));
    }

    #[test]
    fn vote_forms() {
        let f = parse_vote_form(b"csrf=abc&reason=line+one%0Aline+two&totp=&action=deny").unwrap();
        assert_eq!(f.csrf.as_deref(), Some("abc"));
        assert_eq!(f.action, Some(VoteVerdict::Deny));
        assert_eq!(f.input.reason.as_deref(), Some("line one\nline two"));
        assert_eq!(f.input.totp, None);
        assert_eq!(
            parse_vote_form(b"action=approve&action=deny"),
            Err(VoteParseError::Repeated("action".into()))
        );
        assert_eq!(
            parse_vote_form(b"action=maybe"),
            Err(VoteParseError::BadAction)
        );
        assert_eq!(
            parse_vote_form(b"approver=mallory"),
            Err(VoteParseError::UnknownField("approver".into()))
        );
        assert_eq!(
            parse_vote_form(b"reason=%00"),
            Err(VoteParseError::ReasonCharacters)
        );
        assert_eq!(parse_vote_form(b"").unwrap(), VoteForm::default());
    }

    #[test]
    fn before_state_from_a_read_result() {
        let structured =
            json!({"content": [{"type": "text", "text": "x"}], "structuredContent": {"a": 1}});
        assert_eq!(snapshot_state(&structured).unwrap(), json!({"a": 1}));
        let text_json = json!({"content": [{"type": "text", "text": "{\"balance\": 3}"}]});
        assert_eq!(snapshot_state(&text_json).unwrap(), json!({"balance": 3}));
        let plain = json!({"content": [{"type": "text", "text": "open"}]});
        assert_eq!(snapshot_state(&plain).unwrap(), json!("open"));
        let err = json!({"content": [{"type": "text", "text": "no such order"}], "isError": true});
        assert_eq!(
            snapshot_state(&err).unwrap_err(),
            "the read tool reported an error: no such order"
        );
        assert!(snapshot_state(&json!({})).is_err());
    }

    #[test]
    fn diff_of_before_state_and_call() {
        let rows = state_diff(
            &json!({"id": "O-1", "status": "paid", "refunded": 0}),
            &json!({"id": "O-1", "status": "refunded", "amount": 5}),
        );
        let got: Vec<(&str, FieldChange)> =
            rows.iter().map(|r| (r.field.as_str(), r.change)).collect();
        assert_eq!(
            got,
            vec![
                ("id", FieldChange::Same),
                ("status", FieldChange::Changes),
                ("refunded", FieldChange::Kept),
                ("amount", FieldChange::New),
            ]
        );
        assert!(state_diff(&json!("text"), &json!({"a": 1})).is_empty());
    }

    #[test]
    fn fatigue_figures() {
        let s = |who: &str, ok: bool, t: f64| VoteSample {
            approver: who.into(),
            agent: "crm".into(),
            approved: ok,
            secs_to_decide: t,
        };
        let samples = vec![
            s("ann", true, 1.0),
            s("ann", true, 2.0),
            s("ann", true, 1.5),
            s("ann", true, 1.0),
            s("ann", true, 30.0),
            s("bob", false, 60.0),
            s("bob", true, 120.0),
        ];
        let (by_approver, by_agent) = fatigue(&samples, 3);
        let ann = by_approver.get("ann").unwrap();
        assert_eq!(ann.quick_approvals, 4);
        assert!((ann.median_secs_to_decide - 1.5).abs() < 1e-9);
        assert!(rubber_stamping(ann, &ApprovalsConfig::default()));
        let bob = by_approver.get("bob").unwrap();
        assert!((bob.approval_rate - 0.5).abs() < 1e-9);
        assert!(!rubber_stamping(bob, &ApprovalsConfig::default()));
        assert_eq!(by_agent.get("crm").unwrap().votes, 7);
    }
}
