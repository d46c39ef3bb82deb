//! The two records of a call, built here and nowhere else: its decision (appended before the
//! call may run, and durable before anyone learns the verdict) and its outcome (after it ran).

use serde_json::Value;
use warden_core::ledger::{DecisionEvent, LedgerEvent, OutcomeEvent};
use warden_core::Decision;

use super::{Proposal, Ran, Reported};
use crate::state::AppState;

/// The decision record of proposal `p`, decided as `decision` under id `id`.
pub(super) fn decision(
    state: &AppState,
    p: &Proposal,
    id: &str,
    decision: &Decision,
) -> LedgerEvent {
    let environment = state.policy.cards.get(p.agent()).map_or_else(
        || state.policy.environment.to_string(),
        |c| c.environment.to_string(),
    );
    LedgerEvent::Decision(Box::new(DecisionEvent {
        decision_id: id.to_string(),
        agent: p.agent().to_string(),
        environment,
        tool: p.target.recorded_name().to_string(),
        qualified_tool: decision.tool.clone(),
        arguments: p.arguments.clone(),
        session: p.session.clone(),
        correlation_id: p.correlation_id.clone(),
        source: p.source.as_str().to_string(),
        mcp_request_id: p.mcp_request_id.clone(),
        user_request: p.user_request.clone(),
        decision: decision.clone(),
        approval_id: p.approval_id.clone(),
        on_behalf_of: p.on_behalf_of.clone(),
    }))
}

/// The outcome record of call `ran`: what it returned, cut to `[gateway] max_output_bytes`
/// (the record says so when it was cut, and keeps the full size).
pub(super) fn outcome(
    state: &AppState,
    ran: &Ran,
    output: Value,
    reported: &Reported,
) -> (LedgerEvent, bool) {
    let (output, output_bytes, output_truncated) =
        crate::state::bound_output(output, state.max_output_bytes);
    let event = LedgerEvent::Outcome(OutcomeEvent {
        decision_id: ran.decision_id.clone(),
        agent: ran.agent.clone(),
        tool: ran.tool.clone(),
        correlation_id: ran.correlation_id.clone(),
        status: if reported.failed { "error" } else { "success" }.to_string(),
        output,
        output_bytes,
        output_truncated,
        duration_ms: reported
            .duration_ms
            .or_else(|| u64::try_from(ran.started.elapsed().as_millis()).ok()),
    });
    (event, output_truncated)
}
