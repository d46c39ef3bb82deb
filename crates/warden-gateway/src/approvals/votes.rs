//! Votes: approve or deny, by a person with the approver or admin role and a recent TOTP
//! verification; each vote is signed with the ledger's key and recorded before it counts.

use axum::http::StatusCode;
use serde_json::{json, Value};
use warden_core::approval::{
    fatigue, rubber_stamping, sign_vote, MfaAssertion, VoteSample, VoteStatement,
};
use warden_core::ledger::{ApprovalFatigueEvent, ApprovalVoteEvent, LedgerEvent};
use warden_store::{ApprovalRow, VoteRow};

use super::queue::sweep_expired;
use crate::error::{ApiError, Fault};
use crate::logins::{HumanSession, Role};
use crate::state::AppState;

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
    sweep_expired(state)
        .await
        .map_err(ApiError::store_unavailable)?;
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
    let Some(row) = state
        .store
        .approvals()
        .approval(id)
        .await
        .map_err(ApiError::store_unavailable)?
    else {
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
    let votes = state
        .store
        .approvals()
        .approval_votes(id)
        .await
        .map_err(ApiError::store_unavailable)?;
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
        .store
        .ledger()
        .append(
            state.clock.rfc3339(),
            LedgerEvent::ApprovalVote(ApprovalVoteEvent {
                vote: signed.clone(),
                state_after: state_after.to_string(),
            }),
        )
        .await
        .map_err(ApiError::store_unavailable)?;
    let settle = (state_after != "pending").then_some(state_after);
    let counted = state
        .store
        .approvals()
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
        .map_err(ApiError::store_unavailable)?;
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
    store: &warden_store::Store,
) -> Result<Vec<VoteSample>, warden_store::StoreError> {
    Ok(store
        .approvals()
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
    let Ok(samples) = vote_samples(&state.store).await else {
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
            .store
            .ledger()
            .append(
                state.clock.rfc3339(),
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

/// Approval-fatigue figures per approver and per agent, with the rubber-stamp verdict.
pub async fn stats(state: &AppState) -> Result<Value, warden_store::StoreError> {
    let samples = vote_samples(&state.store).await?;
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
