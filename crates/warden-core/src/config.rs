//! `warden.toml`: the gateway's own settings.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::{from_toml_error, FileError};
use crate::scope_card::{is_safe_name, Environment};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WardenConfig {
    pub gateway: GatewayConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub upstreams: BTreeMap<String, Spanned<UpstreamConfig>>,
    /// Static per-agent API keys, stored as `sha256:<hex>` of the key. Replaced by scoped,
    /// expiring tokens when the identity work lands; a call without a valid key is refused.
    #[serde(default)]
    pub agent_keys: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// `host:port` to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The environment this gateway serves; agents bound to another are denied.
    pub environment: Environment,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub max_request_bytes: usize,
    /// Largest tool output kept in a ledger record, in bytes; longer outputs are cut and the
    /// record says so.
    #[serde(default = "default_max_output")]
    pub max_output_bytes: usize,
    /// How long a call to an MCP upstream may take before it fails, in seconds.
    #[serde(default = "default_upstream_timeout")]
    pub upstream_timeout_secs: u64,
    /// Most MCP `tools/call` requests one session may have in flight at once.
    #[serde(default = "default_session_calls")]
    pub max_concurrent_calls_per_session: usize,
}

fn default_session_calls() -> usize {
    16
}

fn default_upstream_timeout() -> u64 {
    30
}

fn default_listen() -> String {
    "127.0.0.1:8787".to_string()
}
fn default_max_body() -> usize {
    1024 * 1024
}
fn default_max_output() -> usize {
    64 * 1024
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` (relative to the project directory) is the default.
    #[serde(default = "default_store_url")]
    pub url: String,
    #[serde(default)]
    pub durability: Durability,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: default_store_url(),
            durability: Durability::default(),
        }
    }
}

fn default_store_url() -> String {
    "sqlite://warden.db".to_string()
}

/// What "durable" means before a call may run.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// The record survives a crash of the Warden process (SQLite WAL, synchronous=NORMAL).
    #[default]
    Process,
    /// The record survives a power loss (each group commit is fsynced).
    Fsync,
}

/// A tool server Warden fronts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// A stdio MCP server to spawn.
    pub command: Option<Vec<String>>,
    /// A streamable-HTTP MCP server.
    pub url: Option<String>,
    /// A tool server built into Warden (`demo`).
    pub builtin: Option<String>,
    pub description: Option<String>,
    /// Default output trust of this server's tools (a tool's own `output_trust` wins).
    pub output_trust: Option<crate::scope_card::Trust>,
    /// Working directory of a stdio server, relative to the project directory.
    pub cwd: Option<String>,
    /// Environment of a stdio server. It does not inherit Warden's environment (only `PATH`,
    /// `HOME`, `LANG`, `TMPDIR` and `USER` pass), so credentials reach only the server they
    /// are configured for; a value can be taken from Warden's environment with
    /// `{ from_env = "VAR" }` so no secret is written in this file.
    #[serde(default)]
    pub env: BTreeMap<String, EnvValue>,
    /// Headers sent to a streamable-HTTP server (credentials: `{ from_env = "VAR" }`).
    #[serde(default)]
    pub headers: BTreeMap<String, EnvValue>,
}

/// An environment value for an upstream.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum EnvValue {
    /// Written here: for settings, not secrets.
    Plain(String),
    /// Read from Warden's own environment when the server starts.
    FromEnv { from_env: String },
}

/// Parse and check `warden.toml`.
pub fn parse_config(path: &str, source: &str) -> Result<WardenConfig, Vec<FileError>> {
    let cfg: WardenConfig =
        toml::from_str(source).map_err(|e| vec![from_toml_error(path, source, &e)])?;
    let mut errors = Vec::new();
    for (name, up) in &cfg.upstreams {
        let at = up.span().start;
        let u = up.get_ref();
        let set = [u.command.is_some(), u.url.is_some(), u.builtin.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if set != 1 {
            errors.push(
                FileError::at(
                    path,
                    source,
                    at,
                    format!("upstream `{name}` must have exactly one of `command`, `url`, `builtin`"),
                )
                .with_hint("`command = [\"npx\", \"...\"]` for stdio, `url = \"http://...\"` for streamable HTTP"),
            );
        }
        if !is_safe_name(name) {
            errors.push(FileError::at(
                path,
                source,
                at,
                format!("upstream name `{name}` may use letters, digits, `-`, `_` and `.` only"),
            ));
        }
        if let Some(b) = &u.builtin {
            if b != "demo" {
                errors.push(
                    FileError::at(
                        path,
                        source,
                        at,
                        format!("unknown builtin tool server `{b}`"),
                    )
                    .with_hint("the only builtin is `demo`"),
                );
            }
        }
        if let Some(c) = &u.command {
            if c.is_empty() {
                errors.push(FileError::at(
                    path,
                    source,
                    at,
                    format!("upstream `{name}`: `command` is empty"),
                ));
            }
        }
    }
    for (agent, key) in &cfg.agent_keys {
        let k = key.get_ref();
        let ok = k
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()));
        if !ok {
            errors.push(
                FileError::at(
                    path,
                    source,
                    key.span().start,
                    format!("agent key for `{agent}` must be `sha256:` and 64 hex digits"),
                )
                .with_hint("store only the hash of a key; `warden init` shows how"),
            );
        }
    }
    if !cfg.store.url.starts_with("sqlite://") {
        errors.push(
            FileError::whole(
                path,
                format!("store url `{}` is not supported yet", cfg.store.url),
            )
            .with_hint("use `sqlite://PATH`; PostgreSQL support is on the roadmap"),
        );
    }
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(errors)
    }
}
