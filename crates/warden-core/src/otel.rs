//! OpenTelemetry spans for tool calls, following the GenAI semantic conventions (status:
//! development): one span named `execute_tool {gen_ai.tool.name}`, kind `INTERNAL`, with
//! `gen_ai.operation.name = "execute_tool"`, `gen_ai.tool.name`, `gen_ai.tool.call.id` and
//! `error.type` when the call did not complete, plus Warden's own `warden.*` attributes.
//!
//! Argument values and tool outputs never go into a span: the conventions make
//! `gen_ai.tool.call.arguments` and `gen_ai.tool.call.result` opt-in because they are
//! sensitive, and Warden offers no opt-in (the ledger keeps them, redacted).
//!
//! Pure: ids, times and the resource come in from the caller; [`otlp_json`] encodes spans as
//! an OTLP/HTTP JSON `ExportTraceServiceRequest` (OTLP 1.x: trace and span ids as hex,
//! enumerations as integers, 64-bit integers as decimal strings). Trace context comes from a
//! W3C `traceparent` ([`TraceParent::parse`]).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::ledger::{DecisionEvent, OutcomeEvent};
use crate::policy::Verdict;

/// `error.type` values Warden reports on `execute_tool` spans (low cardinality, as the
/// conventions ask; each is documented in the README).
pub mod error_type {
    /// The policy (or a rate limit, a token scope, a tool pin) denied the call.
    pub const DENIED: &str = "denied";
    /// The call is held for a human approval and did not run (or the approval was refused
    /// or expired while an MCP client waited).
    pub const APPROVAL_REQUIRED: &str = "approval_required";
    /// The ledger could not record the decision, so the call did not run (fail closed).
    pub const LEDGER_UNAVAILABLE: &str = "ledger_unavailable";
    /// The tool ran and reported an error (`isError`, a JSON-RPC error, or an outcome with
    /// `status = "error"`).
    pub const TOOL_ERROR: &str = "tool_error";
    /// The upstream tool server could not be reached or did not answer in time.
    pub const UPSTREAM_UNAVAILABLE: &str = "upstream_unavailable";
}

/// A W3C Trace Context `traceparent` header (version `00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub sampled: bool,
}

impl TraceParent {
    /// Parse `00-<32 hex>-<16 hex>-<2 hex>`. All-zero ids, upper-case hex, version `ff` and
    /// anything longer than 55 characters for version `00` are rejected, as the W3C Trace
    /// Context recommendation says; a later version is read for its first four fields.
    pub fn parse(header: &str) -> Option<Self> {
        let h = header.trim();
        if h.len() < 55 || h.len() > 512 {
            return None;
        }
        let mut parts = h.splitn(5, '-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let parent = parts.next()?;
        let flags = parts.next()?;
        let rest = parts.next();
        if version.len() != 2 || !is_lower_hex(version) || version == "ff" {
            return None;
        }
        if version == "00" && (rest.is_some() || h.len() != 55) {
            return None;
        }
        if flags.len() != 2 || !is_lower_hex(flags) {
            return None;
        }
        let trace_id: [u8; 16] = decode_hex(trace)?;
        let parent_id: [u8; 8] = decode_hex(parent)?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(Self {
            trace_id,
            parent_id,
            sampled: flags & 1 == 1,
        })
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 || !is_lower_hex(s) {
        return None;
    }
    let v = hex::decode(s).ok()?;
    v.try_into().ok()
}

/// Ids derived from a decision id, so that a span sent live and the same span rebuilt from
/// the ledger (`warden audit export --format otel`) carry the same span id.
pub fn span_id_for(decision_id: &str) -> [u8; 8] {
    let d = Sha256::digest(format!("warden/otel/span/{decision_id}").as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(d.get(..8).unwrap_or(&[1; 8]));
    if out == [0; 8] {
        out[7] = 1;
    }
    out
}

/// The trace id of a call that arrived without a `traceparent`.
pub fn trace_id_for(decision_id: &str) -> [u8; 16] {
    let d = Sha256::digest(format!("warden/otel/trace/{decision_id}").as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(d.get(..16).unwrap_or(&[1; 16]));
    if out == [0; 16] {
        out[15] = 1;
    }
    out
}

/// One tool call, as a span. Holds names and ids only: never argument values or outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallSpan {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    /// The tool as the agent named it (`gen_ai.tool.name`).
    pub tool: String,
    /// `server/name` when known (`warden.tool.qualified`).
    pub qualified_tool: Option<String>,
    /// The caller's id of this tool call (`gen_ai.tool.call.id`): the correlation id it
    /// gave, else the decision id.
    pub call_id: Option<String>,
    pub decision_id: Option<String>,
    /// `allow`, `deny` or `approval_required`; none when no decision was recorded.
    pub decision: Option<String>,
    pub agent: String,
    /// `api`, `mcp-http`, ...
    pub source: String,
    pub session: Option<String>,
    /// The JSON-RPC id of an MCP request, as JSON text.
    pub mcp_request_id: Option<String>,
    pub policy_version: Option<String>,
    /// `error.type`: one of [`error_type`], or none when the call completed.
    pub error_type: Option<String>,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
}

impl ToolCallSpan {
    /// `execute_tool {gen_ai.tool.name}`.
    pub fn name(&self) -> String {
        format!("execute_tool {}", self.tool)
    }

    /// The span's attributes, in a fixed order: the conventions' first, then Warden's.
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        // The framework runs tools it asked the decision API about; over MCP the gateway
        // runs them on the agent's behalf.
        let tool_type = if self.source == "api" {
            "function"
        } else {
            "extension"
        };
        let mcp = self.source.starts_with("mcp");
        let some = |v: &str| Some(v.to_string());
        let fields: [(&'static str, Option<String>); 14] = [
            ("gen_ai.operation.name", some("execute_tool")),
            ("gen_ai.tool.name", Some(self.tool.clone())),
            ("gen_ai.tool.type", some(tool_type)),
            ("gen_ai.tool.call.id", self.call_id.clone()),
            ("error.type", self.error_type.clone()),
            ("warden.decision", self.decision.clone()),
            ("warden.decision_id", self.decision_id.clone()),
            ("warden.agent", Some(self.agent.clone())),
            ("warden.source", Some(self.source.clone())),
            ("warden.tool.qualified", self.qualified_tool.clone()),
            ("warden.policy_version", self.policy_version.clone()),
            ("mcp.method.name", mcp.then(|| "tools/call".to_string())),
            (
                if mcp {
                    "mcp.session.id"
                } else {
                    "warden.session"
                },
                self.session.clone(),
            ),
            (
                "jsonrpc.request.id",
                self.mcp_request_id.clone().filter(|_| mcp),
            ),
        ];
        fields
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect()
    }

    /// The span of a recorded decision and, for an allowed call, its outcome (if reported).
    /// Times are nanoseconds since the Unix epoch of the records. An allowed call with no
    /// outcome yet gives `None`: it has not finished.
    pub fn from_ledger(
        d: &DecisionEvent,
        decided_unix_nano: u64,
        outcome: Option<(&OutcomeEvent, u64)>,
    ) -> Option<Self> {
        let (end, error) = match d.decision.decision {
            Verdict::Deny => (decided_unix_nano, Some(error_type::DENIED)),
            Verdict::ApprovalRequired => (decided_unix_nano, Some(error_type::APPROVAL_REQUIRED)),
            Verdict::Allow => {
                let (o, at) = outcome?;
                let error = (o.status != "success").then_some(error_type::TOOL_ERROR);
                (at.max(decided_unix_nano), error)
            }
        };
        Some(Self {
            trace_id: trace_id_for(&d.decision_id),
            span_id: span_id_for(&d.decision_id),
            parent_span_id: None,
            tool: d.tool.clone(),
            qualified_tool: d.qualified_tool.clone(),
            call_id: Some(
                d.correlation_id
                    .clone()
                    .unwrap_or_else(|| d.decision_id.clone()),
            ),
            decision_id: Some(d.decision_id.clone()),
            decision: Some(d.decision.decision.as_str().to_string()),
            agent: d.agent.clone(),
            source: d.source.clone(),
            session: d.session.clone(),
            mcp_request_id: d.mcp_request_id.as_ref().map(Value::to_string),
            policy_version: Some(d.decision.policy_version.clone()),
            error_type: error.map(str::to_string),
            start_unix_nano: decided_unix_nano,
            end_unix_nano: end,
        })
    }
}

/// The resource the spans come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// `service.name`.
    pub service_name: String,
    /// `service.version`.
    pub service_version: String,
    /// `deployment.environment.name`: the gateway's environment.
    pub environment: String,
}

/// OTLP span kind `SPAN_KIND_INTERNAL`.
const KIND_INTERNAL: u64 = 1;
/// OTLP status code `STATUS_CODE_ERROR` (success leaves the status unset).
const STATUS_ERROR: u64 = 2;

fn string_attr(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

/// An OTLP/HTTP JSON `ExportTraceServiceRequest` with these spans (one resource, one scope).
pub fn otlp_json(resource: &Resource, spans: &[ToolCallSpan]) -> Value {
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let mut span = json!({
                "traceId": hex::encode(s.trace_id),
                "spanId": hex::encode(s.span_id),
                "name": s.name(),
                "kind": KIND_INTERNAL,
                "startTimeUnixNano": s.start_unix_nano.to_string(),
                "endTimeUnixNano": s.end_unix_nano.max(s.start_unix_nano).to_string(),
                "attributes": s
                    .attributes()
                    .iter()
                    .map(|(k, v)| string_attr(k, v))
                    .collect::<Vec<_>>(),
            });
            if let Some(obj) = span.as_object_mut() {
                if let Some(p) = s.parent_span_id {
                    obj.insert("parentSpanId".into(), Value::String(hex::encode(p)));
                }
                if let Some(e) = &s.error_type {
                    obj.insert("status".into(), json!({"code": STATUS_ERROR, "message": e}));
                }
            }
            span
        })
        .collect();
    json!({
        "resourceSpans": [{
            "resource": {
                "attributes": [
                    string_attr("service.name", &resource.service_name),
                    string_attr("service.version", &resource.service_version),
                    string_attr("deployment.environment.name", &resource.environment),
                ],
            },
            "scopeSpans": [{
                "scope": {"name": "warden", "version": resource.service_version},
                "spans": spans,
            }],
        }],
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_accepts_the_w3c_example_and_refuses_bad_ones() {
        let tp =
            TraceParent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
        assert_eq!(hex::encode(tp.trace_id), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(hex::encode(tp.parent_id), "b7ad6b7169203331");
        assert!(tp.sampled);
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-011",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
        // A later version may append fields.
        let later =
            TraceParent::parse("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-more")
                .unwrap();
        assert!(!later.sampled);
    }

    fn span(error: Option<&str>) -> ToolCallSpan {
        ToolCallSpan {
            trace_id: trace_id_for("d-1"),
            span_id: span_id_for("d-1"),
            parent_span_id: Some([7; 8]),
            tool: "echo".into(),
            qualified_tool: Some("everything/echo".into()),
            call_id: Some("d-1".into()),
            decision_id: Some("d-1".into()),
            decision: Some("deny".into()),
            agent: "a".into(),
            source: "mcp-http".into(),
            session: Some("s-1".into()),
            mcp_request_id: Some("3".into()),
            policy_version: Some("v1".into()),
            error_type: error.map(str::to_string),
            start_unix_nano: 1_700_000_000_000_000_000,
            end_unix_nano: 1_700_000_000_500_000_000,
        }
    }

    #[test]
    fn otlp_json_has_the_genai_shape() {
        let r = Resource {
            service_name: "warden".into(),
            service_version: "0.1.0".into(),
            environment: "prod".into(),
        };
        let v = otlp_json(&r, &[span(Some(error_type::DENIED)), span(None)]);
        let spans = &v["resourceSpans"][0]["scopeSpans"][0]["spans"];
        let s = &spans[0];
        assert_eq!(s["name"], "execute_tool echo");
        assert_eq!(s["kind"], 1);
        assert_eq!(s["traceId"].as_str().unwrap().len(), 32);
        assert_eq!(s["spanId"], hex::encode(span_id_for("d-1")));
        assert_eq!(s["parentSpanId"], "0707070707070707");
        assert_eq!(s["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(s["status"]["code"], 2);
        let attr = |s: &Value, k: &str| {
            s["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["key"] == k)
                .map(|a| a["value"]["stringValue"].as_str().unwrap().to_string())
        };
        assert_eq!(
            attr(s, "gen_ai.operation.name").as_deref(),
            Some("execute_tool")
        );
        assert_eq!(attr(s, "gen_ai.tool.type").as_deref(), Some("extension"));
        assert_eq!(attr(s, "error.type").as_deref(), Some("denied"));
        assert_eq!(attr(s, "mcp.session.id").as_deref(), Some("s-1"));
        assert_eq!(attr(&spans[1], "error.type"), None);
        assert!(spans[1].get("status").is_none());
        assert_eq!(
            v["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
            "warden"
        );
    }

    #[test]
    fn derived_ids_are_stable_and_never_zero() {
        assert_eq!(span_id_for("x"), span_id_for("x"));
        assert_ne!(span_id_for("x"), span_id_for("y"));
        assert_ne!(trace_id_for("x"), [0; 16]);
    }
}
