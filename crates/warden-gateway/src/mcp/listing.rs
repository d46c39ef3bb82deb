//! What an agent sees over `/mcp`: the tools, resources and prompts its card grants (and
//! whose pins allow them), and which upstream a called name means.

use std::collections::HashMap;

use serde_json::{json, Value};
use warden_core::tools::tool_definition_hash;

use super::pins::pin_tool;
use crate::state::AppState;

/// Separator between an upstream's name and a tool's name when two upstreams offer the agent
/// tools of the same name (`crm__search`, `helpdesk__search`).
const NAMESPACE: &str = "__";

/// The tools of every upstream that the agent's card grants and whose pins allow them. Names
/// that more than one upstream offers are prefixed with the upstream's name.
pub(super) async fn list_tools(
    state: &AppState,
    agent: &str,
    subset: Option<&[String]>,
) -> Vec<Value> {
    let Some(card) = state.policy.cards.get(agent) else {
        return Vec::new();
    };
    let mut names: Vec<&String> = state.mcp.upstreams.keys().collect();
    names.sort();
    let mut visible: Vec<(String, String, Value)> = Vec::new();
    for server in names {
        let Some(up) = state.mcp.upstreams.get(server) else {
            continue;
        };
        for tool in up.tools() {
            let name = tool
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let key = (server.clone(), name.clone(), tool_definition_hash(&tool));
            let seen = state.mcp.checked.lock().is_ok_and(|c| c.contains(&key));
            let usable = if seen {
                // Same definition as already pinned here; only a block can have changed.
                !state
                    .store
                    .pins()
                    .is_blocked(server, &name)
                    .await
                    .unwrap_or(true)
            } else {
                let ok = pin_tool(state, server, &name, &tool).await;
                if ok {
                    if let Ok(mut c) = state.mcp.checked.lock() {
                        c.insert(key);
                    }
                }
                ok
            };
            let qualified = format!("{server}/{name}");
            // A token narrowed to some tools sees only those.
            let in_token = subset.is_none_or(|s| s.iter().any(|t| t == &qualified));
            if usable && in_token && card.tool(&qualified).is_some() {
                visible.push((server.clone(), name, tool));
            }
        }
    }
    let mut count: HashMap<String, usize> = HashMap::new();
    for (_, name, _) in &visible {
        *count.entry(name.clone()).or_default() += 1;
    }
    visible
        .into_iter()
        .map(|(server, name, mut tool)| {
            if count.get(&name).copied().unwrap_or(0) > 1 {
                if let Some(obj) = tool.as_object_mut() {
                    obj.insert(
                        "name".into(),
                        Value::String(format!("{server}{NAMESPACE}{name}")),
                    );
                }
            }
            tool
        })
        .collect()
}

/// The (upstream, tool) a called name means for this agent: `server__tool` when namespaced,
/// else the upstream the card grants the tool on (a connected one first), else the first
/// upstream offering the name.
pub(super) fn resolve_tool(state: &AppState, agent: &str, called: &str) -> (String, String) {
    if let Some((server, name)) = called.split_once(NAMESPACE) {
        if state.mcp.upstreams.contains_key(server) {
            return (server.to_string(), name.to_string());
        }
    }
    let card = state.policy.cards.get(agent);
    let grants = || {
        card.into_iter()
            .flat_map(|c| &c.tools)
            .filter(|t| t.name == called)
    };
    // A grant on a connected upstream first; a grant whose upstream is down is still the tool
    // the agent means (decided as such; its failure to run is the recorded outcome).
    let granted = grants()
        .find(|t| state.mcp.upstreams.contains_key(&t.server))
        .or_else(|| grants().next());
    if let Some(t) = granted {
        return (t.server.clone(), called.to_string());
    }
    let mut offering: Vec<&String> = state
        .mcp
        .upstreams
        .iter()
        .filter(|(_, u)| {
            u.tools()
                .iter()
                .any(|t| t.get("name").and_then(Value::as_str) == Some(called))
        })
        .map(|(n, _)| n)
        .collect();
    offering.sort();
    let server = offering
        .first()
        .map_or_else(|| "(none)".to_string(), |s| (*s).clone());
    (server, called.to_string())
}

#[derive(Clone, Copy)]
pub(super) enum Listing {
    Resources,
    Prompts,
}

/// The resources or prompts of every upstream the agent's card grants some on, filtered to
/// the granted ones. An upstream that fails to answer contributes nothing (and is logged).
pub(super) async fn list_granted(state: &AppState, agent: &str, what: Listing) -> Vec<Value> {
    let Some(card) = state.policy.cards.get(agent) else {
        return Vec::new();
    };
    let mut servers: Vec<&str> = match what {
        Listing::Resources => card.resources.iter().map(|r| r.server.as_str()).collect(),
        Listing::Prompts => card.prompts.iter().map(|p| p.server.as_str()).collect(),
    };
    servers.sort_unstable();
    servers.dedup();
    let (method, field) = match what {
        Listing::Resources => ("resources/list", "resources"),
        Listing::Prompts => ("prompts/list", "prompts"),
    };
    let mut out = Vec::new();
    for server in servers {
        let Some(up) = state.mcp.upstreams.get(server) else {
            continue;
        };
        let mut cursor: Option<Value> = None;
        // A bound on pages, so a misbehaving upstream cannot keep a listing going forever.
        for _ in 0..100 {
            let params = cursor
                .as_ref()
                .map_or_else(|| json!({}), |c| json!({"cursor": c}));
            let page = match up.request(method, params).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(message = "upstream listing failed", %server, %method, %error);
                    break;
                }
            };
            let items = page
                .pointer(&format!("/result/{field}"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for item in items {
                let key = match what {
                    Listing::Resources => "uri",
                    Listing::Prompts => "name",
                };
                let named = item.get(key).and_then(Value::as_str).unwrap_or_default();
                let granted = match what {
                    Listing::Resources => card.resource(server, named).is_some(),
                    Listing::Prompts => card.prompt(server, named).is_some(),
                };
                if granted {
                    out.push(item);
                }
            }
            cursor = page
                .pointer("/result/nextCursor")
                .cloned()
                .filter(|c| !c.is_null());
            if cursor.is_none() {
                break;
            }
        }
    }
    out
}
