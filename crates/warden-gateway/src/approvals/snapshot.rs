//! Before-state for approvers: a card's snapshot read (`snapshot = { tool, args }` on a
//! write grant) runs when a call is held, through the policy and the pins like any read of
//! the agent, and what it returned is shown beside the arguments.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use warden_core::approval::snapshot_state;
use warden_core::ledger::{LedgerEvent, SnapshotReadEvent};
use warden_core::{CallRequest, Verdict};

use crate::pipeline::call::Decided;
use crate::state::AppState;

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

/// The before-state of a held call: read by Warden when the card configures a snapshot read,
/// else what the caller reported. `reader` runs the read (`None`: the gateway's upstream).
/// (value, source, why unavailable)
pub(super) async fn before_state_of(
    state: &AppState,
    held: &Decided,
    reader: Option<&dyn SnapshotReader>,
) -> (Option<Value>, Option<String>, Option<String>) {
    let agent = held.proposal.agent();
    let qualified = held.qualified_tool();
    let snapshot = state
        .policy
        .cards
        .get(agent)
        .and_then(|c| c.tool(&qualified))
        .and_then(|g| g.snapshot.clone().map(|s| (g.server.clone(), s)));
    let Some((server, snap)) = snapshot else {
        // Reported by the caller: shown as such, redacted like everything stored.
        return match held.proposal.before_state.clone() {
            Some(mut v) => {
                state.store.ledger().redact_value(&mut v);
                (Some(v), Some("caller".to_string()), None)
            }
            None => (None, None, None),
        };
    };
    let hub = HubReader {
        state,
        server: &server,
    };
    let reader: &dyn SnapshotReader = reader.unwrap_or(&hub);
    let started = std::time::Instant::now();
    let args = snap.arguments(&held.proposal.arguments);
    let read = match &args {
        Ok(a) => snapshot_read(state, agent, &server, &snap, a.clone(), reader).await,
        Err(e) => Err(e.clone()),
    };
    let (mut value, error) = match read {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    };
    if let Some(v) = value.as_mut() {
        state.store.ledger().redact_value(v);
        let (kept, _, _) = crate::state::bound_output(v.clone(), state.max_output_bytes);
        *v = kept;
    }
    let event = LedgerEvent::SnapshotRead(SnapshotReadEvent {
        approval_id: held.id.clone(),
        agent: agent.to_string(),
        tool: snap.qualified.clone(),
        arguments: args.unwrap_or(Value::Null),
        status: if error.is_none() { "success" } else { "error" }.to_string(),
        before_state: value.clone().unwrap_or(Value::Null),
        error: error.clone(),
        duration_ms: u64::try_from(started.elapsed().as_millis()).ok(),
    });
    if let Err(e) = state
        .store
        .ledger()
        .append(state.clock.rfc3339(), event)
        .await
    {
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
    if let Some(why) =
        crate::pipeline::pin::pin_refusal(state, server, &snap.tool, &snap.qualified).await
    {
        return Err(why);
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
