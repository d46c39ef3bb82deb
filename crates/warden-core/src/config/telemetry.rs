//! `[telemetry]`: where OpenTelemetry `execute_tool` spans go.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::EnvValue;
use crate::diagnostic::FileError;

/// `[telemetry]`: where OpenTelemetry `execute_tool` spans go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Base URL of an OTLP/HTTP receiver (`http://127.0.0.1:4318`); spans are POSTed as
    /// JSON to `<endpoint>/v1/traces` (or to the URL as given when it already ends so).
    /// Unset: no spans are built or sent.
    pub otlp_endpoint: Option<Spanned<String>>,
    /// Headers sent with each export (a collector's token: `{ from_env = "VAR" }` or
    /// `{ secret = "NAME" }`).
    #[serde(default)]
    pub otlp_headers: BTreeMap<String, EnvValue>,
    /// `service.name` of the spans (default `warden`).
    #[serde(default = "default_service_name")]
    pub service_name: String,
}

fn default_service_name() -> String {
    "warden".to_string()
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            otlp_headers: BTreeMap::new(),
            service_name: default_service_name(),
        }
    }
}

impl TelemetryConfig {
    /// The URL spans are POSTed to, if an endpoint is set.
    pub fn traces_url(&self) -> Option<String> {
        let base = self.otlp_endpoint.as_ref()?.get_ref().trim();
        if base.ends_with("/v1/traces") {
            Some(base.to_string())
        } else {
            Some(format!("{}/v1/traces", base.trim_end_matches('/')))
        }
    }
}

/// The OTLP endpoint must be an http(s) URL with a host and no credentials; the service name
/// must not be empty.
pub(super) fn check_telemetry(
    path: &str,
    source: &str,
    telemetry: &TelemetryConfig,
    errors: &mut Vec<FileError>,
) {
    if let Some(endpoint) = &telemetry.otlp_endpoint {
        let url = endpoint.get_ref().trim();
        let host = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
        let ok = host.is_some_and(|h| {
            !h.is_empty()
                && !h.contains('@')
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c))
        });
        if !ok {
            errors.push(
                FileError::at(
                    path,
                    source,
                    endpoint.span().start,
                    format!("[telemetry] otlp_endpoint `{url}` is not an http:// or https:// URL with a host"),
                )
                .with_hint("the OTLP/HTTP base URL of a collector, e.g. \"http://127.0.0.1:4318\" (credentials go in [telemetry.otlp_headers], not in the URL)"),
            );
        }
    }
    if telemetry.service_name.trim().is_empty() {
        errors.push(FileError::whole(
            path,
            "[telemetry] service_name must not be empty",
        ));
    }
}
