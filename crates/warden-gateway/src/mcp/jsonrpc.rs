//! JSON-RPC 2.0 messages as Warden writes them to MCP clients, and the `_meta` fields Warden
//! reads from a client's requests. Shared by `/mcp` and `warden mcp stdio`.

use serde_json::{json, Map, Value};

use crate::identity::AgentPrincipal;
use crate::pipeline::{Proposal, Source, Target, MAX_CORRELATION_CHARS, MAX_LABEL_CHARS};

/// The `_meta` key under which an MCP client declares the user's own request (trusted input).
pub const USER_REQUEST_META: &str = "warden/user_request";

/// The `_meta` key under which an MCP client names the person the agent acts for; that person
/// cannot approve the call ([approvals] forbid_self_approval).
pub const ON_BEHALF_OF_META: &str = "warden/on_behalf_of";

/// The `_meta` key under which an MCP client links a call — or, on `initialize`, every call of
/// the session that names none itself — to its ticket or request (recorded as the decision's
/// `correlation_id`, as the decision API's field is).
pub const CORRELATION_ID_META: &str = "warden/correlation_id";

/// Whether an upstream's answer to a `tools/call` reports a failure: a JSON-RPC error, or a
/// tool result with `isError`.
pub(crate) fn tool_failed(response: &Value) -> bool {
    response.get("error").is_some()
        || response
            .pointer("/result/isError")
            .and_then(Value::as_bool)
            .unwrap_or(false)
}

/// Why an upstream's answer to a `tools/call` is not one (`None` when it is): a result must be
/// an object whose `content` is a list and whose `isError`, when present, is a boolean. A
/// malformed answer is never passed on as the tool's result, nor recorded as a success.
pub(crate) fn malformed_tool_answer(response: &Value) -> Option<&'static str> {
    let Some(result) = response.get("result") else {
        return response
            .get("error")
            .map_or(Some("it has neither a result nor an error"), |_| None);
    };
    if !result.is_object() {
        return Some("its result is not an object");
    }
    if !result.get("content").is_some_and(Value::is_array) {
        return Some("its result has no `content` list");
    }
    if result.get("isError").is_some_and(|e| !e.is_boolean()) {
        return Some("its `isError` is not a boolean");
    }
    None
}

/// What an upstream's answer carries for the ledger: its result, or its error.
pub(crate) fn answer_output(response: &Value) -> Value {
    response
        .get("result")
        .or_else(|| response.get("error"))
        .cloned()
        .unwrap_or(Value::Null)
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

fn meta<'a>(params: Option<&'a Map<String, Value>>, key: &str) -> Option<&'a str> {
    params
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
}

/// `params._meta["warden/user_request"]`, if a string.
fn user_request(params: Option<&Map<String, Value>>) -> Option<String> {
    meta(params, USER_REQUEST_META).map(str::to_string)
}

/// `params._meta["warden/on_behalf_of"]`, if a non-empty string of at most 256 characters.
fn on_behalf_of(params: Option<&Map<String, Value>>) -> Option<String> {
    meta(params, ON_BEHALF_OF_META)
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.chars().count() <= MAX_LABEL_CHARS)
        .map(str::to_string)
}

/// `params._meta["warden/correlation_id"]`: `Ok(None)` when absent, `Err` (the reason, for an
/// invalid-params error) when it is not a string of 1 to 4096 characters.
pub(crate) fn correlation_id(
    params: Option<&Map<String, Value>>,
) -> Result<Option<String>, String> {
    let Some(v) = params
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(CORRELATION_ID_META))
    else {
        return Ok(None);
    };
    match v.as_str().map(str::trim) {
        Some(s) if !s.is_empty() && s.chars().count() <= MAX_CORRELATION_CHARS => {
            Ok(Some(s.to_string()))
        }
        _ => Err(format!(
            "invalid params: `_meta[\"{CORRELATION_ID_META}\"]` must be a string of 1 to {MAX_CORRELATION_CHARS} characters"
        )),
    }
}

/// The agent calling in one MCP session (over `/mcp` or stdio), and the session's defaults.
#[derive(Debug, Clone)]
pub(crate) struct McpCaller {
    pub principal: AgentPrincipal,
    pub source: Source,
    pub session: String,
    /// The correlation id the client gave in `initialize`, for calls that name none.
    pub correlation_id: Option<String>,
}

impl McpCaller {
    /// A proposal of this session from an MCP request with `params` (its `_meta` fields:
    /// correlation id, the user's request, on whose behalf). `Err`: an invalid `_meta` field,
    /// for an invalid-params error.
    pub(crate) fn proposal(
        &self,
        target: Target,
        arguments: Value,
        id: &Value,
        params: Option<&Map<String, Value>>,
    ) -> Result<Proposal, String> {
        let correlation = correlation_id(params)?.or_else(|| self.correlation_id.clone());
        Ok(Proposal {
            caller: self.principal.clone(),
            source: self.source,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_are_bounded_strings() {
        let params = |v: Value| json!({"_meta": {CORRELATION_ID_META: v}});
        let read = |v: Value| correlation_id(params(v).as_object());
        assert_eq!(read(json!("TICKET-1")), Ok(Some("TICKET-1".to_string())));
        assert!(read(json!(42)).is_err());
        assert!(read(json!("")).is_err());
        assert!(read(json!("x".repeat(4097))).is_err());
        assert_eq!(correlation_id(json!({}).as_object()), Ok(None));
    }
}
