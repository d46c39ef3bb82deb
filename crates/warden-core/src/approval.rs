//! Human approvals, the pure parts: settings, the argument hash an approval is bound to, the
//! signed statement of an approver's vote, and approval-fatigue statistics.
//!
//! No I/O: the gateway passes in times, identities and the signing key.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

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
    /// When true (default), the person on whose behalf the agent acted, or a person named
    /// like the agent, cannot approve the request.
    #[serde(default = "default_true")]
    pub forbid_self_approval: bool,
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

/// The key id of an Ed25519 verifying key as C2SP signed-note defines it: the first 4 bytes of
/// SHA-256(name || "\n" || 0x01 || public key), as 8 hex digits.
pub fn key_id(name: &str, key: &VerifyingKey) -> String {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([0x01]);
    h.update(key.as_bytes());
    let d = h.finalize();
    hex::encode(d.get(..4).unwrap_or_default())
}

/// The C2SP verifier key string: `<name>+<hex key id>+<base64(0x01 || public key)>`.
pub fn verifier_key(name: &str, key: &VerifyingKey) -> String {
    use base64::Engine as _;
    let mut bytes = vec![0x01];
    bytes.extend_from_slice(key.as_bytes());
    format!(
        "{name}+{}+{}",
        key_id(name, key),
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
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

/// Sign a vote statement.
pub fn sign_vote(statement: VoteStatement, key: &SigningKey) -> Result<SignedVote, String> {
    use base64::Engine as _;
    let text = canonical_json(&statement).map_err(|e| e.to_string())?;
    let sig = key.sign(text.as_bytes());
    Ok(SignedVote {
        statement,
        signature: base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()),
    })
}

/// Check a signed vote against a verifying key.
pub fn verify_vote(vote: &SignedVote, key: &VerifyingKey) -> bool {
    use base64::Engine as _;
    let Ok(text) = canonical_json(&vote.statement) else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&vote.signature) else {
        return false;
    };
    let Ok(arr) = <[u8; 64]>::try_from(bytes.as_slice()) else {
        return false;
    };
    let sig = Signature::from_bytes(&arr);
    key.verify(text.as_bytes(), &sig).is_ok()
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

    #[test]
    fn signature_covers_every_field() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let st = VoteStatement {
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
            key_name: "warden".into(),
            key_id: key_id("warden", &key.verifying_key()),
        };
        let v = sign_vote(st, &key).unwrap();
        assert!(verify_vote(&v, &key.verifying_key()));
        let mut bad = v.clone();
        bad.statement.arguments_hash = "01".into();
        assert!(!verify_vote(&bad, &key.verifying_key()));
        let mut bad = v;
        bad.statement.mfa.verified_at = 11;
        assert!(!verify_vote(&bad, &key.verifying_key()));
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
