//! Approval binding: an execution under an approval must be the approved call — same agent,
//! same tool, same argument hash — approved, unexpired and unused; it then uses it up.

use serde_json::Value;
use warden_core::approval::arguments_hash;
use warden_core::{Decision, Verdict};
use warden_store::ApprovalRow;

use super::queue::sweep_expired;
use crate::pipeline::call::Proposal;
use crate::state::AppState;

/// The pipeline's approval-binding step for a proposal that names `approval_id`: a call the
/// policy holds for approval becomes `allow` under the approval (which `decision_id` then
/// uses up), or `deny` with why the approval does not cover it. A call the policy allows or
/// denies outright is left as it is (a `forbid` still wins). Returns the approved request
/// when the call now runs under it.
pub(crate) async fn bind(
    state: &AppState,
    decision: &mut Decision,
    p: &Proposal,
    approval_id: &str,
    decision_id: &str,
) -> Option<ApprovalRow> {
    if decision.decision != Verdict::ApprovalRequired {
        return None;
    }
    let qualified = decision
        .tool
        .clone()
        .unwrap_or_else(|| p.target.recorded_name().to_string());
    let used = use_approval(
        state,
        approval_id,
        p.agent(),
        &qualified,
        &p.arguments,
        decision_id,
    )
    .await;
    let approvers = approvers_of(state, approval_id).await;
    let row = used.as_ref().ok().cloned();
    apply_approval(decision, used, &approvers);
    row
}

/// The binding check for an execution under an approval: same agent, same tool, same
/// argument hash, approved, unused, unexpired. On success the approval is used up by
/// `execution_id` (no replay). `Err` is the refusal in words.
async fn use_approval(
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
    let row = match state.store.approvals().approval(approval_id).await {
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
        .store
        .approvals()
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
fn apply_approval(
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
async fn approvers_of(state: &AppState, id: &str) -> Vec<String> {
    state
        .store
        .approvals()
        .approval_votes(id)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|v| v.verdict == "approve")
        .map(|v| v.approver)
        .collect()
}
