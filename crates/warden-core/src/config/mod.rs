//! `warden.toml`: the gateway's own settings.
//!
//! Where things are: this file holds [`WardenConfig`] and [`parse_config`]; each section's
//! settings and checks are in a file of its own — `gateway.rs` (`[gateway]`, `[gateway.tls]`,
//! `[store]`), `upstream.rs` (`[upstreams.NAME]`), `identity.rs` (`[identity]`,
//! `[agent_keys]`, `[redaction]`), `telemetry.rs`, `retention.rs` and `regions.rs`.
//! `[ledger]` is in [`crate::ledger_config`], `[approvals]` in [`crate::approval`].

mod gateway;
mod identity;
mod regions;
mod retention;
mod telemetry;
mod upstream;

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::{from_toml_error, FileError};

pub use gateway::{Durability, GatewayConfig, StoreConfig, TlsConfig};
pub use identity::{IdentityConfig, RedactionConfig, TOKEN_TTL_CEILING_SECS};
pub use regions::RegionConfig;
pub use retention::{parse_retention, RetentionConfig, RetentionError};
pub use telemetry::TelemetryConfig;
pub use upstream::{EnvValue, UpstreamConfig};

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
    /// Signed checkpoints of the ledger and their witnesses.
    #[serde(default)]
    pub ledger: crate::ledger_config::LedgerConfig,
    /// Tokens, human sessions and the master key of the secret store.
    #[serde(default)]
    pub identity: IdentityConfig,
    /// The key of the redaction engine's HMAC tokens.
    #[serde(default)]
    pub redaction: RedactionConfig,
    /// Human approvals: expiry, how long an MCP call is held, notifications, fatigue alerts.
    #[serde(default)]
    pub approvals: crate::approval::ApprovalsConfig,
    /// OpenTelemetry spans of tool calls (off unless an OTLP endpoint is set).
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// How long payloads are kept, per data class; encryption of payloads at rest.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Data residency: one store per region (`[regions.NAME]`). An agent whose card names a
    /// region has its records kept only in that region's store, written only by a gateway
    /// serving that region (`warden --region NAME serve`).
    #[serde(default)]
    pub regions: BTreeMap<String, Spanned<RegionConfig>>,
    /// The region this process serves (`--region`), set by [`WardenConfig::select_region`];
    /// `None`: the home store of `[store]`, for agents whose cards name no region.
    #[serde(skip)]
    pub region: Option<String>,
}

/// Parse and check `warden.toml`. Every problem is reported, each located.
pub fn parse_config(path: &str, source: &str) -> Result<WardenConfig, Vec<FileError>> {
    let cfg: WardenConfig =
        toml::from_str(source).map_err(|e| vec![from_toml_error(path, source, &e)])?;
    let mut errors = Vec::new();
    upstream::check_upstreams(path, source, &cfg.upstreams, &mut errors);
    retention::check_retention(path, source, &cfg.retention, &mut errors);
    identity::check_agent_keys(path, source, &cfg.agent_keys, &mut errors);
    identity::check_identity(path, &cfg.identity, &mut errors);
    gateway::check_store(path, &cfg.store, &mut errors);
    errors.extend(crate::ledger_config::check(path, source, &cfg.ledger));
    regions::check_regions(path, source, &cfg, &mut errors);
    gateway::check_tls(path, source, &cfg.gateway, &mut errors);
    telemetry::check_telemetry(path, source, &cfg.telemetry, &mut errors);
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(errors)
    }
}
