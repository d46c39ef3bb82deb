//! Warden as an MCP client of its upstreams, whatever their transport: the protocol version it
//! speaks, how a request can fail, and paging through `tools/list`.

use serde_json::{json, Value};

/// MCP protocol version Warden speaks to upstreams.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// Why a request to an upstream failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream `{0}` is not running (it is being restarted)")]
    Down(String),
    #[error("upstream `{0}` did not answer within {1} s")]
    Timeout(String, u64),
    #[error("upstream `{0}` exited while the call was in flight")]
    Exited(String),
}

/// Every page of `tools/list`, following `nextCursor`.
pub(crate) async fn list_all_tools<F, Fut>(mut request: F) -> Result<Vec<Value>, String>
where
    F: FnMut(Value) -> Fut,
    Fut: std::future::Future<Output = Result<Value, UpstreamError>>,
{
    let mut tools = Vec::new();
    let mut cursor: Option<Value> = None;
    loop {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let page = request(params).await.map_err(|e| e.to_string())?;
        if let Some(list) = page.pointer("/result/tools").and_then(Value::as_array) {
            tools.extend(list.iter().cloned());
        }
        cursor = page
            .pointer("/result/nextCursor")
            .cloned()
            .filter(|c| !c.is_null());
        if cursor.is_none() {
            return Ok(tools);
        }
    }
}
