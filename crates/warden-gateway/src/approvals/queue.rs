//! The approval queue: held calls become requests (or join the live request of the same
//! call), wait, expire; and the request as people and agents see it.

use std::time::Duration;

use serde_json::{json, Value};
use warden_core::approval::{arguments_hash, required_approvals, state_diff, verify_vote};
use warden_core::ledger::{ApprovalExpiredEvent, LedgerEvent};
use warden_store::{ApprovalRow, VoteRow};
use warden_verify::NoteSigner;

use crate::error::ApiError;
use crate::logins::{HumanSession, Role};
use crate::pipeline::call::{Decided, Target};
use crate::state::AppState;

use super::webhook::detail_link;

/// The pipeline's hold step: a held call waits in the live request of the same call (same
/// agent, tool, argument hash and principal) when there is one — a retried call does not
/// ask people twice — and otherwise in a new request.
pub(crate) async fn hold(
    state: &AppState,
    held: &Decided,
    reader: Option<&dyn super::SnapshotReader>,
) -> Result<ApprovalRow, warden_store::StoreError> {
    let p = &held.proposal;
    let qualified = held.qualified_tool();
    let hash = arguments_hash(&p.arguments);
    let live = state
        .store
        .approvals()
        .live_approval_for(p.agent(), &qualified, &hash, state.now())
        .await?
        .filter(|row| row.on_behalf_of == p.on_behalf_of);
    match live {
        Some(row) => Ok(row),
        None => open_request(state, held, reader).await,
    }
}

/// Keep a held call as a pending request (with its before-state) and tell the webhook.
async fn open_request(
    state: &AppState,
    held: &Decided,
    reader: Option<&dyn super::SnapshotReader>,
) -> Result<ApprovalRow, warden_store::StoreError> {
    let now = state.now();
    let expiry = i64::try_from(state.approvals.expiry_secs).unwrap_or(3600);
    let p = &held.proposal;
    let qualified = held.qualified_tool();
    let upstream = match &p.target {
        Target::Tool {
            server: Some(server),
            ..
        } => server.clone(),
        _ => qualified
            .split_once('/')
            .map_or_else(String::new, |(s, _)| s.to_string()),
    };
    let (before_state, before_state_source, before_state_error) =
        super::snapshot::before_state_of(state, held, reader).await;
    let decision = &held.decision;
    let row = ApprovalRow {
        id: held.id.clone(),
        agent: p.agent().to_string(),
        on_behalf_of: p.on_behalf_of.clone(),
        tool: p.target.recorded_name().to_string(),
        qualified_tool: qualified,
        upstream,
        arguments: p.arguments.clone(),
        arguments_hash: arguments_hash(&p.arguments),
        reasons: decision.reasons.clone(),
        policies: decision.policies.clone(),
        tier: decision.tier.as_str().to_string(),
        required: required_approvals(decision.tier),
        session: p.session.clone(),
        correlation_id: p.correlation_id.clone(),
        source: p.source.as_str().to_string(),
        before_state,
        before_state_source,
        before_state_error,
        ledger_seq: held.appended.seq,
        state: "pending".to_string(),
        created_at: now,
        expires_at: now.saturating_add(expiry),
        decided_at: None,
        deny_reason: None,
        used_at: None,
        used_by: None,
    };
    state.store.approvals().insert_approval(&row).await?;
    super::webhook::notify_webhook(state, &row);
    Ok(row)
}

/// Expire every request past its time that was not used: state `expired`, and a ledger record
/// "expired, not approved". Wakes waiters.
pub async fn sweep_expired(state: &AppState) -> Result<u32, warden_store::StoreError> {
    let now = state.now();
    let mut n = 0;
    for row in state.store.approvals().due_to_expire(now).await? {
        if state.store.approvals().mark_expired(&row.id, now).await? {
            n += 1;
            state
                .store
                .ledger()
                .append(
                    state.clock.rfc3339(),
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
        let row = state.store.approvals().approval(id).await?;
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
/// signature checks, what the agent saw earlier in the session, the before-state. Values are
/// redacted as the ledger redacts them; [`reveal`] shows them as the agent sent them, on the
/// record.
pub(crate) async fn detail(state: &AppState, id: &str) -> Result<Option<Value>, ApiError> {
    let mut out = detail_as_sent(state, id).await?;
    if let Some(v) = out.as_mut() {
        state.store.ledger().redact_value(v);
    }
    Ok(out)
}

/// [`detail`] with the values as the agent sent them, for an enabled approver or admin (not
/// the break-glass credential), after `approval_values_revealed` naming them and `via` (the
/// door: `ui`, `api`, `cli`) is durable: nobody sees a value unredacted without a record.
pub(crate) async fn reveal(
    state: &AppState,
    who: &HumanSession,
    id: &str,
    via: &str,
) -> Result<Option<Value>, ApiError> {
    if !matches!(who.role, Role::Approver | Role::Admin) || who.break_glass {
        return Err(ApiError::forbidden(
            "only an approver or admin may see a request's values unredacted",
        ));
    }
    let Some(out) = detail_as_sent(state, id).await? else {
        return Ok(None);
    };
    crate::identity::append(
        &state.store,
        warden_core::ledger::IdentityEvent {
            action: "approval_values_revealed".into(),
            actor: who.actor(),
            subject: id.to_string(),
            severity: "info".into(),
            break_glass: false,
            details: json!({ "via": via }),
        },
    )
    .await
    .map_err(ApiError::store_unavailable)?;
    Ok(Some(out))
}

/// [`reveal`] for callers outside the HTTP layer (the CLI, which proves the user with a fresh
/// TOTP code first).
pub async fn reveal_json(
    state: &AppState,
    user: &str,
    role: Role,
    id: &str,
) -> Result<Option<Value>, std::io::Error> {
    let who = HumanSession {
        user: user.to_string(),
        role,
        session_id: None,
        totp_verified_at: None,
        break_glass: false,
    };
    reveal(state, &who, id, "cli")
        .await
        .map_err(|e| std::io::Error::other(e.external))
}

async fn detail_as_sent(state: &AppState, id: &str) -> Result<Option<Value>, ApiError> {
    sweep_expired(state)
        .await
        .map_err(ApiError::store_unavailable)?;
    let Some(row) = state
        .store
        .approvals()
        .approval(id)
        .await
        .map_err(ApiError::store_unavailable)?
    else {
        return Ok(None);
    };
    let votes = state
        .store
        .approvals()
        .approval_votes(id)
        .await
        .map_err(ApiError::store_unavailable)?;
    let mut out = approval_json(&row, &votes);
    let saw = match &row.session {
        Some(s) => state
            .store
            .ledger()
            .session_outputs(s, row.ledger_seq, 20)
            .await
            .map_err(ApiError::store_unavailable)?,
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
        .store
        .ledger()
        .records_of_decision(id)
        .await
        .map_err(ApiError::store_unavailable)?;
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

/// [`detail`] for callers outside the HTTP layer (the CLI).
pub async fn detail_json(state: &AppState, id: &str) -> Result<Option<Value>, std::io::Error> {
    detail(state, id)
        .await
        .map_err(|e| std::io::Error::other(e.external))
}
