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

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::http_calls::{accepts_sse, call_tool, call_with_progress, read, HeldCall};
use super::hub::McpSession;
use super::jsonrpc::{correlation_id, rpc_error, rpc_result, McpCaller};
use super::listing::{list_granted, list_tools, Listing};
use super::upstream::PROTOCOL_VERSION;
use crate::error::ApiError;
use crate::pipeline::{CallSpan, Source};
use crate::state::AppState;

/// Protocol versions Warden accepts from clients.
const SUPPORTED: &[&str] = &["2025-06-18", "2025-03-26", "2024-11-05"];

/// `GET /mcp`: no server-initiated stream.
#[utoipa::path(
    get,
    path = "/mcp",
    operation_id = "mcpStream",
    tag = "mcp",
    summary = "No SSE stream is offered",
    description = "Warden answers each request in its POST response and opens no standalone stream, as the streamable HTTP transport allows.",
    responses((status = 405, description = "Method not allowed (`Allow: POST, DELETE`)", content_type = "text/plain", body = String))
)]
pub async fn get_stream() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [("allow", "POST, DELETE")],
        "Warden answers each request in its POST response and opens no SSE stream",
    )
        .into_response()
}

/// `DELETE /mcp`: end a session.
#[utoipa::path(
    delete,
    path = "/mcp",
    operation_id = "mcpEndSession",
    tag = "mcp",
    summary = "End an MCP session",
    params(("Mcp-Session-Id" = String, Header, description = "The session to end")),
    responses(
        (status = 204, description = "Ended"),
        (status = 400, description = "Missing Mcp-Session-Id", body = crate::openapi::schemas::ErrorBody),
        (status = 401, description = "Missing or invalid agent key or token", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such session of this agent"),
        (status = 421, description = "The agent's records are kept in another region", body = crate::openapi::schemas::ErrorBody)
    )
)]
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
#[utoipa::path(
    post,
    path = "/mcp",
    operation_id = "mcp",
    tag = "mcp",
    summary = "MCP streamable HTTP: one JSON-RPC message per POST",
    description = "Answered with `application/json`, except a `tools/call` that carries a `progressToken` from a client that accepts `text/event-stream` and is held for approval: that answer is an SSE stream of `notifications/progress` and then the result. `initialize` returns `Mcp-Session-Id`; later requests must send it. `tools/list` is filtered to the agent's scope card; `tools/call` is decided and recorded before it runs, and refusals are tool results with `isError`.",
    params(("Mcp-Session-Id" = Option<String>, Header, description = "The session from `initialize`; required on every other request")),
    request_body = crate::openapi::schemas::JsonRpcMessage,
    responses(
        (status = 200, description = "The JSON-RPC response (`Mcp-Session-Id` header on `initialize`), or for a held call with progress an SSE stream",
            headers(("Mcp-Session-Id" = String, description = "On `initialize`: the new session")),
            content(
                (crate::openapi::schemas::JsonRpcResponse = "application/json"),
                (String = "text/event-stream")
            )),
        (status = 202, description = "Notification or response accepted"),
        (status = 400, description = "Parse error, a batch, or a bad `initialize` (JSON-RPC error)", body = crate::openapi::schemas::JsonRpcResponse),
        (status = 401, description = "Missing or invalid agent key or token", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "Unknown or missing session (JSON-RPC error)", body = crate::openapi::schemas::JsonRpcResponse),
        (status = 413, description = "Request body over gateway.max_request_bytes"),
        (status = 421, description = "The agent's records are kept in another region", body = crate::openapi::schemas::ErrorBody)
    )
)]
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
        state.mcp.open_session(
            session.clone(),
            McpSession {
                agent,
                correlation_id,
            },
        );
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
    let caller = McpCaller {
        principal,
        source: Source::McpHttp,
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
