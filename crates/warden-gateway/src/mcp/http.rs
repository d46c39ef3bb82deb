//! `/mcp`: the MCP streamable-HTTP endpoint for agents.
//!
//! Each POST carries one JSON-RPC message and, for requests, gets one JSON response
//! (`application/json`), except a `tools/call` that carries a `progressToken` and is held for
//! approval: its answer is an SSE stream of `notifications/progress` and then the result.
//! Warden opens no standalone SSE stream, so `GET /mcp` is 405 as the transport allows.
//! `initialize` opens a session bound to the authenticated agent and returns its id in
//! `Mcp-Session-Id`; every later request must carry it. `tools/list` shows the tools
//! of all upstreams that the agent's card grants (and that are not blocked by their pins);
//! `tools/call` goes through the pipeline (`crate::pipeline`) and, when allowed, to the upstream
//! that has it; its answer goes through the outcome path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::jsonrpc::{
    answer_output, correlation_id, on_behalf_of, rpc_error, rpc_result, tool_error, tool_failed,
    user_request,
};
use super::pins::pin_tool;
use super::upstream::{Upstream, PROTOCOL_VERSION};
use crate::error::ApiError;
use crate::identity::AgentPrincipal;
use crate::pipeline::{self, CallSpan, Proposal, Reported, Source, Target};
use crate::state::AppState;
use warden_core::tools::tool_definition_hash;
use warden_core::Verdict;

/// Protocol versions Warden accepts from clients.
const SUPPORTED: &[&str] = &["2025-06-18", "2025-03-26", "2024-11-05"];

/// An open `/mcp` session.
#[derive(Debug, Clone)]
struct McpSession {
    agent: String,
    /// The correlation id the client gave in `initialize` (`_meta["warden/correlation_id"]`),
    /// for the session's calls that name none.
    correlation_id: Option<String>,
}

/// The upstreams and the open sessions.
#[derive(Default)]
pub struct McpHub {
    pub upstreams: HashMap<String, Upstream>,
    /// Session id → its agent and defaults.
    sessions: Mutex<HashMap<String, McpSession>>,
    /// Session id → `tools/call` requests in flight.
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    max_in_flight: usize,
    /// Definitions (server, tool, hash) already checked against their pins by this process:
    /// upstream tool lists only change when an upstream restarts, so a listing need not go to
    /// the store for each tool every time.
    checked: Mutex<std::collections::HashSet<(String, String, String)>>,
}

impl McpHub {
    pub fn new(upstreams: HashMap<String, Upstream>, max_in_flight: usize) -> Self {
        Self {
            upstreams,
            sessions: Mutex::new(HashMap::new()),
            in_flight: Arc::new(Mutex::new(HashMap::new())),
            max_in_flight: max_in_flight.max(1),
            checked: Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// Count a call in flight for a session; `None` when the session is at its limit.
    fn admit(&self, session: &str) -> Option<InFlight> {
        let mut map = self.in_flight.lock().ok()?;
        let n = map.entry(session.to_string()).or_insert(0);
        if *n >= self.max_in_flight {
            return None;
        }
        *n += 1;
        Some(InFlight {
            map: Arc::clone(&self.in_flight),
            session: session.to_string(),
        })
    }
}

/// A call in flight; dropping it frees the session's slot.
struct InFlight {
    map: Arc<Mutex<HashMap<String, usize>>>,
    session: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut map) = self.map.lock() {
            if let Some(n) = map.get_mut(&self.session) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

/// `GET /mcp`: no server-initiated stream.
pub async fn get_stream() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [("allow", "POST, DELETE")],
        "Warden answers each request in its POST response and opens no SSE stream",
    )
        .into_response()
}

/// `DELETE /mcp`: end a session.
pub async fn delete_session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let agent = crate::identity::authenticate_agent(&state, &headers)
        .await?
        .agent;
    let Some(id) = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()) else {
        return Err(ApiError::bad_request("missing Mcp-Session-Id"));
    };
    let removed = state
        .mcp
        .sessions
        .lock()
        .ok()
        .and_then(|mut s| match s.get(id) {
            Some(open) if open.agent == agent => s.remove(id),
            _ => None,
        });
    Ok(match removed {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    })
}

/// `POST /mcp`.
pub async fn post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let principal = crate::identity::authenticate_agent(&state, &headers).await?;
    let agent = principal.agent.clone();
    let msg: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            let err = rpc_error(&Value::Null, -32700, &format!("parse error: {e}"));
            return Ok((StatusCode::BAD_REQUEST, Json(err)).into_response());
        }
    };
    let Some(obj) = msg.as_object() else {
        let err = rpc_error(
            &Value::Null,
            -32600,
            "invalid request: JSON-RPC batches are not supported",
        );
        return Ok((StatusCode::BAD_REQUEST, Json(err)).into_response());
    };
    let method = obj
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(id) = obj.get("id").cloned() else {
        // Notifications and responses: nothing to answer.
        return Ok(StatusCode::ACCEPTED.into_response());
    };
    if method == "initialize" {
        let asked = obj
            .get("params")
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str)
            .unwrap_or(PROTOCOL_VERSION);
        let version = if SUPPORTED.contains(&asked) {
            asked
        } else {
            PROTOCOL_VERSION
        };
        let correlation_id = match correlation_id(obj.get("params").and_then(Value::as_object)) {
            Ok(c) => c,
            Err(why) => {
                let err = rpc_error(&id, -32602, &why);
                return Ok((StatusCode::BAD_REQUEST, Json(err)).into_response());
            }
        };
        let session = crate::new_id();
        // Offer resources and prompts only to agents whose card grants some.
        let mut capabilities = json!({"tools": {"listChanged": false}});
        if let (Some(card), Some(caps)) =
            (state.policy.cards.get(&agent), capabilities.as_object_mut())
        {
            if !card.resources.is_empty() {
                caps.insert("resources".into(), json!({}));
            }
            if !card.prompts.is_empty() {
                caps.insert("prompts".into(), json!({}));
            }
        }
        if let Ok(mut s) = state.mcp.sessions.lock() {
            s.insert(
                session.clone(),
                McpSession {
                    agent,
                    correlation_id,
                },
            );
        }
        let result = rpc_result(
            &id,
            json!({
                "protocolVersion": version,
                "capabilities": capabilities,
                "serverInfo": {"name": "warden", "version": env!("CARGO_PKG_VERSION")},
                "instructions": "Tool calls go through Warden: each is decided by policy and recorded before it runs. A refused call comes back as a tool result with isError and the reasons."
            }),
        );
        let mut resp = Json(result).into_response();
        if let Ok(v) = HeaderValue::from_str(&session) {
            resp.headers_mut().insert("mcp-session-id", v);
        }
        return Ok(resp);
    }
    // Every other request belongs to a session of this agent.
    let session = headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let open = session.as_ref().and_then(|sid| {
        state
            .mcp
            .sessions
            .lock()
            .ok()
            .and_then(|s| s.get(sid).cloned())
            .filter(|open| open.agent == agent)
    });
    let (Some(session), Some(open)) = (session, open) else {
        let err = rpc_error(
            &id,
            -32001,
            "unknown or missing Mcp-Session-Id: send initialize first",
        );
        return Ok((StatusCode::NOT_FOUND, Json(err)).into_response());
    };
    let caller = SessionCall {
        principal,
        session,
        correlation_id: open.correlation_id,
    };
    let answer = match method {
        "ping" => rpc_result(&id, json!({})),
        "tools/list" => rpc_result(
            &id,
            json!({"tools": list_tools(&state, &agent, caller.principal.tools.as_deref()).await}),
        ),
        "tools/call" => match state.mcp.admit(&caller.session) {
            Some(slot) => {
                let parent = crate::telemetry::trace_parent(&headers, obj.get("params"));
                let span = CallSpan::start(&state, Source::McpHttp.as_str(), parent);
                let params = obj.get("params").cloned();
                // A client that asked for progress and takes SSE gets a stream if the call
                // is held.
                match crate::approvals::progress_token(params.as_ref())
                    .filter(|_| accepts_sse(&headers))
                {
                    Some(token) => {
                        let call = HeldCall {
                            state: state.clone(),
                            caller,
                            id,
                            params,
                            token,
                            slot,
                            span,
                        };
                        return Ok(call_with_progress(call).await);
                    }
                    None => {
                        let _slot = slot;
                        call_tool(&state, &caller, &id, params.as_ref(), None, span).await
                    }
                }
            }
            None => rpc_error(
                &id,
                -32000,
                &format!(
                    "this session already has {} calls in flight, Warden's limit ([gateway] max_concurrent_calls_per_session); retry when one finishes",
                    state.mcp.max_in_flight
                ),
            ),
        },
        "resources/list" => rpc_result(
            &id,
            json!({"resources": list_granted(&state, &agent, Listing::Resources).await}),
        ),
        "resources/templates/list" => rpc_result(&id, json!({"resourceTemplates": []})),
        "prompts/list" => rpc_result(
            &id,
            json!({"prompts": list_granted(&state, &agent, Listing::Prompts).await}),
        ),
        "resources/read" | "prompts/get" => match state.mcp.admit(&caller.session) {
            Some(_slot) => read(&state, &caller, &id, method, obj.get("params")).await,
            None => rpc_error(
                &id,
                -32000,
                "this session is at Warden's limit of calls in flight; retry when one finishes",
            ),
        },
        other => rpc_error(
            &id,
            -32601,
            &format!("method `{other}` is not offered by Warden"),
        ),
    };
    Ok(Json(answer).into_response())
}

/// The agent calling in an open session, and the session's defaults.
struct SessionCall {
    principal: AgentPrincipal,
    session: String,
    correlation_id: Option<String>,
}

impl SessionCall {
    /// A proposal of this session, with the `_meta` fields of `params`.
    fn proposal(
        &self,
        target: Target,
        arguments: Value,
        id: &Value,
        params: Option<&serde_json::Map<String, Value>>,
    ) -> Result<Proposal, String> {
        let correlation = correlation_id(params)?.or_else(|| self.correlation_id.clone());
        Ok(Proposal {
            caller: self.principal.clone(),
            source: Source::McpHttp,
            target,
            arguments,
            session: Some(self.session.clone()),
            correlation_id: correlation,
            user_request: user_request(params),
            on_behalf_of: on_behalf_of(params),
            mcp_request_id: Some(id.clone()),
            approval_id: None,
            before_state: None,
        })
    }
}

/// Separator between an upstream's name and a tool's name when two upstreams offer the agent
/// tools of the same name (`crm__search`, `helpdesk__search`).
const NAMESPACE: &str = "__";

/// The tools of every upstream that the agent's card grants and whose pins allow them. Names
/// that more than one upstream offers are prefixed with the upstream's name.
async fn list_tools(state: &AppState, agent: &str, subset: Option<&[String]>) -> Vec<Value> {
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
                !state.ledger.is_blocked(server, &name).await.unwrap_or(true)
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
fn resolve_tool(state: &AppState, agent: &str, called: &str) -> (String, String) {
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

/// Whether the client takes `text/event-stream` answers (streamable HTTP clients send
/// `Accept: application/json, text/event-stream`).
fn accepts_sse(headers: &HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/event-stream"))
}

/// One SSE event carrying a JSON-RPC message.
fn sse_event(msg: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {msg}\n\n"))
}

/// The parts of a `tools/call` that may be held, moved into its task.
struct HeldCall {
    state: AppState,
    caller: SessionCall,
    id: Value,
    params: Option<Value>,
    token: Value,
    slot: InFlight,
    span: CallSpan,
}

/// A `tools/call` whose client gave a `progressToken`: run it in a task; if it finishes
/// before anything needs saying, answer with JSON as usual; if it is held for approval, answer
/// with an SSE stream that carries its `notifications/progress` and then its result (the
/// streamable-HTTP transport lets a server answer a POST so). When the client drops the
/// stream, the held call notices at its next notification and does not run.
async fn call_with_progress(call: HeldCall) -> Response {
    let HeldCall {
        state,
        caller,
        id,
        params,
        token,
        slot,
        span,
    } = call;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Value>(16);
    let rpc_id = id.clone();
    let task = tokio::spawn(async move {
        let _slot = slot;
        let progress = crate::approvals::Progress { token, tx };
        call_tool(&state, &caller, &id, params.as_ref(), Some(&progress), span).await
    });
    let failed = move |e: tokio::task::JoinError| {
        tracing::error!(message = "held call task failed", error = %e);
        rpc_error(&rpc_id, -32603, "Warden failed while handling the call")
    };
    // The task's sender closes only when the task is done.
    let Some(first) = rx.recv().await else {
        let answer = task.await.unwrap_or_else(failed);
        return Json(answer).into_response();
    };
    struct Sse {
        first: Option<Value>,
        rx: tokio::sync::mpsc::Receiver<Value>,
        task: Option<tokio::task::JoinHandle<Value>>,
    }
    let failed = std::sync::Arc::new(failed);
    let stream = futures_util::stream::unfold(
        Sse {
            first: Some(first),
            rx,
            task: Some(task),
        },
        move |mut st| {
            let failed = std::sync::Arc::clone(&failed);
            async move {
                if let Some(note) = st.first.take() {
                    return Some((Ok::<_, std::convert::Infallible>(sse_event(&note)), st));
                }
                let task = st.task.take()?;
                match st.rx.recv().await {
                    Some(note) => {
                        st.task = Some(task);
                        Some((Ok(sse_event(&note)), st))
                    }
                    None => {
                        let answer = task.await.unwrap_or_else(|e| failed(e));
                        Some((Ok(sse_event(&answer)), st))
                    }
                }
            }
        },
    );
    let mut resp = axum::body::Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    resp
}

/// A `tools/call`: through the pipeline (held calls wait for people, then go through it again
/// under the approval), then to the upstream that has the tool, then the outcome path.
async fn call_tool(
    state: &AppState,
    caller: &SessionCall,
    id: &Value,
    params: Option<&Value>,
    progress: Option<&crate::approvals::Progress>,
    span: CallSpan,
) -> Value {
    let fields = params.and_then(Value::as_object);
    let Some(called) = fields.and_then(|p| p.get("name")).and_then(Value::as_str) else {
        return rpc_error(id, -32602, "invalid params: tools/call needs params.name");
    };
    let args = fields
        .and_then(|p| p.get("arguments"))
        .cloned()
        .unwrap_or(Value::Object(serde_json::Map::new()));
    let (server, name) = resolve_tool(state, &caller.principal.agent, called);
    let target = Target::Tool {
        name: name.clone(),
        server: Some(server.clone()),
    };
    let proposal = match caller.proposal(target, args.clone(), id, fields) {
        Ok(p) => p,
        Err(why) => return rpc_error(id, -32602, &why),
    };
    let decided = match pipeline::decide(state, proposal, span, None).await {
        Ok(d) => d,
        Err(refusal) => return tool_error(id, refusal.text()),
    };
    let allowed = match decided.decision.decision {
        Verdict::Allow => decided,
        Verdict::Deny => return tool_error(id, decided.refusal_text()),
        Verdict::ApprovalRequired => {
            match crate::approvals::hold_mcp(state, decided, progress).await {
                Ok(execution) => execution,
                Err(text) => return tool_error(id, text),
            }
        }
    };
    let ran = allowed.into_ran();
    let answer = match state.mcp.upstreams.get(&server) {
        Some(up) => up
            .call_tool(&name, args)
            .await
            .map_err(|e| format!("the upstream failed: {e}")),
        None => Err(format!("no upstream `{server}` is configured")),
    };
    match answer {
        Ok(response) => {
            record(state, ran, &response, false).await;
            relay(id, &response)
        }
        Err(text) => {
            record(state, ran, &json!({"error": {"message": text}}), true).await;
            tool_error(id, text)
        }
    }
}

/// The outcome path for an upstream's answer (or failure to answer).
async fn record(state: &AppState, ran: pipeline::Ran, response: &Value, unreachable: bool) {
    let reported = Reported {
        failed: tool_failed(response),
        unreachable,
        output: answer_output(response),
        duration_ms: None,
    };
    if let Err(error) = pipeline::record_outcome(state, ran, reported).await {
        tracing::error!(message = "outcome of an allowed call not recorded", %error);
    }
}

#[derive(Clone, Copy)]
enum Listing {
    Resources,
    Prompts,
}

/// The resources or prompts of every upstream the agent's card grants some on, filtered to
/// the granted ones. An upstream that fails to answer contributes nothing (and is logged).
async fn list_granted(state: &AppState, agent: &str, what: Listing) -> Vec<Value> {
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

/// `resources/read` and `prompts/get`: decided against the card's grants and recorded like a
/// tool call; refused reads are JSON-RPC errors with the reasons (these results have no
/// `isError` field to carry them).
async fn read(
    state: &AppState,
    caller: &SessionCall,
    id: &Value,
    method: &str,
    params: Option<&Value>,
) -> Value {
    let (method, key) = if method == "resources/read" {
        ("resources/read", "uri")
    } else {
        ("prompts/get", "name")
    };
    let Some(target) = params.and_then(|p| p.get(key)).and_then(Value::as_str) else {
        return rpc_error(
            id,
            -32602,
            &format!("invalid params: {method} needs params.{key}"),
        );
    };
    let card = state.policy.cards.get(&caller.principal.agent);
    // The upstream is the one whose grant covers the target; with none, the read is denied
    // (and recorded) without naming any upstream.
    let server = card
        .and_then(|c| {
            if method == "resources/read" {
                c.resources
                    .iter()
                    .find(|r| r.covers(target))
                    .map(|r| r.server.clone())
            } else {
                c.prompts
                    .iter()
                    .find(|p| p.name == target)
                    .map(|p| p.server.clone())
            }
        })
        .unwrap_or_else(|| "(none)".to_string());
    let params = params.cloned().unwrap_or_else(|| json!({}));
    let what = Target::Read {
        method,
        server: server.clone(),
        what: target.to_string(),
    };
    let proposal = match caller.proposal(what, params.clone(), id, params.as_object()) {
        Ok(p) => p,
        Err(why) => return rpc_error(id, -32602, &why),
    };
    let decided = match pipeline::decide(state, proposal, CallSpan::default(), None).await {
        Ok(d) => d,
        Err(refusal) => return rpc_error(id, -32003, &refusal.text()),
    };
    if decided.decision.decision != Verdict::Allow {
        return rpc_error(id, -32003, &decided.refusal_text());
    }
    let ran = decided.into_ran();
    let Some(up) = state.mcp.upstreams.get(&server) else {
        let text = format!("no upstream `{server}` is configured");
        record(state, ran, &json!({"error": {"message": text}}), true).await;
        return rpc_error(id, -32603, &text);
    };
    let response = match up.request(method, params).await {
        Ok(response) => response,
        Err(e) => {
            json!({"error": {"code": -32603, "message": format!("the upstream failed: {e}")}})
        }
    };
    // What a read returns is content the session has now seen.
    record(state, ran, &response, false).await;
    relay(id, &response)
}

/// The upstream's answer to a request, under the agent's request id: its result or its error.
fn relay(id: &Value, response: &Value) -> Value {
    match (response.get("result"), response.get("error")) {
        (Some(result), _) => rpc_result(id, result.clone()),
        (None, Some(error)) => json!({"jsonrpc": "2.0", "id": id, "error": error}),
        _ => rpc_error(id, -32603, "the upstream sent an empty response"),
    }
}
