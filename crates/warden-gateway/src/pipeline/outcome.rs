//! The outcome path: what an allowed call returned, recorded once, and what the session now
//! knows because of it.
//!
//! 1. bound the output (`[gateway] max_output_bytes`; a cut output says so);
//! 2. append the outcome record (the store redacts and seals it) and wait until it is durable;
//! 3. update the session: the tool's trust label and data classes, and the injection
//!    detector, whose findings are recorded as an `injection_detected` alert;
//! 4. end the call's span.

use std::time::Instant;

use serde_json::Value;
use warden_core::ledger::{InjectionEvent, LedgerEvent};
use warden_core::session::output_text;
use warden_store::{Appended, StoreError};

use super::CallSpan;
use crate::state::AppState;

/// An allowed call that ran (or was sent to run), as its outcome is recorded.
#[derive(Debug)]
pub(crate) struct Ran {
    pub decision_id: String,
    pub agent: String,
    /// The tool as the agent named it (or the MCP method of a read).
    pub tool: String,
    /// `server/name` when the card grants the tool: whose trust label the output takes.
    pub qualified_tool: Option<String>,
    pub session: Option<String>,
    pub correlation_id: Option<String>,
    /// When the call was sent, for its duration (when the caller does not report one).
    pub started: Instant,
    pub span: CallSpan,
}

/// What the call returned.
#[derive(Debug)]
pub(crate) struct Reported {
    /// The tool reported a failure (a JSON-RPC error, `isError`, or `status: error`).
    pub failed: bool,
    /// The upstream could not be reached at all (for the span's error type).
    pub unreachable: bool,
    pub output: Value,
    /// As reported by the caller; else measured from [`Ran::started`].
    pub duration_ms: Option<u64>,
}

/// Record the outcome of an allowed call and let its output update the session. Returns
/// where the record landed and whether the output was cut to the bound.
pub(crate) async fn record_outcome(
    state: &AppState,
    ran: Ran,
    mut reported: Reported,
) -> Result<(Appended, bool), StoreError> {
    use warden_core::otel::error_type;
    // The session sees the whole output; the record keeps it up to the bound.
    let observed = std::mem::take(&mut reported.output);
    let (event, output_truncated) =
        super::records::outcome(state, &ran, observed.clone(), &reported);
    let Ran {
        decision_id,
        agent,
        qualified_tool,
        session,
        span,
        ..
    } = ran;
    let appended = state
        .store
        .ledger()
        .append(state.clock.rfc3339(), event)
        .await;
    let error = match (reported.unreachable, reported.failed) {
        (true, _) => Some(error_type::UPSTREAM_UNAVAILABLE),
        (false, true) => Some(error_type::TOOL_ERROR),
        _ => None,
    };
    span.end(state, &agent, error);
    let appended = appended?;
    if let Some(tool) = &qualified_tool {
        observe_output(
            state,
            &agent,
            session.as_deref(),
            &decision_id,
            tool,
            &observed,
            appended.seq,
        )
        .await;
    }
    Ok((appended, output_truncated))
}

/// A tool output reached the agent: update its session (trust label, data classes, detector)
/// and, if the detector fired, append an `injection_detected` record and log an alert.
/// `tool` is the tool as `server/name`; `outcome_seq` the ledger seq of the outcome record.
async fn observe_output(
    state: &AppState,
    agent: &str,
    session: Option<&str>,
    decision_id: &str,
    tool: &str,
    output: &Value,
    outcome_seq: u64,
) {
    let policy = &state.policy;
    let Some(grant) = policy.cards.get(agent).and_then(|c| c.tool(tool)) else {
        return;
    };
    let text = output_text(output);
    let shared = state.taint.get(agent, session);
    let effect = {
        let Ok(mut s) = shared.lock() else { return };
        s.record_text(
            grant.qualified(),
            grant.output_trust,
            &grant.data_classes,
            &text,
            outcome_seq,
            policy.detector(agent),
        )
    };
    if effect.findings.is_empty() {
        return;
    }
    let rules: Vec<&str> = effect.findings.iter().map(|f| f.rule.as_str()).collect();
    tracing::warn!(
        message = "ALERT: injected instructions detected in tool output; session is suspicious",
        agent = %agent,
        session = session.unwrap_or_default(),
        tool = %grant.qualified(),
        outcome_seq,
        rules = %rules.join(","),
    );
    let event = LedgerEvent::InjectionDetected(InjectionEvent {
        decision_id: decision_id.to_string(),
        agent: agent.to_string(),
        session: session.map(str::to_string),
        tool: grant.qualified().to_string(),
        outcome_seq,
        taint_before: effect.taint_before.as_str().to_string(),
        taint_after: effect.taint_after.as_str().to_string(),
        findings: effect.findings,
    });
    if let Err(error) = state
        .store
        .ledger()
        .append(state.clock.rfc3339(), event)
        .await
    {
        tracing::error!(message = "injection alert not recorded", %error);
    }
}
