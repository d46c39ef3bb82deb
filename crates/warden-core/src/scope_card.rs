//! Scope cards: `agents/<id>.toml`, one per agent — what it is for, who owns it, and exactly
//! which tools it may call with which arguments.
//!
//! Parsing is strict: unknown keys and bad values are errors located at `file:line:col`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::diagnostic::{from_toml_error, FileError};

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

/// Who answers for the agent.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Owners {
    pub product: String,
    pub security: String,
    pub on_call: String,
}

/// The environment an agent is bound to; a gateway serves one environment.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    Dev,
    Staging,
    Prod,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Staging => "staging",
            Self::Prod => "prod",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The model and vendor register entry for the agent (SOC 2 CC9.2).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ModelRegister {
    pub provider: String,
    pub model: String,
    pub data_sharing: DataSharing,
    #[serde(default)]
    pub sub_processors: Vec<String>,
}

/// What the model provider may do with the data it is sent.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DataSharing {
    /// Zero data retention.
    None,
    /// Retained for abuse monitoring, never used for training.
    NoTraining,
    /// The provider may train on it.
    TrainingAllowed,
}

/// Call-rate limits; enforced by the gateway.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    pub calls_per_minute: Option<u32>,
    pub writes_per_hour: Option<u32>,
}

/// A known way the agent can fail and the agreed response.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FailureMode {
    pub scenario: String,
    pub response: String,
}

/// Whether a tool reads or changes the world.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Read,
    Write,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// How bad a wrong call of the tool would be.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    Low,
    Medium,
    High,
}

impl Impact {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// Who must agree before a call runs. Ordered from least to most oversight.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Runs at once.
    Auto,
    /// Runs at once; queued for a human to look at afterwards.
    Review,
    /// Waits for one human approval.
    Approve,
    /// Waits for two different humans.
    TwoPerson,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Review => "review",
            Self::Approve => "approve",
            Self::TwoPerson => "two_person",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Self::Auto),
            "review" => Some(Self::Review),
            "approve" => Some(Self::Approve),
            "two_person" => Some(Self::TwoPerson),
            _ => None,
        }
    }

    /// Whether a call at this tier waits for a human before it runs.
    pub fn holds_call(self) -> bool {
        matches!(self, Self::Approve | Self::TwoPerson)
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a tool's output may be treated as instructions or only as data.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    Trusted,
    #[default]
    Untrusted,
}

fn default_true() -> bool {
    true
}

impl Trust {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trusted => "trusted",
            Self::Untrusted => "untrusted",
        }
    }
}

/// A guard on calls after untrusted input: a tier to raise the call to, or `deny`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Guard {
    Auto,
    Review,
    Approve,
    TwoPerson,
    Deny,
}

impl Guard {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Review => "review",
            Self::Approve => "approve",
            Self::TwoPerson => "two_person",
            Self::Deny => "deny",
        }
    }

    /// The tier it raises a call to, `None` for `deny`.
    pub fn tier(self) -> Option<Tier> {
        match self {
            Self::Auto => Some(Tier::Auto),
            Self::Review => Some(Tier::Review),
            Self::Approve => Some(Tier::Approve),
            Self::TwoPerson => Some(Tier::TwoPerson),
            Self::Deny => None,
        }
    }
}

/// What happens to a destination that is not on an egress allowlist.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OffList {
    /// Always denied.
    #[default]
    Deny,
    /// Held for one approval.
    Approve,
    /// Held for approval, but denied once the session has read a sensitive data class.
    ApproveUnlessSensitive,
}

impl OffList {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deny => "deny",
            Self::Approve => "approve",
            Self::ApproveUnlessSensitive => "approve_unless_sensitive",
        }
    }
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

/// A validated egress allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Egress {
    pub args: Vec<String>,
    /// Lower-cased entries.
    pub allow: Vec<String>,
    pub off_list: OffList,
    pub sensitive: Vec<String>,
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
    /// `untrusted` for `read` tools and `trusted` for `write` tools (see [`ToolGrant::output_trust`]).
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

/// A validated snapshot read: run when a call of the tool is held for approval, its result
/// is the request's before-state.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The read tool's name on the same server.
    pub tool: String,
    /// `server/name` of the read tool.
    pub qualified: String,
    pub args: BTreeMap<String, SnapshotArg>,
}

/// One argument of a snapshot read.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotArg {
    /// The held call's argument of this name (`"$name"`).
    Call(String),
    /// A fixed value.
    Literal(serde_json::Value),
}

impl Snapshot {
    /// The read's arguments for a held call: each `"$name"` replaced by that argument of the
    /// call. `Err` names an argument the call does not have.
    pub fn arguments(&self, call_args: &serde_json::Value) -> Result<serde_json::Value, String> {
        let mut out = serde_json::Map::new();
        for (name, arg) in &self.args {
            let value = match arg {
                SnapshotArg::Literal(v) => v.clone(),
                SnapshotArg::Call(from) => call_args.get(from).cloned().ok_or_else(|| {
                    format!(
                        "the held call has no argument `{from}` for the snapshot read's `{name}`"
                    )
                })?,
            };
            out.insert(name.clone(), value);
        }
        Ok(serde_json::Value::Object(out))
    }
}

/// JSON type of an argument.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ArgType {
    String,
    Integer,
    Number,
    Boolean,
    Array,
    Object,
}

impl ArgType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Array => "array",
            Self::Object => "object",
        }
    }
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
    /// Whether this grant covers `uri`: equal to it, or under its prefix.
    pub fn covers(&self, uri: &str) -> bool {
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

/// Names of servers, tools and arguments become Cedar identifiers and schema keys; keep them
/// to a safe alphabet.
pub(crate) fn is_safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Parse and validate one scope card. `path` is used in errors (e.g. `agents/crm-writer.toml`);
/// the agent id is the file stem unless the card names one, and then they must agree.
pub fn parse_scope_card(path: &str, source: &str) -> Result<ScopeCard, Vec<FileError>> {
    let file: ScopeCardFile =
        toml::from_str(source).map_err(|e| vec![from_toml_error(path, source, &e)])?;
    let mut errors = Vec::new();
    let stem = path
        .rsplit('/')
        .next()
        .unwrap_or(path)
        .trim_end_matches(".toml")
        .to_string();
    let id = match &file.id {
        Some(id) if id.get_ref() != &stem => {
            errors.push(
                FileError::at(
                    path,
                    source,
                    id.span().start,
                    format!(
                        "agent id `{}` does not match the file name `{stem}.toml`",
                        id.get_ref()
                    ),
                )
                .with_hint(format!(
                    "rename the file to `{}.toml` or remove the `id` key",
                    id.get_ref()
                )),
            );
            stem.clone()
        }
        _ => stem.clone(),
    };
    if !is_safe_name(&id) {
        errors.push(
            FileError::whole(path, format!("agent id `{id}` is not a valid name"))
                .with_hint("use letters, digits, `-`, `_` and `.` only"),
        );
    }
    if file.purpose.trim().is_empty() {
        errors.push(
            FileError::whole(path, "`purpose` is empty")
                .with_hint("say in one sentence what the agent is for; auditors read it"),
        );
    }

    let mut tools = Vec::new();
    let mut seen = BTreeSet::new();
    let mut snapshots: Vec<(usize, SnapshotFile)> = Vec::new();
    for t in file.tools {
        if let Some(snap) = t.snapshot.clone() {
            snapshots.push((tools.len(), snap));
        }
        let name = t.name.get_ref().clone();
        let server = t.server.get_ref().clone();
        for (what, value, span) in [
            ("tool name", &name, t.name.span().start),
            ("server name", &server, t.server.span().start),
        ] {
            if !is_safe_name(value) {
                errors.push(
                    FileError::at(path, source, span, format!("{what} `{value}` is not valid"))
                        .with_hint("use letters, digits, `-`, `_` and `.` only"),
                );
            }
        }
        if !seen.insert(format!("{server}/{name}")) {
            errors.push(
                FileError::at(
                    path,
                    source,
                    t.name.span().start,
                    format!("tool `{name}` of server `{server}` is listed twice"),
                )
                .with_hint("merge the two `[[tools]]` entries"),
            );
        }
        let write = t.access == Access::Write;
        let by_access = |g: Option<Guard>, write_default: Guard| {
            g.unwrap_or(if write { write_default } else { Guard::Auto })
        };
        let egress = match t.egress {
            None => None,
            Some(e) => {
                let names = match e.arg {
                    ArgNames::One(a) => vec![a],
                    ArgNames::Many(v) => v,
                };
                if names.is_empty() || e.allow.is_empty() {
                    errors.push(
                        FileError::at(
                            path,
                            source,
                            t.name.span().start,
                            format!("tool `{name}`: `egress` needs an `arg` and a non-empty `allow` list"),
                        )
                        .with_hint("egress = { arg = \"to\", allow = [\"@example.com\", \"#support\"] }"),
                    );
                }
                for a in &names {
                    if !t.args.contains_key(a) && !t.allow_unlisted_args {
                        errors.push(
                            FileError::at(
                                path,
                                source,
                                t.name.span().start,
                                format!("tool `{name}`: `egress` names argument `{a}`, which is not among its arguments"),
                            )
                            .with_hint("list the argument under [tools.args] or fix the name"),
                        );
                    }
                }
                Some(Egress {
                    args: names,
                    allow: e
                        .allow
                        .iter()
                        .map(|a| a.trim().to_ascii_lowercase())
                        .filter(|a| !a.is_empty())
                        .collect(),
                    off_list: e.off_list,
                    sensitive: e.sensitive,
                })
            }
        };
        let mut args = BTreeMap::new();
        for (arg_name, spanned) in t.args {
            let span = spanned.span().start;
            match validate_arg(path, source, span, &arg_name, spanned.into_inner()) {
                Ok(c) => {
                    args.insert(arg_name, c);
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        tools.push(ToolGrant {
            qualified: format!("{server}/{name}"),
            server,
            name,
            access: t.access,
            impact: t.impact,
            approval: t.approval,
            output_trust: t.output_trust.unwrap_or(if write {
                Trust::Trusted
            } else {
                Trust::Untrusted
            }),
            output_trust_declared: t.output_trust,
            data_classes: t.data_classes,
            after_untrusted: by_access(t.after_untrusted, Guard::Approve),
            after_suspicious: by_access(t.after_suspicious, Guard::Deny),
            untrusted_args: by_access(t.untrusted_args, Guard::Approve),
            egress,
            description: t.description,
            allow_unlisted_args: t.allow_unlisted_args,
            store_arguments: t.store_arguments,
            store_output: t.store_output,
            args,
            snapshot: None,
            server_span: t.server.span().start,
        });
    }
    for (i, snap) in snapshots {
        match validate_snapshot(path, source, &tools, i, snap) {
            Ok(v) => {
                if let Some(t) = tools.get_mut(i) {
                    t.snapshot = Some(v);
                }
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    let mut resources = Vec::new();
    for r in file.resources {
        let server = r.server.get_ref().clone();
        let uri = r.uri.get_ref().clone();
        if !is_safe_name(&server) {
            errors.push(
                FileError::at(
                    path,
                    source,
                    r.server.span().start,
                    format!("server name `{server}` is not valid"),
                )
                .with_hint("use letters, digits, `-`, `_` and `.` only"),
            );
        }
        let body = uri.strip_suffix('*').unwrap_or(&uri);
        if body.is_empty() || body.contains('*') || uri.chars().any(char::is_control) {
            errors.push(
                FileError::at(path, source, r.uri.span().start, format!("resource uri `{uri}` is not valid"))
                    .with_hint("write one URI (`docs://handbook/intro`) or a prefix ending in `*` (`docs://handbook/*`); `*` may appear only at the end"),
            );
        }
        resources.push(ResourceGrant {
            server,
            uri,
            server_span: r.server.span().start,
        });
    }
    let mut prompts = Vec::new();
    for p in file.prompts {
        let server = p.server.get_ref().clone();
        let name = p.name.get_ref().clone();
        for (what, value, span) in [
            ("prompt name", &name, p.name.span().start),
            ("server name", &server, p.server.span().start),
        ] {
            if !is_safe_name(value) {
                errors.push(
                    FileError::at(path, source, span, format!("{what} `{value}` is not valid"))
                        .with_hint("use letters, digits, `-`, `_` and `.` only"),
                );
            }
        }
        prompts.push(PromptGrant {
            server,
            name,
            server_span: p.server.span().start,
        });
    }
    let retention = match &file.retention {
        None => None,
        Some(r) => match crate::vault::parse_retention(r.get_ref()) {
            Ok(days) => Some(days),
            Err(e) => {
                errors.push(
                    FileError::at(path, source, r.span().start, format!("retention: {e}"))
                        .with_hint("retention periods: 7d, 30d, 12w, 1y, or forever"),
                );
                None
            }
        },
    };
    if let Some(r) = &file.region {
        if !is_safe_name(r.get_ref()) {
            errors.push(
                FileError::at(
                    path,
                    source,
                    r.span().start,
                    format!("region `{}` is not a region name", r.get_ref()),
                )
                .with_hint("name a region declared in warden.toml [regions] (`eu`, `us-east`)"),
            );
        }
    }
    for s in &file.subject_args {
        let (at, s) = (s.span().start, s.get_ref());
        if s.is_empty() || !s.split('.').all(is_safe_name) {
            errors.push(
                FileError::at(
                    path,
                    source,
                    at,
                    format!("subject_args: `{s}` is not an argument path"),
                )
                .with_hint("name an argument, or a dotted path into one (`customer.email`)"),
            );
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ScopeCard {
        id,
        path: path.to_string(),
        purpose: file.purpose,
        owners: file.owners,
        environment: file.environment,
        data_classes: file.data_classes,
        retention,
        region_span: file.region.as_ref().map_or(0, |r| r.span().start),
        region: file.region.map(Spanned::into_inner),
        subject_args: file
            .subject_args
            .into_iter()
            .map(|s| s.into_inner())
            .collect(),
        model: file.model,
        rate_limits: file.rate_limits,
        failure_modes: file.failure_modes,
        tools,
        resources,
        prompts,
        spotlight: file.spotlight,
    })
}

/// Check a grant's `snapshot`: a `read` tool on the same server granted on this card, on a
/// `write` tool, with arguments the read tool takes and `$names` the held tool takes.
fn validate_snapshot(
    path: &str,
    source: &str,
    tools: &[ToolGrant],
    index: usize,
    snap: SnapshotFile,
) -> Result<Snapshot, Vec<FileError>> {
    let mut errors = Vec::new();
    let Some(held) = tools.get(index) else {
        return Err(errors);
    };
    let at_tool = snap.tool.span().start;
    let name = snap.tool.get_ref().clone();
    let qualified = format!("{}/{name}", held.server);
    if held.access != Access::Write {
        errors.push(
            FileError::at(
                path,
                source,
                at_tool,
                format!("tool `{}`: `snapshot` is for `write` tools (it reads the state a write will change)", held.name),
            )
            .with_hint("remove `snapshot`, or set access = \"write\""),
        );
    }
    let read = tools.iter().find(|t| t.qualified == qualified);
    match read {
        None => {
            let same_server = tools
                .iter()
                .filter(|t| t.server == held.server && t.access == Access::Read)
                .map(|t| t.name.as_str());
            let mut e = FileError::at(
                path,
                source,
                at_tool,
                format!("snapshot read `{qualified}` is not granted on this card; it must be a `read` tool of server `{}` listed under [[tools]]", held.server),
            );
            e = match crate::diagnostic::closest(&name, same_server) {
                Some(near) => e.with_hint(format!("did you mean `{near}`?")),
                None => e.with_hint(format!(
                    "add [[tools]] server = \"{}\", name = \"{name}\", access = \"read\"",
                    held.server
                )),
            };
            errors.push(e);
        }
        Some(r) if !r.store_output => errors.push(
            FileError::at(
                path,
                source,
                at_tool,
                format!("snapshot read `{qualified}` has store_output = false, so its result could not be shown to approvers"),
            )
            .with_hint("use a read tool whose output may be stored (redacted), or remove `snapshot`"),
        ),
        Some(r) if r.access != Access::Read => errors.push(
            FileError::at(
                path,
                source,
                at_tool,
                format!("snapshot read `{qualified}` must be a `read` tool, but the card grants it as `write`"),
            )
            .with_hint("a snapshot may only read: point it at a tool with access = \"read\""),
        ),
        Some(_) => {}
    }
    let mut args = BTreeMap::new();
    for (arg, value) in snap.args {
        let span = value.span().start;
        if let Some(r) = read {
            if !r.allow_unlisted_args && !r.args.contains_key(&arg) {
                let mut e = FileError::at(
                    path,
                    source,
                    span,
                    format!("snapshot read `{qualified}` takes no argument `{arg}`"),
                );
                if let Some(near) =
                    crate::diagnostic::closest(&arg, r.args.keys().map(String::as_str))
                {
                    e = e.with_hint(format!("did you mean `{near}`?"));
                }
                errors.push(e);
            }
        }
        let v = match value.into_inner() {
            toml::Value::String(text) if text.starts_with("$$") => SnapshotArg::Literal(
                serde_json::Value::String(text.get(1..).unwrap_or_default().to_string()),
            ),
            toml::Value::String(text) if text.starts_with('$') => {
                let from = text.get(1..).unwrap_or_default().to_string();
                if !held.allow_unlisted_args && !held.args.contains_key(&from) {
                    let mut e = FileError::at(
                        path,
                        source,
                        span,
                        format!(
                            "`${from}`: tool `{}` has no argument `{from}` to take the value from",
                            held.name
                        ),
                    );
                    if let Some(near) =
                        crate::diagnostic::closest(&from, held.args.keys().map(String::as_str))
                    {
                        e = e.with_hint(format!("did you mean `${near}`?"));
                    } else {
                        e = e.with_hint("write `$name` for an argument of the held call, `$$` for a literal `$`");
                    }
                    errors.push(e);
                }
                SnapshotArg::Call(from)
            }
            other => match serde_json::to_value(&other) {
                Ok(j) => SnapshotArg::Literal(j),
                Err(e) => {
                    errors.push(FileError::at(
                        path,
                        source,
                        span,
                        format!("snapshot argument `{arg}` cannot be used: {e}"),
                    ));
                    continue;
                }
            },
        };
        args.insert(arg, v);
    }
    if let Some(r) = read {
        for (req, c) in &r.args {
            if c.required && !args.contains_key(req) {
                errors.push(
                    FileError::at(
                        path,
                        source,
                        at_tool,
                        format!("snapshot read `{qualified}` needs its required argument `{req}`"),
                    )
                    .with_hint(format!("add it: args = {{ {req} = \"$…\" }}")),
                );
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Snapshot {
        tool: name,
        qualified,
        args,
    })
}

fn validate_arg(
    path: &str,
    source: &str,
    span: usize,
    name: &str,
    c: ArgConstraintFile,
) -> Result<ArgConstraint, Vec<FileError>> {
    let mut errors = Vec::new();
    let at = |msg: String| FileError::at(path, source, span, msg);
    if !is_safe_name(name) {
        errors.push(
            at(format!("argument name `{name}` is not valid"))
                .with_hint("use letters, digits, `-`, `_` and `.` only"),
        );
    }
    let numeric = matches!(c.kind, ArgType::Integer | ArgType::Number);
    if (c.min.is_some() || c.max.is_some()) && !numeric {
        errors.push(
            at(format!(
                "argument `{name}`: `min`/`max` apply to integer and number arguments, not {}",
                c.kind.as_str()
            ))
            .with_hint("use `max_length` to bound strings and arrays"),
        );
    }
    if let (Some(min), Some(max)) = (c.min, c.max) {
        if min > max {
            errors.push(at(format!(
                "argument `{name}`: `min` ({min}) is greater than `max` ({max})"
            )));
        }
    }
    if c.max_length.is_some() && !matches!(c.kind, ArgType::String | ArgType::Array) {
        errors.push(at(format!(
            "argument `{name}`: `max_length` applies to strings and arrays, not {}",
            c.kind.as_str()
        )));
    }
    let stringy = matches!(c.kind, ArgType::String | ArgType::Array);
    for (key, set) in [
        ("pattern", c.pattern.is_some()),
        ("email_domains", c.email_domains.is_some()),
        ("url_domains", c.url_domains.is_some()),
    ] {
        if set && !stringy {
            errors.push(at(format!(
                "argument `{name}`: `{key}` applies to strings (or arrays of strings), not {}",
                c.kind.as_str()
            )));
        }
    }
    let mut pattern = None;
    let mut pattern_src = None;
    if let Some(p) = &c.pattern {
        match Regex::new(&format!("^(?:{})$", p.get_ref())) {
            Ok(re) => {
                pattern = Some(re);
                pattern_src = Some(p.get_ref().clone());
            }
            Err(e) => {
                let detail = e.to_string();
                let last = detail
                    .lines()
                    .last()
                    .unwrap_or("invalid")
                    .trim()
                    .trim_start_matches("error: ")
                    .to_string();
                errors.push(
                    FileError::at(
                        path,
                        source,
                        p.span().start,
                        format!("argument `{name}`: `pattern` is not a valid regular expression: {last}"),
                    )
                    .with_hint("Rust `regex` syntax; the pattern must match the whole value"),
                );
            }
        }
    }
    let one_of = match c.one_of {
        Some(values) => {
            let mut out = Vec::new();
            for v in values {
                match serde_json::to_value(&v) {
                    Ok(j) => out.push(j),
                    Err(e) => errors.push(at(format!(
                        "argument `{name}`: `enum` value cannot be used: {e}"
                    ))),
                }
            }
            if out.is_empty() {
                errors.push(at(format!("argument `{name}`: `enum` is empty")));
            }
            Some(out)
        }
        None => None,
    };
    let lower = |v: Option<Vec<String>>| {
        v.map(|d| {
            d.into_iter()
                .map(|s| s.trim().trim_start_matches('@').to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ArgConstraint {
        kind: c.kind,
        required: c.required,
        min: c.min,
        max: c.max,
        max_length: c.max_length,
        pattern,
        pattern_src,
        one_of,
        email_domains: lower(c.email_domains),
        url_domains: lower(c.url_domains),
    })
}
