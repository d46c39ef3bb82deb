//! `tools/call`, `resources/read` and `prompts/get` over `/mcp`: each goes through the
//! pipeline, then to the upstream, then through the outcome path. A held call whose client
//! asked for progress is answered with an SSE stream.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use warden_core::Verdict;

use super::hub::InFlight;
use super::jsonrpc::{
    answer_output, malformed_tool_answer, rpc_error, rpc_result, tool_error, tool_failed, McpCaller,
};
use super::listing::resolve_tool;
use crate::pipeline::{self, CallSpan, Reported, Target};
use crate::state::AppState;

/// Whether the client takes `text/event-stream` answers (streamable HTTP clients send
/// `Accept: application/json, text/event-stream`).
pub(super) fn accepts_sse(headers: &HeaderMap) -> bool {
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
pub(super) struct HeldCall {
    pub(super) state: AppState,
    pub(super) caller: McpCaller,
    pub(super) id: Value,
    pub(super) params: Option<Value>,
    pub(super) token: Value,
    pub(super) slot: InFlight,
    pub(super) span: CallSpan,
}

/// A `tools/call` whose client gave a `progressToken`: run it in a task; if it finishes
/// before anything needs saying, answer with JSON as usual; if it is held for approval, answer
/// with an SSE stream that carries its `notifications/progress` and then its result (the
/// streamable-HTTP transport lets a server answer a POST so). When the client drops the
/// stream, the held call notices at its next notification and does not run.
pub(super) async fn call_with_progress(call: HeldCall) -> Response {
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
pub(super) async fn call_tool(
    state: &AppState,
    caller: &McpCaller,
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
            .map_err(|e| format!("the upstream failed: {e}"))
            .and_then(|response| match malformed_tool_answer(&response) {
                Some(why) => Err(format!(
                    "upstream `{server}` sent an answer that is not a tool result: {why}"
                )),
                None => Ok(response),
            }),
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

/// `resources/read` and `prompts/get`: decided against the card's grants and recorded like a
/// tool call; refused reads are JSON-RPC errors with the reasons (these results have no
/// `isError` field to carry them).
pub(super) async fn read(
    state: &AppState,
    caller: &McpCaller,
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
