//! What a compiled policy keeps to decide fast: the Cedar entities (one per agent and per
//! server), and for each (agent, tool) the slice of policies whose scope can match, with what
//! those policies may read of the context.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use cedar_policy::{
    ActionConstraint, Entities, Entity, EntityUid, Policy, PolicyId, PolicySet,
    PrincipalConstraint, RestrictedExpression, Schema,
};
use regex::Regex;

use super::generate::is_guard_id;
use super::{uid, AgentIndex, ToolIndex, ARGUMENTS_POLICY, ENVIRONMENT_POLICY};
use crate::config::WardenConfig;
use crate::diagnostic::FileError;
use crate::scope_card::{Environment, ScopeCard, ToolGrant};

/// Which optional parts of the context a set of policies may read. A part no policy of the
/// evaluated set can read is not built (a policy reading an attribute the request lacks fails
/// to evaluate, and an evaluation error denies, so a wrong "no" cannot let a call through).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Reads {
    /// `context.args`: the typed arguments (the constraints are still checked in Rust).
    pub(super) args: bool,
    /// The session attributes: `taint`, `untrusted_args`, `read_classes`,
    /// `untrusted_sources`, `egress`, `egress_off_list`.
    pub(super) session: bool,
}

impl Reads {
    pub(super) const ALL: Reads = Reads {
        args: true,
        session: true,
    };

    fn add(&mut self, policy_text: &str) {
        self.args = self.args || may_read_args(policy_text);
        self.session = self.session || may_read_session(policy_text);
    }
}

/// `context` used other than through an attribute access (`context == {}`, `context has x`).
const WHOLE_CONTEXT: &str = r"\bcontext\b(\s*$|\s*[^\s.])";

/// Whether a policy may read a session attribute: it names one, or uses `context` other than
/// through an attribute access. Conservative, like [`may_read_args`].
fn may_read_session(policy_text: &str) -> bool {
    // Immutable, lazily built table: the two patterns, compiled once per process.
    static PATTERNS: OnceLock<Option<(Regex, Regex)>> = OnceLock::new();
    let Some((names, whole_context)) = PATTERNS.get_or_init(|| {
        Some((
            Regex::new(
                r"\b(taint|untrusted_args|read_classes|untrusted_sources|egress|egress_off_list)\b",
            )
            .ok()?,
            Regex::new(WHOLE_CONTEXT).ok()?,
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
    // Immutable, lazily built table: the two patterns, compiled once per process.
    static PATTERNS: OnceLock<Option<(Regex, Regex)>> = OnceLock::new();
    let Some((names_args, whole_context)) = PATTERNS.get_or_init(|| {
        Some((
            Regex::new(r"\bargs\b").ok()?,
            Regex::new(WHOLE_CONTEXT).ok()?,
        ))
    }) else {
        return true;
    };
    names_args.is_match(policy_text) || whole_context.is_match(policy_text)
}

/// The entities requests are evaluated against: one per agent (with its `environment` and
/// `data_classes`) and one per upstream server.
pub(super) fn build_entities(
    config_path: &str,
    config: &WardenConfig,
    cards: &BTreeMap<String, ScopeCard>,
    schema: &Schema,
) -> Result<Entities, Vec<FileError>> {
    let mut errors = Vec::new();
    let mut entities = Vec::new();
    for card in cards.values() {
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
    let entities = match Entities::from_entities(entities, Some(schema)) {
        Ok(e) => e,
        Err(e) => {
            errors.push(FileError::whole(
                config_path,
                format!("internal error: entities: {e}"),
            ));
            return Err(errors);
        }
    };
    if errors.is_empty() {
        Ok(entities)
    } else {
        Err(errors)
    }
}

/// For each agent and each tool on its card, the policies whose scope can match. Policies are
/// bucketed by principal first so building slices stays linear.
pub(super) fn build_index(
    all: &PolicySet,
    cards: &BTreeMap<String, ScopeCard>,
    environment: Environment,
) -> Result<HashMap<String, AgentIndex>, Vec<FileError>> {
    let mut errors = Vec::new();
    let mut by_principal: HashMap<EntityUid, Vec<&Policy>> = HashMap::new();
    let mut any_principal: Vec<&Policy> = Vec::new();
    for p in all.policies() {
        match p.principal_constraint() {
            PrincipalConstraint::Eq(u) => by_principal.entry(u).or_default().push(p),
            _ => any_principal.push(p),
        }
    }
    let mut index: HashMap<String, AgentIndex> = HashMap::new();
    for card in cards.values() {
        let agent_uid = uid("Agent", &card.id);
        let own = by_principal
            .get(&agent_uid)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let tools = card
            .tools
            .iter()
            .map(|tool| tool_index(card, tool, own, &any_principal, &mut errors))
            .collect();
        index.insert(
            card.id.clone(),
            AgentIndex {
                uid: agent_uid,
                environment_ok: card.environment == environment,
                tools,
            },
        );
    }
    if errors.is_empty() {
        Ok(index)
    } else {
        Err(errors)
    }
}

/// The slice (and the fast slice, without built-in forbids and guards) of one tool grant:
/// the agent's own policies and those for any principal whose action constraint matches.
fn tool_index(
    card: &ScopeCard,
    tool: &ToolGrant,
    own: &[&Policy],
    any_principal: &[&Policy],
    errors: &mut Vec<FileError>,
) -> ToolIndex {
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
        if !action_ok {
            continue;
        }
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
                errors.push(FileError::whole(&card.path, format!("internal error: {e}")));
            }
        }
    }
    ToolIndex {
        resource: uid("Server", &tool.server),
        action: action_uid,
        slice,
        fast,
        slice_reads,
        fast_reads,
    }
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
