//! `warden serve` over TLS (rustls) with a generated certificate, checked by a client that
//! trusts only that certificate; located errors for bad TLS settings; OpenTelemetry
//! `execute_tool` spans received by a real local OTLP/HTTP endpoint; `audit export --format
//! otel|ocsf` with `--since`/`--until`.

// Test code: a panic is a failed assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use common::{wait_until, Gateway, Http, Peer, Project, Request};
use serde_json::{json, Value};

/// A certificate for localhost and 127.0.0.1 in `dir/tls/`; returns its PEM.
fn write_cert(dir: &Path) -> String {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    std::fs::create_dir_all(dir.join("tls")).unwrap();
    let pem = ck.cert.pem();
    std::fs::write(dir.join("tls/cert.pem"), &pem).unwrap();
    std::fs::write(dir.join("tls/key.pem"), ck.signing_key.serialize_pem()).unwrap();
    pem
}

const TLS: &str = "\n[gateway.tls]\ncert_file = \"tls/cert.pem\"\nkey_file = \"tls/key.pem\"\n";

#[test]
fn tls_listener_serves_health_and_mcp_to_a_client_that_trusts_its_certificate() {
    let project = Project::with_config(TLS);
    let pem = write_cert(project.dir());
    let out = project.ok(&["check"]);
    assert!(out.contains("tls: certificate and key load"));

    let gateway = project.serve();
    assert!(
        gateway.base.starts_with("https://127.0.0.1:"),
        "{}",
        gateway.base
    );
    let port = gateway.port();
    let key = project.agent_key("support-triage");
    let client = Http::trusting(&pem);
    // By IP and by name: the certificate covers both.
    for host in ["127.0.0.1", "localhost"] {
        let r = client.get(&format!("https://{host}:{port}/healthz"));
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), json!({"status": "ok"}));
    }
    // MCP initialize over https.
    let r = client.send(
        client
            .client()
            .post(format!("https://localhost:{port}/mcp"))
            .bearer_auth(&key)
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "tls-test", "version": "0"}}}),
            ),
    );
    assert_eq!(r.status, 200);
    assert!(r.header("mcp-session-id").is_some());
    let v = r.json();
    assert_eq!(v["result"]["serverInfo"]["name"], "warden", "{v}");

    // A client that does not trust the certificate refuses the connection.
    let stranger = Http::with(reqwest::Client::builder().tls_built_in_root_certs(false));
    let e = stranger
        .try_send(
            stranger
                .client()
                .get(format!("https://localhost:{port}/healthz")),
        )
        .unwrap_err();
    assert!(e.is_connect(), "{e:?}");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = Http::new();
    let r = plain.try_send(
        plain
            .client()
            .get(format!("http://127.0.0.1:{port}/healthz")),
    );
    assert!(r.is_err(), "{r:?}");
    // The same, byte by byte (raw TCP on purpose: whatever comes back must not be HTTP).
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    // The gateway still serves TLS after the bad connection.
    let r = Http::trusting(&pem).get(&format!("https://127.0.0.1:{port}/healthz"));
    assert_eq!(r.status, 200);
    gateway.stop();
}

#[test]
fn tls_setting_errors_name_the_setting_and_the_file_never_the_key() {
    let project = Project::with_config(TLS);
    let line_of = |needle: &str| {
        project
            .read("warden.toml")
            .lines()
            .position(|l| l.starts_with(needle))
            .unwrap()
            + 1
    };
    // Missing certificate: `check` and `serve` both say where and which file.
    for args in [&["check"][..], &["serve", "--listen", "127.0.0.1:0"]] {
        let out = project.fails(args);
        let want = format!(
            "warden.toml:{}:13: error: [gateway.tls] cert_file: {}: cannot read the TLS certificate file",
            line_of("cert_file = \"tls/"),
            project.path("tls/cert.pem").display()
        );
        assert!(out.contains(&want), "{args:?}: {out}");
    }
    // A key that is not a key: named, its bytes not shown.
    write_cert(project.dir());
    let garbage = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj";
    project.write(
        "tls/key.pem",
        &format!("-----BEGIN PRIVATE KEY-----\n{garbage}\n"),
    );
    let out = project.fails(&["check"]);
    assert!(
        out.contains(&format!(
            "warden.toml:{}:12: error: [gateway.tls] key_file: {}: the TLS key file is not valid PEM",
            line_of("key_file = \"tls/"),
            project.path("tls/key.pem").display()
        )),
        "{out}"
    );
    assert!(!out.contains(garbage), "{out}");
    // A key of another certificate.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    project.write("tls/key.pem", &other.signing_key.serialize_pem());
    let out = project.fails(&["check"]);
    assert!(out.contains("cannot be used together"), "{out}");
    assert!(!out.contains("PRIVATE KEY"), "{out}");
    // `enabled = false` keeps the table and serves plain HTTP.
    let config = project.read("warden.toml");
    project.write(
        "warden.toml",
        &config.replace("\n[gateway.tls]\n", "\n[gateway.tls]\nenabled = false\n"),
    );
    let gateway = project.serve();
    assert!(gateway.base.starts_with("http://"), "{}", gateway.base);
    gateway.stop();
    // An unknown key in the table is a located error with a hint.
    project.write(
        "warden.toml",
        &config.replace("cert_file =", "cert_fiel = \"x\"\ncert_file ="),
    );
    let out = project.fails(&["check"]);
    assert!(
        out.contains(&format!(
            "warden.toml:{}:1: error: unknown field `cert_fiel`",
            line_of("cert_fiel")
        )),
        "{out}"
    );
    assert!(out.contains("did you mean `cert_file`?"), "{out}");
}

#[test]
fn a_bad_otlp_endpoint_is_a_located_error() {
    let project =
        Project::with_config("\n[telemetry]\notlp_endpoint = \"grpc://collector:4317\"\n");
    let out = project.fails(&["check"]);
    let line = project
        .read("warden.toml")
        .lines()
        .position(|l| l.starts_with("otlp_endpoint"))
        .unwrap()
        + 1;
    assert!(
        out.contains(&format!(
            "warden.toml:{line}:17: error: [telemetry] otlp_endpoint `grpc://collector:4317` is not an http:// or https:// URL"
        )),
        "{out}"
    );
}

/// Every span in what an OTLP receiver got, flattened.
fn spans(requests: &[Request]) -> Vec<Value> {
    requests
        .iter()
        .flat_map(|r| {
            r.json()["resourceSpans"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|rs| rs["scopeSpans"].as_array().cloned().unwrap_or_default())
        .flat_map(|ss| ss["spans"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn attr(span: &Value, key: &str) -> Option<String> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .and_then(|a| a["value"]["stringValue"].as_str())
        .map(str::to_string)
}

fn span_of<'a>(spans: &'a [Value], decision_id: &str) -> &'a Value {
    spans
        .iter()
        .find(|s| attr(s, "warden.decision_id").as_deref() == Some(decision_id))
        .unwrap_or_else(|| panic!("no span for {decision_id}: {spans:#?}"))
}

const PARENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";
const MCP_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const MCP_PARENT_SPAN: &str = "b7ad6b7169203331";
/// Distinctive argument values: none may appear in any span.
const SECRET_IDS: [&str; 2] = ["T-4711", "T-9312"];
const BAD_ID: &str = "not-a-ticket-QX7Z";

/// The four traced calls of the span test.
struct TracedCalls {
    ok_id: String,
    failed_id: String,
    denied_id: String,
    session: String,
    /// The MCP `tools/call` response, for messages.
    mcp_text: String,
}

/// Four calls with trace context: allowed and reported as succeeded, allowed and reported as
/// failed, denied by the argument constraint (all three over `/v1/decisions` with a
/// `traceparent` header), and one over MCP with the trace context in `params._meta`.
fn make_traced_calls(gateway: &Gateway, key: &str) -> TracedCalls {
    let http = Http::new();
    let c = http.client();
    let traceparent = format!("00-{PARENT_TRACE}-{PARENT_SPAN}-01");
    let propose = |body: Value| {
        let r = http.send(
            c.post(gateway.url("/v1/decisions"))
                .bearer_auth(key)
                .header("traceparent", &traceparent)
                .json(&body),
        );
        assert_eq!(r.status, 200);
        r.json()
    };
    let outcome = |id: &str, body: Value| {
        let url = gateway.url(&format!("/v1/decisions/{id}/outcome"));
        let r = http.send(c.post(url).bearer_auth(key).json(&body));
        assert_eq!(r.status, 200);
    };
    // Allowed, then reported as succeeded.
    let ok = propose(
        json!({"tool": "get_ticket", "arguments": {"ticket_id": SECRET_IDS[0]}, "correlation_id": "call_ok_1"}),
    );
    assert_eq!(ok["decision"], "allow");
    let ok_id = ok["id"].as_str().unwrap().to_string();
    outcome(
        &ok_id,
        json!({"status": "success", "output": {"subject": format!("about {}", SECRET_IDS[1])}}),
    );
    // Allowed, then reported as failed.
    let failed = propose(json!({"tool": "get_ticket", "arguments": {"ticket_id": SECRET_IDS[1]}}));
    let failed_id = failed["id"].as_str().unwrap().to_string();
    outcome(
        &failed_id,
        json!({"status": "error", "output": {"error": "ticket store down"}}),
    );
    // Denied by the argument constraint.
    let denied = propose(json!({"tool": "get_ticket", "arguments": {"ticket_id": BAD_ID}}));
    assert_eq!(denied["decision"], "deny");
    let denied_id = denied["id"].as_str().unwrap().to_string();
    // Over MCP, with the trace context in params._meta.
    let r = http.send(c.post(gateway.url("/mcp")).bearer_auth(key).json(
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "otel-test", "version": "0"}}}),
    ));
    let session = r.header("mcp-session-id").unwrap().to_string();
    let r = http.send(
        c.post(gateway.url("/mcp"))
            .bearer_auth(key)
            .header("mcp-session-id", &session)
            .json(
                &json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
                "name": "get_ticket", "arguments": {"ticket_id": SECRET_IDS[0]},
                "_meta": {"traceparent": format!("00-{MCP_TRACE}-{MCP_PARENT_SPAN}-01")}}}),
            ),
    );
    let v = r.json();
    assert_eq!(v["result"]["isError"], true, "{v}");
    TracedCalls {
        ok_id,
        failed_id,
        denied_id,
        session,
        mcp_text: v.to_string(),
    }
}

/// Every export request: the OTLP/HTTP JSON path, content type and configured header, a
/// resource with a service name — and no argument or output value.
fn assert_exports_are_otlp_json_without_values(requests: &[Request]) {
    for r in requests {
        assert_eq!(r.path, "/v1/traces");
        let content_type = r.header("content-type").unwrap_or("");
        assert!(content_type.starts_with("application/json"), "{r:?}");
        assert_eq!(r.header("authorization"), Some("Bearer otlp-test-token"));
        let body = r.json();
        let res = &body["resourceSpans"][0]["resource"]["attributes"];
        assert!(res.to_string().contains("\"service.name\""), "{res}");
        // No argument or output value, in any request.
        let all = body.to_string();
        for v in SECRET_IDS.iter().chain([&BAD_ID]) {
            assert!(!all.contains(v), "{v} leaked into a span: {all}");
        }
        assert!(!all.contains("ticket store down"));
    }
}

/// The GenAI semantic conventions on every span, and per call: decision, error type, status,
/// trace parent, tool type; the MCP call's session and JSON-RPC id.
fn assert_span_attributes(live: &[Value], calls: &TracedCalls) {
    for s in live {
        assert_eq!(s["name"], "execute_tool get_ticket");
        assert_eq!(s["kind"], 1);
        assert_eq!(
            attr(s, "gen_ai.operation.name").as_deref(),
            Some("execute_tool")
        );
        assert_eq!(attr(s, "gen_ai.tool.name").as_deref(), Some("get_ticket"));
        assert_eq!(attr(s, "warden.agent").as_deref(), Some("support-triage"));
        assert!(attr(s, "gen_ai.tool.call.id").is_some());
        let (a, b): (u64, u64) = (
            s["startTimeUnixNano"].as_str().unwrap().parse().unwrap(),
            s["endTimeUnixNano"].as_str().unwrap().parse().unwrap(),
        );
        assert!(a > 1_700_000_000_000_000_000 && a <= b, "{s}");
    }
    let ok = span_of(live, &calls.ok_id);
    assert_eq!(attr(ok, "warden.decision").as_deref(), Some("allow"));
    assert_eq!(
        attr(ok, "gen_ai.tool.call.id").as_deref(),
        Some("call_ok_1")
    );
    assert_eq!(attr(ok, "error.type"), None);
    assert!(ok.get("status").is_none(), "{ok}");
    assert_eq!(ok["traceId"], PARENT_TRACE);
    let failed = span_of(live, &calls.failed_id);
    assert_eq!(attr(failed, "error.type").as_deref(), Some("tool_error"));
    assert_eq!(failed["status"]["code"], 2);
    let denied = span_of(live, &calls.denied_id);
    assert_eq!(attr(denied, "error.type").as_deref(), Some("denied"));
    assert_eq!(attr(denied, "warden.decision").as_deref(), Some("deny"));
    assert_eq!(denied["parentSpanId"], PARENT_SPAN);
    assert_eq!(
        attr(denied, "gen_ai.tool.type").as_deref(),
        Some("function")
    );
    let mcp = live
        .iter()
        .find(|s| attr(s, "warden.source").as_deref() == Some("mcp-http"))
        .unwrap();
    assert_eq!(mcp["traceId"], MCP_TRACE);
    assert_eq!(mcp["parentSpanId"], MCP_PARENT_SPAN);
    assert_eq!(
        attr(mcp, "mcp.session.id").as_deref(),
        Some(calls.session.as_str())
    );
    assert_eq!(attr(mcp, "jsonrpc.request.id").as_deref(), Some("7"));
    // `serve` runs no MCP server for the demo upstreams: the card grants the tool, so the call
    // is decided as on every other door (allowed), and its failure to run is the outcome
    // (tests/mcp/tls.test.mjs traces one that runs).
    assert_eq!(
        attr(mcp, "warden.decision").as_deref(),
        Some("allow"),
        "{}",
        calls.mcp_text
    );
    assert!(calls
        .mcp_text
        .contains("no upstream `helpdesk` is configured"));
    assert_eq!(
        attr(mcp, "error.type").as_deref(),
        Some("upstream_unavailable")
    );
    assert_eq!(attr(mcp, "gen_ai.tool.type").as_deref(), Some("extension"));
}

#[test]
fn execute_tool_spans_reach_an_otlp_receiver_without_argument_values() {
    // A real OTLP/HTTP receiver on loopback: answers 200 `{}` (a full success) to each POST.
    let receiver = Peer::start(200, "{}");
    let project = Project::with_config(&format!(
        "\n[telemetry]\notlp_endpoint = \"http://{}\"\n[telemetry.otlp_headers]\nauthorization = {{ from_env = \"OTLP_TEST_TOKEN\" }}\n",
        receiver.addr
    ));
    let gateway = project
        .serving()
        .env("OTLP_TEST_TOKEN", "Bearer otlp-test-token")
        .start();
    let calls = make_traced_calls(&gateway, &project.agent_key("support-triage"));
    // Wait for the exporter (it batches for a fraction of a second), bounded.
    wait_until(Duration::from_secs(60), || {
        spans(&receiver.requests()).len() >= 4
    });
    let requests = receiver.requests();
    let live = spans(&requests);
    assert_eq!(live.len(), 4, "{live:#?}");
    assert_exports_are_otlp_json_without_values(&requests);
    assert_span_attributes(&live, &calls);
    gateway.stop();

    // The same calls rebuilt from the ledger carry the same span ids.
    let exported: Vec<Value> = project
        .stdout(&["audit", "export", "--format", "otel"])
        .lines()
        .flat_map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()
                .cloned()
                .unwrap()
        })
        .collect();
    assert_eq!(exported.len(), 4, "{exported:#?}");
    for id in [&calls.ok_id, &calls.failed_id, &calls.denied_id] {
        assert_eq!(
            span_of(&exported, id)["spanId"],
            span_of(&live, id)["spanId"]
        );
        assert_eq!(
            attr(span_of(&exported, id), "error.type"),
            attr(span_of(&live, id), "error.type")
        );
    }
    let all = serde_json::to_string(&exported).unwrap();
    for v in SECRET_IDS.iter().chain([&BAD_ID]) {
        assert!(!all.contains(v), "{v} in an exported span");
    }
}

#[test]
fn ocsf_and_otel_exports_keep_to_the_since_until_window() {
    let project = Project::init();
    let gateway = project.serve();
    let key = project.agent_key("support-triage");
    let propose = |ticket: &str| {
        gateway.propose(
            &key,
            &json!({"tool": "get_ticket", "arguments": {"ticket_id": ticket}}),
        )
    };
    let first = propose("bad-1");
    // The window boundary: a millisecond clearly after the first record and before the
    // second (the ledger stamps records in milliseconds). These sleeps are the point: time
    // must pass between the records and the boundary; nothing is waited for.
    std::thread::sleep(Duration::from_millis(5));
    let boundary = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let second = propose("bad-2");
    gateway.stop();
    let ocsf = |args: &[&str]| {
        project
            .stdout(&[&["audit", "export", "--format", "ocsf"], args].concat())
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["metadata"]["uid"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ocsf(&[]), vec![first["id"].clone(), second["id"].clone()]);
    assert_eq!(ocsf(&["--until", &boundary]), vec![first["id"].clone()]);
    assert_eq!(ocsf(&["--since", &boundary]), vec![second["id"].clone()]);
    // Ages work for both ends; a reversed window is refused.
    assert_eq!(ocsf(&["--since", "1h", "--until", "0s"]).len(), 2);
    let out = project.fails(&[
        "audit", "export", "--format", "ocsf", "--since", "0s", "--until", "1h",
    ]);
    assert!(out.contains("must be before --until"), "{out}");
    let out = project.fails(&["audit", "export", "--until", "yesterday"]);
    assert!(
        out.contains("--until: `yesterday` is neither an RFC 3339 time"),
        "{out}"
    );
    // OTel export keeps to the window too: the denied second call only.
    let out = project.stdout(&["audit", "export", "--format", "otel", "--since", &boundary]);
    assert!(out.contains(second["id"].as_str().unwrap()), "{out}");
    assert!(!out.contains(first["id"].as_str().unwrap()), "{out}");
}
