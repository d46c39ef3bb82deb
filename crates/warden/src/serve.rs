//! `warden serve`: the gateway process.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use warden_gateway::project_store::ProjectStore;
use warden_gateway::AppState;

use crate::context::Context;

/// `warden serve [--listen ADDR]`
pub async fn run(ctx: &Context, listen: Option<String>) -> anyhow::Result<ExitCode> {
    let dir = ctx.dir();
    let project = match ctx.load() {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    for w in &project.policy.warnings {
        tracing::warn!(message = "project warning", warning = %w);
    }
    // TLS settings are checked before anything is opened or bound.
    let tls = match tls_config(dir, &project.config) {
        Ok(t) => t,
        Err(code) => return Ok(code),
    };
    let writer = ProjectStore::open(dir, &project.config).await?;
    let addr = listen.unwrap_or_else(|| project.config.gateway.listen.clone());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr} (warden.toml [gateway] listen, or --listen)"))?;
    let local = listener.local_addr()?;
    let version = project.policy.short_version().to_string();
    let region = project.config.region.clone();
    // Only the agents whose records this store keeps are served here.
    let agents = project
        .policy
        .cards
        .values()
        .filter(|c| c.region == region)
        .count();
    // Stdio MCP upstreams are started now and kept running (restarted with back-off).
    let timeout =
        std::time::Duration::from_secs(project.config.gateway.upstream_timeout_secs.max(1));
    let secret_values =
        crate::identity_cmd::upstream_secrets(dir, &project.config, writer.store()).await?;
    let master_key = warden_gateway::secrets::load_master_key(dir, &project.config.identity)?;
    let resolve =
        |name: &str, table: &std::collections::BTreeMap<String, warden_core::config::EnvValue>| {
            resolve_values(name, table, &secret_values)
        };
    let mut upstreams = std::collections::HashMap::new();
    for (name, u) in &project.config.upstreams {
        let u = u.get_ref();
        if let Some(command) = u.command.clone() {
            let launch = warden_gateway::mcp::upstream::Launch {
                command,
                env: resolve(&format!("upstream `{name}`"), &u.env)?,
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
                        resolve(&format!("upstream `{name}`"), &u.headers)?,
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
    let telemetry = telemetry_for(&project.config, &secret_values)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let state = AppState::new(
        &project.config,
        Arc::new(project.policy),
        writer.store().clone(),
    )
    .with_telemetry(telemetry.clone())
    .with_master_key(master_key)
    .with_upstreams(
        upstreams,
        project.config.gateway.max_concurrent_calls_per_session,
    )
    .with_ledger_signer(Some(Arc::clone(writer.signer())))
    .with_public_url(format!("{scheme}://{local}"));
    crate::approvals_cmd::spawn_sweeper(state.clone());
    let retention_job = crate::lifecycle_cmd::spawn_retention_job(
        writer.store().clone(),
        project.config.retention.run_every_mins,
    );
    let shutdown = shutdown_signal();
    // The first line on stdout is the address, for scripts and tests.
    println!("listening on {scheme}://{local}");
    tracing::info!(message = "gateway started", %local, tls = tls.is_some(), policy_version = %version, agents, region = region.as_deref().unwrap_or("home"));
    match tls {
        Some(tls) => warden_gateway::serve_tls(listener, tls, state, shutdown).await?,
        None => warden_gateway::serve(listener, state, shutdown).await?,
    }
    if let Some(job) = retention_job {
        job.abort();
    }
    if let Some(t) = &telemetry {
        t.flush(std::time::Duration::from_secs(5)).await;
    }
    writer.close().await;
    tracing::info!(message = "gateway stopped");
    Ok(ExitCode::SUCCESS)
}

/// Values from a table of `EnvValue`s (upstream `env` and `headers`, `[telemetry]
/// otlp_headers`): plain, from the environment, or from the secret store. A missing one is
/// an error naming the setting, never a value.
pub fn resolve_values(
    name: &str,
    table: &std::collections::BTreeMap<String, warden_core::config::EnvValue>,
    secret_values: &std::collections::HashMap<String, String>,
) -> anyhow::Result<Vec<(String, String)>> {
    use warden_core::config::EnvValue;
    let mut out = Vec::new();
    for (key, value) in table {
        match value {
            EnvValue::Plain(v) => out.push((key.clone(), v.clone())),
            EnvValue::FromEnv { from_env } => match std::env::var(from_env) {
                Ok(v) => out.push((key.clone(), v)),
                Err(_) => anyhow::bail!(
                    "{name}: {key} is to come from the environment variable {from_env}, which is not set"
                ),
            },
            EnvValue::Secret { secret } => match secret_values.get(secret) {
                Some(v) => out.push((key.clone(), v.clone())),
                None => anyhow::bail!("{name}: secret `{secret}` is not in the secret store"),
            },
        }
    }
    Ok(out)
}

/// The `execute_tool` span exporter when `[telemetry] otlp_endpoint` is set.
pub fn telemetry_for(
    config: &warden_core::config::WardenConfig,
    secret_values: &std::collections::HashMap<String, String>,
) -> anyhow::Result<Option<Arc<warden_gateway::telemetry::Telemetry>>> {
    let Some(url) = config.telemetry.traces_url() else {
        return Ok(None);
    };
    let headers = resolve_values(
        "[telemetry] otlp_headers",
        &config.telemetry.otlp_headers,
        secret_values,
    )?;
    let t =
        warden_gateway::telemetry::Telemetry::spawn(warden_gateway::telemetry::ExporterConfig {
            url: url.clone(),
            headers,
            resource: warden_core::otel::Resource {
                service_name: config.telemetry.service_name.clone(),
                service_version: env!("CARGO_PKG_VERSION").to_string(),
                environment: config.gateway.environment.to_string(),
            },
        })?;
    tracing::info!(message = "sending execute_tool spans", endpoint = %url);
    Ok(Some(t))
}

/// The listener's TLS configuration when `[gateway.tls]` turns it on; a problem is printed
/// located at its setting in warden.toml.
pub fn tls_config(
    dir: &Path,
    config: &warden_core::config::WardenConfig,
) -> Result<Option<Arc<rustls::ServerConfig>>, ExitCode> {
    let Some(tls) = config.gateway.tls_enabled() else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(dir.join("warden.toml")).unwrap_or_default();
    match warden_gateway::tls::for_project(dir, &text, tls) {
        Ok(c) => Ok(Some(Arc::new(c))),
        Err(e) => {
            eprintln!("{e}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is called (not when
/// the future is first polled), so a signal sent right after the "listening on" line stops the
/// gateway cleanly instead of killing it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(term) => {},
                () = wait(int) => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
