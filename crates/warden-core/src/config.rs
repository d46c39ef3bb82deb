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

/// `[regions.NAME]`: the store of one region and the key that signs its checkpoints. Each
/// region is its own log (its own chain, checkpoints, payload keys and approvals).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    /// The region's store, `sqlite://PATH` (relative to the project directory).
    pub url: Spanned<String>,
    /// Default: `[store] durability`.
    pub durability: Option<Durability>,
    /// The region's checkpoint signing key. Default: `.warden/ledger-<region>.key`.
    pub key_file: Option<String>,
    /// The region's log name (checkpoint origin), used when its key is generated. Default:
    /// `[ledger] origin` + `/<region>`, or a random name.
    pub origin: Option<String>,
    /// Where the region's checkpoints are also written. Default: none (the home store's
    /// witnesses are not shared: two logs must not overwrite each other's checkpoints).
    #[serde(default)]
    pub witnesses: Vec<crate::ledger_config::WitnessConfig>,
}

impl WardenConfig {
    /// Serve region `name`: its store and checkpoint key replace `[store]` and `[ledger]`'s.
    /// Errors name the configured regions.
    pub fn select_region(&mut self, name: &str) -> Result<(), String> {
        let Some(region) = self.regions.get(name).map(|r| r.get_ref().clone()) else {
            let known: Vec<&str> = self.regions.keys().map(String::as_str).collect();
            return Err(if known.is_empty() {
                format!("--region `{name}`: warden.toml declares no [regions]")
            } else {
                let near = crate::diagnostic::closest(name, known.iter().copied())
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                format!(
                    "--region `{name}` is not declared in warden.toml{near}; regions: {}",
                    known.join(", ")
                )
            });
        };
        self.store.url = region.url.into_inner();
        if let Some(d) = region.durability {
            self.store.durability = d;
        }
        self.ledger.key_file = region
            .key_file
            .unwrap_or_else(|| format!(".warden/ledger-{name}.key"));
        self.ledger.origin = region
            .origin
            .or_else(|| self.ledger.origin.as_ref().map(|o| format!("{o}/{name}")));
        self.ledger.witnesses = region.witnesses;
        self.region = Some(name.to_string());
        Ok(())
    }

    /// Every store this project writes to: the home store (`None`) and each region's.
    pub fn store_regions(&self) -> Vec<Option<String>> {
        std::iter::once(None)
            .chain(self.regions.keys().cloned().map(Some))
            .collect()
    }
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

/// `[retention]`: payloads (arguments, outputs, the user's request) are sealed with a key per
/// (day, agent, data classes) and the key is destroyed when the day is past retention. The
/// records themselves — who, what, when, the decision, the hashes — are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Retention of payloads no class or card shortens: `7d`, `30d`, `12w`, `1y`, `forever`.
    #[serde(default = "default_retention")]
    pub default: Spanned<String>,
    /// Per data class (as scope cards name them): a class's retention caps that of every
    /// record carrying it.
    #[serde(default)]
    pub classes: BTreeMap<String, Spanned<String>>,
    /// How often `warden serve` runs the retention job, in minutes (0 = never; run
    /// `warden retention run` from a scheduler instead).
    #[serde(default = "default_retention_every")]
    pub run_every_mins: u64,
    /// Data classes never stored at all: a call of a tool whose `data_classes` (or whose
    /// card's) include one keeps only an HMAC of its arguments and output.
    #[serde(default)]
    pub not_stored: Vec<Spanned<String>>,
}

impl RetentionConfig {
    /// The names in `not_stored`.
    pub fn not_stored(&self) -> Vec<String> {
        self.not_stored
            .iter()
            .map(|c| c.get_ref().clone())
            .collect()
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            default: default_retention(),
            classes: BTreeMap::new(),
            run_every_mins: default_retention_every(),
            not_stored: Vec::new(),
        }
    }
}

fn default_retention() -> Spanned<String> {
    Spanned::new(0..0, "90d".to_string())
}

fn default_retention_every() -> u64 {
    60
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

/// `[redaction]`: where the HMAC key of redaction tokens comes from. Everything stored is
/// redacted; the key only decides which tokens equal values get, so records can be
/// correlated without revealing the values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionConfig {
    /// A file holding the key as hex (at least 16 bytes), relative to the project directory.
    /// Created with 32 random bytes, mode 0600, when it does not exist.
    #[serde(default = "default_redaction_key_file")]
    pub key_file: String,
    /// An environment variable that, when set, holds the key as hex and takes precedence
    /// over `key_file`.
    #[serde(default = "default_redaction_key_env")]
    pub key_env: String,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        Self {
            key_file: default_redaction_key_file(),
            key_env: default_redaction_key_env(),
        }
    }
}

/// `[identity]`: lifetimes of tokens and sessions, lock-out, the master key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// Lifetime of an agent token when `--ttl` is not given, in seconds (default 1 h).
    #[serde(default = "default_token_ttl")]
    pub token_ttl_secs: u64,
    /// No token lives longer than this, whatever is asked, in seconds (default 24 h; at most
    /// 30 days).
    #[serde(default = "default_token_ttl_max")]
    pub token_ttl_max_secs: u64,
    /// A human session ends after this long without a request, in seconds (default 30 min).
    #[serde(default = "default_session_idle")]
    pub session_idle_secs: u64,
    /// A human session ends this long after login whatever happens, in seconds (default 12 h).
    #[serde(default = "default_session_absolute")]
    pub session_absolute_secs: u64,
    /// Failed logins in a row before an account is locked (with doubling back-off).
    #[serde(default = "default_max_failed")]
    pub max_failed_logins: u32,
    /// File holding the 32-byte master key (64 hex digits), relative to the project; the
    /// environment variable `WARDEN_MASTER_KEY` takes precedence.
    #[serde(default = "default_master_key_file")]
    pub master_key_file: String,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            token_ttl_secs: default_token_ttl(),
            token_ttl_max_secs: default_token_ttl_max(),
            session_idle_secs: default_session_idle(),
            session_absolute_secs: default_session_absolute(),
            max_failed_logins: default_max_failed(),
            master_key_file: default_master_key_file(),
        }
    }
}

/// The hard ceiling on `token_ttl_max_secs`: 30 days.
pub const TOKEN_TTL_CEILING_SECS: u64 = 30 * 86_400;

fn default_token_ttl() -> u64 {
    3600
}
fn default_token_ttl_max() -> u64 {
    86_400
}
fn default_session_idle() -> u64 {
    1800
}
fn default_session_absolute() -> u64 {
    12 * 3600
}
fn default_max_failed() -> u32 {
    5
}
fn default_master_key_file() -> String {
    "master.key".to_string()
}

fn default_redaction_key_file() -> String {
    "redaction.key".to_string()
}

fn default_redaction_key_env() -> String {
    "WARDEN_REDACTION_KEY".to_string()
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
    /// `[gateway.tls]`: TLS on the listener.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
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

/// Region names are safe names; each region's store and key are its own (two regions, or a
/// region and the home store, sharing a database or a key would mix their logs).
fn check_regions(path: &str, source: &str, cfg: &WardenConfig, errors: &mut Vec<FileError>) {
    let mut urls: BTreeMap<String, String> = BTreeMap::new();
    urls.insert(cfg.store.url.clone(), "[store]".to_string());
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    keys.insert(cfg.ledger.key_file.clone(), "[ledger]".to_string());
    for (name, region) in &cfg.regions {
        let at = region.span().start;
        let r = region.get_ref();
        if !is_safe_name(name) {
            errors.push(
                FileError::at(
                    path,
                    source,
                    at,
                    format!("region name `{name}` is not valid"),
                )
                .with_hint("use letters, digits, `-`, `_` and `.` only (`eu`, `us-east`)"),
            );
        }
        let url = r.url.get_ref();
        if !url.starts_with("sqlite://") || url.len() == "sqlite://".len() {
            errors.push(
                FileError::at(
                    path,
                    source,
                    r.url.span().start,
                    format!("[regions.{name}] url `{url}` is not a `sqlite://PATH` store"),
                )
                .with_hint(
                    "each region needs its own store, e.g. \"sqlite://.warden/eu/ledger.db\"",
                ),
            );
        } else if let Some(other) = urls.insert(url.clone(), format!("[regions.{name}]")) {
            errors.push(
                FileError::at(
                    path,
                    source,
                    r.url.span().start,
                    format!("[regions.{name}] url `{url}` is also {other}'s store"),
                )
                .with_hint("a region's records must not land in another region's store: give each its own url"),
            );
        }
        let key = r
            .key_file
            .clone()
            .unwrap_or_else(|| format!(".warden/ledger-{name}.key"));
        if let Some(other) = keys.insert(key.clone(), format!("[regions.{name}]")) {
            errors.push(
                FileError::at(
                    path,
                    source,
                    at,
                    format!("[regions.{name}] key_file `{key}` is also {other}'s key"),
                )
                .with_hint("each region is its own log with its own checkpoint key"),
            );
        }
        if let Some(o) = r
            .origin
            .as_deref()
            .filter(|o| !crate::ledger_config::origin_ok(o))
        {
            errors.push(FileError::at(
                path,
                source,
                at,
                format!("[regions.{name}] origin `{o}` may not be empty or hold spaces or `+`"),
            ));
        }
        for (i, w) in r.witnesses.iter().enumerate() {
            for problem in crate::ledger_config::witness_problems(w) {
                errors.push(FileError::at(
                    path,
                    source,
                    at,
                    format!("[regions.{name}] witness number {} {problem}", i + 1),
                ));
            }
        }
    }
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
    /// Read from Warden's encrypted secret store (`warden secret set NAME`) when the server
    /// starts.
    Secret { secret: String },
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
    for (label, text) in std::iter::once(("[retention] default", &cfg.retention.default)).chain(
        cfg.retention
            .classes
            .values()
            .map(|v| ("[retention.classes]", v)),
    ) {
        if let Err(e) = crate::vault::parse_retention(text.get_ref()) {
            errors.push(
                FileError::at(path, source, text.span().start, format!("{label}: {e}"))
                    .with_hint("retention periods: 7d, 30d, 12w, 1y, or forever"),
            );
        }
    }
    for class in &cfg.retention.not_stored {
        if !is_safe_name(class.get_ref()) {
            errors.push(
                FileError::at(
                    path,
                    source,
                    class.span().start,
                    format!(
                        "[retention] not_stored: `{}` is not a data class name",
                        class.get_ref()
                    ),
                )
                .with_hint("name data classes as scope cards do (`health_records`)"),
            );
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
    let id = &cfg.identity;
    if id.token_ttl_max_secs == 0 || id.token_ttl_max_secs > TOKEN_TTL_CEILING_SECS {
        errors.push(
            FileError::whole(
                path,
                "[identity] token_ttl_max_secs must be between 1 and 2592000 (30 days)",
            )
            .with_hint("short-lived tokens: the default is 86400 (24 h)"),
        );
    }
    if id.token_ttl_secs == 0 || id.token_ttl_secs > id.token_ttl_max_secs {
        errors.push(
            FileError::whole(
                path,
                "[identity] token_ttl_secs must be at least 1 and at most token_ttl_max_secs",
            )
            .with_hint("the default is 3600 (1 h)"),
        );
    }
    if id.session_idle_secs == 0 || id.session_idle_secs > id.session_absolute_secs {
        errors.push(FileError::whole(
            path,
            "[identity] session_idle_secs must be at least 1 and at most session_absolute_secs",
        ));
    }
    if id.max_failed_logins == 0 {
        errors.push(FileError::whole(
            path,
            "[identity] max_failed_logins must be at least 1",
        ));
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
    errors.extend(crate::ledger_config::check(path, source, &cfg.ledger));
    check_regions(path, source, &cfg, &mut errors);
    if let Some(tls) = &cfg.gateway.tls {
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
    if let Some(endpoint) = &cfg.telemetry.otlp_endpoint {
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
    if cfg.telemetry.service_name.trim().is_empty() {
        errors.push(FileError::whole(
            path,
            "[telemetry] service_name must not be empty",
        ));
    }
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(errors)
    }
}
