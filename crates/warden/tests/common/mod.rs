//! The shared harness for the `warden` binary's end-to-end tests (`mod common;` in each file
//! under `tests/`).
//!
//! - [`Project`]: a project made by `warden init` (or `warden demo --keep`) in a temporary
//!   directory, and `warden` commands run in it (`-p <dir>` is added for you).
//! - [`Gateway`]: `warden serve` on a free loopback port; stopped with SIGTERM by
//!   [`Gateway::stop`], killed when dropped, its stderr kept and shown when a test fails.
//! - [`Http`]: a blocking face over an async `reqwest` client (the one `warden` itself uses, so
//!   tests need no extra crate features and share the build of the binary).
//! - [`wait_until`]: poll a condition with a deadline instead of sleeping a fixed time.
//! - [`Peer`]: a fake HTTP peer (upstream, witness, OTLP receiver) that records what it gets.
//! - [`block_on`] and [`connect`]: reach into the project's SQLite store directly, as an
//!   intruder or an auditor would.
//!
//! Each test binary compiles its own copy and uses a part of it, hence the `dead_code` allow.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]
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

use serde_json::Value;

/// `warden`, with no project or master key taken from the environment and quiet logs.
pub fn warden() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_warden"));
    c.env_remove("WARDEN_PROJECT")
        .env_remove("WARDEN_MASTER_KEY")
        .env("WARDEN_LOG", "warn");
    c
}

/// Run `warden <args>` (no project added) and wait for it.
pub fn run(args: &[&str]) -> Output {
    warden().args(args).output().expect("warden runs")
}

/// What a command printed: stdout, then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Poll `condition` every 20 ms until it holds or `timeout` has passed; whether it held. The
/// caller asserts afterwards, with its own message.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A Warden project in a temporary directory (removed when dropped).
pub struct Project {
    tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Project {
    /// `warden init` in a fresh temporary directory.
    pub fn init() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("proj");
        let o = run(&["init", dir.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
        Self { tmp, dir }
    }

    /// `warden init`, then `extra` appended to `warden.toml`.
    pub fn with_config(extra: &str) -> Self {
        let project = Self::init();
        project.append_config(extra);
        project
    }

    /// `warden demo --keep`: the demo's project and ledger, and what the demo printed.
    pub fn demo() -> (Self, Output) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("demo");
        let o = run(&["demo", "--keep", dir.to_str().unwrap()]);
        (Self { tmp, dir }, o)
    }

    /// The project directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The project directory, for `-p`.
    pub fn p(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// A path inside the project.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    /// A path beside the project (in the same temporary directory, outside the project).
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// The text of a file in the project.
    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap()
    }

    /// Replace a file in the project.
    pub fn write(&self, relative: &str, contents: &str) {
        std::fs::write(self.path(relative), contents).unwrap();
    }

    /// Append `extra` to `warden.toml`.
    pub fn append_config(&self, extra: &str) {
        let mut config = self.read("warden.toml");
        config.push_str(extra);
        self.write("warden.toml", &config);
    }

    /// The API key `warden init` wrote for `agent` in `agent-keys.txt`.
    pub fn agent_key(&self, agent: &str) -> String {
        self.read("agent-keys.txt")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .find(|(a, _)| *a == agent)
            .map(|(_, k)| k.to_string())
            .unwrap_or_else(|| panic!("no key for {agent} in agent-keys.txt"))
    }

    /// `warden <args> -p <project>`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    /// `warden <args> -p <project>` with `stdin` on its standard input (closed after).
    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = warden()
            .args(args)
            .arg("-p")
            .arg(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            let mut input = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                input.write_all(s.as_bytes()).unwrap();
            }
        }
        child.wait_with_output().unwrap()
    }

    /// `warden <args> -p <project>`, which must succeed: what it printed (stdout, stderr).
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "warden {args:?} failed:\n{}", text(&o));
        text(&o)
    }

    /// `warden <args> -p <project>`, which must succeed: its stdout alone.
    pub fn stdout(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "warden {args:?} failed:\n{}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    }

    /// `warden <args> -p <project>`, which must fail: what it printed (stdout, stderr).
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "warden {args:?} succeeded:\n{}",
            text(&o)
        );
        text(&o)
    }

    /// `warden serve` on this project at a free loopback port.
    pub fn serve(&self) -> Gateway {
        self.serving().start()
    }

    /// A `warden serve` to configure (environment, `--region`) before [`Serve::start`].
    pub fn serving(&self) -> Serve<'_> {
        Serve {
            project: self,
            global: Vec::new(),
            env: Vec::new(),
        }
    }

    /// The home store's SQLite file.
    pub fn db(&self) -> PathBuf {
        self.path("warden.db")
    }

    /// Run one SQL statement on the home store; the number of rows it changed.
    pub fn sql(&self, sql: &str) -> u64 {
        let db = self.db();
        block_on(async {
            let mut c = connect(&db).await;
            sqlx::query(sql)
                .execute(&mut c)
                .await
                .unwrap()
                .rows_affected()
        })
    }
}

/// `warden serve`, being configured.
pub struct Serve<'a> {
    project: &'a Project,
    global: Vec<String>,
    env: Vec<(String, String)>,
}

impl Serve<'_> {
    /// An environment variable for the gateway.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// `warden --region <region> serve ...`.
    pub fn region(mut self, region: &str) -> Self {
        self.global
            .extend(["--region".to_string(), region.to_string()]);
        self
    }

    /// Start it and wait for its `listening on <url>` line.
    pub fn start(self) -> Gateway {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = warden();
        cmd.args(&self.global)
            .args(["serve", "-p", self.project.p(), "--listen", "127.0.0.1:0"])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(log.reopen().unwrap());
        let mut child = cmd.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let Some(base) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = std::fs::read_to_string(log.path()).unwrap_or_default();
            panic!("unexpected first line {line:?} from warden serve; its stderr:\n{stderr}");
        };
        let base = base.to_string();
        // Keep reading stdout so the gateway never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Gateway {
            child,
            base,
            log,
            http: Http::new(),
        }
    }
}

/// A running `warden serve`. Dropping it kills the process (SIGKILL) and, when the test is
/// failing, prints the gateway's stderr.
pub struct Gateway {
    child: Child,
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub base: String,
    log: tempfile::NamedTempFile,
    http: Http,
}

impl Gateway {
    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        self.base.split_once("://").unwrap().1
    }

    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// The URL of `path` on this gateway.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the gateway wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// `POST /v1/decisions` as the agent with API key `key`: the status and the JSON body.
    pub fn propose_status(&self, key: &str, body: &Value) -> (u16, Value) {
        let r = self.http.post_json(&self.url("/v1/decisions"), key, body);
        (r.status, r.json())
    }

    /// `POST /v1/decisions`, which must answer 200: the decision.
    pub fn propose(&self, key: &str, body: &Value) -> Value {
        let (status, v) = self.propose_status(key, body);
        assert_eq!(status, 200, "{v}");
        v
    }

    /// `kill -TERM` and wait for a clean exit (the final checkpoint is signed, spans and the
    /// ledger are flushed): the gateway's stderr.
    pub fn stop(mut self) -> String {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "{exit}; stderr:\n{}", self.stderr());
        self.stderr()
    }

    /// SIGKILL and wait: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- warden serve stderr ---\n{}", self.stderr());
        }
    }
}

/// One HTTP response, read in full.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// The status line and the headers, one a line, as on the wire.
    pub head: String,
    pub body: String,
}

impl Response {
    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A blocking HTTP client for tests: an async `reqwest::Client` driven by its own
/// current-thread runtime. `reqwest`'s `blocking` feature would change the features the test
/// build resolves for `reqwest` and `futures-util`, and with them the `warden` binary the MCP
/// and UI suites reuse; this needs none. One per thread.
pub struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    pub fn new() -> Self {
        Self::with(reqwest::Client::builder())
    }

    /// A client that trusts only the certificate `pem` (no system roots).
    pub fn trusting(pem: &str) -> Self {
        Self::with(
            reqwest::Client::builder()
                .tls_built_in_root_certs(false)
                .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()),
        )
    }

    /// A client from a configured builder (a 20 s timeout is added).
    pub fn with(builder: reqwest::ClientBuilder) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = builder.timeout(Duration::from_secs(20)).build().unwrap();
        Self { rt, client }
    }

    /// The client, to build a request for [`Http::send`] / [`Http::try_send`].
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Send a request and read the whole response; the error when there is none.
    pub fn try_send(&self, request: reqwest::RequestBuilder) -> Result<Response, reqwest::Error> {
        self.rt.block_on(async {
            let r = request.send().await?;
            let mut head = format!("{:?} {}\r\n", r.version(), r.status());
            for (k, v) in r.headers() {
                head.push_str(&format!(
                    "{k}: {}\r\n",
                    String::from_utf8_lossy(v.as_bytes())
                ));
            }
            let status = r.status().as_u16();
            let body = r.text().await?;
            Ok(Response { status, head, body })
        })
    }

    /// Send a request, which must get a response (of any status).
    pub fn send(&self, request: reqwest::RequestBuilder) -> Response {
        self.try_send(request).unwrap()
    }

    pub fn get(&self, url: &str) -> Response {
        self.send(self.client.get(url))
    }

    /// POST a JSON body with `Authorization: Bearer <key>`.
    pub fn post_json(&self, url: &str, key: &str, body: &Value) -> Response {
        self.send(self.client.post(url).bearer_auth(key).json(body))
    }
}

/// One request a [`Peer`] received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// `(lower-case name, value)`.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The request as on the wire (head and body).
    pub raw: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A fake HTTP/1.1 peer on loopback (an upstream, a witness, an OTLP receiver) that records
/// every request and answers each with the same status and body, closing the connection.
///
/// Hand-written on std threads on purpose: it records the exact bytes on the wire (the
/// tests look for credentials in them) and shares nothing with the HTTP stack under test.
/// It reads bodies by `content-length` (what Warden's `reqwest` client sends).
pub struct Peer {
    pub addr: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Peer {
    /// Answer every request with `status` and `body` (JSON when not empty).
    pub fn start(status: u16, body: &'static str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let keep = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let keep = keep.clone();
                std::thread::spawn(move || answer(stream, status, body, &keep));
            }
        });
        Self { addr, requests }
    }

    /// What it received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn answer(stream: std::net::TcpStream, status: u16, body: &str, keep: &Mutex<Vec<Request>>) {
    stream.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut r = BufReader::new(stream);
    let mut raw = Vec::new();
    let mut start = String::new();
    if r.read_line(&mut start).unwrap_or(0) == 0 {
        return;
    }
    raw.extend_from_slice(start.as_bytes());
    let mut parts = start.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        raw.extend_from_slice(h.as_bytes());
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut request_body = vec![0u8; len];
    if r.read_exact(&mut request_body).is_err() {
        return;
    }
    raw.extend_from_slice(&request_body);
    keep.lock().unwrap().push(Request {
        method,
        path,
        headers,
        body: request_body,
        raw,
    });
    let content_type = if body.is_empty() {
        ""
    } else {
        "content-type: application/json\r\n"
    };
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\n{content_type}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Status"),
        body.len()
    );
}

/// Run a future to completion on a fresh current-thread runtime (for `sqlx`).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A connection to the SQLite database at `db`.
pub async fn connect(db: &Path) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    let url = format!("sqlite://{}", db.display());
    sqlx::SqliteConnection::connect(&url).await.unwrap()
}
