//! Scope cards checked against `warden.toml` and against each other before they compile:
//! upstreams and regions they name exist, agent ids are unique, every agent key has a card,
//! and a tool's arguments have one type across all cards.

use std::collections::{BTreeMap, HashMap};

use super::schema::{cedar_type, ActionArgs};
use crate::config::WardenConfig;
use crate::diagnostic::{closest, FileError};
use crate::scope_card::{Access, Environment, Impact, ScopeCard, ToolGrant};

/// The cards, by agent id, with what they compile to.
pub(super) struct CheckedCards {
    pub(super) by_id: BTreeMap<String, ScopeCard>,
    /// Each granted action's arguments, typed (see [`ActionArgs`]).
    pub(super) actions: ActionArgs,
    /// Non-fatal findings for `warden check`.
    pub(super) warnings: Vec<String>,
}

/// Check every card against `warden.toml` and the others. `cards` pairs each card with its
/// source text, for located errors. A tool grant without its own `output_trust` takes its
/// upstream's.
pub(super) fn check_cards(
    config_path: &str,
    config_text: &str,
    config: &WardenConfig,
    cards: Vec<(ScopeCard, String)>,
) -> Result<CheckedCards, Vec<FileError>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut by_id: BTreeMap<String, ScopeCard> = BTreeMap::new();
    let mut types = ArgTypes::default();
    for (mut card, text) in cards {
        resolve_output_trust(&mut card, config);
        card_warnings(&card, config, &mut warnings);
        check_region(config_path, config, &card, &text, &mut errors);
        check_read_servers(config_path, config, &card, &text, &mut errors);
        for tool in &card.tools {
            check_tool_server(config_path, config, &card, tool, &text, &mut errors);
            types.merge(&card, tool, &mut errors);
        }
        if let Some(prev) = by_id.get(&card.id) {
            errors.push(FileError::whole(
                &card.path,
                format!("agent `{}` is also defined in {}", card.id, prev.path),
            ));
        }
        by_id.insert(card.id.clone(), card);
    }
    let actions = types.finish(&by_id);
    check_agent_keys(config_path, config_text, config, &by_id, &mut errors);
    if errors.is_empty() {
        Ok(CheckedCards {
            by_id,
            actions,
            warnings,
        })
    } else {
        Err(errors)
    }
}

/// A grant that declares no `output_trust` takes its upstream's, when the upstream sets one.
fn resolve_output_trust(card: &mut ScopeCard, config: &WardenConfig) {
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
}

/// Findings that do not stop the compile: a card bound to another environment, an agent
/// without an API key, a high-impact write that runs without a human.
fn card_warnings(card: &ScopeCard, config: &WardenConfig, warnings: &mut Vec<String>) {
    let environment: Environment = config.gateway.environment;
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
    for tool in &card.tools {
        if tool.access == Access::Write
            && tool.impact == Impact::High
            && !tool.approval.holds_call()
        {
            warnings.push(format!(
                "{}: `{}` is a high-impact write at tier `{}`; it will run without a human",
                card.path, tool.name, tool.approval
            ));
        }
    }
}

/// `e` with "did you mean" the closest of `known`, else with `otherwise` as its hint.
fn hint_near<'a>(
    e: FileError,
    word: &str,
    known: impl IntoIterator<Item = &'a str>,
    otherwise: String,
) -> FileError {
    match closest(word, known) {
        Some(near) => e.with_hint(format!("did you mean `{near}`?")),
        None => e.with_hint(otherwise),
    }
}

/// The card's `region` must be declared in `warden.toml [regions]`.
fn check_region(
    config_path: &str,
    config: &WardenConfig,
    card: &ScopeCard,
    text: &str,
    errors: &mut Vec<FileError>,
) {
    let Some(region) = &card.region else {
        return;
    };
    if config.regions.contains_key(region) {
        return;
    }
    let e = FileError::at(
        &card.path,
        text,
        card.region_span,
        format!("region `{region}` is not declared in {config_path} [regions]"),
    );
    errors.push(hint_near(
        e,
        region,
        config.regions.keys().map(String::as_str),
        format!(
            "declare it with its own store: [regions.{region}] url = \"sqlite://.warden/{region}/ledger.db\""
        ),
    ));
}

/// The servers of the card's resource and prompt grants must be upstreams.
fn check_read_servers(
    config_path: &str,
    config: &WardenConfig,
    card: &ScopeCard,
    text: &str,
    errors: &mut Vec<FileError>,
) {
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
            errors.push(
                FileError::at(
                    &card.path,
                    text,
                    span,
                    format!(
                        "{what} `{target}` names server `{server}`, which is not an upstream in {config_path}"
                    ),
                )
                .with_hint(format!("declare it as [upstreams.{server}] in {config_path}")),
            );
        }
    }
}

/// A tool grant's server must be an upstream.
fn check_tool_server(
    config_path: &str,
    config: &WardenConfig,
    card: &ScopeCard,
    tool: &ToolGrant,
    text: &str,
    errors: &mut Vec<FileError>,
) {
    if config.upstreams.contains_key(&tool.server) {
        return;
    }
    let e = FileError::at(
        &card.path,
        text,
        tool.server_span,
        format!(
            "tool `{}` names server `{}`, which is not an upstream in {config_path}",
            tool.name, tool.server
        ),
    );
    errors.push(hint_near(
        e,
        &tool.server,
        config.upstreams.keys().map(String::as_str),
        format!("declare it as [upstreams.{}] in {config_path}", tool.server),
    ));
}

/// Every agent key in `warden.toml` must belong to a card.
fn check_agent_keys(
    config_path: &str,
    config_text: &str,
    config: &WardenConfig,
    by_id: &BTreeMap<String, ScopeCard>,
    errors: &mut Vec<FileError>,
) {
    for (agent, key) in &config.agent_keys {
        if !by_id.contains_key(agent) {
            errors.push(
                FileError::at(
                    config_path,
                    config_text,
                    key.span().start,
                    format!("agent key for `{agent}`, which has no scope card"),
                )
                .with_hint(format!("add agents/{agent}.toml or remove the key")),
            );
        }
    }
}

/// The arguments of each action across all cards: one type per (action, argument).
#[derive(Default)]
struct ArgTypes {
    actions: ActionArgs,
    /// (action, argument) -> the card that gave the argument its type first.
    origin: HashMap<(String, String), String>,
}

impl ArgTypes {
    /// Add a grant's typed arguments; a type that differs from another card's is an error.
    fn merge(&mut self, card: &ScopeCard, tool: &ToolGrant, errors: &mut Vec<FileError>) {
        let action = tool.qualified().to_string();
        let entry = self.actions.entry(action.clone()).or_default();
        for (name, c) in &tool.args {
            if cedar_type(c.kind).is_none() {
                continue;
            }
            match entry.get_mut(name) {
                Some((kind, required)) => {
                    if *kind != c.kind {
                        let first = self
                            .origin
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
                            .with_hint("a tool's arguments have one type across all scope cards"),
                        );
                    }
                    *required = *required && c.required;
                }
                None => {
                    entry.insert(name.clone(), (c.kind, c.required));
                    self.origin
                        .insert((action.clone(), name.clone()), card.path.clone());
                }
            }
        }
    }

    /// The merged types. An argument one card lists and another does not is optional.
    fn finish(mut self, cards: &BTreeMap<String, ScopeCard>) -> ActionArgs {
        for (action, args) in self.actions.iter_mut() {
            for card in cards.values() {
                if let Some(t) = card.tools.iter().find(|t| t.qualified() == action) {
                    for (name, (_, required)) in args.iter_mut() {
                        if !t.args.contains_key(name) {
                            *required = false;
                        }
                    }
                }
            }
        }
        self.actions
    }
}
