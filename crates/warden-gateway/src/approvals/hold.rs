//! Held MCP calls: the call waits for people (with `notifications/progress` when the client
//! asked for them), then runs under the approval — through the pipeline again — or is
//! answered with the denial, the expiry or "pending approval".

use std::time::Duration;

use serde_json::{json, Value};

use super::{detail_link, wait_for};
use crate::pipeline::Decided;
use crate::state::AppState;

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

/// A held MCP call (its approval request open or joined by the pipeline): wait up to
/// `[approvals] hold_secs` for people to decide (sending `notifications/progress` every
/// `progress_secs` when the client gave a progress token), then propose it again under the
/// approval — through every step of the pipeline, so a limit, a pin or a policy change since
/// still refuses it — and return the execution's decision (`allow`: run it). Otherwise the
/// answer in words: the denial, the expiry, "pending approval <id>, retry later", or the
/// refusal of the execution. When the client goes away while the call is held, it does not run.
pub(crate) async fn hold_mcp(
    state: &AppState,
    held: Decided,
    progress: Option<&Progress>,
) -> Result<Decided, String> {
    use warden_core::otel::error_type::APPROVAL_REQUIRED;
    let agent = held.proposal.agent().to_string();
    let tool = held.proposal.target.recorded_name().to_string();
    let Some(row_id) = held.approval.as_ref().map(|r| r.id.clone()) else {
        held.span.end(state, &agent, Some(APPROVAL_REQUIRED));
        return Err(format!(
            "Warden is holding this call to `{tool}` for approval, but no approval request is open; it has not run"
        ));
    };
    let link = detail_link(state, &row_id);
    let gone = || {
        format!(
            "the client went away while the call was held; it has not run (approval {row_id} stays open: retry the same call)"
        )
    };
    let refuse = |held: Decided, text: String| {
        held.span.end(state, &agent, Some(APPROVAL_REQUIRED));
        Err(text)
    };
    let hold_until = tokio::time::Instant::now() + Duration::from_secs(state.approvals.hold_secs);
    let every = Duration::from_secs(state.approvals.progress_secs.max(1));
    let mut sent = 0u64;
    let row = loop {
        if let Some(p) = progress {
            sent += 1;
            if !p.send(sent, &row_id, &link).await {
                return refuse(held, gone());
            }
        }
        let left = hold_until.saturating_duration_since(tokio::time::Instant::now());
        let step = if progress.is_some() {
            left.min(every)
        } else {
            left
        };
        let row = match wait_for(state, &row_id, step).await {
            Ok(row) => row,
            Err(e) => {
                return refuse(
                    held,
                    format!("the approval queue is unavailable ({e}); the call has not run"),
                )
            }
        };
        let pending = row.as_ref().is_some_and(|r| r.state == "pending");
        if !pending || tokio::time::Instant::now() >= hold_until {
            break row;
        }
    };
    let Some(row) = row else {
        return refuse(
            held,
            format!("approval `{row_id}` vanished; the call has not run"),
        );
    };
    match row.state.as_str() {
        "approved" => {
            if progress.is_some_and(|p| p.tx.is_closed()) {
                return refuse(held, gone());
            }
            let release = held.release(&row.id);
            let execution = crate::pipeline::decide(state, release, held.span, None).await;
            match execution {
                Ok(d) if d.decision.decision == warden_core::Verdict::Allow => Ok(d),
                Ok(d) => Err(d.refusal_text()),
                Err(refusal) => Err(refusal.text()),
            }
        }
        "denied" => {
            let text = format!(
                "Warden: a person denied this call to `{tool}` (approval {}): {}",
                row.id,
                row.deny_reason.as_deref().unwrap_or("no reason given")
            );
            refuse(held, text)
        }
        "expired" => {
            let text = format!(
                "Warden: approval {} for this call to `{tool}` expired, not approved; the call has not run",
                row.id
            );
            refuse(held, text)
        }
        _ => {
            let text = format!(
                "Warden: pending approval {}, retry later (the call to `{tool}` has not run; retry it with the same arguments once a person has approved it). Reasons:\n- {}",
                row.id,
                row.reasons.join("\n- ")
            );
            refuse(held, text)
        }
    }
}
