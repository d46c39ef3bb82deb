//! `[upstreams.NAME]`: the tool servers Warden fronts (stdio, streamable HTTP or built in),
//! their environment and headers.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::FileError;
use crate::scope_card::is_safe_name;

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
    /// Read from Warden's encrypted secret store (`warden secret set NAME`) when the server
    /// starts.
    Secret { secret: String },
}

/// Each upstream: exactly one of `command`, `url`, `builtin`; a safe name; a known builtin; a
/// non-empty command.
pub(super) fn check_upstreams(
    path: &str,
    source: &str,
    upstreams: &BTreeMap<String, Spanned<UpstreamConfig>>,
    errors: &mut Vec<FileError>,
) {
    for (name, up) in upstreams {
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
}
