//! `warden mcp stdio`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use warden_gateway::mcp::stdio_gate::McpGate;

use warden_gateway::project_store::ProjectStore;

use crate::context::Context;

pub async fn stdio(
    ctx: &Context,
    agent: &str,
    server: Option<String>,
    command: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let dir = ctx.dir();
    let project = match ctx.load() {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let Some(card) = project.policy.cards.get(agent) else {
        bail!(
            "agent `{agent}` has no scope card in {}/agents",
            dir.display()
        );
    };
    crate::region::check_agent(&project.policy, &project.config, agent)?;
    let server = match server {
        Some(s) => s,
        None => {
            let mut servers: Vec<&str> = card.tools.iter().map(|t| t.server.as_str()).collect();
            servers.sort_unstable();
            servers.dedup();
            match servers.as_slice() {
                [one] => (*one).to_string(),
                _ => bail!(
                    "the card of `{agent}` uses servers {}; say which one this is with --server",
                    servers.join(", ")
                ),
            }
        }
    };
    let Some(upstream) = project.config.upstreams.get(&server) else {
        bail!("`{server}` is not an upstream in warden.toml; declare it as [upstreams.{server}]");
    };
    let command = if command.is_empty() {
        match &upstream.get_ref().command {
            Some(c) => c.clone(),
            None => bail!(
                "upstream `{server}` has no `command` in warden.toml; give the server command after `--`"
            ),
        }
    } else {
        command
    };
    let writer = ProjectStore::open(dir, &project.config).await?;
    let session = format!("stdio-{}", uuid_v7());
    tracing::info!(message = "mcp stdio gate", agent, server = %server, session = %session);
    let gate_server = server.clone();
    let read_timeout =
        std::time::Duration::from_secs(project.config.gateway.upstream_timeout_secs.max(1));
    let secret_values =
        crate::identity_cmd::upstream_secrets(dir, &project.config, writer.store()).await?;
    let telemetry = crate::serve::telemetry_for(&project.config, &secret_values)?;
    // The same pipeline as `warden serve`: held calls wait in the project's approval queue,
    // where people vote through `warden serve`'s UI or `warden approvals approve` (same store).
    let state = warden_gateway::AppState::new(
        &project.config,
        Arc::new(project.policy),
        writer.store().clone(),
    )
    .with_public_url(format!("http://{}", project.config.gateway.listen))
    .with_telemetry(telemetry.clone());
    let gate = Arc::new(
        McpGate::new(state, agent.to_string(), server, session).with_read_timeout(read_timeout),
    );
    let env = crate::serve::resolve_values(
        &format!("upstream `{gate_server}`"),
        &upstream.get_ref().env,
        &secret_values,
    )?;
    let launch = warden_gateway::mcp::upstream::Launch {
        command,
        env,
        cwd: upstream.get_ref().cwd.as_ref().map(|c| dir.join(c)),
    };
    let code = warden_gateway::mcp::stdio::run(gate, &launch)
        .await
        .context("running the MCP stdio gate")?;
    if let Some(t) = &telemetry {
        t.flush(std::time::Duration::from_secs(5)).await;
    }
    writer.close().await;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

fn uuid_v7() -> String {
    // Time-ordered, like decision ids, so sessions sort by start.
    warden_gateway::new_id()
}
