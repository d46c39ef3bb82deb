//! What the handlers share.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use warden_core::config::{IdentityConfig, WardenConfig};
use warden_core::CompiledPolicy;
use warden_store::Store;

use crate::auth::AgentKeys;
use crate::mcp::hub::McpHub;
use crate::mcp::upstream::Upstream;
use crate::rate::RateWindows;
use crate::secrets::MasterKey;
use crate::Clock;

/// Shared state of the gateway. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) policy: Arc<CompiledPolicy>,
    /// The ledger and the tables beside it.
    pub(crate) store: Store,
    pub(crate) keys: Arc<AgentKeys>,
    pub(crate) max_request_bytes: usize,
    pub(crate) max_output_bytes: usize,
    pub(crate) rates: Arc<RateWindows>,
    /// Decisions whose outcome is being recorded right now (one outcome per decision).
    pub(crate) outcomes_in_flight: Arc<Mutex<HashSet<String>>>,
    /// MCP upstreams and sessions.
    pub(crate) mcp: Arc<McpHub>,
    /// Token and session lifetimes, lock-out.
    pub(crate) identity: Arc<IdentityConfig>,
    /// Where "now" comes from, for every timestamp and time window; tests move it.
    pub(crate) clock: Clock,
    /// Opens sealed TOTP seeds; without it nobody with MFA can log in (fail closed).
    pub(crate) master_key: Option<Arc<MasterKey>>,
    /// Taint, data classes and untrusted text per (agent, session): a cache over the store.
    pub(crate) taint: Arc<crate::taint::SessionTable>,
    /// `[approvals]` settings.
    pub(crate) approvals: Arc<warden_core::approval::ApprovalsConfig>,
    /// The ledger's key (the one that signs its checkpoints); it also signs approval and
    /// denial records. Without it no vote can be recorded (fail closed).
    pub(crate) approval_signer: Option<Arc<warden_verify::NoteSigner>>,
    /// Serialises votes (one vote at a time is checked and counted).
    pub(crate) approval_lock: Arc<tokio::sync::Mutex<()>>,
    /// Woken when a request is voted on or expires (long-polls and held MCP calls).
    pub(crate) approval_changed: Arc<tokio::sync::Notify>,
    /// Where `execute_tool` spans go; none: no spans are built.
    pub(crate) telemetry: Option<Arc<crate::telemetry::Telemetry>>,
    /// The region this gateway serves (`--region`); only agents whose card names it (or, for
    /// `None`, names no region) are served.
    pub(crate) region: Option<String>,
    /// Password and client-secret checks: bounded in number and memory (`password.rs`).
    pub(crate) passwords: Arc<crate::password::PasswordChecks>,
    /// Per-address failure budgets and the ledger budget for failures anyone can cause.
    pub(crate) abuse: Arc<crate::abuse::Abuse>,
}

impl AppState {
    /// A gateway over `store`, reading time from the store's clock (the one its records
    /// carry).
    pub fn new(config: &WardenConfig, policy: Arc<CompiledPolicy>, store: Store) -> Self {
        let keys = AgentKeys::from_config(
            config
                .agent_keys
                .iter()
                .map(|(agent, key)| (agent, key.get_ref().as_str())),
        );
        Self {
            clock: store.clock().clone(),
            policy,
            store,
            keys: Arc::new(keys),
            max_request_bytes: config.gateway.max_request_bytes,
            max_output_bytes: config.gateway.max_output_bytes,
            rates: Arc::new(RateWindows::default()),
            outcomes_in_flight: Arc::new(Mutex::new(HashSet::new())),
            mcp: Arc::new(McpHub::new(
                HashMap::new(),
                config.gateway.max_concurrent_calls_per_session,
            )),
            identity: Arc::new(config.identity.clone()),
            master_key: None,
            taint: Arc::new(crate::taint::SessionTable::new(
                config.gateway.session_idle_expiry_hours,
            )),
            approvals: Arc::new(config.approvals.clone()),
            passwords: Arc::new(crate::password::PasswordChecks::for_this_machine()),
            abuse: Arc::new(crate::abuse::Abuse::default()),
            approval_signer: None,
            approval_lock: Arc::new(tokio::sync::Mutex::new(())),
            approval_changed: Arc::new(tokio::sync::Notify::new()),
            telemetry: None,
            region: config.region.clone(),
        }
    }

    /// Refuse an agent whose card keeps its records in another region than the one this
    /// gateway serves (`421`), before anything about it is recorded here.
    pub(crate) fn serves_agent(&self, agent: &str) -> Result<(), crate::error::ApiError> {
        let card_region = self
            .policy
            .cards
            .get(agent)
            .and_then(|c| c.region.as_deref());
        if card_region == self.region.as_deref() {
            return Ok(());
        }
        tracing::info!(
            message = "agent refused: records kept in another region",
            agent = %agent,
            agent_region = card_region.unwrap_or("home"),
            gateway_region = self.region.as_deref().unwrap_or("home")
        );
        Err(crate::error::ApiError::misdirected(agent, card_region))
    }

    /// Send `execute_tool` spans of tool calls to this exporter.
    #[must_use]
    pub fn with_telemetry(mut self, telemetry: Option<Arc<crate::telemetry::Telemetry>>) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// The ledger's signing key, which signs approval and denial records as it signs the
    /// ledger's checkpoints (`warden audit verify` checks both with its public key).
    #[must_use]
    pub fn with_ledger_signer(mut self, key: Option<Arc<warden_verify::NoteSigner>>) -> Self {
        self.approval_signer = key;
        self
    }

    /// The base URL people reach this gateway at (links in notifications), unless
    /// `[approvals] public_url` sets one.
    #[must_use]
    pub fn with_public_url(mut self, url: String) -> Self {
        if self.approvals.public_url.is_none() {
            let mut cfg = (*self.approvals).clone();
            cfg.public_url = Some(url);
            self.approvals = Arc::new(cfg);
        }
        self
    }

    /// The master key of the secret store, if loaded.
    pub fn master_key_ref(&self) -> Option<&MasterKey> {
        self.master_key.as_deref()
    }

    /// The `[approvals]` settings in force.
    pub fn approvals_config(&self) -> &warden_core::approval::ApprovalsConfig {
        &self.approvals
    }

    /// Take the time from `clock` instead of the store's. Open the store with the same clock
    /// (`StoreOptions::clock`) so the records it writes and the ones the gateway writes agree.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The master key of the secret store (TOTP seeds).
    #[must_use]
    pub fn with_master_key(mut self, key: Option<MasterKey>) -> Self {
        self.master_key = key.map(Arc::new);
        self
    }

    /// Unix seconds now, from the state's clock.
    pub fn now(&self) -> i64 {
        self.clock.unix()
    }

    /// The clock every timestamp of this gateway comes from.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn identity_config(&self) -> &IdentityConfig {
        &self.identity
    }

    /// Serve these MCP upstreams at `/mcp`.
    #[must_use]
    pub fn with_upstreams(
        mut self,
        upstreams: HashMap<String, Upstream>,
        max_calls_per_session: usize,
    ) -> Self {
        self.mcp = Arc::new(McpHub::new(upstreams, max_calls_per_session));
        self
    }

    pub fn policy(&self) -> &CompiledPolicy {
        &self.policy
    }

    /// The ledger and the tables beside it.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The taint state of agents' sessions.
    pub fn taint(&self) -> &crate::taint::SessionTable {
        &self.taint
    }
}

/// Now by the system clock, as the ledger writes it (for commands that run without a
/// gateway state; a gateway reads [`AppState::clock`]).
pub fn now_rfc3339() -> String {
    Clock::system().rfc3339()
}

/// A tool output as the ledger keeps it: unchanged if its JSON fits in `max` bytes, otherwise
/// the JSON cut to `max` bytes (on a character boundary). Returns (kept, full size, was cut), so
/// a record never hides that it was cut.
pub(crate) fn bound_output(
    output: serde_json::Value,
    max: usize,
) -> (serde_json::Value, u64, bool) {
    let full = output.to_string();
    let size = full.len() as u64;
    if full.len() <= max {
        return (output, size, false);
    }
    let mut cut = max;
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    (
        serde_json::json!({"truncated_json_prefix": full.get(..cut).unwrap_or_default()}),
        size,
        true,
    )
}
