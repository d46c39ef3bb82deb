//! Scope cards: `agents/<id>.toml`, one per agent — what it is for, who owns it, and exactly
//! which tools it may call with which arguments.
//!
//! Parsing is strict: unknown keys and bad values are errors located at `file:line:col`.
//!
//! Where things are:
//! - this file: the validated card ([`ScopeCard`], [`ToolGrant`], [`ArgConstraint`], …);
//! - `settings.rs`: the values settings take ([`Tier`], [`Access`], [`Guard`], [`ArgType`], …);
//! - `file.rs`: the card as written (the serde forms, `*File`);
//! - `parse.rs`: [`parse_scope_card`], the checks of names, grants, egress and retention;
//! - `constraint.rs`: the checks of one argument's constraint;
//! - `snapshot.rs`: snapshot reads (the before-state of a held call) and their checks.

mod constraint;
mod file;
mod parse;
mod settings;
mod snapshot;
mod uri;

use std::collections::BTreeMap;

use regex::Regex;

pub use file::{
    ArgConstraintFile, ArgNames, EgressFile, PromptGrantFile, ResourceGrantFile, ScopeCardFile,
    SnapshotFile, ToolGrantFile,
};
pub use parse::parse_scope_card;
pub(crate) use settings::is_safe_name;
pub use settings::{
    Access, ArgType, DataSharing, Environment, FailureMode, Guard, Impact, ModelRegister, OffList,
    Owners, RateLimits, Tier, Trust,
};
pub use snapshot::{Snapshot, SnapshotArg};
pub use uri::uri_refusal;

/// A validated scope card.
#[derive(Debug, Clone)]
pub struct ScopeCard {
    pub id: String,
    /// Where it came from (`agents/<id>.toml`), for reasons and errors.
    pub path: String,
    pub purpose: String,
    pub owners: Owners,
    pub environment: Environment,
    pub data_classes: Vec<String>,
    /// Days payloads are kept, when the card sets it (`Some(None)` = forever).
    pub retention: Option<Option<u32>>,
    /// The region that keeps this agent's records; `None`: the home store.
    pub region: Option<String>,
    /// Byte offset of `region` in the card, for errors against warden.toml.
    pub region_span: usize,
    pub subject_args: Vec<String>,
    pub model: Option<ModelRegister>,
    pub rate_limits: RateLimits,
    pub failure_modes: Vec<FailureMode>,
    pub tools: Vec<ToolGrant>,
    pub resources: Vec<ResourceGrant>,
    pub prompts: Vec<PromptGrant>,
    /// Wrap untrusted outputs returned over MCP in data markers.
    pub spotlight: bool,
}

/// A validated resource grant: read access to one URI or to every URI under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceGrant {
    pub server: String,
    /// The URI as written (with its trailing `*` for a prefix).
    pub uri: String,
    pub server_span: usize,
}

impl ResourceGrant {
    /// Whether this grant covers `uri`: equal to it, or under its prefix. A URI that could
    /// climb out of a prefix (`..`, `%2e%2e`, `\`; see [`uri_refusal`]) is covered by none.
    pub fn covers(&self, uri: &str) -> bool {
        if uri_refusal(uri).is_some() {
            return false;
        }
        match self.uri.strip_suffix('*') {
            Some(prefix) => uri.starts_with(prefix),
            None => uri == self.uri,
        }
    }
}

/// A validated prompt grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptGrant {
    pub server: String,
    pub name: String,
    pub server_span: usize,
}

impl ScopeCard {
    /// The grant for a tool, by its name or by `server/name`.
    pub fn tool(&self, name: &str) -> Option<&ToolGrant> {
        self.tool_index(name).and_then(|i| self.tools.get(i))
    }

    /// Position of a tool's grant in [`Self::tools`], by its name or by `server/name`.
    pub fn tool_index(&self, name: &str) -> Option<usize> {
        self.tools
            .iter()
            .position(|t| t.name == name || t.qualified == name)
    }

    /// The first resource grant on `server` that covers `uri`.
    pub fn resource(&self, server: &str, uri: &str) -> Option<&ResourceGrant> {
        self.resources
            .iter()
            .find(|r| r.server == server && r.covers(uri))
    }

    /// The grant for prompt `name` on `server`.
    pub fn prompt(&self, server: &str, name: &str) -> Option<&PromptGrant> {
        self.prompts
            .iter()
            .find(|p| p.server == server && p.name == name)
    }
}

/// A validated tool grant.
#[derive(Debug, Clone)]
pub struct ToolGrant {
    pub server: String,
    pub name: String,
    pub access: Access,
    pub impact: Impact,
    pub approval: Tier,
    /// Resolved at compile time: the grant's own setting, else the upstream's, else
    /// `untrusted` for reads and `trusted` for writes.
    pub output_trust: Trust,
    /// The trust the card itself declares, before defaults.
    pub output_trust_declared: Option<Trust>,
    pub data_classes: Vec<String>,
    /// Resolved guards (defaults applied by access).
    pub after_untrusted: Guard,
    pub after_suspicious: Guard,
    pub untrusted_args: Guard,
    pub egress: Option<Egress>,
    pub description: Option<String>,
    pub allow_unlisted_args: bool,
    /// Whether the ledger keeps the arguments (redacted) or only their HMAC.
    pub store_arguments: bool,
    /// Whether the ledger keeps the output (redacted) or only its HMAC.
    pub store_output: bool,
    pub args: BTreeMap<String, ArgConstraint>,
    /// The read whose result approvers see as the before-state of a held call.
    pub snapshot: Option<Snapshot>,
    /// Byte offset of the `server` value in the card, for later cross-file checks.
    pub server_span: usize,
    /// `server/name`, computed once.
    qualified: String,
}

impl ToolGrant {
    /// `server/name`: the Cedar action id of the tool.
    pub fn qualified(&self) -> &str {
        &self.qualified
    }
}

/// A validated egress allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Egress {
    pub args: Vec<String>,
    /// Lower-cased entries.
    pub allow: Vec<String>,
    pub off_list: OffList,
    pub sensitive: Vec<String>,
}

/// A validated argument constraint, with its pattern compiled.
#[derive(Debug, Clone)]
pub struct ArgConstraint {
    pub kind: ArgType,
    pub required: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub max_length: Option<usize>,
    pub pattern: Option<Regex>,
    /// The pattern as written, for reasons.
    pub pattern_src: Option<String>,
    pub one_of: Option<Vec<serde_json::Value>>,
    pub email_domains: Option<Vec<String>>,
    pub url_domains: Option<Vec<String>>,
}
