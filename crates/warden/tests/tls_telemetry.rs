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

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn warden() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_warden"));
    c.env_remove("WARDEN_PROJECT").env("WARDEN_LOG", "warn");
    c
}

fn run(args: &[&str]) -> Output {
    warden().args(args).output().expect("warden runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn key_of(dir: &Path, agent: &str) -> String {
    std::fs::read_to_string(dir.join("agent-keys.txt"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(a, _)| *a == agent)
        .map(|(_, k)| k.to_string())
        .unwrap()
}

fn project(extra_config: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    let o = run(&["init", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let toml = dir.join("warden.toml");
    let mut config = std::fs::read_to_string(&toml).unwrap();
    config.push_str(extra_config);
    std::fs::write(&toml, config).unwrap();
    (tmp, dir)
}

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

struct Server {
    child: Child,
    /// `https://127.0.0.1:PORT` or `http://...`.
    base: String,
}

impl Server {
    fn start(dir: &Path) -> Self {
        let mut child = warden()
            .args([
                "serve",
                "-p",
                dir.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        Self { child, base }
    }

    fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// SIGTERM, and wait for a clean exit (spans and the ledger are flushed on the way out).
    fn stop(mut self) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A client that trusts only `pem` (no system roots).
fn trusting(pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

#[test]
fn tls_listener_serves_health_and_mcp_to_a_client_that_trusts_its_certificate() {
    let (_tmp, dir) = project(TLS);
    let pem = write_cert(&dir);
    let o = run(&["check", "-p", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("tls: certificate and key load"));

    let server = Server::start(&dir);
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );
    let port = server.port();
    let key = key_of(&dir, "support-triage");
    let rt = runtime();
    rt.block_on(async {
        let client = trusting(&pem);
        // By IP and by name: the certificate covers both.
        for host in ["127.0.0.1", "localhost"] {
            let r = client
                .get(format!("https://{host}:{port}/healthz"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
        }
        // MCP initialize over https.
        let r = client
            .post(format!("https://localhost:{port}/mcp"))
            .bearer_auth(&key)
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "tls-test", "version": "0"}}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("mcp-session-id").is_some());
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["result"]["serverInfo"]["name"], "warden", "{v}");

        // A client that does not trust the certificate refuses the connection.
        let stranger = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .build()
            .unwrap();
        let e = stranger
            .get(format!("https://localhost:{port}/healthz"))
            .send()
            .await
            .unwrap_err();
        assert!(e.is_connect(), "{e:?}");
        // Plain HTTP to the TLS port gets no HTTP answer.
        let plain = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await;
        assert!(plain.is_err(), "{plain:?}");
    });
    // The same, byte by byte: whatever comes back is not an HTTP response.
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
    rt.block_on(async {
        let r = trusting(&pem)
            .get(format!("https://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    });
    server.stop();
}

#[test]
fn tls_setting_errors_name_the_setting_and_the_file_never_the_key() {
    let (_tmp, dir) = project(TLS);
    let p = dir.to_str().unwrap();
    let line_of = |needle: &str| {
        std::fs::read_to_string(dir.join("warden.toml"))
            .unwrap()
            .lines()
            .position(|l| l.starts_with(needle))
            .unwrap()
            + 1
    };
    // Missing certificate: `check` and `serve` both say where and which file.
    for cmd in ["check", "serve"] {
        let o =
            run(&[cmd, "-p", p, "--listen", "127.0.0.1:0"][..if cmd == "check" { 3 } else { 5 }]);
        assert!(!o.status.success(), "{cmd}: {}", text(&o));
        let want = format!(
            "warden.toml:{}:13: error: [gateway.tls] cert_file: {}: cannot read the TLS certificate file",
            line_of("cert_file = \"tls/"),
            dir.join("tls/cert.pem").display()
        );
        assert!(text(&o).contains(&want), "{cmd}: {}", text(&o));
    }
    // A key that is not a key: named, its bytes not shown.
    write_cert(&dir);
    let garbage = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj";
    std::fs::write(
        dir.join("tls/key.pem"),
        format!("-----BEGIN PRIVATE KEY-----\n{garbage}\n"),
    )
    .unwrap();
    let o = run(&["check", "-p", p]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains(&format!(
            "warden.toml:{}:12: error: [gateway.tls] key_file: {}: the TLS key file is not valid PEM",
            line_of("key_file = \"tls/"),
            dir.join("tls/key.pem").display()
        )),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains(garbage), "{}", text(&o));
    // A key of another certificate.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("tls/key.pem"), other.signing_key.serialize_pem()).unwrap();
    let o = run(&["check", "-p", p]);
    assert!(!o.status.success());
    assert!(text(&o).contains("cannot be used together"), "{}", text(&o));
    assert!(!text(&o).contains("PRIVATE KEY"), "{}", text(&o));
    // `enabled = false` keeps the table and serves plain HTTP.
    let toml = dir.join("warden.toml");
    let config = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        config.replace("\n[gateway.tls]\n", "\n[gateway.tls]\nenabled = false\n"),
    )
    .unwrap();
    let server = Server::start(&dir);
    assert!(server.base.starts_with("http://"), "{}", server.base);
    server.stop();
    // An unknown key in the table is a located error with a hint.
    std::fs::write(
        &toml,
        config.replace("cert_file =", "cert_fiel = \"x\"\ncert_file ="),
    )
    .unwrap();
    let o = run(&["check", "-p", p]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains(&format!(
            "warden.toml:{}:1: error: unknown field `cert_fiel`",
            line_of("cert_fiel")
        )),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("did you mean `cert_file`?"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_bad_otlp_endpoint_is_a_located_error() {
    let (_tmp, dir) = project("\n[telemetry]\notlp_endpoint = \"grpc://collector:4317\"\n");
    let o = run(&["check", "-p", dir.to_str().unwrap()]);
    assert!(!o.status.success());
    let line = std::fs::read_to_string(dir.join("warden.toml"))
        .unwrap()
        .lines()
        .position(|l| l.starts_with("otlp_endpoint"))
        .unwrap()
        + 1;
    assert!(
        text(&o).contains(&format!(
            "warden.toml:{line}:17: error: [telemetry] otlp_endpoint `grpc://collector:4317` is not an http:// or https:// URL"
        )),
        "{}",
        text(&o)
    );
}

/// One request an OTLP receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    content_type: String,
    auth: String,
    body: Value,
}

/// A real OTLP/HTTP receiver on loopback: answers 200 `{}` (a full success) to each POST and
/// keeps what it got.
fn otlp_receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let keep = keep.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                loop {
                    let mut start = String::new();
                    if r.read_line(&mut start).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = start.split_whitespace().nth(1).unwrap_or("").to_string();
                    let (mut len, mut ctype, mut auth) = (0usize, String::new(), String::new());
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (k, v) = h.split_once(':').unwrap();
                        match k.to_ascii_lowercase().as_str() {
                            "content-length" => len = v.trim().parse().unwrap(),
                            "content-type" => ctype = v.trim().to_string(),
                            "authorization" => auth = v.trim().to_string(),
                            _ => {}
                        }
                    }
                    let mut body = vec![0u8; len];
                    r.read_exact(&mut body).unwrap();
                    keep.lock().unwrap().push(Received {
                        path,
                        content_type: ctype,
                        auth,
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    });
                    s.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
                    )
                    .unwrap();
                }
            });
        }
    });
    (addr, got)
}

/// Every span the receiver got, flattened.
fn spans(got: &Arc<Mutex<Vec<Received>>>) -> Vec<Value> {
    got.lock()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r.body["resourceSpans"]
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

#[test]
fn execute_tool_spans_reach_an_otlp_receiver_without_argument_values() {
    let (addr, got) = otlp_receiver();
    let (_tmp, dir) = project(&format!(
        "\n[telemetry]\notlp_endpoint = \"http://{addr}\"\n[telemetry.otlp_headers]\nauthorization = {{ from_env = \"OTLP_TEST_TOKEN\" }}\n"
    ));
    let mut child = warden()
        .args([
            "serve",
            "-p",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("OTLP_TEST_TOKEN", "Bearer otlp-test-token")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Server {
        base: line
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_string(),
        child,
    };
    let base = server.base.clone();
    let key = key_of(&dir, "support-triage");
    let parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{parent_trace}-{parent_span}-01");
    // Distinctive argument values: none may appear in any span.
    let secret_ids = ["T-4711", "T-9312"];
    let bad_id = "not-a-ticket-QX7Z";
    let rt = runtime();
    let ids = rt.block_on(async {
        let c = reqwest::Client::new();
        let propose = |body: Value| {
            let c = c.clone();
            let key = key.clone();
            let base = base.clone();
            let traceparent = traceparent.clone();
            async move {
                let r = c
                    .post(format!("{base}/v1/decisions"))
                    .bearer_auth(&key)
                    .header("traceparent", traceparent)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.json::<Value>().await.unwrap()
            }
        };
        // Allowed, then reported as succeeded.
        let ok = propose(json!({"tool": "get_ticket", "arguments": {"ticket_id": secret_ids[0]}, "correlation_id": "call_ok_1"})).await;
        assert_eq!(ok["decision"], "allow");
        let ok_id = ok["id"].as_str().unwrap().to_string();
        let r = c
            .post(format!("{base}/v1/decisions/{ok_id}/outcome"))
            .bearer_auth(&key)
            .json(&json!({"status": "success", "output": {"subject": format!("about {}", secret_ids[1])}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // Allowed, then reported as failed.
        let failed = propose(json!({"tool": "get_ticket", "arguments": {"ticket_id": secret_ids[1]}})).await;
        let failed_id = failed["id"].as_str().unwrap().to_string();
        let r = c
            .post(format!("{base}/v1/decisions/{failed_id}/outcome"))
            .bearer_auth(&key)
            .json(&json!({"status": "error", "output": {"error": "ticket store down"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // Denied by the argument constraint.
        let denied = propose(json!({"tool": "get_ticket", "arguments": {"ticket_id": bad_id}})).await;
        assert_eq!(denied["decision"], "deny");
        let denied_id = denied["id"].as_str().unwrap().to_string();
        // Over MCP, with the trace context in params._meta.
        let r = c
            .post(format!("{base}/mcp"))
            .bearer_auth(&key)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "otel-test", "version": "0"}}}))
            .send()
            .await
            .unwrap();
        let session = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
        let mcp_trace = "0af7651916cd43dd8448eb211c80319c";
        let r = c
            .post(format!("{base}/mcp"))
            .bearer_auth(&key)
            .header("mcp-session-id", &session)
            .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
                "name": "get_ticket", "arguments": {"ticket_id": secret_ids[0]},
                "_meta": {"traceparent": format!("00-{mcp_trace}-b7ad6b7169203331-01")}}}))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["result"]["isError"], true, "{v}");
        (ok_id, failed_id, denied_id, session, v.to_string())
    });
    let (ok_id, failed_id, denied_id, session, mcp_text) = ids;
    // Wait for the exporter (it batches for a fraction of a second), bounded.
    let deadline = Instant::now() + Duration::from_secs(60);
    while spans(&got).len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let live = spans(&got);
    assert_eq!(live.len(), 4, "{live:#?}");
    for r in got.lock().unwrap().iter() {
        assert_eq!(r.path, "/v1/traces");
        assert!(r.content_type.starts_with("application/json"), "{r:?}");
        assert_eq!(r.auth, "Bearer otlp-test-token");
        let res = &r.body["resourceSpans"][0]["resource"]["attributes"];
        assert!(res.to_string().contains("\"service.name\""), "{res}");
        // No argument or output value, in any request.
        let all = r.body.to_string();
        for v in secret_ids.iter().chain([&bad_id]) {
            assert!(!all.contains(v), "{v} leaked into a span: {all}");
        }
        assert!(!all.contains("ticket store down"));
    }
    for s in &live {
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
    let ok = span_of(&live, &ok_id);
    assert_eq!(attr(ok, "warden.decision").as_deref(), Some("allow"));
    assert_eq!(
        attr(ok, "gen_ai.tool.call.id").as_deref(),
        Some("call_ok_1")
    );
    assert_eq!(attr(ok, "error.type"), None);
    assert!(ok.get("status").is_none(), "{ok}");
    assert_eq!(ok["traceId"], parent_trace);
    let failed = span_of(&live, &failed_id);
    assert_eq!(attr(failed, "error.type").as_deref(), Some("tool_error"));
    assert_eq!(failed["status"]["code"], 2);
    let denied = span_of(&live, &denied_id);
    assert_eq!(attr(denied, "error.type").as_deref(), Some("denied"));
    assert_eq!(attr(denied, "warden.decision").as_deref(), Some("deny"));
    assert_eq!(denied["parentSpanId"], parent_span);
    assert_eq!(
        attr(denied, "gen_ai.tool.type").as_deref(),
        Some("function")
    );
    let mcp = live
        .iter()
        .find(|s| attr(s, "warden.source").as_deref() == Some("mcp-http"))
        .unwrap();
    assert_eq!(mcp["traceId"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(mcp["parentSpanId"], "b7ad6b7169203331");
    assert_eq!(
        attr(mcp, "mcp.session.id").as_deref(),
        Some(session.as_str())
    );
    assert_eq!(attr(mcp, "jsonrpc.request.id").as_deref(), Some("7"));
    // `serve` runs no MCP server for the demo upstreams, so the card's grant names no
    // running upstream and the call is denied (tests/mcp/tls.test.mjs traces an allowed one).
    assert_eq!(
        attr(mcp, "warden.decision").as_deref(),
        Some("deny"),
        "{mcp_text}"
    );
    assert_eq!(attr(mcp, "error.type").as_deref(), Some("denied"));
    assert_eq!(attr(mcp, "gen_ai.tool.type").as_deref(), Some("extension"));
    server.stop();

    // The same calls rebuilt from the ledger carry the same span ids.
    let o = run(&[
        "audit",
        "export",
        "-p",
        dir.to_str().unwrap(),
        "--format",
        "otel",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let exported: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
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
    for id in [&ok_id, &failed_id, &denied_id] {
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
    for v in secret_ids.iter().chain([&bad_id]) {
        assert!(!all.contains(v), "{v} in an exported span");
    }
}

#[test]
fn ocsf_and_otel_exports_keep_to_the_since_until_window() {
    let (_tmp, dir) = project("");
    let server = Server::start(&dir);
    let key = key_of(&dir, "support-triage");
    let rt = runtime();
    let propose = |ticket: &str| {
        rt.block_on(async {
            reqwest::Client::new()
                .post(format!("{}/v1/decisions", server.base))
                .bearer_auth(&key)
                .json(&json!({"tool": "get_ticket", "arguments": {"ticket_id": ticket}}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    let first = propose("bad-1");
    // The window boundary: a millisecond clearly after the first record and before the
    // second (the ledger stamps records in milliseconds).
    std::thread::sleep(Duration::from_millis(5));
    let boundary = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let second = propose("bad-2");
    server.stop();
    let p = dir.to_str().unwrap();
    let ocsf = |args: &[&str]| {
        let o = run(&[&["audit", "export", "-p", p, "--format", "ocsf"], args].concat());
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["metadata"]["uid"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ocsf(&[]), vec![first["id"].clone(), second["id"].clone()]);
    assert_eq!(ocsf(&["--until", &boundary]), vec![first["id"].clone()]);
    assert_eq!(ocsf(&["--since", &boundary]), vec![second["id"].clone()]);
    // Ages work for both ends; a reversed window is refused.
    assert_eq!(ocsf(&["--since", "1h", "--until", "0s"]).len(), 2);
    let o = run(&[
        "audit", "export", "-p", p, "--format", "ocsf", "--since", "0s", "--until", "1h",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("must be before --until"), "{}", text(&o));
    let o = run(&["audit", "export", "-p", p, "--until", "yesterday"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("--until: `yesterday` is neither an RFC 3339 time"),
        "{}",
        text(&o)
    );
    // OTel export keeps to the window too: the denied second call only.
    let o = run(&[
        "audit", "export", "-p", p, "--format", "otel", "--since", &boundary,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains(second["id"].as_str().unwrap()), "{out}");
    assert!(!out.contains(first["id"].as_str().unwrap()), "{out}");
}
