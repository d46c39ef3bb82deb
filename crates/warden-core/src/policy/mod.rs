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
//!
//! Where things are:
//! - this file: the public types ([`CompiledPolicy`], [`Decision`], [`CallRequest`], …) and
//!   the accessors of a compiled policy;
//! - `compile.rs`: [`compile`], one named step after another (version hash, card checks,
//!   argument types, schema, policies, entities, slices);
//! - `cards.rs`: the checks of scope cards against `warden.toml` and the merge of argument
//!   types across cards;
//! - `schema.rs`: the generated Cedar schema and the mapping of argument types to Cedar;
//! - `generate.rs`: the policies generated from scope cards (grants, taint and egress guards);
//! - `policy_set.rs`: parsing generated and hand-written policies into one set, their
//!   annotations (`@id`, `@approval`, `@auto_approve`, `@reason`) and strict validation;
//! - `index.rs`: entities, the per-(agent, tool) slices, and what each slice may read;
//! - `decide.rs`: [`CompiledPolicy::decide`], [`CompiledPolicy::decide_with`],
//!   [`CompiledPolicy::decide_read`] and the Cedar request and context they build.

mod cards;
mod compile;
mod decide;
mod generate;
mod index;
mod policy_set;
mod schema;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

use cedar_policy::{Authorizer, Entities, EntityUid, PolicyId, PolicySet, Schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::args::Violation;
use crate::injection::Detector;
use crate::scope_card::{Environment, ScopeCard, Tier};
use crate::session::{ArgProvenance, Taint};

pub use compile::compile;
pub use decide::RequestError;

use index::Reads;

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

    /// The injection detector for an agent (it knows the agent's own tool names).
    pub fn detector(&self, agent: &str) -> &Detector {
        self.detectors.get(agent).unwrap_or(&self.default_detector)
    }
}

/// The tools each agent may call, for listings.
pub fn granted_tools(card: &ScopeCard) -> BTreeSet<String> {
    card.tools
        .iter()
        .map(|t| t.qualified().to_string())
        .collect()
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
