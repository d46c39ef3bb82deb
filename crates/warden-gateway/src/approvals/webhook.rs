//! The approval webhook: a chat message that a call waits for people, with a link.

use std::time::Duration;

use serde_json::json;
use warden_store::ApprovalRow;

use crate::state::AppState;

/// Post `{"text": …}` to the configured webhook, in the background. Tool, agent, tier, id and
/// link only: argument values may be secret and never leave.
pub(super) fn notify_webhook(state: &AppState, row: &ApprovalRow) {
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

/// The detail page of a request (in the webhook message, MCP progress and agent views).
pub(crate) fn detail_link(state: &AppState, id: &str) -> String {
    let base = state
        .approvals
        .public_url
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:8787".to_string());
    format!("{}/ui/approvals/{id}", base.trim_end_matches('/'))
}
