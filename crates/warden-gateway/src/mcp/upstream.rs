//! Upstream MCP servers over stdio, spawned and supervised by Warden.
//!
//! Warden is the MCP client here: it initialises each server, keeps its tool list, and sends
//! requests with its own ids, matching responses back to callers. When a server exits, every
//! call in flight fails with a clear error and the server is started again with back-off.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot};

use super::backoff::Backoff;

use super::client::list_all_tools;
pub use super::client::{UpstreamError, PROTOCOL_VERSION};

type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// How to start a stdio upstream.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    pub command: Vec<String>,
    /// The server's whole environment besides the pass-through basics: credentials go here.
    pub env: Vec<(String, String)>,
    pub cwd: Option<std::path::PathBuf>,
}

/// Largest message read from a server, in bytes (as `warden mcp stdio` allows). A server that
/// sends a longer one is stopped before more of it is read, and started again.
pub const MAX_MESSAGE: usize = 8 * 1024 * 1024;

/// Variables a server gets from Warden's environment; nothing else leaks through.
const PASS_THROUGH: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER"];

/// One supervised stdio upstream.
pub struct StdioUpstream {
    pub name: String,
    launch: Launch,
    sender: RwLock<Option<mpsc::Sender<String>>>,
    waiters: Waiters,
    next_id: AtomicU64,
    tools: RwLock<Vec<Value>>,
    up: AtomicBool,
    timeout: Duration,
}

impl StdioUpstream {
    /// Start the upstream and keep it running until the process ends.
    pub fn spawn(name: String, launch: Launch, timeout: Duration) -> Arc<Self> {
        let up = Arc::new(Self {
            name,
            launch,
            sender: RwLock::new(None),
            waiters: Arc::new(Mutex::new(HashMap::new())),
            next_id: AtomicU64::new(1),
            tools: RwLock::new(Vec::new()),
            up: AtomicBool::new(false),
            timeout,
        });
        tokio::spawn(Arc::clone(&up).supervise());
        up
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// The tools the upstream announced at its last start, as it gave them.
    pub fn tools(&self) -> Vec<Value> {
        self.tools.read().map(|t| t.clone()).unwrap_or_default()
    }

    /// Run the server, and start it again whenever it exits. The delays before a restart keep
    /// growing over the gateway's life (they are not reset after a healthy run).
    async fn supervise(self: Arc<Self>) {
        let mut backoff = Backoff::upstream();
        loop {
            let outcome = self.run_once().await;
            match &outcome {
                Ok(()) => {
                    tracing::warn!(message = "upstream exited; restarting", upstream = %self.name)
                }
                Err(error) => {
                    tracing::warn!(message = "upstream failed; restarting", upstream = %self.name, %error)
                }
            }
            self.up.store(false, Ordering::Relaxed);
            if let Ok(mut s) = self.sender.write() {
                *s = None;
            }
            // Fail every call in flight: dropping the senders wakes their waiters; a server
            // stopped for an oversized message gets that reason sent to each instead.
            if let Ok(mut w) = self.waiters.lock() {
                if let Err(Stopped::Oversized) = &outcome {
                    let message = Stopped::Oversized.to_string();
                    for (_, waiter) in w.drain() {
                        let _ = waiter.send(json!({"jsonrpc": "2.0", "error": {"code": -32603,
                            "message": format!("upstream `{}` {message}; it is being restarted", self.name)}}));
                    }
                }
                w.clear();
            }
            backoff.wait().await;
        }
    }

    async fn run_once(self: &Arc<Self>) -> Result<(), Stopped> {
        let (program, args) = self
            .launch
            .command
            .split_first()
            .ok_or_else(|| Stopped::Failed("empty command".into()))?;
        let mut cmd = Command::new(program);
        cmd.args(args).env_clear();
        for var in PASS_THROUGH {
            if let Ok(v) = std::env::var(var) {
                cmd.env(var, v);
            }
        }
        cmd.envs(self.launch.env.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.launch.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Stopped::Failed(format!("cannot start `{program}`: {e}")))?;
        let no_pipe = || Stopped::Failed("the server's standard streams are not piped".into());
        let mut stdin = child.stdin.take().ok_or_else(no_pipe)?;
        let stdout = child.stdout.take().ok_or_else(no_pipe)?;
        let stderr = child.stderr.take().ok_or_else(no_pipe)?;
        let name = self.name.clone();
        tokio::spawn(async move {
            // Logged a line at a time; a line over 64 KiB is cut (part of it is dropped).
            let mut stderr = BufReader::new(stderr);
            let mut line = Vec::new();
            loop {
                line.clear();
                match read_bounded_line(&mut stderr, &mut line, 64 * 1024).await {
                    Ok(Line::Read | Line::TooLong(_)) => {}
                    Ok(Line::End) | Err(_) => break,
                }
                let line = String::from_utf8_lossy(&line);
                tracing::info!(message = "upstream stderr", upstream = %name, line = %line);
            }
        });
        let (tx, mut rx) = mpsc::channel::<String>(256);
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                if stdin.write_all(line.as_bytes()).await.is_err()
                    || stdin.write_all(b"\n").await.is_err()
                    || stdin.flush().await.is_err()
                {
                    break;
                }
            }
        });
        if let Ok(mut s) = self.sender.write() {
            *s = Some(tx);
        }
        let waiters = Arc::clone(&self.waiters);
        let (oversized_tx, oversized) = oneshot::channel::<usize>();
        let reader = tokio::spawn(async move {
            let mut stdout = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match read_bounded_line(&mut stdout, &mut line, MAX_MESSAGE).await {
                    Ok(Line::Read) => {}
                    Ok(Line::TooLong(read)) => {
                        let _ = oversized_tx.send(read);
                        return;
                    }
                    Ok(Line::End) | Err(_) => return,
                }
                let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
                    continue;
                };
                // Responses to our requests; server-initiated messages are not used yet.
                if msg.get("method").is_none() {
                    if let Some(id) = msg.get("id").and_then(Value::as_u64) {
                        let waiter = waiters.lock().ok().and_then(|mut w| w.remove(&id));
                        if let Some(w) = waiter {
                            let _ = w.send(msg);
                        }
                    }
                }
            }
        });
        // Handshake, then the tool list; then wait for the server to exit, or stop it when it
        // sends a message over the limit (`kill_on_drop`: returning drops the child).
        let run = async {
            let init = self
                .send_request(
                    "initialize",
                    json!({"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                           "clientInfo": {"name": "warden", "version": env!("CARGO_PKG_VERSION")}}),
                )
                .await
                .map_err(|e| Stopped::Failed(e.to_string()))?;
            if let Some(error) = init.get("error") {
                return Err(Stopped::Failed(format!("initialize was refused: {error}")));
            }
            self.notify("notifications/initialized", json!({})).await;
            let tools = list_all_tools(|params| self.send_request("tools/list", params))
                .await
                .map_err(Stopped::Failed)?;
            if let Ok(mut t) = self.tools.write() {
                *t = tools;
            }
            self.up.store(true, Ordering::Relaxed);
            tracing::info!(message = "upstream ready", upstream = %self.name);
            let status = child
                .wait()
                .await
                .map_err(|e| Stopped::Failed(e.to_string()))?;
            tracing::warn!(message = "upstream exited", upstream = %self.name, %status);
            Ok(())
        };
        let result = tokio::select! {
            result = run => result,
            Ok(read) = oversized => {
                tracing::warn!(message = "upstream sent a message over the size limit; stopping it",
                    upstream = %self.name, bytes_read = read, limit = MAX_MESSAGE);
                Err(Stopped::Oversized)
            }
        };
        reader.abort();
        result
    }

    async fn notify(&self, method: &str, params: Value) {
        let tx = self.sender.read().ok().and_then(|s| s.clone());
        if let Some(tx) = tx {
            let _ = tx
                .send(json!({"jsonrpc": "2.0", "method": method, "params": params}).to_string())
                .await;
        }
    }

    async fn send_request(&self, method: &str, params: Value) -> Result<Value, UpstreamError> {
        let tx = self
            .sender
            .read()
            .ok()
            .and_then(|s| s.clone())
            .ok_or_else(|| UpstreamError::Down(self.name.clone()))?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (wtx, wrx) = oneshot::channel();
        if let Ok(mut w) = self.waiters.lock() {
            w.insert(id, wtx);
        }
        let line =
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        if tx.send(line).await.is_err() {
            return Err(UpstreamError::Down(self.name.clone()));
        }
        match tokio::time::timeout(self.timeout, wrx).await {
            Ok(Ok(msg)) => Ok(msg),
            Ok(Err(_)) => Err(UpstreamError::Exited(self.name.clone())),
            Err(_) => {
                if let Ok(mut w) = self.waiters.lock() {
                    w.remove(&id);
                }
                Err(UpstreamError::Timeout(
                    self.name.clone(),
                    self.timeout.as_secs(),
                ))
            }
        }
    }

    /// Send one request; returns the upstream's JSON-RPC response message.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, UpstreamError> {
        if !self.is_up() {
            return Err(UpstreamError::Down(self.name.clone()));
        }
        self.send_request(method, params).await
    }
}

/// An upstream of either transport.
#[derive(Clone)]
pub enum Upstream {
    Stdio(Arc<StdioUpstream>),
    Http(Arc<super::http_upstream::HttpUpstream>),
}

impl Upstream {
    pub fn tools(&self) -> Vec<Value> {
        match self {
            Self::Stdio(u) => u.tools(),
            Self::Http(u) => u.tools(),
        }
    }

    pub fn is_up(&self) -> bool {
        match self {
            Self::Stdio(u) => u.is_up(),
            Self::Http(u) => u.is_up(),
        }
    }

    /// Wait until the upstream is up and has listed its tools, at most `limit`.
    pub async fn ready(&self, limit: Duration) -> bool {
        let start = std::time::Instant::now();
        while !self.is_up() {
            if start.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Call a tool; returns the upstream's JSON-RPC response message.
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<Value, UpstreamError> {
        self.request("tools/call", json!({"name": name, "arguments": arguments}))
            .await
    }

    /// Send one request of any method; returns the upstream's JSON-RPC response message.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, UpstreamError> {
        match self {
            Self::Stdio(u) => u.request(method, params).await,
            Self::Http(u) => u.request(method, params).await,
        }
    }
}

/// Why one run of a server ended early.
#[derive(Debug, thiserror::Error)]
enum Stopped {
    #[error("{0}")]
    Failed(String),
    #[error("sent a message over Warden's limit of {MAX_MESSAGE} bytes")]
    Oversized,
}

/// What [`read_bounded_line`] read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Line {
    /// A line (without its `\n`) is in the buffer.
    Read,
    /// The line is longer than the limit; this many bytes were read and the rest left unread.
    TooLong(usize),
    /// End of the stream, nothing read.
    End,
}

/// Read one `\n`-terminated line into `buf`, holding at most `max` bytes of it in memory.
pub(super) async fn read_bounded_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if buf.is_empty() {
                Line::End
            } else {
                Line::Read
            });
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (at, true),
            None => (available.len(), false),
        };
        if buf.len() + take > max {
            let read = buf.len() + take;
            reader.consume(take);
            return Ok(Line::TooLong(read));
        }
        buf.extend_from_slice(available.get(..take).unwrap_or_default());
        reader.consume(if done { take + 1 } else { take });
        if done {
            return Ok(Line::Read);
        }
    }
}

/// Skip the rest of a line [`read_bounded_line`] found too long, through its `\n`, holding
/// none of it; how many bytes were skipped.
pub(super) async fn skip_rest_of_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<usize> {
    let mut skipped = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(skipped);
        }
        match available.iter().position(|&b| b == b'\n') {
            Some(at) => {
                reader.consume(at + 1);
                return Ok(skipped + at);
            }
            None => {
                let n = available.len();
                reader.consume(n);
                skipped += n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_read_up_to_the_limit_and_no_further() {
        let input: &[u8] = b"short\n0123456789abc\nlast";
        let mut r = BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        assert_eq!(
            read_bounded_line(&mut r, &mut buf, 10).await.unwrap(),
            Line::Read
        );
        assert_eq!(buf, b"short");
        buf.clear();
        let Line::TooLong(read) = read_bounded_line(&mut r, &mut buf, 10).await.unwrap() else {
            panic!("a 13-byte line is over a limit of 10");
        };
        assert!(
            read > 10 && buf.len() <= 10,
            "no more than the limit is held"
        );
        let skipped = skip_rest_of_line(&mut r).await.unwrap();
        assert_eq!(
            read + skipped,
            13,
            "the whole long line and its newline are consumed"
        );
        buf.clear();
        assert_eq!(
            read_bounded_line(&mut r, &mut buf, 10).await.unwrap(),
            Line::Read
        );
        assert_eq!(buf, b"last", "reading goes on after the skipped line");
        let mut r = BufReader::new(&b"last"[..]);
        buf.clear();
        assert_eq!(
            read_bounded_line(&mut r, &mut buf, 10).await.unwrap(),
            Line::Read
        );
        assert_eq!(buf, b"last");
        buf.clear();
        assert_eq!(
            read_bounded_line(&mut r, &mut buf, 10).await.unwrap(),
            Line::End
        );
    }
}
