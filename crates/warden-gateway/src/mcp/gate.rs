//! The gate between an MCP client and one upstream MCP server, message by message.
//!
//! Messages are newline-delimited JSON-RPC 2.0. Most pass through unchanged, so the upstream's
//! protocol version, capabilities, tool descriptions and schemas reach the client as the
//! upstream gave them. Three are handled:
//! - `tools/list` responses are filtered to the tools the agent's scope card grants on this
//!   upstream;
//! - `tools/call` requests are decided first and recorded in the ledger; a call that is not
//!   allowed is answered by Warden as a tool result with `isError: true` and the reasons in
//!   words (not a protocol error, so the model can read it) and never reaches the upstream;
//! - the response to an allowed call is recorded as its outcome and passed on unchanged.
//!
//! Anything that could smuggle a call past the gate — a JSON-RPC batch, a `tools/call` sent as
//! a notification, an unparsable line — is refused, never forwarded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use warden_core::ledger::{DecisionEvent, LedgerEvent, OutcomeEvent, ToolEvent};
use warden_core::tools::{audit_definition, pinned_definition, tool_definition_hash};
use warden_core::{CallRequest, CompiledPolicy, Decision, ReadTarget, Verdict};
use warden_store::{Ledger, PinCheck};

use crate::state::now_rfc3339;
use crate::telemetry::CallTrace;

/// What to do with a message from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone)]
pub struct HeldStdio {
    id: Value,
    line: String,
    tool: String,
    args: Value,
    decision_id: String,
    seq: u64,
    decision: Box<Decision>,
    progress_token: Option<Value>,
    on_behalf_of: Option<String>,
    span: Box<SpanStart>,
}

impl PartialEq for HeldStdio {
    fn eq(&self, other: &Self) -> bool {
        self.decision_id == other.decision_id
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
    Call {
        decision_id: String,
        tool: String,
        started: Instant,
        span: Box<SpanStart>,
    },
}

/// What the `execute_tool` span of a call knows from its start until its answer.
#[derive(Debug, Clone)]
struct SpanStart {
    trace: CallTrace,
    parent: Option<warden_core::otel::TraceParent>,
    start_unix_nano: u64,
}

/// The `_meta` key under which an MCP client declares the user's own request (trusted input).
pub const USER_REQUEST_META: &str = "warden/user_request";

/// The `_meta` key under which an MCP client names the person the agent acts for; that person
/// cannot approve the call ([approvals] forbid_self_approval).
pub const ON_BEHALF_OF_META: &str = "warden/on_behalf_of";

/// The gate for one agent and one upstream.
pub struct McpGate {
    policy: Arc<CompiledPolicy>,
    ledger: Ledger,
    agent: String,
    server: String,
    session: String,
    max_output_bytes: usize,
    pending: Mutex<HashMap<String, Pending>>,
    sessions: crate::sessions::Sessions,
    /// The approval queue (the project's store and `[approvals]`); without it a held call is
    /// answered at once.
    approvals: Option<crate::state::AppState>,
    /// The channel to the upstream's stdin, for Warden's own requests (snapshot reads) and
    /// for held calls released by an approval.
    upstream_tx: Mutex<Option<tokio::sync::mpsc::Sender<String>>>,
    /// Warden's own requests to the upstream waiting for their responses.
    own_requests: Mutex<HashMap<String, tokio::sync::oneshot::Sender<Value>>>,
    read_timeout: Duration,
    /// Where `execute_tool` spans go; none: no spans are built.
    telemetry: Option<Arc<crate::telemetry::Telemetry>>,
}

/// Whether an upstream's answer to a `tools/call` reports a failure: a JSON-RPC error, or a
/// tool result with `isError`.
pub(crate) fn tool_failed(response: &Value) -> bool {
    response.get("error").is_some()
        || response
            .pointer("/result/isError")
            .and_then(Value::as_bool)
            .unwrap_or(false)
}

fn id_key(id: &Value) -> String {
    id.to_string()
}

/// A JSON-RPC result.
pub(crate) fn rpc_result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A JSON-RPC error (a protocol error, for malformed or refused requests).
pub(crate) fn rpc_error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// A tool result with `isError`: how refusals reach the model, in words it can read.
pub(crate) fn tool_error(id: &Value, text: String) -> Value {
    rpc_result(
        id,
        json!({"content": [{"type": "text", "text": text}], "isError": true}),
    )
}

fn error_reply(id: &Value, code: i64, message: &str) -> String {
    rpc_error(id, code, message).to_string()
}

impl McpGate {
    pub fn new(
        policy: Arc<CompiledPolicy>,
        ledger: Ledger,
        agent: String,
        server: String,
        session: String,
        max_output_bytes: usize,
    ) -> Self {
        Self {
            policy,
            ledger,
            agent,
            server,
            session,
            max_output_bytes,
            pending: Mutex::new(HashMap::new()),
            sessions: crate::sessions::Sessions::default(),
            approvals: None,
            upstream_tx: Mutex::new(None),
            own_requests: Mutex::new(HashMap::new()),
            read_timeout: Duration::from_secs(30),
            telemetry: None,
        }
    }

    /// Send an `execute_tool` span for every `tools/call` (as `warden serve` does for `/mcp`).
    #[must_use]
    pub fn with_telemetry(mut self, telemetry: Option<Arc<crate::telemetry::Telemetry>>) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// End a call's span (when telemetry is on).
    fn end_span(&self, span: Box<SpanStart>) {
        if let (Some(t), false) = (&self.telemetry, span.trace.tool.is_empty()) {
            t.record(crate::telemetry::span(
                span.trace,
                &self.agent,
                "mcp-stdio",
                span.parent,
                span.start_unix_nano,
            ));
        }
    }

    /// Hold calls that need approval in this approval queue (sharing the project's store with
    /// `warden serve` and the CLI, where people vote) instead of answering them at once.
    /// `read_timeout` bounds a snapshot read.
    #[must_use]
    pub fn with_approvals(mut self, state: crate::state::AppState, read_timeout: Duration) -> Self {
        self.approvals = Some(state);
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

    /// Wait for people to decide on a held call (progress notifications on `to_client` when
    /// the client gave a `progressToken`), then forward it to the upstream under the approval
    /// or answer it with the denial, expiry or "pending approval".
    pub async fn hold(
        self: Arc<Self>,
        held: Box<HeldStdio>,
        to_client: tokio::sync::mpsc::Sender<String>,
    ) {
        let Some(state) = self.approvals.clone() else {
            return;
        };
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
        let progress = held
            .progress_token
            .clone()
            .map(|token| crate::approvals::Progress { token, tx: note_tx });
        let result = crate::approvals::hold_mcp(
            &state,
            crate::approvals::HeldMcp {
                agent: &self.agent,
                session: &self.session,
                server: &self.server,
                tool: &held.tool,
                args: &held.args,
                decision_id: &held.decision_id,
                seq: held.seq,
                decision: (*held.decision).clone(),
                request_id: &held.id,
                on_behalf_of: held.on_behalf_of.as_deref(),
                source: "mcp-stdio",
                reader: Some(self.as_ref()),
                progress: progress.as_ref(),
            },
        )
        .await;
        // Every notification goes out before the answer.
        drop(progress);
        let _ = forward.await;
        let mut span = held.span.clone();
        match result {
            Ok(execution_id) => {
                // Approved: the span names the decision it ran under.
                span.trace.decision = Some("allow");
                span.trace.decision_id = Some(execution_id.clone());
                self.remember(
                    &held.id,
                    Pending::Call {
                        decision_id: execution_id,
                        tool: held.tool.clone(),
                        started: Instant::now(),
                        span,
                    },
                );
                let sent = match self.upstream() {
                    Some(tx) => tx.send(held.line).await.is_ok(),
                    None => false,
                };
                if !sent {
                    if let Some(Pending::Call { mut span, .. }) = self.take(&held.id) {
                        span.trace.error_type =
                            Some(warden_core::otel::error_type::UPSTREAM_UNAVAILABLE);
                        self.end_span(span);
                    }
                    let _ = to_client
                        .send(
                            tool_error(
                                &held.id,
                                "the approved call could not be sent: the upstream has exited"
                                    .to_string(),
                            )
                            .to_string(),
                        )
                        .await;
                }
            }
            Err(text) => {
                span.trace.error_type = Some(warden_core::otel::error_type::APPROVAL_REQUIRED);
                self.end_span(span);
                let _ = to_client.send(tool_error(&held.id, text).to_string()).await;
            }
        }
    }

    fn remember(&self, id: &Value, p: Pending) {
        if let Ok(mut map) = self.pending.lock() {
            map.insert(id_key(id), p);
        }
    }

    fn take(&self, id: &Value) -> Option<Pending> {
        self.pending.lock().ok()?.remove(&id_key(id))
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
        match (method, id) {
            (Some("tools/call"), None) => ClientAction::Drop(
                "a tools/call sent as a notification (no id) was dropped: it cannot be decided and answered"
                    .to_string(),
            ),
            (Some("tools/call"), Some(id)) => self.call(line, obj, id).await,
            (Some("tools/list"), Some(id)) => {
                self.remember(&id, Pending::ListTools);
                ClientAction::Forward(line.to_string())
            }
            (Some("initialize"), Some(id)) => {
                self.remember(&id, Pending::Initialize);
                ClientAction::Forward(line.to_string())
            }
            (Some("resources/list"), Some(id)) => {
                self.remember(&id, Pending::ListResources);
                ClientAction::Forward(line.to_string())
            }
            (Some("prompts/list"), Some(id)) => {
                self.remember(&id, Pending::ListPrompts);
                ClientAction::Forward(line.to_string())
            }
            // Templates would let a client build URIs the card never listed; none are offered.
            (Some("resources/templates/list"), Some(id)) => {
                ClientAction::Reply(rpc_result(&id, json!({"resourceTemplates": []})).to_string())
            }
            (Some(m @ ("resources/read" | "prompts/get")), Some(id)) => {
                self.read(line, m, obj, id).await
            }
            // Requests Warden lets through as they are: no data, no effects.
            (Some("ping" | "logging/setLevel"), _) => ClientAction::Forward(line.to_string()),
            // Completions, subscriptions and anything newer: scope cards do not grant them,
            // so they are refused rather than passed through ungated.
            (Some(m), Some(id)) => ClientAction::Reply(error_reply(
                &id,
                -32601,
                &format!("`{m}` is not allowed through Warden: scope cards grant tools, resources and prompts only"),
            )),
            // Notifications (no id) and responses to the server's own requests pass.
            _ => ClientAction::Forward(line.to_string()),
        }
    }

    async fn call(
        &self,
        line: &str,
        obj: &serde_json::Map<String, Value>,
        id: Value,
    ) -> ClientAction {
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
            .unwrap_or(Value::Object(serde_json::Map::new()));
        let mut span = Box::new(SpanStart {
            trace: CallTrace {
                tool: name.to_string(),
                qualified_tool: Some(format!("{}/{name}", self.server)),
                policy_version: Some(self.policy.version.to_string()),
                session: Some(self.session.clone()),
                mcp_request_id: Some(id.to_string()),
                ..CallTrace::default()
            },
            parent: crate::telemetry::trace_parent(
                &axum::http::HeaderMap::new(),
                obj.get("params"),
            ),
            start_unix_nano: crate::telemetry::now_unix_nano(),
        });
        let gated = gate_call(McpCall {
            policy: &self.policy,
            ledger: &self.ledger,
            agent: &self.agent,
            server: &self.server,
            tool: name,
            args,
            session: &self.session,
            request_id: &id,
            source: "mcp-stdio",
            token_tools: None,
            sessions: &self.sessions,
            user_request: user_request(params),
            on_behalf_of: on_behalf_of(params),
        })
        .await;
        use warden_core::otel::error_type;
        match gated {
            Gated::Run { decision_id } => {
                span.trace.decision = Some("allow");
                span.trace.decision_id = Some(decision_id.clone());
                self.remember(
                    &id,
                    Pending::Call {
                        decision_id,
                        tool: name.to_string(),
                        started: Instant::now(),
                        span,
                    },
                );
                ClientAction::Forward(line.to_string())
            }
            Gated::Held {
                decision_id,
                seq,
                decision,
                ..
            } if self.approvals.is_some() => ClientAction::Hold(Box::new(HeldStdio {
                span: Box::new(SpanStart {
                    trace: CallTrace {
                        decision: Some("approval_required"),
                        decision_id: Some(decision_id.clone()),
                        ..span.trace
                    },
                    ..*span
                }),
                progress_token: crate::approvals::progress_token(obj.get("params")),
                on_behalf_of: on_behalf_of(params),
                id,
                line: line.to_string(),
                tool: name.to_string(),
                args: params
                    .and_then(|p| p.get("arguments"))
                    .cloned()
                    .unwrap_or(Value::Object(serde_json::Map::new())),
                decision_id,
                seq,
                decision,
            })),
            Gated::Refused { text, decision_id } => {
                span.trace.error_type = Some(if decision_id.is_some() {
                    error_type::DENIED
                } else {
                    error_type::LEDGER_UNAVAILABLE
                });
                span.trace.decision = decision_id.as_ref().map(|_| "deny");
                span.trace.decision_id = decision_id;
                self.end_span(span);
                ClientAction::Reply(tool_error(&id, text).to_string())
            }
            Gated::Held {
                text, decision_id, ..
            } => {
                span.trace.decision = Some("approval_required");
                span.trace.decision_id = Some(decision_id);
                span.trace.error_type = Some(error_type::APPROVAL_REQUIRED);
                self.end_span(span);
                ClientAction::Reply(tool_error(&id, text).to_string())
            }
        }
    }

    async fn read(
        &self,
        line: &str,
        method: &str,
        obj: &serde_json::Map<String, Value>,
        id: Value,
    ) -> ClientAction {
        let key = if method == "resources/read" {
            "uri"
        } else {
            "name"
        };
        let params = obj.get("params").cloned().unwrap_or_else(|| json!({}));
        let Some(target) = params.get(key).and_then(Value::as_str) else {
            return ClientAction::Reply(error_reply(
                &id,
                -32602,
                &format!("invalid params: {method} needs params.{key}"),
            ));
        };
        let read_target = if method == "resources/read" {
            ReadTarget::Resource {
                server: &self.server,
                uri: target,
            }
        } else {
            ReadTarget::Prompt {
                server: &self.server,
                name: target,
            }
        };
        let gated = gate_read(
            McpCall {
                policy: &self.policy,
                ledger: &self.ledger,
                agent: &self.agent,
                server: &self.server,
                tool: method,
                args: params.clone(),
                session: &self.session,
                request_id: &id,
                source: "mcp-stdio",
                token_tools: None,
                sessions: &self.sessions,
                user_request: None,
                on_behalf_of: None,
            },
            &read_target,
        )
        .await;
        match gated {
            Gated::Run { decision_id } => {
                self.remember(
                    &id,
                    Pending::Call {
                        decision_id,
                        tool: method.to_string(),
                        started: Instant::now(),
                        // Reads are not tool calls: no `execute_tool` span (empty tool).
                        span: Box::new(SpanStart {
                            trace: CallTrace::default(),
                            parent: None,
                            start_unix_nano: 0,
                        }),
                    },
                );
                ClientAction::Forward(line.to_string())
            }
            Gated::Refused { text, .. } | Gated::Held { text, .. } => {
                ClientAction::Reply(error_reply(&id, -32003, &text))
            }
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
            None => Some(line.to_string()),
            Some(Pending::Initialize) => {
                // Offer the client only what Warden lets through.
                if let Some(caps) = msg
                    .get_mut("result")
                    .and_then(|r| r.get_mut("capabilities"))
                    .and_then(Value::as_object_mut)
                {
                    let card = self.policy.cards.get(&self.agent);
                    let has_resources =
                        card.is_some_and(|c| c.resources.iter().any(|r| r.server == self.server));
                    let has_prompts =
                        card.is_some_and(|c| c.prompts.iter().any(|p| p.server == self.server));
                    caps.remove("completions");
                    if !has_resources {
                        caps.remove("resources");
                    } else if let Some(r) = caps.get_mut("resources").and_then(Value::as_object_mut)
                    {
                        // Subscriptions would deliver updates outside the gate.
                        r.remove("subscribe");
                    }
                    if !has_prompts {
                        caps.remove("prompts");
                    }
                }
                Some(msg.to_string())
            }
            Some(Pending::ListTools) => {
                let card = self.policy.cards.get(&self.agent);
                if let Some(tools) = msg
                    .get_mut("result")
                    .and_then(|r| r.get_mut("tools"))
                    .and_then(Value::as_array_mut)
                {
                    let mut keep = Vec::with_capacity(tools.len());
                    for t in tools.drain(..) {
                        let name = t
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        // Pin every tool the upstream announces, granted or not: a rug pull
                        // on any of them is worth an alert.
                        let usable = self.pin(&name, &t).await;
                        let granted = card
                            .is_some_and(|c| c.tool(&format!("{}/{name}", self.server)).is_some());
                        if usable && granted {
                            keep.push(t);
                        }
                    }
                    *tools = keep;
                }
                Some(msg.to_string())
            }
            Some(Pending::ListResources) => {
                self.keep_granted(&mut msg, "resources", "uri", |c, uri| {
                    c.resource(&self.server, uri).is_some()
                });
                Some(msg.to_string())
            }
            Some(Pending::ListPrompts) => {
                self.keep_granted(&mut msg, "prompts", "name", |c, name| {
                    c.prompt(&self.server, name).is_some()
                });
                Some(msg.to_string())
            }
            Some(Pending::Call {
                decision_id,
                tool,
                started,
                mut span,
            }) => {
                if tool_failed(&msg) {
                    span.trace.error_type = Some(warden_core::otel::error_type::TOOL_ERROR);
                }
                self.record_outcome(&msg, decision_id, tool, started).await;
                self.end_span(span);
                Some(line.to_string())
            }
        }
    }

    /// Keep only the granted entries of a `resources/list` or `prompts/list` result.
    fn keep_granted(
        &self,
        msg: &mut Value,
        field: &str,
        key: &str,
        granted: impl Fn(&warden_core::ScopeCard, &str) -> bool,
    ) {
        let card = self.policy.cards.get(&self.agent);
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

    async fn pin(&self, name: &str, definition: &Value) -> bool {
        pin_tool(&self.ledger, &self.server, name, definition).await
    }

    async fn record_outcome(
        &self,
        msg: &Value,
        decision_id: String,
        tool: String,
        started: Instant,
    ) {
        record_outcome(
            &self.ledger,
            &self.agent,
            msg,
            decision_id,
            tool,
            started,
            self.max_output_bytes,
            Some(Observe {
                policy: &self.policy,
                sessions: &self.sessions,
                session: &self.session,
                server: &self.server,
            }),
        )
        .await;
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

/// A proposed MCP tool call, for [`gate_call`].
pub(crate) struct McpCall<'a> {
    pub policy: &'a CompiledPolicy,
    pub ledger: &'a Ledger,
    pub agent: &'a str,
    pub server: &'a str,
    pub tool: &'a str,
    pub args: Value,
    pub session: &'a str,
    pub request_id: &'a Value,
    /// `mcp-stdio` or `mcp-http`.
    pub source: &'static str,
    /// The tool subset of the agent's token, if it has one (`server/name`).
    pub token_tools: Option<&'a [String]>,
    pub sessions: &'a crate::sessions::Sessions,
    /// The user's request declared in `_meta["warden/user_request"]`.
    pub user_request: Option<String>,
    /// The person named in `_meta["warden/on_behalf_of"]`.
    pub on_behalf_of: Option<String>,
}

/// `params._meta["warden/on_behalf_of"]` of a `tools/call`, if a string of at most 256
/// characters.
pub(crate) fn on_behalf_of(params: Option<&serde_json::Map<String, Value>>) -> Option<String> {
    params
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(ON_BEHALF_OF_META))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.chars().count() <= 256)
        .map(str::to_string)
}

/// `params._meta["warden/user_request"]` of a `tools/call`, if a string.
pub(crate) fn user_request(params: Option<&serde_json::Map<String, Value>>) -> Option<String> {
    params
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(USER_REQUEST_META))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Where an allowed call's output goes besides the ledger: the session it taints.
pub(crate) struct Observe<'a> {
    pub policy: &'a CompiledPolicy,
    pub sessions: &'a crate::sessions::Sessions,
    pub session: &'a str,
    pub server: &'a str,
}

/// What the gate decided for a call.
pub(crate) enum Gated {
    /// Allowed and recorded: run it, then record its outcome under this decision.
    Run { decision_id: String },
    /// Refused (denied, or not recordable): the text for an `isError` tool result, and the
    /// id of the recorded denial (none when the decision could not be recorded).
    Refused {
        text: String,
        decision_id: Option<String>,
    },
    /// Held for approval: the recorded decision, and the text the stdio gate answers with.
    Held {
        decision_id: String,
        seq: u64,
        decision: Box<warden_core::Decision>,
        text: String,
    },
}

/// Decide a read of a resource or prompt (`tool` names it for the record) and record the
/// decision before anything is read.
pub(crate) async fn gate_read(c: McpCall<'_>, target: &ReadTarget<'_>) -> Gated {
    let mut decision = c.policy.decide_read(c.agent, target);
    if c.token_tools.is_some() && decision.decision != Verdict::Deny {
        // A token narrowed to some tools carries no read access besides them.
        decision.decision = Verdict::Deny;
        decision.reasons = vec![
            "the agent's token is narrowed to a list of tools; resources and prompts are outside its scope"
                .to_string(),
        ];
        decision.policies = vec!["warden/token-scope".to_string()];
    }
    record_decision(c, decision).await
}

/// Decide a call, apply tool pinning, and record the decision before anything runs.
pub(crate) async fn gate_call(c: McpCall<'_>) -> Gated {
    let qualified = format!("{}/{}", c.server, c.tool);
    let session_state = c.sessions.get(c.agent, Some(c.session));
    let mut decision = {
        let call = CallRequest {
            agent: c.agent,
            tool: &qualified,
            args: &c.args,
            session: Some(c.session),
            correlation_id: None,
        };
        match session_state.lock() {
            Ok(mut s) => {
                if let Some(text) = &c.user_request {
                    s.declare_user_request(text);
                }
                c.policy.decide_with(&call, Some(&s))
            }
            Err(_) => {
                let mut d = c.policy.decide(&call);
                d.decision = Verdict::Deny;
                d.reasons = vec![
                    "the session's taint state could not be read, so the call is refused (fail closed)"
                        .to_string(),
                ];
                d
            }
        }
    };
    crate::identity::apply_token_scope(&mut decision, c.token_tools, &qualified);
    // A tool whose definition changed since it was pinned is blocked for everyone.
    if decision.decision != Verdict::Deny {
        let blocked = match c.ledger.is_blocked(c.server, c.tool).await {
            Ok(false) => None,
            Ok(true) => Some(format!(
                "the definition of `{qualified}` changed since it was approved (possible rug pull); it is blocked until an admin reviews it (`warden tools review`, `warden tools approve`)"
            )),
            Err(error) => {
                tracing::error!(message = "tool pin could not be read; call refused", %error);
                Some("the tool's pinned definition could not be checked, so the call is refused (fail closed)".to_string())
            }
        };
        if let Some(reason) = blocked {
            decision.decision = Verdict::Deny;
            decision.reasons = vec![reason];
            decision.policies = vec!["warden/tool-pinning".to_string()];
        }
    }
    record_decision(c, decision).await
}

/// Record a decision; only a recorded `allow` may run (fail closed).
async fn record_decision(c: McpCall<'_>, decision: Decision) -> Gated {
    let qualified = decision
        .tool
        .clone()
        .unwrap_or_else(|| format!("{}/{}", c.server, c.tool));
    let decision_id = uuid::Uuid::now_v7().to_string();
    let environment = c.policy.cards.get(c.agent).map_or_else(
        || c.policy.environment.to_string(),
        |card| card.environment.to_string(),
    );
    let event = LedgerEvent::Decision(Box::new(DecisionEvent {
        decision_id: decision_id.clone(),
        agent: c.agent.to_string(),
        environment,
        tool: c.tool.to_string(),
        qualified_tool: decision.tool.clone(),
        arguments: c.args,
        session: Some(c.session.to_string()),
        correlation_id: None,
        source: c.source.to_string(),
        mcp_request_id: Some(c.request_id.clone()),
        user_request: c.user_request.clone(),
        approval_id: None,
        on_behalf_of: c.on_behalf_of.clone(),
        decision: decision.clone(),
    }));
    let seq = match c.ledger.append(now_rfc3339(), event).await {
        Ok(a) => a.seq,
        Err(error) => {
            tracing::error!(message = "decision not recorded; call refused", %error, tool = %qualified);
            return Gated::Refused {
                text: "Warden refused this call: the ledger could not record it, so it must not run (fail closed). Try again later."
                    .to_string(),
                decision_id: None,
            };
        }
    };
    let name = c.tool;
    match decision.decision {
        Verdict::Allow => Gated::Run { decision_id },
        Verdict::Deny => Gated::Refused {
            text: format!(
                "Warden denied this call to `{name}`:\n- {}",
                decision.reasons.join("\n- ")
            ),
            decision_id: Some(decision_id),
        },
        Verdict::ApprovalRequired => Gated::Held {
            text: format!(
                "Warden is holding this call to `{name}` for approval (tier {}); it has not run. Decision id: {decision_id}.\n- {}",
                decision.tier,
                decision.reasons.join("\n- ")
            ),
            decision_id,
            seq,
            decision: Box::new(decision),
        },
    }
}

/// Check a tool's announced definition against its pin; `false` if the tool must not be
/// offered (changed, blocked, or the pin could not be checked).
pub(crate) async fn pin_tool(
    ledger: &Ledger,
    server: &str,
    name: &str,
    definition: &Value,
) -> bool {
    let hash = tool_definition_hash(definition);
    let pinned = pinned_definition(definition);
    let now = now_rfc3339();
    let event = |previous_hash: Option<String>| ToolEvent {
        server: server.to_string(),
        tool: name.to_string(),
        hash: hash.clone(),
        previous_hash,
        actor: "gateway".to_string(),
    };
    match ledger.check_pin(server, name, &hash, &pinned, &now).await {
        Ok(PinCheck::Same) => true,
        Ok(PinCheck::New) => {
            for f in audit_definition(definition) {
                tracing::warn!(message = "tool description needs review", %server, tool = %name, rule = f.rule, excerpt = %f.excerpt);
            }
            if let Err(error) = ledger
                .append(now, LedgerEvent::ToolPinned(event(None)))
                .await
            {
                tracing::error!(message = "tool pin not recorded", %error);
            }
            true
        }
        Ok(PinCheck::Changed { previous }) => {
            tracing::error!(message = "ALERT: tool definition changed; tool blocked until reviewed", %server, tool = %name);
            if let Err(error) = ledger
                .append(now, LedgerEvent::ToolChanged(event(Some(previous))))
                .await
            {
                tracing::error!(message = "tool change alert not recorded", %error);
            }
            false
        }
        Ok(PinCheck::Blocked) => false,
        Err(error) => {
            tracing::error!(message = "tool pin could not be checked; tool hidden", %error, tool = %name);
            false
        }
    }
}

/// Record the outcome of an allowed call from the upstream's response message, and let its
/// output update the session (taint, data classes, injection detector).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record_outcome(
    ledger: &Ledger,
    agent: &str,
    msg: &Value,
    decision_id: String,
    tool: String,
    started: Instant,
    max_output_bytes: usize,
    observe: Option<Observe<'_>>,
) {
    let failed = tool_failed(msg);
    let output = msg
        .get("result")
        .or_else(|| msg.get("error"))
        .cloned()
        .unwrap_or(Value::Null);
    let observed = observe.as_ref().map(|_| output.clone());
    let (output, output_bytes, output_truncated) =
        crate::state::bound_output(output, max_output_bytes);
    let event = LedgerEvent::Outcome(OutcomeEvent {
        decision_id: decision_id.clone(),
        agent: agent.to_string(),
        tool: tool.clone(),
        correlation_id: None,
        status: if failed { "error" } else { "success" }.to_string(),
        output,
        output_bytes,
        output_truncated,
        duration_ms: u64::try_from(started.elapsed().as_millis()).ok(),
    });
    let seq = match ledger.append(now_rfc3339(), event).await {
        Ok(a) => a.seq,
        Err(error) => {
            tracing::error!(message = "outcome of an allowed call not recorded", %error);
            0
        }
    };
    if let (Some(o), Some(output)) = (observe, observed) {
        let qualified = format!("{}/{tool}", o.server);
        crate::sessions::observe_output(
            o.policy,
            ledger,
            o.sessions,
            agent,
            Some(o.session),
            &decision_id,
            &qualified,
            &output,
            seq,
        )
        .await;
    }
}
