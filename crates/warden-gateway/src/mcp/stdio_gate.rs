//! The gate between an MCP client and one upstream MCP server over stdio, message by message:
//! the state machine of `warden mcp stdio`. Deciding and recording belong to the pipeline
//! (`crate::pipeline`); this file only translates JSON-RPC lines.
//!
//! Messages are newline-delimited JSON-RPC 2.0. Most pass through unchanged, so the upstream's
//! protocol version, capabilities, tool descriptions and schemas reach the client as the
//! upstream gave them. These are handled:
//! - `initialize`: the client's `_meta["warden/correlation_id"]` becomes the session's
//!   default correlation id; the answer offers only what Warden lets through;
//! - `tools/list` responses are filtered to the tools the agent's scope card grants on this
//!   upstream (and whose pins allow them);
//! - `tools/call`, `resources/read` and `prompts/get` requests go through the pipeline first;
//!   a call that is not allowed is answered by Warden (a tool result with `isError: true` and
//!   the reasons in words, so the model can read it) and never reaches the upstream; a held
//!   call waits for people in a task of its own ([`McpGate::hold`]);
//! - the response to an allowed call is recorded as its outcome and passed on unchanged.
//!
//! Anything that could smuggle a call past the gate — a JSON-RPC batch, a request sent as a
//! notification (any method without an id other than `notifications/*`), an unparsable line —
//! is refused, never forwarded.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::jsonrpc::{
    answer_output, correlation_id, malformed_tool_answer, rpc_error, rpc_result, tool_error,
    tool_failed, McpCaller,
};
use crate::identity::AgentPrincipal;
use crate::pipeline::{self, CallSpan, Decided, Ran, Reported, Source, Target};
use crate::state::AppState;

/// What to do with a message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientAction {
    /// Send this line to the upstream.
    Forward(String),
    /// Answer the client with this line; the upstream never sees the request.
    Reply(String),
    /// Drop it (a notification that cannot be answered), with the reason for the log.
    Drop(String),
    /// A call held for approval: hand it to [`McpGate::hold`] in a task of its own, which
    /// sends progress notifications while it waits and then forwards or answers it.
    Hold(Box<HeldStdio>),
}

/// A `tools/call` on stdio that is held for approval.
#[derive(Debug)]
pub struct HeldStdio {
    id: Value,
    line: String,
    decided: Decided,
    progress_token: Option<Value>,
}

impl PartialEq for HeldStdio {
    fn eq(&self, other: &Self) -> bool {
        self.decided.id == other.decided.id
    }
}

impl Eq for HeldStdio {}

/// Id prefix of the requests Warden itself sends to a stdio upstream (snapshot reads).
const OWN_REQUEST_PREFIX: &str = "warden-snapshot-";

enum Pending {
    Initialize,
    ListTools,
    ListResources,
    ListPrompts,
    /// An allowed call forwarded to the upstream, whose answer is its outcome.
    Call(Box<Ran>),
    /// An allowed `resources/read` or `prompts/get`, whose answer is its outcome.
    Read(Box<Ran>),
}

/// The gate for one agent and one upstream.
pub struct McpGate {
    state: AppState,
    agent: String,
    server: String,
    session: String,
    /// The correlation id the client gave in `initialize`, for calls that name none.
    correlation_id: Mutex<Option<String>>,
    pending: Mutex<HashMap<String, Pending>>,
    /// The channel to the upstream's stdin, for Warden's own requests (snapshot reads) and
    /// for held calls released by an approval.
    upstream_tx: Mutex<Option<tokio::sync::mpsc::Sender<String>>>,
    /// Warden's own requests to the upstream waiting for their responses.
    own_requests: Mutex<HashMap<String, tokio::sync::oneshot::Sender<Value>>>,
    read_timeout: Duration,
}

fn id_key(id: &Value) -> String {
    id.to_string()
}

fn error_reply(id: &Value, code: i64, message: &str) -> String {
    rpc_error(id, code, message).to_string()
}

impl McpGate {
    /// The gate of `agent` to upstream `server`, deciding through `state`'s pipeline (its
    /// policy, store, rate windows, taint and approval queue, shared with `warden serve` and
    /// the CLI through the project's store). `session` names this client's session.
    pub fn new(state: AppState, agent: String, server: String, session: String) -> Self {
        Self {
            state,
            agent,
            server,
            session,
            correlation_id: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            upstream_tx: Mutex::new(None),
            own_requests: Mutex::new(HashMap::new()),
            read_timeout: Duration::from_secs(30),
        }
    }

    /// Bound a snapshot read of a held call to `read_timeout`.
    #[must_use]
    pub fn with_read_timeout(mut self, read_timeout: Duration) -> Self {
        self.read_timeout = read_timeout;
        self
    }

    /// The channel to the upstream's stdin (set by [`super::stdio::run`]); `None` detaches it.
    pub fn attach_upstream(&self, tx: Option<tokio::sync::mpsc::Sender<String>>) {
        if let Ok(mut t) = self.upstream_tx.lock() {
            *t = tx;
        }
    }

    fn upstream(&self) -> Option<tokio::sync::mpsc::Sender<String>> {
        self.upstream_tx.lock().ok().and_then(|t| t.clone())
    }

    fn remember(&self, id: &Value, p: Pending) {
        if let Ok(mut map) = self.pending.lock() {
            map.insert(id_key(id), p);
        }
    }

    fn take(&self, id: &Value) -> Option<Pending> {
        self.pending.lock().ok()?.remove(&id_key(id))
    }

    /// The caller of a local gate (no token narrows it) in this session.
    fn caller(&self) -> McpCaller {
        McpCaller {
            principal: AgentPrincipal {
                agent: self.agent.clone(),
                tools: None,
                token_id: None,
            },
            source: Source::McpStdio,
            session: self.session.clone(),
            correlation_id: self.correlation_id.lock().ok().and_then(|c| c.clone()),
        }
    }

    /// Handle one line from the client.
    pub async fn from_client(&self, line: &str) -> ClientAction {
        let msg: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                return ClientAction::Reply(error_reply(
                    &Value::Null,
                    -32700,
                    &format!("parse error: the message is not JSON ({e})"),
                ))
            }
        };
        let Some(obj) = msg.as_object() else {
            // Batches were removed from MCP; forwarding one would let calls past the gate.
            return ClientAction::Reply(error_reply(
                &Value::Null,
                -32600,
                "invalid request: JSON-RPC batches are not supported by Warden",
            ));
        };
        let method = obj.get("method").and_then(Value::as_str);
        let id = obj.get("id").cloned();
        let forward = |pending: Pending, id: &Value| {
            self.remember(id, pending);
            ClientAction::Forward(line.to_string())
        };
        match (method, id) {
            (Some("tools/call"), None) => ClientAction::Drop(
                "a tools/call sent as a notification (no id) was dropped: it cannot be decided and answered"
                    .to_string(),
            ),
            (Some("tools/call"), Some(id)) => self.call(line, obj, id).await,
            (Some("tools/list"), Some(id)) => forward(Pending::ListTools, &id),
            (Some("initialize"), Some(id)) => {
                let params = obj.get("params").and_then(Value::as_object);
                match correlation_id(params) {
                    Ok(c) => {
                        if let Ok(mut slot) = self.correlation_id.lock() {
                            *slot = c;
                        }
                        forward(Pending::Initialize, &id)
                    }
                    Err(why) => ClientAction::Reply(error_reply(&id, -32602, &why)),
                }
            }
            (Some("resources/list"), Some(id)) => forward(Pending::ListResources, &id),
            (Some("prompts/list"), Some(id)) => forward(Pending::ListPrompts, &id),
            // Templates would let a client build URIs the card never listed; none are offered.
            (Some("resources/templates/list"), Some(id)) => {
                ClientAction::Reply(rpc_result(&id, json!({"resourceTemplates": []})).to_string())
            }
            (Some("resources/read"), Some(id)) => self.read(line, "resources/read", obj, id).await,
            (Some("prompts/get"), Some(id)) => self.read(line, "prompts/get", obj, id).await,
            // Requests Warden lets through as they are: no data, no effects.
            (Some("ping" | "logging/setLevel"), _) => ClientAction::Forward(line.to_string()),
            // Completions, subscriptions and anything newer: scope cards do not grant them,
            // so they are refused rather than passed through ungated.
            (Some(m), Some(id)) => ClientAction::Reply(error_reply(
                &id,
                -32601,
                &format!("`{m}` is not allowed through Warden: scope cards grant tools, resources and prompts only"),
            )),
            // Notifications pass; any other method sent without an id would reach the upstream
            // undecided and unrecorded (a `resources/read` as a notification still makes the
            // server read), so it is dropped like an id-less `tools/call`.
            (Some(m), None) if m.starts_with("notifications/") => {
                ClientAction::Forward(line.to_string())
            }
            (Some(m), None) => ClientAction::Drop(format!(
                "a `{m}` request sent as a notification (no id) was dropped: it cannot be decided and answered"
            )),
            // Responses to the server's own requests (sampling, roots, elicitation) pass.
            (None, _) => ClientAction::Forward(line.to_string()),
        }
    }

    async fn call(&self, line: &str, obj: &Map<String, Value>, id: Value) -> ClientAction {
        let params = obj.get("params").and_then(Value::as_object);
        let Some(name) = params.and_then(|p| p.get("name")).and_then(Value::as_str) else {
            return ClientAction::Reply(error_reply(
                &id,
                -32602,
                "invalid params: tools/call needs params.name",
            ));
        };
        let args = params
            .and_then(|p| p.get("arguments"))
            .cloned()
            .unwrap_or(Value::Object(Map::new()));
        let target = Target::Tool {
            name: name.to_string(),
            server: Some(self.server.clone()),
        };
        let proposal = match self.caller().proposal(target, args, &id, params) {
            Ok(p) => p,
            Err(why) => return ClientAction::Reply(error_reply(&id, -32602, &why)),
        };
        let parent =
            crate::telemetry::trace_parent(&axum::http::HeaderMap::new(), obj.get("params"));
        let span = CallSpan::start(&self.state, Source::McpStdio.as_str(), parent);
        let decided = match pipeline::decide(&self.state, proposal, span, Some(self)).await {
            Ok(d) => d,
            Err(refusal) => {
                return ClientAction::Reply(tool_error(&id, refusal.text()).to_string())
            }
        };
        match decided.decision.decision {
            warden_core::Verdict::Allow => {
                self.remember(&id, Pending::Call(Box::new(decided.into_ran())));
                ClientAction::Forward(line.to_string())
            }
            warden_core::Verdict::ApprovalRequired => ClientAction::Hold(Box::new(HeldStdio {
                progress_token: crate::approvals::progress_token(obj.get("params")),
                id,
                line: line.to_string(),
                decided,
            })),
            warden_core::Verdict::Deny => {
                ClientAction::Reply(tool_error(&id, decided.refusal_text()).to_string())
            }
        }
    }

    async fn read(
        &self,
        line: &str,
        method: &'static str,
        obj: &Map<String, Value>,
        id: Value,
    ) -> ClientAction {
        let key = if method == "resources/read" {
            "uri"
        } else {
            "name"
        };
        let params = obj.get("params").cloned().unwrap_or_else(|| json!({}));
        let Some(what) = params.get(key).and_then(Value::as_str) else {
            return ClientAction::Reply(error_reply(
                &id,
                -32602,
                &format!("invalid params: {method} needs params.{key}"),
            ));
        };
        let target = Target::Read {
            method,
            server: self.server.clone(),
            what: what.to_string(),
        };
        let proposal = match self
            .caller()
            .proposal(target, params.clone(), &id, params.as_object())
        {
            Ok(p) => p,
            Err(why) => return ClientAction::Reply(error_reply(&id, -32602, &why)),
        };
        let decided = match pipeline::decide(&self.state, proposal, CallSpan::default(), None).await
        {
            Ok(d) => d,
            Err(refusal) => return ClientAction::Reply(error_reply(&id, -32003, &refusal.text())),
        };
        if decided.decision.decision != warden_core::Verdict::Allow {
            return ClientAction::Reply(error_reply(&id, -32003, &decided.refusal_text()));
        }
        self.remember(&id, Pending::Read(Box::new(decided.into_ran())));
        ClientAction::Forward(line.to_string())
    }

    /// Wait for people to decide on a held call (progress notifications on `to_client` when
    /// the client gave a `progressToken`), then forward it to the upstream under the approval
    /// or answer it with the denial, expiry or "pending approval".
    pub async fn hold(
        self: std::sync::Arc<Self>,
        held: Box<HeldStdio>,
        to_client: tokio::sync::mpsc::Sender<String>,
    ) {
        let HeldStdio {
            id,
            line,
            decided,
            progress_token,
        } = *held;
        let (note_tx, mut note_rx) = tokio::sync::mpsc::channel::<Value>(16);
        let forward = {
            let to_client = to_client.clone();
            tokio::spawn(async move {
                while let Some(note) = note_rx.recv().await {
                    if to_client.send(note.to_string()).await.is_err() {
                        break;
                    }
                }
            })
        };
        let progress =
            progress_token.map(|token| crate::approvals::Progress { token, tx: note_tx });
        let result = crate::approvals::hold_mcp(&self.state, decided, progress.as_ref()).await;
        // Every notification goes out before the answer.
        drop(progress);
        let _ = forward.await;
        match result {
            Ok(execution) => {
                self.remember(&id, Pending::Call(Box::new(execution.into_ran())));
                let sent = match self.upstream() {
                    Some(tx) => tx.send(line).await.is_ok(),
                    None => false,
                };
                if !sent {
                    if let Some(Pending::Call(ran)) = self.take(&id) {
                        self.outcome(
                            *ran,
                            &json!({"error": {"message": "the upstream has exited"}}),
                            true,
                        )
                        .await;
                    }
                    let text = "the approved call could not be sent: the upstream has exited";
                    let _ = to_client
                        .send(tool_error(&id, text.to_string()).to_string())
                        .await;
                }
            }
            Err(text) => {
                let _ = to_client.send(tool_error(&id, text).to_string()).await;
            }
        }
    }

    /// Record what the upstream answered an allowed call.
    async fn outcome(&self, ran: Ran, response: &Value, unreachable: bool) {
        let reported = Reported {
            failed: tool_failed(response),
            unreachable,
            output: answer_output(response),
            duration_ms: None,
        };
        if let Err(error) = pipeline::record_outcome(&self.state, ran, reported).await {
            tracing::error!(message = "outcome of an allowed call not recorded", %error);
        }
    }

    /// Handle one line from the upstream; `None` drops it.
    pub async fn from_upstream(&self, line: &str) -> Option<String> {
        let Ok(mut msg) = serde_json::from_str::<Value>(line) else {
            tracing::warn!(message = "upstream sent a line that is not JSON; dropped");
            return None;
        };
        let is_response = msg.get("method").is_none();
        // The answer to Warden's own request (a snapshot read) goes to Warden, not the client.
        if let Some(own) = msg
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| is_response && id.starts_with(OWN_REQUEST_PREFIX))
        {
            let waiter = self
                .own_requests
                .lock()
                .ok()
                .and_then(|mut w| w.remove(own));
            if let Some(w) = waiter {
                let _ = w.send(msg);
                return None;
            }
        }
        let pending = match msg.get("id") {
            Some(id) if is_response => self.take(id),
            _ => None,
        };
        match pending {
            None => {}
            Some(Pending::Initialize) => self.offer_granted(&mut msg),
            Some(Pending::ListTools) => self.keep_usable_tools(&mut msg).await,
            Some(Pending::ListResources) => {
                self.keep_granted(&mut msg, "resources", "uri", |c, uri| {
                    c.resource(&self.server, uri).is_some()
                });
            }
            Some(Pending::ListPrompts) => {
                self.keep_granted(&mut msg, "prompts", "name", |c, name| {
                    c.prompt(&self.server, name).is_some()
                });
            }
            Some(Pending::Call(ran)) => {
                // An answer that is not a tool result is an error the agent is told about and
                // the ledger records as one, never relayed as the tool's result.
                if let Some(why) = malformed_tool_answer(&msg) {
                    let text = format!(
                        "upstream `{}` sent an answer that is not a tool result: {why}",
                        self.server
                    );
                    let id = msg.get("id").cloned().unwrap_or(Value::Null);
                    self.outcome(*ran, &json!({"error": {"message": text}}), true)
                        .await;
                    return Some(tool_error(&id, text).to_string());
                }
                self.outcome(*ran, &msg, false).await;
                return Some(line.to_string());
            }
            Some(Pending::Read(ran)) => {
                self.outcome(*ran, &msg, false).await;
                return Some(line.to_string());
            }
        }
        Some(msg.to_string())
    }

    /// Offer the client only what Warden lets through.
    fn offer_granted(&self, msg: &mut Value) {
        let Some(caps) = msg
            .get_mut("result")
            .and_then(|r| r.get_mut("capabilities"))
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        let card = self.state.policy.cards.get(&self.agent);
        let has_resources =
            card.is_some_and(|c| c.resources.iter().any(|r| r.server == self.server));
        let has_prompts = card.is_some_and(|c| c.prompts.iter().any(|p| p.server == self.server));
        caps.remove("completions");
        if !has_resources {
            caps.remove("resources");
        } else if let Some(r) = caps.get_mut("resources").and_then(Value::as_object_mut) {
            // Subscriptions would deliver updates outside the gate.
            r.remove("subscribe");
        }
        if !has_prompts {
            caps.remove("prompts");
        }
    }

    /// Keep the tools the card grants on this upstream and whose pins allow them. Every
    /// announced tool is pinned, granted or not: a rug pull on any of them is worth an alert.
    async fn keep_usable_tools(&self, msg: &mut Value) {
        let Some(tools) = msg
            .get_mut("result")
            .and_then(|r| r.get_mut("tools"))
            .and_then(Value::as_array_mut)
        else {
            return;
        };
        let card = self.state.policy.cards.get(&self.agent);
        let mut keep = Vec::with_capacity(tools.len());
        for t in tools.drain(..) {
            let name = t
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let usable = super::pins::pin_tool(&self.state, &self.server, &name, &t).await;
            let granted =
                card.is_some_and(|c| c.tool(&format!("{}/{name}", self.server)).is_some());
            if usable && granted {
                keep.push(t);
            }
        }
        *tools = keep;
    }

    /// Keep only the granted entries of a `resources/list` or `prompts/list` result.
    fn keep_granted(
        &self,
        msg: &mut Value,
        field: &str,
        key: &str,
        granted: impl Fn(&warden_core::ScopeCard, &str) -> bool,
    ) {
        let card = self.state.policy.cards.get(&self.agent);
        if let Some(items) = msg
            .get_mut("result")
            .and_then(|r| r.get_mut(field))
            .and_then(Value::as_array_mut)
        {
            items.retain(|item| {
                let named = item.get(key).and_then(Value::as_str).unwrap_or_default();
                card.is_some_and(|c| granted(c, named))
            });
        }
    }
}

/// A snapshot read on a stdio upstream: Warden sends the `tools/call` with an id of its own
/// and takes the response out of the upstream's stream.
impl crate::approvals::SnapshotReader for McpGate {
    fn call<'a>(&'a self, tool: &'a str, args: Value) -> crate::approvals::ReadResult<'a> {
        Box::pin(async move {
            let tx = self
                .upstream()
                .ok_or_else(|| format!("upstream `{}` is not running", self.server))?;
            let id = format!("{OWN_REQUEST_PREFIX}{}", uuid::Uuid::new_v4());
            let (reply, answer) = tokio::sync::oneshot::channel();
            if let Ok(mut w) = self.own_requests.lock() {
                w.insert(id.clone(), reply);
            }
            let msg = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": tool, "arguments": args}});
            let forget = || {
                if let Ok(mut w) = self.own_requests.lock() {
                    w.remove(&id);
                }
            };
            if tx.send(msg.to_string()).await.is_err() {
                forget();
                return Err(format!("upstream `{}` has exited", self.server));
            }
            match tokio::time::timeout(self.read_timeout, answer).await {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(_)) => Err(format!("upstream `{}` has exited", self.server)),
                Err(_) => {
                    forget();
                    Err(format!(
                        "upstream `{}` did not answer within {} s",
                        self.server,
                        self.read_timeout.as_secs()
                    ))
                }
            }
        })
    }
}
