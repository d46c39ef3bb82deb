//! Human approvals: held calls become requests in the store, people vote on them (logged in,
//! with a recent TOTP verification), each vote is a signed ledger record, and an approved
//! request lets exactly one call with exactly the same arguments run.
//!
//! - [`open_request`] — a decision said `approval_required`: keep the call, post a webhook.
//! - [`vote`] — approve or deny, for `/v1/approvals/{id}/approve|deny`, the UI and the CLI.
//! - [`use_approval`] — the binding check when an agent executes with an approval id.
//! - [`wait_for`] — long-polling and held MCP calls.
//! - [`sweep_expired`] — pending requests past their expiry become `expired, not approved`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use warden_core::approval::{
    arguments_hash, fatigue, parse_vote_json, required_approvals, rubber_stamping, sign_vote,
    snapshot_state, state_diff, verify_vote, MfaAssertion, VoteSample, VoteStatement,
};
use warden_core::ledger::{
    ApprovalExpiredEvent, ApprovalFatigueEvent, ApprovalVoteEvent, DecisionEvent, LedgerEvent,
    SnapshotReadEvent,
};
use warden_core::{CallRequest, Decision, Verdict};
use warden_store::{ApprovalFilter, ApprovalRow, VoteRow};
use warden_verify::NoteSigner;

use crate::error::{ApiError, Fault};
use crate::logins::{HumanSession, Role};
use crate::state::{now_rfc3339, AppState};

/// The JSON-RPC response of an upstream to one `tools/call`, or why there is none.
pub(crate) type ReadResult<'a> = Pin<Box<dyn Future<Output = Result<Value, String>> + Send + 'a>>;

/// Runs a read tool on the held call's upstream for a snapshot, with Warden's credentials.
/// `/mcp` and the decision API use the gateway's upstreams ([`HubReader`]); `warden mcp
/// stdio` sends the request to its child server.
pub(crate) trait SnapshotReader: Send + Sync {
    /// Call `tool` with `args`; the upstream's JSON-RPC response message.
    fn call<'a>(&'a self, tool: &'a str, args: Value) -> ReadResult<'a>;
}

/// The gateway's configured upstream `server`.
pub(crate) struct HubReader<'a> {
    pub state: &'a AppState,
    pub server: &'a str,
}

impl SnapshotReader for HubReader<'_> {
    fn call<'a>(&'a self, tool: &'a str, args: Value) -> ReadResult<'a> {
        Box::pin(async move {
            let Some(up) = self.state.mcp.upstreams.get(self.server) else {
                return Err(format!(
                    "upstream `{}` is not connected to this gateway",
                    self.server
                ));
            };
            up.call_tool(tool, args).await.map_err(|e| e.to_string())
        })
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
    /// A before-state the caller reported (decision API); a configured snapshot read wins.
    pub before_state: Option<Value>,
    /// Where the snapshot read runs; `None` means the gateway's upstream of the call.
    pub reader: Option<&'a dyn SnapshotReader>,
}

/// The before-state of a held call: read by Warden when the card configures a snapshot read,
/// else what the caller reported. (value, source, why unavailable)
async fn before_state_of(
    state: &AppState,
    call: &HeldCall<'_>,
) -> (Option<Value>, Option<String>, Option<String>) {
    let qualified = call
        .decision
        .tool
        .clone()
        .unwrap_or_else(|| call.tool.to_string());
    let snapshot = state
        .policy
        .cards
        .get(call.agent)
        .and_then(|c| c.tool(&qualified))
        .and_then(|g| g.snapshot.clone().map(|s| (g.server.clone(), s)));
    let Some((server, snap)) = snapshot else {
        // Reported by the caller: shown as such, redacted like everything stored.
        return match call.before_state.clone() {
            Some(mut v) => {
                state.ledger.redact_value(&mut v);
                (Some(v), Some("caller".to_string()), None)
            }
            None => (None, None, None),
        };
    };
    let hub = HubReader {
        state,
        server: &server,
    };
    let reader: &dyn SnapshotReader = call.reader.unwrap_or(&hub);
    let started = std::time::Instant::now();
    let args = snap.arguments(call.args);
    let read = match &args {
        Ok(a) => snapshot_read(state, call.agent, &server, &snap, a.clone(), reader).await,
        Err(e) => Err(e.clone()),
    };
    let (mut value, error) = match read {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    };
    if let Some(v) = value.as_mut() {
        state.ledger.redact_value(v);
        let (kept, _, _) = crate::state::bound_output(v.clone(), state.max_output_bytes);
        *v = kept;
    }
    let event = LedgerEvent::SnapshotRead(SnapshotReadEvent {
        approval_id: call.decision_id.to_string(),
        agent: call.agent.to_string(),
        tool: snap.qualified.clone(),
        arguments: args.unwrap_or(Value::Null),
        status: if error.is_none() { "success" } else { "error" }.to_string(),
        before_state: value.clone().unwrap_or(Value::Null),
        error: error.clone(),
        duration_ms: u64::try_from(started.elapsed().as_millis()).ok(),
    });
    if let Err(e) = state.ledger.append(now_rfc3339(), event).await {
        tracing::error!(message = "snapshot read not recorded; before-state withheld", error = %e);
        return (
            None,
            Some("snapshot".to_string()),
            Some("the snapshot read could not be recorded in the ledger".to_string()),
        );
    }
    if let Some(e) = &error {
        tracing::warn!(message = "snapshot read failed; the call is held without a before-state", tool = %snap.qualified, error = %e);
    }
    (value, Some("snapshot".to_string()), error)
}

/// Run a card's snapshot read: decided by the policy like any call of the agent (it must be
/// allowed outright), refused when the read tool is blocked by its pin, then called on the
/// upstream. The before-state it returned, or why there is none.
async fn snapshot_read(
    state: &AppState,
    agent: &str,
    server: &str,
    snap: &warden_core::scope_card::Snapshot,
    args: Value,
    reader: &dyn SnapshotReader,
) -> Result<Value, String> {
    let decision = state.policy.decide(&CallRequest {
        agent,
        tool: &snap.qualified,
        args: &args,
        session: None,
        correlation_id: None,
    });
    if decision.decision != Verdict::Allow {
        return Err(format!(
            "the snapshot read `{}` is not allowed by the policy ({}): {}",
            snap.qualified,
            decision.decision.as_str(),
            decision.reasons.join("; ")
        ));
    }
    match state.ledger.is_blocked(server, &snap.tool).await {
        Ok(false) => {}
        Ok(true) => {
            return Err(format!(
                "the definition of `{}` changed since it was pinned; it is blocked until reviewed",
                snap.qualified
            ))
        }
        Err(e) => return Err(format!("the read tool's pin could not be checked ({e})")),
    }
    let response = reader.call(&snap.tool, args).await?;
    match (response.get("result"), response.get("error")) {
        (Some(result), _) => snapshot_state(result),
        (None, Some(error)) => Err(format!(
            "the upstream refused the read: {}",
            error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .chars()
                .take(500)
                .collect::<String>()
        )),
        _ => Err("the upstream sent an empty response".to_string()),
    }
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
    let (before_state, before_state_source, before_state_error) =
        before_state_of(state, &call).await;
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
        before_state,
        before_state_source,
        before_state_error,
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
        "Warden: approval needed. Agent `{agent}` wants to call `{tool}` (tier `{tier}`, {n} approver{s} needed). Request {id}: {link}",
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
pub use warden_core::approval::VoteVerdict as Verdict2;

/// Why `who` may not vote on `row` as the requester or on the requester's side, if so. The
/// requesting principal (a person named like the agent) never may; with `[approvals]
/// forbid_self_approval` (the default) neither may the person the agent acted for nor the
/// owners the agent's scope card lists. Names compare without regard to ASCII case.
fn self_approval(state: &AppState, row: &ApprovalRow, who: &str) -> Option<String> {
    let same = |a: &str| a.trim().eq_ignore_ascii_case(who);
    if same(&row.agent) {
        return Some(format!(
            "you are the requesting principal (`{}`); a request cannot be approved by whoever made it",
            row.agent
        ));
    }
    if !state.approvals.forbid_self_approval {
        return None;
    }
    if row.on_behalf_of.as_deref().is_some_and(same) {
        return Some(
            "the call was made on your behalf (on_behalf_of); you cannot vote on it ([approvals] forbid_self_approval)"
                .to_string(),
        );
    }
    let owners = state.policy.cards.get(&row.agent).map(|c| &c.owners);
    if let Some(o) = owners {
        for (role, name) in [
            ("product", &o.product),
            ("security", &o.security),
            ("on_call", &o.on_call),
        ] {
            if same(name) {
                return Some(format!(
                    "you are an owner of agent `{}` ([owners] {role} on its scope card); owners cannot approve their agent's calls ([approvals] forbid_self_approval)",
                    row.agent
                ));
            }
        }
    }
    None
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
        Some(code) => crate::logins::step_up(state, who, code).await?,
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
    if let Some(why) = self_approval(state, &row, &who.user) {
        return Err(refused(StatusCode::FORBIDDEN, "self_approval", why));
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
            "the ledger signing key is not loaded, so no vote can be recorded (fail closed)",
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
        // Set by `sign_vote` to the ledger key's name and id.
        key_name: String::new(),
        key_id: String::new(),
    };
    let signed = sign_vote(statement, signer).map_err(ApiError::ledger_unavailable)?;
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
        "key_id": signed.statement.key_id,
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
    let key = state.approval_signer.as_deref().map(NoteSigner::verifier);
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
        o.insert("before_state_source".into(), json!(row.before_state_source));
        o.insert("before_state_error".into(), json!(row.before_state_error));
        let diff = row
            .before_state
            .as_ref()
            .map(|b| state_diff(b, &row.arguments))
            .unwrap_or_default();
        o.insert("before_state_diff".into(), json!(diff));
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

async fn vote_handler(
    state: AppState,
    headers: HeaderMap,
    id: String,
    body: Bytes,
    verdict: Verdict2,
) -> Result<Response, ApiError> {
    let who = crate::logins::require_session(&state, &headers, &Method::POST).await?;
    let req = parse_vote_json(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
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

/// `GET /v1/approvals/key`: the verifier key of the approval signatures — the ledger's key.
pub(crate) async fn key_handler(State(state): State<AppState>) -> Response {
    match state.approval_signer.as_deref() {
        Some(s) => {
            let v = s.verifier();
            Json(json!({
                "verifier_key": v.to_vkey(),
                "key_id": hex::encode(v.key_id()),
                "algorithm": "Ed25519",
                "key": "the ledger's checkpoint key (`warden audit pubkey`)",
                "signed": format!("{:?} followed by the RFC 8785 canonical JSON of the vote record without `signature` and `state_after`", warden_core::approval::VOTE_SIGNING_CONTEXT),
            }))
            .into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no ledger signing key loaded"})),
        )
            .into_response(),
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

/// Where the progress notifications of a held MCP call go: the client's `progressToken` and
/// the channel to its transport (an SSE stream for `/mcp`, stdout for `warden mcp stdio`).
pub(crate) struct Progress {
    pub token: Value,
    pub tx: tokio::sync::mpsc::Sender<Value>,
}

impl Progress {
    /// Send `notifications/progress` number `n` for request `id`; `false` when the client
    /// is gone.
    async fn send(&self, n: u64, id: &str, link: &str) -> bool {
        let note = json!({
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {
                "progressToken": self.token,
                "progress": n,
                "message": format!("waiting for approval {id}; a person decides at {link}"),
            },
        });
        self.tx.send(note).await.is_ok()
    }
}

/// `params._meta.progressToken` of a request, if it is a string or an integer (MCP).
pub(crate) fn progress_token(params: Option<&Value>) -> Option<Value> {
    params
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get("progressToken"))
        .filter(|t| t.is_string() || t.is_i64() || t.is_u64())
        .cloned()
}

/// A held MCP `tools/call`, for [`hold_mcp`].
pub(crate) struct HeldMcp<'a> {
    pub agent: &'a str,
    pub session: &'a str,
    pub server: &'a str,
    pub tool: &'a str,
    pub args: &'a Value,
    pub decision_id: &'a str,
    pub seq: u64,
    pub decision: Decision,
    pub request_id: &'a Value,
    pub on_behalf_of: Option<&'a str>,
    /// `mcp-http` or `mcp-stdio`.
    pub source: &'static str,
    /// Where a snapshot read runs (`None`: the gateway's upstream).
    pub reader: Option<&'a dyn SnapshotReader>,
    /// Progress notifications, when the client asked for them.
    pub progress: Option<&'a Progress>,
}

/// A held MCP call: wait up to `[approvals] hold_secs` for people to decide (sending
/// `notifications/progress` every `progress_secs` when the client gave a progress token), then
/// run it under the approval (`Ok(execution decision id)`), or answer with the denial, the
/// expiry, or "pending approval <id>, retry later" (`Err(text)`). A retried call with the same
/// arguments joins the live request instead of opening another. When the client goes away
/// while the call is held, the call does not run.
pub(crate) async fn hold_mcp(state: &AppState, h: HeldMcp<'_>) -> Result<String, String> {
    let qualified = h
        .decision
        .tool
        .clone()
        .unwrap_or_else(|| format!("{}/{}", h.server, h.tool));
    let hash = arguments_hash(h.args);
    let live = state
        .ledger
        .live_approval_for(h.agent, &qualified, &hash, state.now())
        .await
        .map_err(|e| format!("the approval queue is unavailable ({e}); the call has not run"))?;
    let row_id = match live {
        Some(r) => r.id,
        None => {
            open_request(
                state,
                HeldCall {
                    decision_id: h.decision_id,
                    seq: h.seq,
                    agent: h.agent,
                    on_behalf_of: h.on_behalf_of,
                    tool: h.tool,
                    upstream: h.server,
                    args: h.args,
                    decision: &h.decision,
                    session: Some(h.session),
                    correlation_id: None,
                    source: h.source,
                    before_state: None,
                    reader: h.reader,
                },
            )
            .await
            .map_err(|e| {
                format!("the call could not be queued for approval ({e}); it has not run")
            })?
            .id
        }
    };
    let link = detail_link(state, &row_id);
    let gone = || {
        format!(
            "the client went away while the call was held; it has not run (approval {row_id} stays open: retry the same call)"
        )
    };
    let hold_until = tokio::time::Instant::now() + Duration::from_secs(state.approvals.hold_secs);
    let every = Duration::from_secs(state.approvals.progress_secs.max(1));
    let mut sent = 0u64;
    let row = loop {
        if let Some(p) = h.progress {
            sent += 1;
            if !p.send(sent, &row_id, &link).await {
                return Err(gone());
            }
        }
        let left = hold_until.saturating_duration_since(tokio::time::Instant::now());
        let step = if h.progress.is_some() {
            left.min(every)
        } else {
            left
        };
        let row = wait_for(state, &row_id, step).await.map_err(|e| {
            format!("the approval queue is unavailable ({e}); the call has not run")
        })?;
        let pending = row.as_ref().is_some_and(|r| r.state == "pending");
        if !pending || tokio::time::Instant::now() >= hold_until {
            break row;
        }
    };
    let Some(row) = row else {
        return Err(format!(
            "approval `{row_id}` vanished; the call has not run"
        ));
    };
    let tool = h.tool;
    match row.state.as_str() {
        "approved" => {
            if h.progress.is_some_and(|p| p.tx.is_closed()) {
                return Err(gone());
            }
            record_execution(
                state,
                &row.id,
                h.agent,
                &qualified,
                tool,
                h.args,
                Some(h.session),
                h.source,
                Some(h.request_id.clone()),
                h.decision,
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
