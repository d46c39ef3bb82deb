//! `warden serve`: the gateway process.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use warden_gateway::AppState;
use warden_store::{Ledger, LedgerOptions};

use crate::project_cmds::load;

/// Open the project's ledger.
pub async fn open_ledger(
    dir: &Path,
    url: &str,
    durability: warden_store::Durability,
) -> anyhow::Result<Ledger> {
    Ledger::open_url(
        url,
        dir,
        LedgerOptions {
            durability,
            redactor: Some(crate::redact_cmd::redactor_for(dir)?),
            vault: crate::lifecycle_cmd::vault_options(dir, false)?,
            ..Default::default()
        },
    )
    .await
    .with_context(|| format!("opening the ledger `{url}` (warden.toml [store] url)"))
}

pub async fn run(dir: &Path, listen: Option<String>) -> anyhow::Result<ExitCode> {
    let project = match load(dir) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    for w in &project.policy.warnings {
        tracing::warn!(message = "project warning", warning = %w);
    }
    let signer = crate::ledger_cmd::signer(dir, &project.config)?;
    let ledger =
        crate::ledger_cmd::open_signing_with(dir, &project.config, Arc::clone(&signer)).await?;
    let addr = listen.unwrap_or_else(|| project.config.gateway.listen.clone());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr} (warden.toml [gateway] listen, or --listen)"))?;
    let local = listener.local_addr()?;
    let version = project.policy.short_version().to_string();
    let agents = project.policy.cards.len();
    // Stdio MCP upstreams are started now and kept running (restarted with back-off).
    let timeout =
        std::time::Duration::from_secs(project.config.gateway.upstream_timeout_secs.max(1));
    let secret_values =
        crate::identity_cmd::upstream_secrets(dir, &project.config, &ledger).await?;
    let master_key = warden_gateway::secrets::load_master_key(dir, &project.config.identity)?;
    let resolve =
        |name: &str, table: &std::collections::BTreeMap<String, warden_core::config::EnvValue>| {
            let mut out = Vec::new();
            for (key, value) in table {
                match value {
                warden_core::config::EnvValue::Plain(v) => out.push((key.clone(), v.clone())),
                warden_core::config::EnvValue::FromEnv { from_env } => match std::env::var(from_env) {
                    Ok(v) => out.push((key.clone(), v)),
                    Err(_) => anyhow::bail!(
                        "upstream `{name}`: {key} is to come from the environment variable {from_env}, which is not set"
                    ),
                },
                warden_core::config::EnvValue::Secret { secret } => match secret_values.get(secret) {
                    Some(v) => out.push((key.clone(), v.clone())),
                    None => anyhow::bail!("upstream `{name}`: secret `{secret}` is not in the secret store"),
                },
            }
            }
            Ok(out)
        };
    let mut upstreams = std::collections::HashMap::new();
    for (name, u) in &project.config.upstreams {
        let u = u.get_ref();
        if let Some(command) = u.command.clone() {
            let launch = warden_gateway::mcp::upstream::Launch {
                command,
                env: resolve(name, &u.env)?,
                cwd: u.cwd.as_ref().map(|c| dir.join(c)),
            };
            upstreams.insert(
                name.clone(),
                warden_gateway::mcp::upstream::Upstream::Stdio(
                    warden_gateway::mcp::upstream::StdioUpstream::spawn(
                        name.clone(),
                        launch,
                        timeout,
                    ),
                ),
            );
        } else if let Some(url) = u.url.clone() {
            upstreams.insert(
                name.clone(),
                warden_gateway::mcp::upstream::Upstream::Http(
                    warden_gateway::mcp::http_upstream::HttpUpstream::spawn(
                        name.clone(),
                        url,
                        resolve(name, &u.headers)?,
                        timeout,
                    ),
                ),
            );
        }
    }
    for (name, up) in &upstreams {
        if !up.ready(std::time::Duration::from_secs(20)).await {
            tracing::warn!(message = "upstream not ready yet; its tools appear once it is", upstream = %name);
        }
    }
    let state = AppState::new(&project.config, Arc::new(project.policy), ledger.clone())
        .with_master_key(master_key)
        .with_upstreams(
            upstreams,
            project.config.gateway.max_concurrent_calls_per_session,
        )
        .with_ledger_signer(Some(signer))
        .with_public_url(format!("http://{local}"));
    crate::approvals_cmd::spawn_sweeper(state.clone());
    let retention_job = crate::lifecycle_cmd::spawn_retention_job(
        ledger.clone(),
        project.config.retention.run_every_mins,
    );
    // The first line on stdout is the address, for scripts and tests.
    println!("listening on http://{local}");
    tracing::info!(message = "gateway started", %local, policy_version = %version, agents);
    warden_gateway::serve(listener, state, shutdown_signal()).await?;
    if let Some(job) = retention_job {
        job.abort();
    }
    crate::ledger_cmd::close(ledger).await;
    tracing::info!(message = "gateway stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
