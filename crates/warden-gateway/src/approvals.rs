//! Human approvals: held calls become requests in the store, people vote on them (logged in,
//! with a recent TOTP verification), each vote is a signed ledger record, and an approved
//! request lets exactly one call with exactly the same arguments run.
//!
//! - [`open_request`] — a decision said `approval_required`: keep the call, post a webhook.
//! - [`vote`] — approve or deny, for `/v1/approvals/{id}/approve|deny`, the UI and the CLI.
//! - [`use_approval`] — the binding check when an agent executes with an approval id.
//! - [`wait_for`] — long-polling and held MCP calls.
//! - [`sweep_expired`] — pending requests past their expiry become `expired, not approved`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ed25519_dalek::SigningKey;
use serde::Deserialize;
use serde_json::{json, Value};
use warden_core::approval::{
    arguments_hash, fatigue, key_id, required_approvals, rubber_stamping, sign_vote, verifier_key,
    verify_vote, MfaAssertion, VoteSample, VoteStatement,
};
use warden_core::ledger::{
    ApprovalExpiredEvent, ApprovalFatigueEvent, ApprovalVoteEvent, DecisionEvent, LedgerEvent,
};
use warden_core::{Decision, Verdict};
use warden_store::{ApprovalFilter, ApprovalRow, VoteRow};

use crate::error::{ApiError, Fault};
use crate::session::{HumanSession, Role};
use crate::state::{now_rfc3339, AppState};

/// The key that signs approval records.
pub struct ApprovalSigner {
    key: SigningKey,
    /// The C2SP key name.
    name: String,
    id: String,
}

impl ApprovalSigner {
    pub fn new(name: &str, key: SigningKey) -> Self {
        let id = key_id(name, &key.verifying_key());
        Self {
            key,
            name: name.to_string(),
            id,
        }
    }

    /// `<name>+<key id>+<base64(0x01 || public key)>` (C2SP signed-note verifier key).
    pub fn verifier_key(&self) -> String {
        verifier_key(&self.name, &self.key.verifying_key())
    }

    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.key.verifying_key()
    }
}

/// Read the 32-byte Ed25519 seed (64 hex digits) at `path`, or create one (mode 0600) if the
/// file does not exist.
pub fn load_or_create_key(path: &Path) -> std::io::Result<SigningKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim()).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: not 64 hex digits", path.display()),
                )
            })?;
            let seed = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: not a 32-byte key", path.display()),
                )
            })?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate(&mut rand::rngs::OsRng);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("tmp");
            {
                use std::io::Write as _;
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt as _;
                    opts.mode(0o600);
                }
                let _ = std::fs::remove_file(&tmp);
                let mut f = opts.open(&tmp)?;
                f.write_all(hex::encode(key.to_bytes()).as_bytes())?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, path)?;
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

/// What a held call needs to become a request.
pub(crate) struct HeldCall<'a> {
    pub decision_id: &'a str,
    pub seq: u64,
    pub agent: &'a str,
    pub on_behalf_of: Option<&'a str>,
    pub tool: &'a str,
    pub upstream: &'a str,
    pub args: &'a Value,
    pub decision: &'a Decision,
    pub session: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
    pub source: &'a str,
    pub before_state: Option<Value>,
}

/// Keep a held call as a pending request and tell the webhook.
pub(crate) async fn open_request(
    state: &AppState,
    call: HeldCall<'_>,
) -> Result<ApprovalRow, warden_store::StoreError> {
    let now = state.now();
    let expiry = i64::try_from(state.approvals.expiry_secs).unwrap_or(3600);
    let qualified = call
        .decision
        .tool
        .clone()
        .unwrap_or_else(|| call.tool.to_string());
    let row = ApprovalRow {
        id: call.decision_id.to_string(),
        agent: call.agent.to_string(),
        on_behalf_of: call.on_behalf_of.map(str::to_string),
        tool: call.tool.to_string(),
        qualified_tool: qualified,
        upstream: call.upstream.to_string(),
        arguments: call.args.clone(),
        arguments_hash: arguments_hash(call.args),
        reasons: call.decision.reasons.clone(),
        policies: call.decision.policies.clone(),
        tier: call.decision.tier.as_str().to_string(),
        required: required_approvals(call.decision.tier),
        session: call.session.map(str::to_string),
        correlation_id: call.correlation_id.map(str::to_string),
        source: call.source.to_string(),
        before_state: call.before_state,
        ledger_seq: call.seq,
        state: "pending".to_string(),
        created_at: now,
        expires_at: now.saturating_add(expiry),
        decided_at: None,
        deny_reason: None,
        used_at: None,
        used_by: None,
    };
    state.ledger.insert_approval(&row).await?;
    notify_webhook(state, &row);
    Ok(row)
}

/// The detail page of a request.
pub(crate) fn detail_link(state: &AppState, id: &str) -> String {
    let base = state
        .approvals
        .public_url
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:8787".to_string());
    format!("{}/ui/approvals/{id}", base.trim_end_matches('/'))
}

/// Post `{"text": …}` to the configured webhook, in the background. Tool, agent, tier, id and
/// link only: argument values may be secret and never leave.
fn notify_webhook(state: &AppState, row: &ApprovalRow) {
    let Some(url) = state.approvals.webhook_url.clone() else {
        return;
    };
    let text = format!(
        "Warden: approval needed ({tier}, {n} approver{s}). Agent `{agent}` wants to call `{tool}`. Request {id}: {link}",
        tier = row.tier,
        n = row.required,
        s = if row.required == 1 { "" } else { "s" },
        agent = row.agent,
        tool = row.qualified_tool,
        id = row.id,
        link = detail_link(state, &row.id),
    );
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build();
        let result = match client {
            Ok(c) => c.post(&url).json(&json!({"text": text})).send().await,
            Err(e) => Err(e),
        };
        match result {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(message = "approval webhook refused", status = %r.status()),
            Err(error) => tracing::warn!(message = "approval webhook failed", %error),
        }
    });
}

/// Expire every request past its time that was not used: state `expired`, and a ledger record
/// "expired, not approved". Wakes waiters.
pub async fn sweep_expired(state: &AppState) -> Result<u32, warden_store::StoreError> {
    let now = state.now();
    let mut n = 0;
    for row in state.ledger.due_to_expire(now).await? {
        if state.ledger.mark_expired(&row.id, now).await? {
            n += 1;
            state
                .ledger
                .append(
                    now_rfc3339(),
                    LedgerEvent::ApprovalExpired(ApprovalExpiredEvent {
                        approval_id: row.id.clone(),
                        agent: row.agent.clone(),
                        tool: row.qualified_tool.clone(),
                        arguments_hash: row.arguments_hash.clone(),
                        outcome: "expired, not approved".to_string(),
                        expired_at: now,
                    }),
                )
                .await?;
        }
    }
    if n > 0 {
        state.approval_changed.notify_waiters();
    }
    Ok(n)
}

fn unavailable(e: warden_store::StoreError) -> ApiError {
    ApiError::ledger_unavailable(e.to_string())
}

fn refused(status: StatusCode, code: &'static str, msg: impl Into<String>) -> ApiError {
    ApiError::new(status, code, msg, Fault::Agent)
}

/// `approve` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict2 {
    Approve,
    Deny,
}

impl Verdict2 {
    fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
        }
    }
}

/// Record one person's vote. Checks, in order: role, recent MFA (a `totp` code given here is
/// verified as a step-up first), the request is pending and unexpired, not the requester's own,
/// not a second vote by the same person, a reason where one is required; then signs the vote,
/// makes the ledger record durable, and only then counts it.
pub async fn vote(
    state: &AppState,
    who: &HumanSession,
    id: &str,
    verdict: Verdict2,
    reason: Option<&str>,
    totp: Option<&str>,
) -> Result<Value, ApiError> {
    if !matches!(who.role, Role::Approver | Role::Admin) || who.break_glass {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "not_an_approver",
            "only people with the approver or admin role (not break-glass) may approve or deny",
        ));
    }
    sweep_expired(state).await.map_err(unavailable)?;
    let mfa_at = match totp.map(str::trim).filter(|c| !c.is_empty()) {
        Some(code) => crate::session::step_up(state, who, code).await?,
        None => who.totp_verified_at.unwrap_or(i64::MIN),
    };
    let now = state.now();
    let max_age = i64::try_from(state.approvals.mfa_max_age_secs).unwrap_or(300);
    if mfa_at == i64::MIN || now.saturating_sub(mfa_at) > max_age {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "mfa_required",
            format!("approving needs a TOTP verification within the last {max_age} seconds: send a fresh one-time code (`totp`) with the vote"),
        ));
    }
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > 2000) {
        return Err(ApiError::bad_request(
            "the reason may have at most 2000 characters",
        ));
    }
    let _guard = state.approval_lock.lock().await;
    let Some(row) = state.ledger.approval(id).await.map_err(unavailable)? else {
        return Err(ApiError::not_found(format!("no approval request `{id}`")));
    };
    if row.state != "pending" {
        let what = if row.state == "expired" {
            "expired, not approved".to_string()
        } else {
            format!("already {}", row.state)
        };
        return Err(ApiError::conflict(format!(
            "approval request `{id}` is {what}; it can no longer be voted on"
        )));
    }
    if state.approvals.forbid_self_approval
        && (row.on_behalf_of.as_deref() == Some(who.user.as_str()) || row.agent == who.user)
    {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "self_approval",
            "you cannot vote on a call made on your own behalf ([approvals] forbid_self_approval)",
        ));
    }
    let votes = state.ledger.approval_votes(id).await.map_err(unavailable)?;
    if votes.iter().any(|v| v.approver == who.user) {
        return Err(ApiError::conflict(
            "you have already voted on this request; a two-person approval needs a second, different person",
        ));
    }
    if reason.is_none() && (verdict == Verdict2::Deny || row.tier == "two_person") {
        return Err(ApiError::bad_request(
            "a reason is required to deny, and to approve a two-person request",
        ));
    }
    let approvals_so_far = votes.iter().filter(|v| v.verdict == "approve").count();
    let state_after = match verdict {
        Verdict2::Deny => "denied",
        Verdict2::Approve
            if u32::try_from(approvals_so_far + 1).unwrap_or(u32::MAX) >= row.required =>
        {
            "approved"
        }
        Verdict2::Approve => "pending",
    };
    let Some(signer) = state.approval_signer.as_deref() else {
        return Err(ApiError::ledger_unavailable(
            "no approval signing key is loaded, so no vote can be recorded (fail closed)",
        ));
    };
    let statement = VoteStatement {
        approval_id: row.id.clone(),
        verdict: verdict.as_str().to_string(),
        approver: who.user.clone(),
        role: who.role.as_str().to_string(),
        mfa: MfaAssertion {
            method: "totp".to_string(),
            verified: true,
            verified_at: mfa_at,
            age_secs: now.saturating_sub(mfa_at),
        },
        reason: reason.map(str::to_string),
        agent: row.agent.clone(),
        tool: row.qualified_tool.clone(),
        arguments_hash: row.arguments_hash.clone(),
        tier: row.tier.clone(),
        at: now,
        key_name: signer.name.clone(),
        key_id: signer.id.clone(),
    };
    let signed = sign_vote(statement, &signer.key).map_err(ApiError::ledger_unavailable)?;
    let appended = state
        .ledger
        .append(
            now_rfc3339(),
            LedgerEvent::ApprovalVote(ApprovalVoteEvent {
                vote: signed.clone(),
                state_after: state_after.to_string(),
            }),
        )
        .await
        .map_err(unavailable)?;
    let settle = (state_after != "pending").then_some(state_after);
    let counted = state
        .ledger
        .record_vote(
            &VoteRow {
                approval_id: row.id.clone(),
                approver: who.user.clone(),
                verdict: verdict.as_str().to_string(),
                reason: reason.map(str::to_string),
                at: now,
                mfa_at,
                ledger_seq: appended.seq,
            },
            settle,
            if verdict == Verdict2::Deny {
                reason
            } else {
                None
            },
        )
        .await
        .map_err(unavailable)?;
    if !counted {
        return Err(ApiError::conflict(
            "the request changed while voting; reload it",
        ));
    }
    state.approval_changed.notify_waiters();
    check_fatigue(state, &who.user).await;
    Ok(json!({
        "id": row.id,
        "state": state_after,
        "vote": verdict.as_str(),
        "approver": who.user,
        "arguments_hash": row.arguments_hash,
        "signature": signed.signature,
        "key_id": signer.id,
        "ledger": {"seq": appended.seq, "hash": appended.hash},
    }))
}

/// Votes as fatigue samples (seconds from request to vote).
pub async fn vote_samples(
    state_ledger: &warden_store::Ledger,
) -> Result<Vec<VoteSample>, warden_store::StoreError> {
    Ok(state_ledger
        .all_votes()
        .await?
        .into_iter()
        .map(|(v, agent, created)| VoteSample {
            approver: v.approver,
            agent,
            approved: v.verdict == "approve",
            secs_to_decide: v.at.saturating_sub(created) as f64,
        })
        .collect())
}

/// After a vote: raise a rubber-stamp alert record for this approver when their figures cross
/// the configured thresholds (at most once per further `fatigue_min_votes` votes).
async fn check_fatigue(state: &AppState, approver: &str) {
    let Ok(samples) = vote_samples(&state.ledger).await else {
        return;
    };
    let (by_approver, _) = fatigue(&samples, state.approvals.quick_secs);
    let Some(stats) = by_approver.get(approver) else {
        return;
    };
    let every = state.approvals.fatigue_min_votes.max(1);
    if rubber_stamping(stats, &state.approvals) && stats.votes % every == 0 {
        tracing::warn!(message = "ALERT: approval fatigue (rubber-stamping)", %approver, votes = stats.votes, quick = stats.quick_approvals);
        let _ = state
            .ledger
            .append(
                now_rfc3339(),
                LedgerEvent::ApprovalFatigue(ApprovalFatigueEvent {
                    approver: approver.to_string(),
                    votes: stats.votes,
                    approvals: stats.approvals,
                    quick_approvals: stats.quick_approvals,
                    median_secs_to_decide: stats.median_secs_to_decide,
                    severity: "high".to_string(),
                }),
            )
            .await;
    }
}

/// The binding check for an execution under an approval: same agent, same tool, same
/// argument hash, approved, unused, unexpired. On success the approval is used up by
/// `execution_id` (no replay). `Err` is the refusal in words.
pub(crate) async fn use_approval(
    state: &AppState,
    approval_id: &str,
    agent: &str,
    qualified_tool: &str,
    args: &Value,
    execution_id: &str,
) -> Result<ApprovalRow, String> {
    if let Err(e) = sweep_expired(state).await {
        tracing::error!(message = "approval expiry sweep failed", error = %e);
        return Err("the approval could not be checked (store unavailable), so the call is refused (fail closed)".into());
    }
    let row = match state.ledger.approval(approval_id).await {
        Ok(Some(r)) if r.agent == agent => r,
        Ok(_) => return Err(format!("no approval `{approval_id}` for this agent")),
        Err(e) => {
            tracing::error!(message = "approval not readable", error = %e);
            return Err(
                "the approval could not be read, so the call is refused (fail closed)".into(),
            );
        }
    };
    if row.qualified_tool != qualified_tool {
        return Err(format!(
            "approval `{approval_id}` is for `{}`, not `{qualified_tool}`; an approval covers one call only",
            row.qualified_tool
        ));
    }
    let hash = arguments_hash(args);
    if hash != row.arguments_hash {
        return Err(format!(
            "the arguments differ from the ones approved under `{approval_id}` (argument hash {} approved, {} presented); changed arguments need a new approval — propose the call again without approval_id",
            short(&row.arguments_hash),
            short(&hash)
        ));
    }
    match row.state.as_str() {
        "approved" => {}
        "pending" => return Err(format!("approval `{approval_id}` is still pending; poll GET /v1/decisions/{approval_id}?wait=30")),
        "denied" => {
            return Err(format!(
                "approval `{approval_id}` was denied: {}",
                row.deny_reason.as_deref().unwrap_or("no reason given")
            ))
        }
        "expired" => return Err(format!("approval `{approval_id}` expired, not approved")),
        other => return Err(format!("approval `{approval_id}` is {other}")),
    }
    if row.used_at.is_some() {
        return Err(format!(
            "approval `{approval_id}` was already used by decision `{}`; an approval runs one call once",
            row.used_by.as_deref().unwrap_or("?")
        ));
    }
    match state
        .ledger
        .claim_approval(approval_id, execution_id, state.now())
        .await
    {
        Ok(true) => Ok(row),
        Ok(false) => Err(format!(
            "approval `{approval_id}` was already used or has expired"
        )),
        Err(e) => {
            tracing::error!(message = "approval not claimable", error = %e);
            Err(
                "the approval could not be recorded as used, so the call is refused (fail closed)"
                    .into(),
            )
        }
    }
}

fn short(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

/// Turn the decision for an execution into `allow` under an approval, or `deny` with the
/// binding failure.
pub(crate) fn apply_approval(
    decision: &mut Decision,
    used: Result<ApprovalRow, String>,
    approvers: &[String],
) {
    match used {
        Ok(row) => {
            decision.decision = Verdict::Allow;
            decision.reasons.push(format!(
                "approved by {} under approval {} (argument hash {})",
                approvers.join(" and "),
                row.id,
                short(&row.arguments_hash)
            ));
            decision.policies.push("warden/approval".to_string());
        }
        Err(reason) => {
            decision.decision = Verdict::Deny;
            decision.reasons = vec![reason];
            decision.policies = vec!["warden/approval-binding".to_string()];
        }
    }
}

/// Names of the people who approved a request.
pub(crate) async fn approvers_of(state: &AppState, id: &str) -> Vec<String> {
    state
        .ledger
        .approval_votes(id)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|v| v.verdict == "approve")
        .map(|v| v.approver)
        .collect()
}

/// Wait until a request leaves `pending` (or `timeout` passes); returns its row then.
pub(crate) async fn wait_for(
    state: &AppState,
    id: &str,
    timeout: Duration,
) -> Result<Option<ApprovalRow>, warden_store::StoreError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let notified = state.approval_changed.notified();
        sweep_expired(state).await?;
        let row = state.ledger.approval(id).await?;
        let pending = row.as_ref().is_some_and(|r| r.state == "pending");
        let now = tokio::time::Instant::now();
        if !pending || now >= deadline {
            return Ok(row);
        }
        // Wake on any vote, or at least once a second to notice expiry.
        let step = (deadline - now).min(Duration::from_secs(1));
        let _ = tokio::time::timeout(step, notified).await;
    }
}

/// The request as the API shows it to agents and people.
pub(crate) fn approval_json(row: &ApprovalRow, votes: &[VoteRow]) -> Value {
    let outcome = match row.state.as_str() {
        "pending" => "pending approval".to_string(),
        "approved" if row.used_at.is_some() => "approved and used".to_string(),
        "approved" => {
            "approved: execute the call with this approval_id and the same arguments".to_string()
        }
        "denied" => format!(
            "denied: {}",
            row.deny_reason.as_deref().unwrap_or("no reason given")
        ),
        "expired" => "expired, not approved".to_string(),
        other => other.to_string(),
    };
    json!({
        "id": row.id,
        "state": row.state,
        "outcome": outcome,
        "agent": row.agent,
        "on_behalf_of": row.on_behalf_of,
        "tool": row.tool,
        "qualified_tool": row.qualified_tool,
        "upstream": row.upstream,
        "arguments": row.arguments,
        "arguments_hash": row.arguments_hash,
        "reasons": row.reasons,
        "policies": row.policies,
        "tier": row.tier,
        "required_approvals": row.required,
        "session": row.session,
        "correlation_id": row.correlation_id,
        "source": row.source,
        "created_at": crate::identity::rfc3339(row.created_at),
        "expires_at": crate::identity::rfc3339(row.expires_at),
        "decided_at": row.decided_at.map(crate::identity::rfc3339),
        "deny_reason": row.deny_reason,
        "used_by": row.used_by,
        "votes": votes.iter().map(|v| json!({
            "approver": v.approver, "verdict": v.verdict, "reason": v.reason,
            "at": crate::identity::rfc3339(v.at), "mfa_verified_at": crate::identity::rfc3339(v.mfa_at),
            "ledger_seq": v.ledger_seq,
        })).collect::<Vec<_>>(),
    })
}

/// The status an agent sees for its held decision (no argument values beyond its own).
pub(crate) fn agent_view(row: &ApprovalRow, votes: &[VoteRow]) -> Value {
    let mut v = approval_json(row, votes);
    if let Some(o) = v.as_object_mut() {
        o.remove("arguments");
    }
    v
}

/// Everything the detail page and `GET /v1/approvals/{id}` show: the request, its votes with
/// signature checks, what the agent saw earlier in the session, the before-state.
pub(crate) async fn detail(state: &AppState, id: &str) -> Result<Option<Value>, ApiError> {
    sweep_expired(state).await.map_err(unavailable)?;
    let Some(row) = state.ledger.approval(id).await.map_err(unavailable)? else {
        return Ok(None);
    };
    let votes = state.ledger.approval_votes(id).await.map_err(unavailable)?;
    let mut out = approval_json(&row, &votes);
    let saw = match &row.session {
        Some(s) => state
            .ledger
            .session_outputs(s, row.ledger_seq, 20)
            .await
            .map_err(unavailable)?,
        None => Vec::new(),
    };
    let saw: Vec<Value> = saw
        .iter()
        .filter_map(|r| match &r.record.event {
            LedgerEvent::Outcome(o) => Some(json!({
                "seq": r.seq, "ts": r.record.ts, "tool": o.tool, "status": o.status,
                "output": o.output, "output_truncated": o.output_truncated,
            })),
            _ => None,
        })
        .collect();
    let records = state
        .ledger
        .records_of_decision(id)
        .await
        .map_err(unavailable)?;
    let key = state
        .approval_signer
        .as_deref()
        .map(ApprovalSigner::verifying_key);
    let signed: Vec<Value> = records
        .iter()
        .filter_map(|r| match &r.record.event {
            LedgerEvent::ApprovalVote(v) => Some(json!({
                "seq": r.seq,
                "approver": v.vote.statement.approver,
                "verdict": v.vote.statement.verdict,
                "mfa": v.vote.statement.mfa,
                "key_id": v.vote.statement.key_id,
                "signature": v.vote.signature,
                "signature_valid": key.as_ref().map(|k| verify_vote(&v.vote, k)),
            })),
            _ => None,
        })
        .collect();
    if let Some(o) = out.as_object_mut() {
        o.insert("what_the_agent_saw".into(), Value::Array(saw));
        o.insert(
            "before_state".into(),
            row.before_state.clone().unwrap_or(Value::Null),
        );
        o.insert("signed_votes".into(), Value::Array(signed));
        o.insert("link".into(), Value::String(detail_link(state, id)));
    }
    Ok(Some(out))
}

// ---- HTTP -------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    state: Option<String>,
    agent: Option<String>,
    tool: Option<String>,
    limit: Option<u32>,
}

impl ListQuery {
    pub(crate) fn filter(&self) -> ApprovalFilter {
        let nonempty = |s: &Option<String>| s.clone().filter(|v| !v.is_empty());
        ApprovalFilter {
            state: nonempty(&self.state),
            agent: nonempty(&self.agent),
            tool: nonempty(&self.tool),
            limit: self.limit.unwrap_or(100),
        }
    }
}

/// `GET /v1/approvals?state=&agent=&tool=&limit=`.
pub(crate) async fn list_handler(
    State(state): State<AppState>,
    _who: HumanSession,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    sweep_expired(&state).await.map_err(unavailable)?;
    let rows = state
        .ledger
        .list_approvals(&q.filter())
        .await
        .map_err(unavailable)?;
    let items: Vec<Value> = rows.iter().map(|r| approval_json(r, &[])).collect();
    Ok(Json(json!({"approvals": items})).into_response())
}

/// `GET /v1/approvals/{id}`.
pub(crate) async fn show_handler(
    State(state): State<AppState>,
    _who: HumanSession,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    match detail(&state, &id).await? {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(ApiError::not_found(format!("no approval request `{id}`"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VoteBody {
    reason: Option<String>,
    /// A fresh one-time code (step-up); optional when the session verified one recently.
    totp: Option<String>,
}

async fn vote_handler(
    state: AppState,
    headers: HeaderMap,
    id: String,
    body: Bytes,
    verdict: Verdict2,
) -> Result<Response, ApiError> {
    let who = crate::session::require_session(&state, &headers, &Method::POST).await?;
    let req: VoteBody = if body.is_empty() {
        VoteBody {
            reason: None,
            totp: None,
        }
    } else {
        serde_json::from_slice(&body).map_err(|_| {
            ApiError::bad_request(
                "the body must be JSON: {\"reason\": \"…\", \"totp\": \"123456\"}",
            )
        })?
    };
    let out = vote(
        &state,
        &who,
        &id,
        verdict,
        req.reason.as_deref(),
        req.totp.as_deref(),
    )
    .await?;
    Ok(Json(out).into_response())
}

/// `POST /v1/approvals/{id}/approve` (session cookie + CSRF header).
pub(crate) async fn approve_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    vote_handler(state, headers, id, body, Verdict2::Approve).await
}

/// `POST /v1/approvals/{id}/deny` (session cookie + CSRF header).
pub(crate) async fn deny_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    vote_handler(state, headers, id, body, Verdict2::Deny).await
}

/// `GET /v1/approvals/key`: the verifier key of the approval signatures.
pub(crate) async fn key_handler(State(state): State<AppState>) -> Response {
    match state.approval_signer.as_deref() {
        Some(s) => Json(json!({"verifier_key": s.verifier_key(), "key_id": s.id, "algorithm": "Ed25519", "signed": "RFC 8785 canonical JSON of the vote record without `signature` and `state_after`"})).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"error": "no approval key loaded"}))).into_response(),
    }
}

/// For the execution of an approved MCP call: record an `allow` decision bound to the
/// approval (after claiming it), so the ledger reads proposal → votes → execution.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record_execution(
    state: &AppState,
    row_id: &str,
    agent: &str,
    qualified_tool: &str,
    tool: &str,
    args: &Value,
    session: Option<&str>,
    source: &str,
    mcp_request_id: Option<Value>,
    mut decision: Decision,
) -> Result<String, String> {
    let execution_id = crate::new_id();
    let used = use_approval(state, row_id, agent, qualified_tool, args, &execution_id).await;
    let approvers = approvers_of(state, row_id).await;
    apply_approval(&mut decision, used, &approvers);
    let environment = state.policy.cards.get(agent).map_or_else(
        || state.policy.environment.to_string(),
        |c| c.environment.to_string(),
    );
    let allowed = decision.decision == Verdict::Allow;
    let reasons = decision.reasons.clone();
    let event = LedgerEvent::Decision(Box::new(DecisionEvent {
        decision_id: execution_id.clone(),
        agent: agent.to_string(),
        environment,
        tool: tool.to_string(),
        qualified_tool: Some(qualified_tool.to_string()),
        arguments: args.clone(),
        session: session.map(str::to_string),
        correlation_id: None,
        source: source.to_string(),
        mcp_request_id,
        decision,
        approval_id: Some(row_id.to_string()),
        on_behalf_of: None,
        user_request: None,
    }));
    if let Err(error) = state.ledger.append(now_rfc3339(), event).await {
        tracing::error!(message = "execution decision not recorded; refused", %error);
        if allowed {
            let _ = state.ledger.release_claim(row_id, &execution_id).await;
        }
        return Err(
            "the ledger could not record the approved execution, so it must not run (fail closed)"
                .into(),
        );
    }
    if allowed {
        Ok(execution_id)
    } else {
        Err(reasons.join("; "))
    }
}

/// A held MCP call: wait up to `[approvals] hold_secs` for people to decide, then run it under
/// the approval (`Ok(execution decision id)`), or answer with the denial, the expiry, or
/// "pending approval <id>, retry later" (`Err(text)`). A retried call with the same arguments
/// joins the live request instead of opening another.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn hold_mcp(
    state: &AppState,
    agent: &str,
    session: &str,
    server: &str,
    tool: &str,
    args: &Value,
    decision_id: &str,
    seq: u64,
    decision: Decision,
    request_id: &Value,
) -> Result<String, String> {
    let qualified = decision
        .tool
        .clone()
        .unwrap_or_else(|| format!("{server}/{tool}"));
    let hash = arguments_hash(args);
    let live = state
        .ledger
        .live_approval_for(agent, &qualified, &hash, state.now())
        .await
        .map_err(|e| format!("the approval queue is unavailable ({e}); the call has not run"))?;
    let row_id = match live {
        Some(r) => r.id,
        None => {
            open_request(
                state,
                HeldCall {
                    decision_id,
                    seq,
                    agent,
                    on_behalf_of: None,
                    tool,
                    upstream: server,
                    args,
                    decision: &decision,
                    session: Some(session),
                    correlation_id: None,
                    source: "mcp-http",
                    before_state: None,
                },
            )
            .await
            .map_err(|e| {
                format!("the call could not be queued for approval ({e}); it has not run")
            })?
            .id
        }
    };
    let hold = Duration::from_secs(state.approvals.hold_secs);
    let row = wait_for(state, &row_id, hold)
        .await
        .map_err(|e| format!("the approval queue is unavailable ({e}); the call has not run"))?;
    let Some(row) = row else {
        return Err(format!(
            "approval `{row_id}` vanished; the call has not run"
        ));
    };
    match row.state.as_str() {
        "approved" => {
            record_execution(
                state,
                &row.id,
                agent,
                &qualified,
                tool,
                args,
                Some(session),
                "mcp-http",
                Some(request_id.clone()),
                decision,
            )
            .await
        }
        "denied" => Err(format!(
            "Warden: a person denied this call to `{tool}` (approval {}): {}",
            row.id,
            row.deny_reason.as_deref().unwrap_or("no reason given")
        )),
        "expired" => Err(format!(
            "Warden: approval {} for this call to `{tool}` expired, not approved; the call has not run",
            row.id
        )),
        _ => Err(format!(
            "Warden: pending approval {}, retry later (the call to `{tool}` has not run; retry it with the same arguments once a person has approved it). Reasons:\n- {}",
            row.id,
            row.reasons.join("\n- ")
        )),
    }
}

/// Shared handle type.
pub type SharedSigner = Arc<ApprovalSigner>;

/// [`detail`] for callers outside the HTTP layer (the CLI).
pub async fn detail_json(state: &AppState, id: &str) -> Result<Option<Value>, std::io::Error> {
    detail(state, id)
        .await
        .map_err(|e| std::io::Error::other(e.external))
}

/// Approval-fatigue figures per approver and per agent, with the rubber-stamp verdict.
pub async fn stats(state: &AppState) -> Result<Value, warden_store::StoreError> {
    let samples = vote_samples(&state.ledger).await?;
    let (by_approver, by_agent) = fatigue(&samples, state.approvals.quick_secs);
    let approvers: serde_json::Map<String, Value> = by_approver
        .iter()
        .map(|(k, s)| {
            let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "rubber_stamping".into(),
                    Value::Bool(rubber_stamping(s, &state.approvals)),
                );
            }
            (k.clone(), v)
        })
        .collect();
    let agents: serde_json::Map<String, Value> = by_agent
        .iter()
        .map(|(k, s)| (k.clone(), serde_json::to_value(s).unwrap_or(Value::Null)))
        .collect();
    Ok(json!({
        "quick_secs": state.approvals.quick_secs,
        "thresholds": {"min_votes": state.approvals.fatigue_min_votes, "quick_share": state.approvals.fatigue_quick_share},
        "by_approver": approvers,
        "by_agent": agents,
    }))
}
