//! Compile scope cards and hand-written Cedar policies into one validated, indexed policy set,
//! and decide calls against it.
//!
//! The Cedar model:
//! - principal `Agent::"<agent id>"` with attributes `environment` and `data_classes`;
//! - action `Action::"<server>/<tool>"`, one per tool any card grants;
//! - resource `Server::"<server>"`;
//! - context `{ environment, args_valid, args: {..typed arguments..}, session, correlation_id,
//!   tool_access, tool_impact }`.
//!
//! Each card's tool grant compiles to one `permit` annotated with its approval tier; built-in
//! `forbid`s deny calls whose arguments break the card's constraints and calls from agents bound
//! to another environment. Deny is the default: a call no `permit` matches is refused.
//!
//! Requests are evaluated against a slice of the set: only the policies whose scope can match
//! the (agent, tool) pair, so a decision does not walk every policy of every agent.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::str::FromStr;

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Decision as CedarDecision, Effect, Entities, Entity,
    EntityUid, Policy, PolicyId, PolicySet, PrincipalConstraint, Request, RestrictedExpression,
    Schema, ValidationMode, Validator,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::args::{check_arguments, Violation};
use crate::config::WardenConfig;
use crate::diagnostic::{line_col, FileError};
use crate::injection::Detector;
use crate::scope_card::{
    Access, ArgType, Environment, Guard, Impact, OffList, ScopeCard, Tier, ToolGrant,
};
use crate::session::{egress_off_list, ArgProvenance, SessionState, Taint};

/// A file's path (relative to the project) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
}

/// What a policy is, for reasons.
#[derive(Debug, Clone)]
struct PolicyMeta {
    /// The id as text (Cedar's `Display` escapes; do it once).
    id: String,
    tier: Tier,
    /// `@auto_approve("why")` on a hand-written permit: an explicit rule that a call held at
    /// tier `approve` runs now instead, and is still queued for review (tier `review`).
    auto_approve: Option<String>,
    /// "permitted by `id`: reason" / "forbidden by `id`: reason", prepared once.
    because: String,
}

/// The compiled policy of a project: cards, schema, policies, indexes. Immutable; a reload
/// builds a new one and swaps it in.
pub struct CompiledPolicy {
    /// Content hash (SHA-256, hex) of `warden.toml`, every scope card and every policy file.
    pub version: String,
    pub environment: Environment,
    pub cards: BTreeMap<String, ScopeCard>,
    /// The generated Cedar schema, in Cedar schema syntax.
    pub schema_text: String,
    /// The Cedar policies generated from the scope cards (hand-written ones are not repeated).
    pub generated_text: String,
    /// Non-fatal findings for `warden check`.
    pub warnings: Vec<String>,
    schema: Schema,
    all: PolicySet,
    /// Per agent: its Cedar uid and, for each tool of its card (in the card's order), the
    /// action and resource uids and the slice of policies that can apply.
    index: HashMap<String, AgentIndex>,
    entities: Entities,
    meta: HashMap<PolicyId, PolicyMeta>,
    authorizer: Authorizer,
    /// Per agent: the injection detector, knowing the agent's own tool names.
    detectors: HashMap<String, Detector>,
    default_detector: Detector,
}

impl std::fmt::Debug for CompiledPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledPolicy")
            .field("version", &self.version)
            .field("agents", &self.cards.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

struct AgentIndex {
    uid: EntityUid,
    /// Whether the agent's card is bound to this gateway's environment.
    environment_ok: bool,
    tools: Vec<ToolIndex>,
}

struct ToolIndex {
    action: EntityUid,
    resource: EntityUid,
    slice: PolicySet,
    /// The slice without the two built-in forbids and the card's taint and egress guards, for
    /// calls that cannot trigger them (valid arguments, agent in this environment, clean
    /// session, destinations on the list): same decision, fewer policies to evaluate.
    fast: PolicySet,
    /// What the policies of `slice` may read of the context.
    slice_reads: Reads,
    /// What the policies of `fast` may read of the context.
    fast_reads: Reads,
}

/// Which optional parts of the context a set of policies may read. A part no policy of the
/// evaluated set can read is not built (a policy reading an attribute the request lacks fails
/// to evaluate, and an evaluation error denies, so a wrong "no" cannot let a call through).
#[derive(Debug, Clone, Copy, Default)]
struct Reads {
    /// `context.args`: the typed arguments (the constraints are still checked in Rust).
    args: bool,
    /// The session attributes: `taint`, `untrusted_args`, `read_classes`,
    /// `untrusted_sources`, `egress`, `egress_off_list`.
    session: bool,
}

impl Reads {
    const ALL: Reads = Reads {
        args: true,
        session: true,
    };

    fn add(&mut self, policy_text: &str) {
        self.args = self.args || may_read_args(policy_text);
        self.session = self.session || may_read_session(policy_text);
    }
}

/// Whether a policy may read a session attribute: it names one, or uses `context` other than
/// through an attribute access. Conservative, like [`may_read_args`].
fn may_read_session(policy_text: &str) -> bool {
    static PATTERNS: std::sync::OnceLock<Option<(regex::Regex, regex::Regex)>> =
        std::sync::OnceLock::new();
    let Some((names, whole_context)) = PATTERNS.get_or_init(|| {
        Some((
            regex::Regex::new(
                r"\b(taint|untrusted_args|read_classes|untrusted_sources|egress|egress_off_list)\b",
            )
            .ok()?,
            regex::Regex::new(r"\bcontext\b(\s*$|\s*[^\s.])").ok()?,
        ))
    }) else {
        return true;
    };
    names.is_match(policy_text) || whole_context.is_match(policy_text)
}

/// Whether a policy may read the call's arguments: it names `args`, or uses `context` other
/// than through an attribute access. Conservative: a policy that reads arguments the request
/// does not carry fails to evaluate, and an evaluation error denies.
fn may_read_args(policy_text: &str) -> bool {
    static PATTERNS: std::sync::OnceLock<Option<(regex::Regex, regex::Regex)>> =
        std::sync::OnceLock::new();
    let Some((names_args, whole_context)) = PATTERNS.get_or_init(|| {
        Some((
            regex::Regex::new(r"\bargs\b").ok()?,
            regex::Regex::new(r"\bcontext\b(\s*$|\s*[^\s.])").ok()?,
        ))
    }) else {
        return true;
    };
    names_args.is_match(policy_text) || whole_context.is_match(policy_text)
}

/// Id of the built-in forbid for calls whose arguments break the card's constraints.
const ARGUMENTS_POLICY: &str = "warden/argument-constraints";
/// Id of the built-in forbid for agents bound to another environment.
const ENVIRONMENT_POLICY: &str = "warden/environment";

/// The verdict of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Deny,
    ApprovalRequired,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::ApprovalRequired => "approval_required",
        }
    }
}

/// A proposed tool call.
#[derive(Debug, Clone, Copy)]
pub struct CallRequest<'a> {
    pub agent: &'a str,
    pub tool: &'a str,
    pub args: &'a Value,
    pub session: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
}

/// Something an agent reads besides tools, for [`CompiledPolicy::decide_read`].
#[derive(Debug, Clone, Copy)]
pub enum ReadTarget<'a> {
    Resource { server: &'a str, uri: &'a str },
    Prompt { server: &'a str, name: &'a str },
}

/// The answer to a proposed call, with its reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub decision: Verdict,
    /// The approval tier: `auto`/`review` for allowed calls, `approve`/`two_person` for held
    /// ones; for denied calls, the tier the card would have applied (`auto` if none).
    pub tier: Tier,
    /// Why, in words a person understands.
    pub reasons: Vec<String>,
    /// The ids of the Cedar policies that determined the outcome.
    pub policies: Vec<String>,
    /// The argument constraints the call broke.
    pub violations: Vec<Violation>,
    /// The tool as `server/name` when the card grants it.
    pub tool: Option<String>,
    pub policy_version: String,
    /// The session's taint when the call was decided (absent when clean or no session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taint: Option<Taint>,
    /// Argument values that came from untrusted content the session read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provenance: Vec<ArgProvenance>,
    /// Destinations off the tool's egress allowlist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress_off_list: Vec<String>,
}

/// Compile a project from its parsed parts. `cards` pairs each card with its source, for
/// located errors.
pub fn compile(
    config_path: &str,
    config_text: &str,
    config: &WardenConfig,
    cards: Vec<(ScopeCard, String)>,
    policies: &[SourceFile],
) -> Result<CompiledPolicy, Vec<FileError>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let environment = config.gateway.environment;

    // Content hash over every input, in a fixed order.
    let mut hasher = Sha256::new();
    let mut hash_file = |path: &str, text: &str| {
        hasher.update((path.len() as u64).to_be_bytes());
        hasher.update(path.as_bytes());
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
    };
    hash_file(config_path, config_text);
    let mut sorted_cards: Vec<&(ScopeCard, String)> = cards.iter().collect();
    sorted_cards.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    for (card, text) in &sorted_cards {
        hash_file(&card.path, text);
    }
    let mut sorted_policies: Vec<&SourceFile> = policies.iter().collect();
    sorted_policies.sort_by(|a, b| a.path.cmp(&b.path));
    for p in &sorted_policies {
        hash_file(&p.path, &p.text);
    }
    let version = hex::encode(hasher.finalize());

    // Cards: unique ids, known upstreams, and one argument type per (tool, argument).
    let mut by_id: BTreeMap<String, ScopeCard> = BTreeMap::new();
    // action -> arg -> (type, required by every card that grants the action)
    let mut actions: BTreeMap<String, BTreeMap<String, (ArgType, bool)>> = BTreeMap::new();
    let mut arg_origin: HashMap<(String, String), String> = HashMap::new();
    for (mut card, text) in cards {
        for tool in &mut card.tools {
            if tool.output_trust_declared.is_none() {
                if let Some(t) = config
                    .upstreams
                    .get(&tool.server)
                    .and_then(|u| u.get_ref().output_trust)
                {
                    tool.output_trust = t;
                }
            }
        }
        if card.environment != environment {
            warnings.push(format!(
                "{}: agent `{}` is bound to `{}` but this gateway serves `{}`; its calls will be denied",
                card.path, card.id, card.environment, environment
            ));
        }
        if !config.agent_keys.contains_key(&card.id) {
            warnings.push(format!(
                "{}: agent `{}` has no key in warden.toml [agent_keys]; it cannot call the HTTP API",
                card.path, card.id
            ));
        }
        if let Some(region) = &card.region {
            if !config.regions.contains_key(region) {
                let (line, col) = line_col(&text, card.region_span);
                let known: Vec<&str> = config.regions.keys().map(String::as_str).collect();
                let e = FileError {
                    file: card.path.clone(),
                    line,
                    col,
                    message: format!(
                        "region `{region}` is not declared in {config_path} [regions]"
                    ),
                    hint: None,
                };
                errors.push(match crate::diagnostic::closest(region, known.iter().copied()) {
                    Some(near) => e.with_hint(format!("did you mean `{near}`?")),
                    None => e.with_hint(format!(
                        "declare it with its own store: [regions.{region}] url = \"sqlite://.warden/{region}/ledger.db\""
                    )),
                });
            }
        }
        let reads = card
            .resources
            .iter()
            .map(|r| ("resource", r.uri.as_str(), r.server.as_str(), r.server_span))
            .chain(
                card.prompts
                    .iter()
                    .map(|p| ("prompt", p.name.as_str(), p.server.as_str(), p.server_span)),
            );
        for (what, target, server, span) in reads {
            if !config.upstreams.contains_key(server) {
                let (line, col) = line_col(&text, span);
                errors.push(
                    FileError {
                        file: card.path.clone(),
                        line,
                        col,
                        message: format!(
                            "{what} `{target}` names server `{server}`, which is not an upstream in {config_path}"
                        ),
                        hint: None,
                    }
                    .with_hint(format!("declare it as [upstreams.{server}] in {config_path}")),
                );
            }
        }
        for tool in &card.tools {
            if !config.upstreams.contains_key(&tool.server) {
                let (line, col) = line_col(&text, tool.server_span);
                let known: Vec<&str> = config.upstreams.keys().map(String::as_str).collect();
                let mut e = FileError {
                    file: card.path.clone(),
                    line,
                    col,
                    message: format!(
                        "tool `{}` names server `{}`, which is not an upstream in {config_path}",
                        tool.name, tool.server
                    ),
                    hint: None,
                };
                e = match crate::diagnostic::closest(&tool.server, known.iter().copied()) {
                    Some(near) => e.with_hint(format!("did you mean `{near}`?")),
                    None => e.with_hint(format!(
                        "declare it as [upstreams.{}] in {config_path}",
                        tool.server
                    )),
                };
                errors.push(e);
            }
            if tool.access == Access::Write
                && tool.impact == Impact::High
                && !tool.approval.holds_call()
            {
                warnings.push(format!(
                    "{}: `{}` is a high-impact write at tier `{}`; it will run without a human",
                    card.path, tool.name, tool.approval
                ));
            }
            let action = tool.qualified().to_string();
            let entry = actions.entry(action.clone()).or_default();
            for (name, c) in &tool.args {
                if cedar_type(c.kind).is_none() {
                    continue;
                }
                match entry.get_mut(name) {
                    Some((kind, required)) => {
                        if *kind != c.kind {
                            let first = arg_origin
                                .get(&(action.clone(), name.clone()))
                                .cloned()
                                .unwrap_or_default();
                            errors.push(
                                FileError::whole(
                                    &card.path,
                                    format!(
                                    "argument `{name}` of `{action}` is {} here but {} in {first}",
                                    c.kind.as_str(),
                                    kind.as_str()
                                ),
                                )
                                .with_hint(
                                    "a tool's arguments have one type across all scope cards",
                                ),
                            );
                        }
                        *required = *required && c.required;
                    }
                    None => {
                        entry.insert(name.clone(), (c.kind, c.required));
                        arg_origin.insert((action.clone(), name.clone()), card.path.clone());
                    }
                }
            }
            // An argument one card lists and another does not is optional.
        }
        if let Some(prev) = by_id.get(&card.id) {
            errors.push(FileError::whole(
                &card.path,
                format!("agent `{}` is also defined in {}", card.id, prev.path),
            ));
        }
        by_id.insert(card.id.clone(), card);
    }
    for (action, args) in actions.iter_mut() {
        for card in by_id.values() {
            if let Some(t) = card.tools.iter().find(|t| t.qualified() == action) {
                for (name, (_, required)) in args.iter_mut() {
                    if !t.args.contains_key(name) {
                        *required = false;
                    }
                }
            }
        }
    }
    for (agent, key) in &config.agent_keys {
        if !by_id.contains_key(agent) {
            let (line, col) = line_col(config_text, key.span().start);
            errors.push(FileError {
                file: config_path.to_string(),
                line,
                col,
                message: format!("agent key for `{agent}`, which has no scope card"),
                hint: Some(format!("add agents/{agent}.toml or remove the key")),
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let schema_text = schema_text(&actions);
    let schema = match Schema::from_cedarschema_str(&schema_text) {
        Ok((s, _)) => s,
        Err(e) => {
            return Err(vec![FileError::whole(
                config_path,
                format!("internal error: generated Cedar schema is invalid: {e}"),
            )])
        }
    };

    // Generated policies are parsed one by one: Cedar keeps the source text it parsed with
    // every policy's locations, so parsing thousands at once costs memory quadratic in their
    // number.
    let generated = generated_policies(&by_id);
    let generated_text = generated.join("\n");
    let mut all = PolicySet::new();
    let mut meta = HashMap::new();
    // Policy id -> index into `sources`, for locating validation errors.
    let mut origin: HashMap<PolicyId, usize> = HashMap::new();
    let mut sources: Vec<(String, String)> = generated
        .into_iter()
        .map(|text| ("(generated)".to_string(), text))
        .collect();
    sources.extend(
        sorted_policies
            .iter()
            .map(|p| (p.path.clone(), p.text.clone())),
    );
    for (source_index, (path, text)) in sources.iter().enumerate() {
        let parsed = match PolicySet::from_str(text) {
            Ok(p) => p,
            Err(e) => {
                errors.push(cedar_error(path, text, &e, "Cedar syntax error"));
                continue;
            }
        };
        if parsed.templates().next().is_some() {
            errors.push(
                FileError::whole(path, "policy templates are not supported")
                    .with_hint("write static policies; Warden links agents through scope cards"),
            );
            continue;
        }
        // Keep the file's order so `file#N` ids are stable.
        let mut in_file: Vec<&Policy> = parsed.policies().collect();
        in_file.sort_by_key(|p| {
            p.id()
                .to_string()
                .trim_start_matches("policy")
                .parse::<usize>()
                .unwrap_or(usize::MAX)
        });
        for (n, p) in in_file.into_iter().enumerate() {
            let id = match p.annotation("id") {
                Some(id) => id.to_string(),
                None => format!("{path}#{n}"),
            };
            let pid = PolicyId::new(&id);
            let offset = if path == "(generated)" {
                0
            } else {
                policy_offset(text, p)
            };
            let tier = match p.annotation("approval") {
                None => Tier::Auto,
                Some(t) => {
                    match Tier::parse(t) {
                        Some(t) if p.effect() == Effect::Permit => t,
                        Some(_) => {
                            errors.push(
                            FileError::at(path, text, offset, format!("policy `{id}`: @approval on a forbid has no effect"))
                                .with_hint("put @approval on a permit policy to escalate the calls it matches"),
                        );
                            Tier::Auto
                        }
                        None => {
                            errors.push(
                                FileError::at(
                                    path,
                                    text,
                                    offset,
                                    format!("policy `{id}`: unknown approval tier `{t}`"),
                                )
                                .with_hint("use one of `auto`, `review`, `approve`, `two_person`"),
                            );
                            Tier::Auto
                        }
                    }
                }
            };
            if path != "(generated)" && (id.starts_with("card/") || id.starts_with("warden/")) {
                errors.push(
                    FileError::at(
                        path,
                        text,
                        offset,
                        format!("policy id `{id}` uses a prefix reserved for generated policies"),
                    )
                    .with_hint("choose an @id that does not start with `card/` or `warden/`"),
                );
                continue;
            }
            let auto_approve = p.annotation("auto_approve").map(str::to_string);
            if auto_approve.is_some() {
                let problem = if p.effect() == Effect::Forbid {
                    Some("@auto_approve on a forbid has no effect: nothing lowers a forbid")
                } else if p.annotation("approval").is_some() {
                    Some("@auto_approve and @approval on one policy contradict each other")
                } else if auto_approve.as_deref().is_some_and(|r| r.trim().is_empty()) {
                    Some("@auto_approve needs the reason the calls it matches are low-risk")
                } else {
                    None
                };
                if let Some(problem) = problem {
                    errors.push(
                        FileError::at(path, text, offset, format!("policy `{id}`: {problem}"))
                            .with_hint("write @auto_approve(\"why these calls are low-risk\") on a permit that narrows the calls (amount, repeat of an approved call)"),
                    );
                }
            }
            let reason = p
                .annotation("reason")
                .map_or_else(|| format!("policy `{id}`"), str::to_string);
            let verb = match p.effect() {
                Effect::Permit => "permitted",
                Effect::Forbid => "forbidden",
            };
            meta.insert(
                pid.clone(),
                PolicyMeta {
                    id: id.clone(),
                    tier,
                    auto_approve,
                    because: format!("{verb} by `{id}`: {reason}"),
                },
            );
            if let Some(other) = origin
                .get(&pid)
                .and_then(|i| sources.get(*i))
                .map(|(p, _)| p.clone())
            {
                errors.push(
                    FileError::at(
                        path,
                        text,
                        offset,
                        format!("policy id `{id}` is already used in {other}"),
                    )
                    .with_hint("every @id must be unique across policies/"),
                );
                continue;
            }
            origin.insert(pid.clone(), source_index);
            if let Err(e) = all.add(p.new_id(pid)) {
                errors.push(FileError::whole(path, format!("policy `{id}`: {e}")));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let validation = Validator::new(schema.clone()).validate(&all, ValidationMode::Strict);
    for e in validation.validation_errors() {
        let (path, text) = origin
            .get(e.policy_id())
            .and_then(|i| sources.get(*i))
            .cloned()
            .unwrap_or_else(|| ("(generated)".to_string(), String::new()));
        let offset = first_label(e).unwrap_or(0);
        errors.push(
            FileError::at(&path, &text, offset, format!("policy `{}`: {e}", e.policy_id()))
                .with_hint(help_text(e).unwrap_or_else(|| {
                    "policies are checked in strict mode against the schema `warden check --schema` prints".to_string()
                })),
        );
    }
    for w in validation.validation_warnings() {
        warnings.push(format!("policy `{}`: {w}", w.policy_id()));
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    // Entities: one per agent and per server.
    let mut entities = Vec::new();
    for card in by_id.values() {
        let mut attrs = HashMap::new();
        attrs.insert(
            "environment".to_string(),
            RestrictedExpression::new_string(card.environment.as_str().to_string()),
        );
        attrs.insert(
            "data_classes".to_string(),
            RestrictedExpression::new_set(
                card.data_classes
                    .iter()
                    .map(|d| RestrictedExpression::new_string(d.clone())),
            ),
        );
        match Entity::new(uid("Agent", &card.id), attrs, HashSet::new()) {
            Ok(e) => entities.push(e),
            Err(e) => errors.push(FileError::whole(&card.path, format!("internal error: {e}"))),
        }
    }
    for name in config.upstreams.keys() {
        entities.push(Entity::with_uid(uid("Server", name)));
    }
    let entities = match Entities::from_entities(entities, Some(&schema)) {
        Ok(e) => e,
        Err(e) => {
            errors.push(FileError::whole(
                config_path,
                format!("internal error: entities: {e}"),
            ));
            return Err(errors);
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }

    // Slices: for each agent and each tool on its card, the policies whose scope can match.
    // Policies are bucketed by principal first so building slices stays linear.
    let mut by_principal: HashMap<EntityUid, Vec<&Policy>> = HashMap::new();
    let mut any_principal: Vec<&Policy> = Vec::new();
    for p in all.policies() {
        match p.principal_constraint() {
            PrincipalConstraint::Eq(u) => by_principal.entry(u).or_default().push(p),
            _ => any_principal.push(p),
        }
    }
    let mut index: HashMap<String, AgentIndex> = HashMap::new();
    for card in by_id.values() {
        let agent_uid = uid("Agent", &card.id);
        let mut tools = Vec::with_capacity(card.tools.len());
        let own = by_principal
            .get(&agent_uid)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for tool in &card.tools {
            let action_uid = uid("Action", tool.qualified());
            let mut slice = PolicySet::new();
            let mut fast = PolicySet::new();
            let mut slice_reads = Reads::default();
            let mut fast_reads = Reads::default();
            for p in own.iter().chain(any_principal.iter()) {
                let action_ok = match p.action_constraint() {
                    ActionConstraint::Any => true,
                    ActionConstraint::Eq(a) => a == action_uid,
                    ActionConstraint::In(list) => list.contains(&action_uid),
                };
                if action_ok {
                    let text = p.to_string();
                    slice_reads.add(&text);
                    if let Err(e) = slice.add((**p).clone()) {
                        errors.push(FileError::whole(&card.path, format!("internal error: {e}")));
                    }
                    let built_in = p.id() == &PolicyId::new(ARGUMENTS_POLICY)
                        || p.id() == &PolicyId::new(ENVIRONMENT_POLICY)
                        || is_guard_id(p.id().as_ref());
                    if !built_in {
                        fast_reads.add(&text);
                        if let Err(e) = fast.add((**p).clone()) {
                            errors
                                .push(FileError::whole(&card.path, format!("internal error: {e}")));
                        }
                    }
                }
            }
            tools.push(ToolIndex {
                resource: uid("Server", &tool.server),
                action: action_uid,
                slice,
                fast,
                slice_reads,
                fast_reads,
            });
        }
        index.insert(
            card.id.clone(),
            AgentIndex {
                uid: agent_uid,
                environment_ok: card.environment == environment,
                tools,
            },
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let detectors = by_id
        .values()
        .map(|card| {
            let names: Vec<String> = card.tools.iter().map(|t| t.name.clone()).collect();
            (card.id.clone(), Detector::new(&names))
        })
        .collect();

    Ok(CompiledPolicy {
        detectors,
        default_detector: Detector::default(),
        version,
        environment,
        cards: by_id,
        schema_text,
        generated_text,
        warnings,
        schema,
        all,
        index,
        entities,
        meta,
        authorizer: Authorizer::new(),
    })
}

fn uid(kind: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(
        // Both names are fixed identifiers; parsing cannot fail.
        cedar_policy::EntityTypeName::from_str(kind).unwrap_or_else(|_| unreachable_type()),
        cedar_policy::EntityId::new(id),
    )
}

#[expect(
    clippy::panic,
    reason = "the three entity type names are constant identifiers"
)]
fn unreachable_type() -> cedar_policy::EntityTypeName {
    panic!("constant Cedar type name failed to parse")
}

fn cedar_type(kind: ArgType) -> Option<&'static str> {
    match kind {
        ArgType::String => Some("String"),
        ArgType::Integer => Some("Long"),
        ArgType::Number => Some("decimal"),
        ArgType::Boolean => Some("Bool"),
        ArgType::Array | ArgType::Object => None,
    }
}

fn quote(s: &str) -> String {
    // Names are restricted to [A-Za-z0-9_.-] by the card parser; escape anyway.
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn schema_text(actions: &BTreeMap<String, BTreeMap<String, (ArgType, bool)>>) -> String {
    let mut s = String::new();
    s.push_str("// Generated by Warden from the scope cards. Do not edit.\n");
    s.push_str(
        "entity Agent = {\n  \"environment\": String,\n  \"data_classes\": Set<String>,\n};\n",
    );
    s.push_str("entity Server;\n");
    for (action, args) in actions {
        let _ = writeln!(s, "\naction {} appliesTo {{", quote(action));
        s.push_str("  principal: [Agent],\n  resource: [Server],\n  context: {\n");
        s.push_str("    \"environment\": String,\n    \"args_valid\": Bool,\n");
        s.push_str("    \"session\": String,\n    \"correlation_id\": String,\n");
        s.push_str("    \"tool_access\": String,\n    \"tool_impact\": String,\n");
        s.push_str("    \"taint\": String,\n    \"untrusted_args\": Set<String>,\n");
        s.push_str("    \"read_classes\": Set<String>,\n    \"untrusted_sources\": Set<String>,\n");
        s.push_str("    \"egress\": String,\n    \"egress_off_list\": Set<String>,\n");
        s.push_str("    \"args\": {");
        if args.is_empty() {
            s.push_str("},\n");
        } else {
            s.push('\n');
            for (name, (kind, required)) in args {
                if let Some(t) = cedar_type(*kind) {
                    let opt = if *required { "" } else { "?" };
                    let _ = writeln!(s, "      {}{opt}: {t},", quote(name));
                }
            }
            s.push_str("    },\n");
        }
        s.push_str("  }\n};\n");
    }
    s
}

fn generated_policies(cards: &BTreeMap<String, ScopeCard>) -> Vec<String> {
    let mut out = Vec::new();
    out.push(
        "@id(\"warden/argument-constraints\")\n\
         @reason(\"the call's arguments break the argument constraints of the agent's scope card\")\n\
         forbid (principal, action, resource)\nwhen { !context.args_valid };\n"
            .to_string(),
    );
    out.push(
        "@id(\"warden/environment\")\n\
         @reason(\"the agent's scope card binds it to another environment than this gateway's\")\n\
         forbid (principal, action, resource)\nwhen { principal.environment != context.environment };\n"
            .to_string(),
    );
    for card in cards.values() {
        for t in &card.tools {
            let access = match t.access {
                Access::Read => "read",
                Access::Write => "write",
            };
            let impact = match t.impact {
                Impact::Low => "low",
                Impact::Medium => "medium",
                Impact::High => "high",
            };
            let mut s = String::new();
            let _ = write!(
                s,
                "@id(\"card/{agent}/{action}\")\n@approval(\"{tier}\")\n\
                 @reason(\"scope card {path} grants {agent} {action} ({access}, {impact} impact, tier {tier})\")\n\
                 permit (\n  principal == Agent::{qa},\n  action == Action::{qact},\n  resource == Server::{qs}\n);\n",
                agent = card.id,
                tier = t.approval,
                path = card.path,
                action = t.qualified(),
                qa = quote(&card.id),
                qact = quote(t.qualified()),
                qs = quote(&t.server),
            );
            out.push(s);
            out.extend(guard_policies(card, t));
        }
    }
    out
}

/// Whether a policy id is one of the generated taint or egress guards (`card/…#…`).
fn is_guard_id(id: &str) -> bool {
    id.starts_with("card/") && id.contains('#')
}

/// The taint and egress guards a card's tool grant compiles to.
fn guard_policies(card: &ScopeCard, t: &ToolGrant) -> Vec<String> {
    let mut out = Vec::new();
    let scope = format!(
        "(\n  principal == Agent::{},\n  action == Action::{},\n  resource == Server::{}\n)",
        quote(&card.id),
        quote(t.qualified()),
        quote(&t.server)
    );
    let mut guard = |suffix: &str, g: Guard, when: &str, why: &str, setting: &str| {
        let id = format!("card/{}/{}#{suffix}", card.id, t.qualified());
        let reason = format!(
            "{why}; scope card {} sets {setting} = \\\"{}\\\" for {}",
            card.path,
            g.as_str(),
            t.qualified()
        );
        match g.tier() {
            Some(Tier::Auto) => {}
            Some(tier) => out.push(format!(
                "@id(\"{id}\")\n@approval(\"{tier}\")\n@reason(\"{reason}\")\npermit {scope}\nwhen {{ {when} }};\n"
            )),
            None => out.push(format!(
                "@id(\"{id}\")\n@reason(\"{reason}\")\nforbid {scope}\nwhen {{ {when} }};\n"
            )),
        }
    };
    guard(
        "after-untrusted",
        t.after_untrusted,
        "context.taint != \"clean\"",
        "the session has read untrusted content",
        "after_untrusted",
    );
    guard(
        "after-suspicious",
        t.after_suspicious,
        "context.taint == \"suspicious\"",
        "the injection detector found instructions in content this session read",
        "after_suspicious",
    );
    guard(
        "untrusted-args",
        t.untrusted_args,
        "!context.untrusted_args.isEmpty()",
        "an argument value came from untrusted content, not from the user's request",
        "untrusted_args",
    );
    if let Some(e) = &t.egress {
        let off = "context.egress == \"off_list\"";
        let sensitive = if e.sensitive.is_empty() {
            "!context.read_classes.isEmpty()".to_string()
        } else {
            format!(
                "context.read_classes.containsAny([{}])",
                e.sensitive
                    .iter()
                    .map(|c| quote(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        match e.off_list {
            OffList::Deny => guard(
                "egress",
                Guard::Deny,
                off,
                "a destination is not on the tool's egress allowlist",
                "egress.off_list",
            ),
            OffList::Approve => guard(
                "egress",
                Guard::Approve,
                off,
                "a destination is not on the tool's egress allowlist",
                "egress.off_list",
            ),
            OffList::ApproveUnlessSensitive => {
                guard(
                    "egress",
                    Guard::Approve,
                    off,
                    "a destination is not on the tool's egress allowlist",
                    "egress.off_list",
                );
                guard(
                    "egress-sensitive",
                    Guard::Deny,
                    &format!("{off} && {sensitive}"),
                    "a destination is not on the tool's egress allowlist and the session has read sensitive data",
                    "egress.off_list",
                );
            }
        }
    }
    out
}

/// Byte offset of a policy inside its file, from its source location if Cedar kept one.
fn policy_offset(text: &str, p: &Policy) -> usize {
    let src = p.to_string();
    let first_line = src.lines().next().unwrap_or_default().trim();
    if first_line.is_empty() {
        return 0;
    }
    text.find(first_line).unwrap_or(0)
}

fn first_label(e: &dyn miette::Diagnostic) -> Option<usize> {
    e.labels().and_then(|mut l| l.next()).map(|l| l.offset())
}

fn help_text(e: &dyn miette::Diagnostic) -> Option<String> {
    e.help().map(|h| h.to_string())
}

fn cedar_error(path: &str, text: &str, e: &cedar_policy::ParseErrors, what: &str) -> FileError {
    let offset = first_label(e).unwrap_or(0);
    let mut msg = e.to_string();
    if let Some(first) = e.iter().next() {
        msg = first.to_string();
    }
    let mut fe = FileError::at(path, text, offset, format!("{what}: {msg}"));
    if let Some(h) = help_text(e) {
        fe = fe.with_hint(h);
    }
    fe
}

/// Turn a JSON argument into a Cedar value of the declared type. `None` if it does not fit.
fn to_cedar(kind: ArgType, v: &Value) -> Option<RestrictedExpression> {
    match kind {
        ArgType::String => v
            .as_str()
            .map(|s| RestrictedExpression::new_string(s.to_string())),
        ArgType::Integer => v.as_i64().map(RestrictedExpression::new_long),
        ArgType::Boolean => v.as_bool().map(RestrictedExpression::new_bool),
        ArgType::Number => {
            let n = v.as_f64()?;
            // Cedar decimals hold four fractional digits within the range of an i64.
            if !n.is_finite() || n.abs() >= 922_337_203_685_477.0 {
                return None;
            }
            Some(RestrictedExpression::new_decimal(format!("{n:.4}")))
        }
        ArgType::Array | ArgType::Object => None,
    }
}

fn placeholder(kind: ArgType) -> Option<RestrictedExpression> {
    match kind {
        ArgType::String => Some(RestrictedExpression::new_string(String::new())),
        ArgType::Integer => Some(RestrictedExpression::new_long(0)),
        ArgType::Boolean => Some(RestrictedExpression::new_bool(false)),
        ArgType::Number => Some(RestrictedExpression::new_decimal("0.0")),
        ArgType::Array | ArgType::Object => None,
    }
}

impl CompiledPolicy {
    /// The short form of the version, as shown to people.
    pub fn short_version(&self) -> &str {
        self.version.get(..12).unwrap_or(&self.version)
    }

    /// The full policy set (generated and hand-written), e.g. for benchmarks against Cedar.
    pub fn policy_set(&self) -> &PolicySet {
        &self.all
    }

    /// The slice of the policy set evaluated for one agent and tool (`server/name`).
    pub fn slice(&self, agent: &str, qualified_tool: &str) -> Option<&PolicySet> {
        let i = self.cards.get(agent)?.tool_index(qualified_tool)?;
        self.index.get(agent)?.tools.get(i).map(|t| &t.slice)
    }

    pub fn entities(&self) -> &Entities {
        &self.entities
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Number of policies in the set.
    pub fn policy_count(&self) -> usize {
        self.all.policies().count()
    }

    /// Decide a read of an MCP resource or prompt. Scope cards grant these by name or URI
    /// prefix (`[[resources]]`, `[[prompts]]`); anything not listed is denied, and so is
    /// everything when the agent is bound to another environment.
    pub fn decide_read(&self, agent: &str, target: &ReadTarget<'_>) -> Decision {
        let (kind, server, what) = match target {
            ReadTarget::Resource { server, uri } => ("resource", *server, *uri),
            ReadTarget::Prompt { server, name } => ("prompt", *server, *name),
        };
        let label = format!("{server}/{kind}:{what}");
        let Some(card) = self.cards.get(agent) else {
            return self.deny(
                Some(label),
                vec![format!(
                    "agent `{agent}` has no scope card, so it may read nothing (deny by default)"
                )],
                Vec::new(),
            );
        };
        if card.environment != self.environment {
            return self.deny(
                Some(label),
                vec![format!(
                    "agent `{}` is bound to the `{}` environment and this gateway serves `{}`",
                    card.id, card.environment, self.environment
                )],
                vec!["warden/environment".to_string()],
            );
        }
        let granted = match target {
            ReadTarget::Resource { server, uri } => card
                .resource(server, uri)
                .map(|g| format!("the card grants resources `{}` on `{server}`", g.uri)),
            ReadTarget::Prompt { server, name } => card
                .prompt(server, name)
                .map(|_| format!("the card grants prompt `{name}` on `{server}`")),
        };
        match granted {
            Some(reason) => Decision {
                decision: Verdict::Allow,
                tier: Tier::Auto,
                reasons: vec![format!("{reason} ({})", card.path)],
                policies: vec![format!("card/{}/{kind}s", card.id)],
                violations: Vec::new(),
                tool: Some(label),
                policy_version: self.version.clone(),
                taint: None,
                provenance: Vec::new(),
                egress_off_list: Vec::new(),
            },
            None => self.deny(
                Some(label),
                vec![format!(
                    "{kind} `{what}` of `{server}` is not on the scope card of `{}` ({}), so the agent may not read it (deny by default)",
                    card.id, card.path
                )],
                Vec::new(),
            ),
        }
    }

    fn deny(&self, tool: Option<String>, reasons: Vec<String>, policies: Vec<String>) -> Decision {
        Decision {
            decision: Verdict::Deny,
            tier: Tier::Auto,
            reasons,
            policies,
            violations: Vec::new(),
            tool,
            policy_version: self.version.clone(),
            taint: None,
            provenance: Vec::new(),
            egress_off_list: Vec::new(),
        }
    }

    /// Build the Cedar request for a call the card grants. Exposed for benchmarks and tests.
    pub fn cedar_request(&self, call: &CallRequest<'_>) -> Option<(Request, Vec<Violation>)> {
        let card = self.cards.get(call.agent)?;
        let i = card.tool_index(call.tool)?;
        let grant = card.tools.get(i)?;
        let ids = self.index.get(&card.id)?;
        let tool_ids = ids.tools.get(i)?;
        self.request_for(
            grant,
            &ids.uid,
            tool_ids,
            call,
            Reads::ALL,
            &SessionFacts::clean(grant),
        )
    }

    /// The injection detector for an agent (it knows the agent's own tool names).
    pub fn detector(&self, agent: &str) -> &Detector {
        self.detectors.get(agent).unwrap_or(&self.default_detector)
    }

    fn request_for(
        &self,
        grant: &ToolGrant,
        agent_uid: &EntityUid,
        tool_ids: &ToolIndex,
        call: &CallRequest<'_>,
        reads: Reads,
        facts: &SessionFacts<'_>,
    ) -> Option<(Request, Vec<Violation>)> {
        let mut violations = check_arguments(grant, call.args);
        let mut args = Vec::new();
        for (name, c) in &grant.args {
            if !reads.args || cedar_type(c.kind).is_none() {
                continue;
            }
            let given = call.args.get(name).filter(|v| !v.is_null());
            let bad = violations.iter().any(|v| &v.argument == name);
            let value = match given.filter(|_| !bad) {
                Some(v) => match to_cedar(c.kind, v) {
                    Some(x) => Some(x),
                    None => {
                        violations.push(Violation {
                            argument: name.clone(),
                            message: format!(
                                "argument `{name}` is too large or too precise to evaluate against policy"
                            ),
                        });
                        None
                    }
                },
                None => None,
            };
            // Required arguments are always present in the context (the arguments forbid wins
            // when they are missing); optional ones only when well-typed.
            match value {
                Some(x) => args.push((name.clone(), x)),
                None if c.required => {
                    if let Some(p) = placeholder(c.kind) {
                        args.push((name.clone(), p));
                    }
                }
                None => {}
            }
        }
        let args = RestrictedExpression::new_record(args).ok()?;
        let mut pairs = vec![
            (
                "environment".to_string(),
                RestrictedExpression::new_string(self.environment.as_str().to_string()),
            ),
            (
                "args_valid".to_string(),
                RestrictedExpression::new_bool(violations.is_empty()),
            ),
            (
                "session".to_string(),
                RestrictedExpression::new_string(call.session.unwrap_or_default().to_string()),
            ),
            (
                "correlation_id".to_string(),
                RestrictedExpression::new_string(
                    call.correlation_id.unwrap_or_default().to_string(),
                ),
            ),
            (
                "tool_access".to_string(),
                RestrictedExpression::new_string(
                    match grant.access {
                        Access::Read => "read",
                        Access::Write => "write",
                    }
                    .to_string(),
                ),
            ),
            (
                "tool_impact".to_string(),
                RestrictedExpression::new_string(
                    match grant.impact {
                        Impact::Low => "low",
                        Impact::Medium => "medium",
                        Impact::High => "high",
                    }
                    .to_string(),
                ),
            ),
            ("args".to_string(), args),
        ];
        if reads.session {
            pairs.extend(Self::session_context(facts));
        }
        let context = Context::from_pairs(pairs).ok()?;
        let request = Request::new(
            agent_uid.clone(),
            tool_ids.action.clone(),
            tool_ids.resource.clone(),
            context,
            None,
        )
        .ok()?;
        Some((request, violations))
    }

    /// The session attributes of a request's context.
    fn session_context(
        facts: &SessionFacts<'_>,
    ) -> impl Iterator<Item = (String, RestrictedExpression)> {
        [
            (
                "taint".to_string(),
                RestrictedExpression::new_string(facts.taint.as_str().to_string()),
            ),
            (
                "untrusted_args".to_string(),
                RestrictedExpression::new_set(facts.provenance.iter().map(|p| {
                    RestrictedExpression::new_string(
                        p.argument.split('.').next().unwrap_or_default().to_string(),
                    )
                })),
            ),
            (
                "read_classes".to_string(),
                RestrictedExpression::new_set(
                    facts
                        .read_classes
                        .into_iter()
                        .flatten()
                        .map(|c| RestrictedExpression::new_string(c.clone())),
                ),
            ),
            (
                "untrusted_sources".to_string(),
                RestrictedExpression::new_set(
                    facts
                        .sources
                        .iter()
                        .map(|s| RestrictedExpression::new_string(s.tool.clone())),
                ),
            ),
            (
                "egress".to_string(),
                RestrictedExpression::new_string(facts.egress.to_string()),
            ),
            (
                "egress_off_list".to_string(),
                RestrictedExpression::new_set(
                    facts
                        .off_list
                        .iter()
                        .map(|d| RestrictedExpression::new_string(d.clone())),
                ),
            ),
        ]
        .into_iter()
    }

    /// Validate a Cedar request against the schema (used by tests to pin that requests built
    /// by [`Self::cedar_request`] conform).
    pub fn request_conforms(&self, call: &CallRequest<'_>) -> Result<(), String> {
        let (req, _) = self
            .cedar_request(call)
            .ok_or_else(|| "no request could be built".to_string())?;
        let ctx = req.context().ok_or("no context")?.clone();
        let p = req.principal().ok_or("no principal")?.clone();
        let a = req.action().ok_or("no action")?.clone();
        let r = req.resource().ok_or("no resource")?.clone();
        Request::new(p, a, r, ctx, Some(&self.schema))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Decide a proposed call outside any session state (a clean session). Pure: the same
    /// policy and call give the same decision.
    pub fn decide(&self, call: &CallRequest<'_>) -> Decision {
        self.decide_with(call, None)
    }

    /// Decide a proposed call in a session: its taint, the data classes it read and the
    /// provenance of the call's arguments reach Cedar as context (`taint`, `read_classes`,
    /// `untrusted_args`, `untrusted_sources`, `egress`, `egress_off_list`). Pure.
    pub fn decide_with(&self, call: &CallRequest<'_>, session: Option<&SessionState>) -> Decision {
        let Some(card) = self.cards.get(call.agent) else {
            return self.deny(
                None,
                vec![format!(
                    "agent `{}` has no scope card, so it may call nothing (deny by default)",
                    call.agent
                )],
                Vec::new(),
            );
        };
        let found = card
            .tool_index(call.tool)
            .and_then(|i| Some((card.tools.get(i)?, self.index.get(&card.id)?, i)));
        let Some((grant, ids, i)) = found else {
            return self.deny(
                None,
                vec![format!(
                    "tool `{}` is not on the scope card of `{}` ({}), so the agent may not call it (deny by default)",
                    call.tool, card.id, card.path
                )],
                Vec::new(),
            );
        };
        let qualified = grant.qualified().to_string();
        let Some(tool_ids) = ids.tools.get(i) else {
            return self.deny(
                Some(qualified),
                vec!["no policy slice for this agent and tool; denied (fail closed)".to_string()],
                Vec::new(),
            );
        };
        let provenance = session
            .filter(|s| s.has_untrusted_text())
            .map(|s| s.provenance(call.args))
            .unwrap_or_default();
        let off_list = grant
            .egress
            .as_ref()
            .map(|e| egress_off_list(e, call.args))
            .unwrap_or_default();
        let facts = SessionFacts {
            taint: session.map_or(Taint::Clean, SessionState::taint),
            provenance: &provenance,
            read_classes: session.map(SessionState::read_classes),
            sources: session.map_or(&[], SessionState::untrusted_sources),
            egress: match (&grant.egress, off_list.is_empty()) {
                (None, _) => "none",
                (Some(_), true) => "allowed",
                (Some(_), false) => "off_list",
            },
            off_list: &off_list,
        };
        let guards_quiet =
            facts.taint == Taint::Clean && provenance.is_empty() && off_list.is_empty();
        // The built-in forbids and the guards can only fire on bad arguments, a foreign
        // environment, a tainted session or an off-list destination; when none holds, evaluate
        // without them, with only the context the remaining policies may read.
        let mut fast = ids.environment_ok && guards_quiet;
        let reads = if fast {
            tool_ids.fast_reads
        } else {
            tool_ids.slice_reads
        };
        let mut built = self.request_for(grant, &ids.uid, tool_ids, call, reads, &facts);
        if fast && built.as_ref().is_none_or(|(_, v)| !v.is_empty()) {
            // Bad arguments: the whole slice decides, with the context it may read.
            fast = false;
            built = self.request_for(
                grant,
                &ids.uid,
                tool_ids,
                call,
                tool_ids.slice_reads,
                &facts,
            );
        }
        let Some((request, violations)) = built else {
            return self.deny(
                Some(qualified),
                vec![
                    "the call could not be expressed as a policy request; denied (fail closed)"
                        .to_string(),
                ],
                Vec::new(),
            );
        };
        let slice = if fast {
            &tool_ids.fast
        } else {
            &tool_ids.slice
        };
        let response = self
            .authorizer
            .is_authorized(&request, slice, &self.entities);
        let diagnostics = response.diagnostics();
        let mut determining: Vec<&PolicyMeta> = diagnostics
            .reason()
            .filter_map(|id| self.meta.get(id))
            .collect();
        determining.sort_by(|a, b| a.id.cmp(&b.id));
        let policies: Vec<String> = determining.iter().map(|m| m.id.clone()).collect();
        let errors: Vec<String> = diagnostics.errors().map(ToString::to_string).collect();
        if !errors.is_empty() {
            // Cedar skips a policy that fails to evaluate; a skipped forbid must not let a
            // call through, so any evaluation error denies.
            let mut reasons: Vec<String> = errors
                .into_iter()
                .map(|e| {
                    format!(
                        "a policy could not be evaluated, so the call is denied (fail closed): {e}"
                    )
                })
                .collect();
            reasons.extend(violations.iter().map(|v| v.message.clone()));
            let mut d = self.deny(Some(qualified), reasons, policies);
            d.violations = violations;
            return d;
        }
        match response.decision() {
            CedarDecision::Deny => {
                let mut reasons = Vec::new();
                if policies.is_empty() {
                    reasons.push(format!(
                        "no policy permits `{}` to call `{qualified}` here (deny by default)",
                        card.id
                    ));
                }
                for m in &determining {
                    if m.id == "warden/argument-constraints" {
                        reasons.extend(violations.iter().map(|v| v.message.clone()));
                    } else {
                        reasons.push(m.because.clone());
                    }
                }
                if determining.iter().any(|m| is_guard_id(&m.id)) {
                    reasons.extend(guard_details(session, &facts));
                }
                Decision {
                    decision: Verdict::Deny,
                    tier: grant.approval,
                    reasons,
                    policies,
                    violations,
                    tool: Some(qualified),
                    policy_version: self.version.clone(),
                    taint: (facts.taint != Taint::Clean).then_some(facts.taint),
                    provenance,
                    egress_off_list: off_list,
                }
            }
            CedarDecision::Allow => {
                let mut tier = determining
                    .iter()
                    .map(|m| m.tier)
                    .max()
                    .unwrap_or(Tier::Auto);
                let mut reasons: Vec<String> =
                    determining.iter().map(|m| m.because.clone()).collect();
                // An explicit auto-approve rule lowers `approve` (never `two_person`, never a
                // session guard's hold) to `review`: the call runs now, is logged as
                // auto-approved by that policy, and still waits for a person's review.
                let auto = determining
                    .iter()
                    .find_map(|m| m.auto_approve.as_ref().map(|why| (&m.id, why)));
                if let Some((id, why)) = auto {
                    if tier == Tier::Approve && !determining.iter().any(|m| is_guard_id(&m.id)) {
                        tier = Tier::Review;
                        reasons.push(format!(
                            "auto-approved by explicit policy `{id}`: {why} (tier approve lowered to review: runs now, reviewed afterwards)"
                        ));
                    }
                }
                if determining.iter().any(|m| is_guard_id(&m.id)) {
                    reasons.extend(guard_details(session, &facts));
                }
                let decision = if tier.holds_call() {
                    reasons.push(match tier {
                        Tier::TwoPerson => {
                            "tier two_person: two different people must approve before it runs"
                                .to_string()
                        }
                        _ => "tier approve: a person must approve before it runs".to_string(),
                    });
                    Verdict::ApprovalRequired
                } else {
                    if tier == Tier::Review {
                        reasons.push(
                            "tier review: runs now; the ledger marks it for a person to review afterwards"
                                .to_string(),
                        );
                    }
                    Verdict::Allow
                };
                Decision {
                    decision,
                    tier,
                    reasons,
                    policies,
                    violations,
                    tool: Some(qualified),
                    policy_version: self.version.clone(),
                    taint: (facts.taint != Taint::Clean).then_some(facts.taint),
                    provenance,
                    egress_off_list: off_list,
                }
            }
        }
    }
}

/// What a session contributes to a request's context.
struct SessionFacts<'a> {
    taint: Taint,
    provenance: &'a [ArgProvenance],
    read_classes: Option<&'a BTreeSet<String>>,
    sources: &'a [crate::session::Source],
    egress: &'static str,
    off_list: &'a [String],
}

impl SessionFacts<'_> {
    fn clean(grant: &ToolGrant) -> SessionFacts<'static> {
        SessionFacts {
            taint: Taint::Clean,
            provenance: &[],
            read_classes: None,
            sources: &[],
            egress: if grant.egress.is_some() {
                "allowed"
            } else {
                "none"
            },
            off_list: &[],
        }
    }
}

/// Reasons that explain a taint or egress guard: what the session read, what the detector
/// found, where argument values came from, which destinations are off the list.
fn guard_details(session: Option<&SessionState>, facts: &SessionFacts<'_>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = session {
        if facts.taint != Taint::Clean {
            let read: Vec<String> = s
                .untrusted_sources()
                .iter()
                .rev()
                .take(3)
                .map(|src| format!("`{}` (seq {})", src.tool, src.seq))
                .collect();
            out.push(format!(
                "session taint is {}: it read untrusted output of {}",
                facts.taint.as_str(),
                read.join(", ")
            ));
        }
        for (src, f) in s.findings().iter().take(3) {
            out.push(format!(
                "injection detector: rule `{}` in output of `{}` (seq {}, bytes {}..{}): \"{}\"",
                f.rule, src.tool, src.seq, f.start, f.end, f.excerpt
            ));
        }
    }
    out.extend(facts.provenance.iter().map(ArgProvenance::describe));
    for d in facts.off_list {
        out.push(format!(
            "destination `{d}` is not on the tool's egress allowlist"
        ));
    }
    out
}

/// The tools each agent may call, for listings.
pub fn granted_tools(card: &ScopeCard) -> BTreeSet<String> {
    card.tools
        .iter()
        .map(|t| t.qualified().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::may_read_args;

    #[test]
    fn policies_that_may_read_arguments_are_recognised() {
        assert!(may_read_args(
            "permit (principal, action, resource) when { context.args.amount > 3 };"
        ));
        assert!(may_read_args(
            "permit (principal, action, resource) when { context[\"args\"] has x };"
        ));
        assert!(may_read_args(
            "forbid (principal, action, resource) when { context == {} };"
        ));
        assert!(may_read_args(
            "forbid (principal, action, resource) when { context has args };"
        ));
        assert!(!may_read_args(
            "forbid (principal, action, resource) when { !context.args_valid };"
        ));
        assert!(!may_read_args(
            "permit (principal, action, resource) when { context.session == \"x\" };"
        ));
    }
}
