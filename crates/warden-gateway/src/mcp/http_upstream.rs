//! Upstream MCP servers over streamable HTTP.
//!
//! Warden is the MCP client: it initialises the server (keeping the `Mcp-Session-Id` it is
//! given), lists its tools, and posts `tools/call` requests. A response may come as JSON or as
//! an SSE stream; either way the JSON-RPC response with the request's id is taken. Credentials
//! are headers from `warden.toml`; the agent's own key is never sent.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{json, Value};

use super::backoff::Backoff;
use super::client::{list_all_tools, UpstreamError, PROTOCOL_VERSION};

/// One streamable-HTTP upstream.
pub struct HttpUpstream {
    pub name: String,
    url: String,
    headers: Vec<(String, String)>,
    client: reqwest::Client,
    session: RwLock<Option<String>>,
    tools: RwLock<Vec<Value>>,
    next_id: AtomicU64,
    up: AtomicBool,
}

/// Pick the JSON-RPC message with `id` out of a response body: a JSON object, or an SSE stream
/// whose `data:` lines carry messages.
fn response_for(body: &str, content_type: &str, id: u64) -> Option<Value> {
    let matches = |v: &Value| v.get("id").and_then(Value::as_u64) == Some(id);
    if content_type.starts_with("text/event-stream") {
        let mut data = String::new();
        for line in body.lines().chain(std::iter::once("")) {
            if let Some(rest) = line.strip_prefix("data:") {
                data.push_str(rest.trim_start());
                data.push('\n');
            } else if line.is_empty() && !data.is_empty() {
                if let Ok(v) = serde_json::from_str::<Value>(&data) {
                    if matches(&v) {
                        return Some(v);
                    }
                }
                data.clear();
            }
        }
        None
    } else {
        serde_json::from_str::<Value>(body).ok().filter(matches)
    }
}

impl HttpUpstream {
    /// Connect in the background, retrying with back-off until the server answers.
    pub fn spawn(
        name: String,
        url: String,
        headers: Vec<(String, String)>,
        timeout: Duration,
    ) -> Arc<Self> {
        // Redirects are not followed: reqwest strips only `Authorization` when a redirect
        // leaves the host, so a configured `X-Api-Key` would go wherever a 3xx points.
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let up = Arc::new(Self {
            name,
            url,
            headers,
            client,
            session: RwLock::new(None),
            tools: RwLock::new(Vec::new()),
            next_id: AtomicU64::new(1),
            up: AtomicBool::new(false),
        });
        let connecting = Arc::clone(&up);
        tokio::spawn(async move { connecting.connect_with_backoff().await });
        up
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub fn tools(&self) -> Vec<Value> {
        self.tools.read().map(|t| t.clone()).unwrap_or_default()
    }

    /// Connect, retrying until the server answers. Each reconnection starts a new loop, so its
    /// delays start again from the first.
    async fn connect_with_backoff(self: Arc<Self>) {
        let mut backoff = Backoff::upstream();
        loop {
            match self.connect().await {
                Ok(()) => {
                    tracing::info!(message = "upstream ready", upstream = %self.name);
                    return;
                }
                Err(error) => {
                    tracing::warn!(message = "upstream not reachable; retrying", upstream = %self.name, %error);
                }
            }
            backoff.wait().await;
        }
    }

    async fn connect(&self) -> Result<(), String> {
        if let Ok(mut s) = self.session.write() {
            *s = None;
        }
        let init = self
            .post(
                "initialize",
                json!({"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                       "clientInfo": {"name": "warden", "version": env!("CARGO_PKG_VERSION")}}),
            )
            .await
            .map_err(|e| e.to_string())?;
        if let Some(error) = init.get("error") {
            return Err(format!("initialize was refused: {error}"));
        }
        self.notify("notifications/initialized").await;
        let tools = list_all_tools(|params| self.post("tools/list", params)).await?;
        if let Ok(mut t) = self.tools.write() {
            *t = tools;
        }
        self.up.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn builder(&self, body: String) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL_VERSION)
            .body(body);
        if let Some(s) = self.session.read().ok().and_then(|s| s.clone()) {
            req = req.header("mcp-session-id", s);
        }
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        req
    }

    async fn notify(&self, method: &str) {
        let body = json!({"jsonrpc": "2.0", "method": method}).to_string();
        if let Err(error) = self.builder(body).send().await {
            tracing::warn!(message = "upstream notification failed", upstream = %self.name, %error);
        }
    }

    async fn post(&self, method: &str, params: Value) -> Result<Value, UpstreamError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body =
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        let resp = self.builder(body).send().await.map_err(|e| {
            if e.is_timeout() {
                UpstreamError::Timeout(self.name.clone(), 0)
            } else {
                UpstreamError::Down(self.name.clone())
            }
        })?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND && method != "initialize" {
            // The server forgot our session: reconnect for the next call.
            self.up.store(false, Ordering::Relaxed);
            return Err(UpstreamError::Down(self.name.clone()));
        }
        if let Some(s) = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            if let Ok(mut slot) = self.session.write() {
                *slot = Some(s.to_string());
            }
        }
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = resp
            .text()
            .await
            .map_err(|_| UpstreamError::Exited(self.name.clone()))?;
        response_for(&text, &content_type, id)
            .ok_or_else(|| UpstreamError::Exited(self.name.clone()))
    }

    /// Send one request; returns the upstream's JSON-RPC response message.
    pub async fn request(
        self: &Arc<Self>,
        method: &str,
        params: Value,
    ) -> Result<Value, UpstreamError> {
        if !self.is_up() {
            let me = Arc::clone(self);
            tokio::spawn(async move { me.connect_with_backoff().await });
            return Err(UpstreamError::Down(self.name.clone()));
        }
        self.post(method, params).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_found_in_json_and_in_sse_streams() {
        let sse = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n";
        assert_eq!(
            response_for(sse, "text/event-stream", 7),
            Some(json!({"jsonrpc": "2.0", "id": 7, "result": {}}))
        );
        assert_eq!(response_for(sse, "text/event-stream", 8), None);
        assert!(response_for(
            "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}",
            "application/json",
            3
        )
        .is_some());
    }
}
