//! Tool pinning of announced definitions (rug-pull detection): every tool an upstream
//! announces is hashed (canonical JSON of name, description, input schema) and checked
//! against its pin. New: pinned, and a `tool_pinned` record. Changed: blocked, and a
//! `tool_changed` alert record. A blocked tool is left out of listings; calls to it are
//! refused by the pipeline's pin step.

use serde_json::Value;
use warden_core::ledger::{LedgerEvent, ToolEvent};
use warden_core::tools::{audit_definition, pinned_definition, tool_definition_hash};
use warden_store::PinCheck;

use crate::state::AppState;

/// Check a tool's announced definition against its pin; `false` if the tool must not be
/// offered (changed, blocked, or the pin could not be checked).
pub(crate) async fn pin_tool(
    state: &AppState,
    server: &str,
    name: &str,
    definition: &Value,
) -> bool {
    let store = &state.store;
    let hash = tool_definition_hash(definition);
    let pinned = pinned_definition(definition);
    let now = state.clock.rfc3339();
    let event = |previous_hash: Option<String>| ToolEvent {
        server: server.to_string(),
        tool: name.to_string(),
        hash: hash.clone(),
        previous_hash,
        actor: "gateway".to_string(),
    };
    match store
        .pins()
        .check_pin(server, name, &hash, &pinned, &now)
        .await
    {
        Ok(PinCheck::Same) => true,
        Ok(PinCheck::New) => {
            for f in audit_definition(definition) {
                tracing::warn!(message = "tool description needs review", %server, tool = %name, rule = f.rule, excerpt = %f.excerpt);
            }
            if let Err(error) = store
                .ledger()
                .append(now, LedgerEvent::ToolPinned(event(None)))
                .await
            {
                tracing::error!(message = "tool pin not recorded", %error);
            }
            true
        }
        Ok(PinCheck::Changed { previous }) => {
            tracing::error!(message = "ALERT: tool definition changed; tool blocked until reviewed", %server, tool = %name);
            if let Err(error) = store
                .ledger()
                .append(now, LedgerEvent::ToolChanged(event(Some(previous))))
                .await
            {
                tracing::error!(message = "tool change alert not recorded", %error);
            }
            false
        }
        Ok(PinCheck::Blocked) => false,
        Err(error) => {
            tracing::error!(message = "tool pin could not be checked; tool hidden", %error, tool = %name);
            false
        }
    }
}
