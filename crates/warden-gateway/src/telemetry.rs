//! The OTLP/HTTP exporter of `execute_tool` spans.
//!
//! Handlers hand finished spans to [`Telemetry::record`], which never waits: spans go into a
//! bounded queue (full: the span is dropped and counted) and a background task sends them in
//! batches, as OTLP/HTTP JSON, to `[telemetry] otlp_endpoint`. A collector that is down costs
//! spans, never calls. Spans carry names and ids only (see `warden_core::otel`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use warden_core::otel::{otlp_json, Resource, ToolCallSpan, TraceParent};

/// Spans waiting to be sent; past this, new spans are dropped.
const QUEUE: usize = 8192;
/// Most spans in one export request.
const BATCH: usize = 512;
/// How long the exporter waits for more spans before it sends a batch.
const LINGER: Duration = Duration::from_millis(200);
/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

enum Msg {
    Span(Box<ToolCallSpan>),
    Flush(oneshot::Sender<()>),
}

/// A handle on the exporter. Cheap to share.
pub struct Telemetry {
    tx: mpsc::Sender<Msg>,
    dropped: AtomicU64,
    exported: Arc<AtomicU64>,
    /// The trace context of allowed decision-API calls, kept until their outcome arrives and
    /// ends their span.
    open_calls: std::sync::Mutex<std::collections::HashMap<String, TraceParent>>,
}

/// Most allowed calls whose trace context is kept while they run; past this, a call's span
/// takes the context of its outcome report instead.
const OPEN_CALLS: usize = 65_536;

/// Where spans go and what describes their source.
pub struct ExporterConfig {
    /// The full URL (`.../v1/traces`).
    pub url: String,
    /// Extra headers (a collector token); values are never logged.
    pub headers: Vec<(String, String)>,
    pub resource: Resource,
}

/// Why the exporter could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("[telemetry] otlp_headers: `{0}` is not a valid header name")]
    HeaderName(String),
    #[error("[telemetry] otlp_headers: the value of `{0}` is not a valid header value")]
    HeaderValue(String),
    #[error("[telemetry] the OTLP client could not be built: {0}")]
    Client(String),
}

impl Telemetry {
    /// Start the exporter task on the current runtime.
    pub fn spawn(config: ExporterConfig) -> Result<Arc<Self>, TelemetryError> {
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &config.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| TelemetryError::HeaderName(k.clone()))?;
            let mut value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|_| TelemetryError::HeaderValue(k.clone()))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        // The configured headers may hold credentials: a redirect is not followed.
        let client = reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .map_err(|e| TelemetryError::Client(e.to_string()))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let exported = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(
            rx,
            client,
            config.url,
            config.resource,
            Arc::clone(&exported),
        ));
        Ok(Arc::new(Self {
            tx,
            dropped: AtomicU64::new(0),
            exported,
            open_calls: std::sync::Mutex::new(std::collections::HashMap::new()),
        }))
    }

    /// Keep the trace context of an allowed call until its outcome is reported.
    pub(crate) fn open_call(&self, decision_id: &str, parent: Option<TraceParent>) {
        if let (Some(parent), Ok(mut open)) = (parent, self.open_calls.lock()) {
            if open.len() < OPEN_CALLS {
                open.insert(decision_id.to_string(), parent);
            }
        }
    }

    /// The trace context an allowed call was proposed under, if kept.
    pub(crate) fn close_call(&self, decision_id: &str) -> Option<TraceParent> {
        self.open_calls.lock().ok()?.remove(decision_id)
    }

    /// Queue a finished span; never waits.
    pub fn record(&self, span: ToolCallSpan) {
        if self.tx.try_send(Msg::Span(Box::new(span))).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    message = "telemetry queue full or closed; spans dropped",
                    dropped = n
                );
            }
        }
    }

    /// Send everything queued so far; waits at most `limit`.
    pub async fn flush(&self, limit: Duration) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Flush(ack)).await.is_ok() {
            let _ = tokio::time::timeout(limit, done).await;
        }
    }

    /// Spans dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Spans a collector accepted.
    pub fn exported(&self) -> u64 {
        self.exported.load(Ordering::Relaxed)
    }
}

async fn run(
    mut rx: mpsc::Receiver<Msg>,
    client: reqwest::Client,
    url: String,
    resource: Resource,
    exported: Arc<AtomicU64>,
) {
    let mut batch: Vec<ToolCallSpan> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut acks = Vec::new();
        let mut take = |m: Msg, batch: &mut Vec<ToolCallSpan>| match m {
            Msg::Span(s) => {
                batch.push(*s);
                false
            }
            Msg::Flush(ack) => {
                acks.push(ack);
                true
            }
        };
        let mut flush_now = take(first, &mut batch);
        let deadline = tokio::time::Instant::now() + LINGER;
        while !flush_now && batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => flush_now = take(m, &mut batch),
                Ok(None) | Err(_) => break,
            }
        }
        // A flush also takes whatever is already queued behind it.
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => {
                    take(m, &mut batch);
                }
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let n = batch.len() as u64;
            let body = otlp_json(&resource, &batch);
            batch.clear();
            match client.post(&url).json(&body).send().await {
                Ok(r) if r.status().is_success() => {
                    exported.fetch_add(n, Ordering::Relaxed);
                }
                Ok(r) => {
                    tracing::warn!(message = "OTLP export refused; spans dropped", status = %r.status(), spans = n);
                }
                Err(error) => {
                    // reqwest's error names the URL, never the headers.
                    tracing::warn!(message = "OTLP export failed; spans dropped", %error, spans = n);
                }
            }
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_unix_nano() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Nanoseconds since the Unix epoch of a ledger timestamp (RFC 3339).
pub fn ts_unix_nano(ts: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos()).ok()
}

/// The trace context a request carries: the `traceparent` header, or for MCP the
/// `params._meta.traceparent` the OpenTelemetry MCP conventions propagate.
pub fn trace_parent(
    headers: &axum::http::HeaderMap,
    params: Option<&serde_json::Value>,
) -> Option<TraceParent> {
    let from_meta = params
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get("traceparent"))
        .and_then(serde_json::Value::as_str)
        .and_then(TraceParent::parse);
    from_meta.or_else(|| {
        headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(TraceParent::parse)
    })
}

/// What a handler knows about a tool call when it ends; [`span`] turns it into a span.
#[derive(Debug, Default, Clone)]
pub(crate) struct CallTrace {
    pub tool: String,
    pub qualified_tool: Option<String>,
    pub correlation_id: Option<String>,
    pub decision_id: Option<String>,
    pub decision: Option<&'static str>,
    pub policy_version: Option<String>,
    pub error_type: Option<&'static str>,
    pub session: Option<String>,
    pub mcp_request_id: Option<String>,
}

/// The span of a finished call.
pub(crate) fn span(
    t: CallTrace,
    agent: &str,
    source: &str,
    parent: Option<TraceParent>,
    start_unix_nano: u64,
) -> ToolCallSpan {
    use warden_core::otel::{span_id_for, trace_id_for};
    // A call refused before a decision was recorded has no decision id: its ids come from a
    // fresh one.
    let key = t.decision_id.clone().unwrap_or_else(crate::new_id);
    ToolCallSpan {
        trace_id: parent.map_or_else(|| trace_id_for(&key), |p| p.trace_id),
        span_id: span_id_for(&key),
        parent_span_id: parent.map(|p| p.parent_id),
        tool: t.tool,
        qualified_tool: t.qualified_tool,
        call_id: t.correlation_id.or_else(|| t.decision_id.clone()),
        decision_id: t.decision_id,
        decision: t.decision.map(str::to_string),
        agent: agent.to_string(),
        source: source.to_string(),
        session: t.session,
        mcp_request_id: t.mcp_request_id,
        policy_version: t.policy_version,
        error_type: t.error_type.map(str::to_string),
        start_unix_nano,
        end_unix_nano: now_unix_nano(),
    }
}
