//! A scope card as written in `agents/<id>.toml`: the serde forms, strict
//! (`deny_unknown_fields`). [`super::parse_scope_card`] checks them into a [`super::ScopeCard`].

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{
    Access, ArgType, Environment, FailureMode, Guard, Impact, ModelRegister, OffList, Owners,
    RateLimits, Tier, Trust,
};

/// A scope card as written in `agents/<id>.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeCardFile {
    /// Optional; when present it must equal the file name without `.toml`.
    pub id: Option<Spanned<String>>,
    pub purpose: String,
    pub owners: Owners,
    pub environment: Environment,
    #[serde(default)]
    pub data_classes: Vec<String>,
    /// How long this agent's payloads are kept (per customer contract): `7d`, `30d`, `1y`,
    /// `forever`; data classes with a shorter retention still cap it. Default: warden.toml's.
    pub retention: Option<Spanned<String>>,
    /// Where this agent's records are kept (data residency): a region declared in
    /// warden.toml `[regions]`. Only a gateway serving that region accepts the agent's calls.
    /// Default: the home store of `[store]`.
    pub region: Option<Spanned<String>>,
    /// Arguments (dotted paths) whose value names the data subject of a call (a customer id,
    /// an e-mail address); the call's payloads are sealed with that subject's key, which
    /// `warden data erase --subject` destroys. First one present wins.
    #[serde(default)]
    pub subject_args: Vec<Spanned<String>>,
    pub model: Option<ModelRegister>,
    #[serde(default)]
    pub rate_limits: RateLimits,
    #[serde(default)]
    pub failure_modes: Vec<FailureMode>,
    #[serde(default)]
    pub tools: Vec<ToolGrantFile>,
    /// MCP resources the agent may read (`[[resources]]`); none by default.
    #[serde(default)]
    pub resources: Vec<ResourceGrantFile>,
    /// MCP prompts the agent may fetch (`[[prompts]]`); none by default.
    #[serde(default)]
    pub prompts: Vec<PromptGrantFile>,
    /// Wrap untrusted tool outputs returned over MCP in data markers (spotlighting), so the
    /// model can tell data from instructions. Off by default.
    #[serde(default)]
    pub spotlight: bool,
}

/// Read access to MCP resources of one upstream (`[[resources]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceGrantFile {
    /// The upstream, as named in `warden.toml` `[upstreams.NAME]`.
    pub server: Spanned<String>,
    /// A resource URI, or a URI prefix ending in `*` (`docs://handbook/*`).
    pub uri: Spanned<String>,
    pub description: Option<String>,
}

/// Access to one MCP prompt of one upstream (`[[prompts]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptGrantFile {
    pub server: Spanned<String>,
    pub name: Spanned<String>,
    pub description: Option<String>,
}

/// An egress allowlist as written: `egress = { arg = "to", allow = ["@acme.com", "#support"] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressFile {
    /// The argument(s) that name the destination.
    pub arg: ArgNames,
    /// Allowed destinations: `@domain` (e-mail addresses at it or its subdomains), a bare
    /// domain (e-mail or URL hosts at it or its subdomains), `#channel`, or an exact value
    /// (an account, a user name).
    pub allow: Vec<String>,
    #[serde(default)]
    pub off_list: OffList,
    /// Data classes that count as sensitive for `approve_unless_sensitive`; empty = any class.
    #[serde(default)]
    pub sensitive: Vec<String>,
}

/// One argument name or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ArgNames {
    One(String),
    Many(Vec<String>),
}

/// One tool grant as written in the card (`[[tools]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolGrantFile {
    /// The upstream tool server, as named in `warden.toml` `[upstreams.NAME]`.
    pub server: Spanned<String>,
    /// The tool's name on that server.
    pub name: Spanned<String>,
    pub access: Access,
    pub impact: Impact,
    pub approval: Tier,
    /// Whether the tool's output is trusted; when absent, the upstream's `output_trust`, else
    /// `untrusted` for `read` tools and `trusted` for `write` tools (see [`super::ToolGrant::output_trust`]).
    pub output_trust: Option<Trust>,
    /// Data classes the tool's output carries (e.g. `customer_pii`); a session that reads them
    /// has them in `context.read_classes`.
    #[serde(default)]
    pub data_classes: Vec<String>,
    /// What happens to a call of this tool once the session has read untrusted content.
    /// Default: `approve` for `write` tools, nothing for `read` tools.
    pub after_untrusted: Option<Guard>,
    /// What happens once the injection detector fired in the session. Default: `deny` for
    /// `write` tools, nothing for `read` tools.
    pub after_suspicious: Option<Guard>,
    /// What happens when an argument value came from untrusted content (and not from the
    /// user's own request). Default: `approve` for `write` tools, nothing for `read` tools.
    pub untrusted_args: Option<Guard>,
    /// Where the tool may send data (tools that send data out).
    pub egress: Option<EgressFile>,
    pub description: Option<String>,
    /// Accept arguments the card does not list (off by default: parameters are allowlisted).
    #[serde(default)]
    pub allow_unlisted_args: bool,
    /// Keep the call's arguments in the ledger (redacted). `false` stores only an HMAC of
    /// them: for tools whose arguments are a data class the card does not want kept.
    #[serde(default = "default_true")]
    pub store_arguments: bool,
    /// Keep the tool's output in the ledger (redacted). `false` stores only an HMAC of it.
    #[serde(default = "default_true")]
    pub store_output: bool,
    #[serde(default)]
    pub args: BTreeMap<String, Spanned<ArgConstraintFile>>,
    /// A read that shows approvers the state this write will change:
    /// `snapshot = { tool = "get_order", args = { order_id = "$order_id" } }`. The tool is a
    /// `read` tool on the same server, granted on this card; `"$name"` is the held call's
    /// argument `name` (`"$$…"` is a literal `$…`), anything else a literal.
    pub snapshot: Option<SnapshotFile>,
}

/// `snapshot = { tool = …, args = { … } }` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotFile {
    pub tool: Spanned<String>,
    #[serde(default)]
    pub args: BTreeMap<String, Spanned<toml::Value>>,
}

/// Constraint on one argument as written in the card (`[tools.args.NAME]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgConstraintFile {
    #[serde(rename = "type")]
    pub kind: ArgType,
    #[serde(default)]
    pub required: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub max_length: Option<usize>,
    /// A regular expression the whole value must match.
    pub pattern: Option<Spanned<String>>,
    #[serde(rename = "enum")]
    pub one_of: Option<Vec<toml::Value>>,
    /// For e-mail addresses (or lists of them): the domains they may be at.
    pub email_domains: Option<Vec<String>>,
    /// For URLs: the hosts they may point to (a domain allows its subdomains).
    pub url_domains: Option<Vec<String>>,
}

fn default_true() -> bool {
    true
}
