//! `[gateway]` (listener, limits, `[gateway.tls]`) and `[store]` (where the ledger is kept,
//! how durable a record must be before a call runs).

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::FileError;
use crate::scope_card::Environment;

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
    /// Hours after its last update an agent session's stored state (taint, data classes,
    /// untrusted text) is deleted. A tainted session idle for longer starts clean again:
    /// a stated limit, traded for a store that does not grow without bound.
    #[serde(default = "default_session_idle_hours")]
    pub session_idle_expiry_hours: u64,
    /// `[gateway.tls]`: TLS on the listener.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

fn default_session_idle_hours() -> u64 {
    7 * 24
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

/// `[gateway.tls]`: serve the listener over TLS (rustls). Present and not `enabled = false`
/// means on; the certificate chain and key are PEM files relative to the project directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Set to `false` to keep the table but serve plain HTTP.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// PEM file with the server certificate first, then any intermediates.
    pub cert_file: Spanned<String>,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Spanned<String>,
}

fn yes() -> bool {
    true
}

impl GatewayConfig {
    /// The TLS settings in force, if the listener is to use TLS.
    pub fn tls_enabled(&self) -> Option<&TlsConfig> {
        self.tls.as_ref().filter(|t| t.enabled)
    }
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

/// The store must be SQLite for now.
pub(super) fn check_store(path: &str, store: &StoreConfig, errors: &mut Vec<FileError>) {
    if !store.url.starts_with("sqlite://") {
        errors.push(
            FileError::whole(
                path,
                format!("store url `{}` is not supported yet", store.url),
            )
            .with_hint("use `sqlite://PATH`; PostgreSQL support is on the roadmap"),
        );
    }
}

/// `[gateway.tls]`: the certificate and key files must be named.
pub(super) fn check_tls(
    path: &str,
    source: &str,
    gateway: &GatewayConfig,
    errors: &mut Vec<FileError>,
) {
    if let Some(tls) = &gateway.tls {
        for (key, value) in [("cert_file", &tls.cert_file), ("key_file", &tls.key_file)] {
            if value.get_ref().trim().is_empty() {
                errors.push(
                    FileError::at(
                        path,
                        source,
                        value.span().start,
                        format!("[gateway.tls] {key} is empty"),
                    )
                    .with_hint("a PEM file path relative to the project directory"),
                );
            }
        }
    }
}
