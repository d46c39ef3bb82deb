//! `warden mcp stdio`: a desktop MCP client runs Warden as its server command, and Warden runs
//! the real server as a child, gating every message through [`McpGate`].
//!
//! Our stdout carries the protocol to the client; logs go to stderr. The child's stderr is
//! passed through to ours, so the client's log shows it.

use std::process::Stdio;
use std::sync::Arc;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use super::stdio_gate::{ClientAction, McpGate};
use super::upstream::{read_bounded_line, skip_rest_of_line, Line};

/// Largest message accepted from either side, in bytes.
const MAX_LINE: usize = 8 * 1024 * 1024;

/// Why the proxy stopped early.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("the upstream command is empty")]
    NoCommand,
    #[error("cannot start the upstream `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("i/o with the client or upstream failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Run the gate between our stdin/stdout and the upstream until the client closes its side or
/// the upstream exits. Returns the upstream's exit code. The server keeps the environment the
/// desktop client gave Warden, plus `launch.env` from `warden.toml`.
pub async fn run(gate: Arc<McpGate>, launch: &super::upstream::Launch) -> Result<i32, StdioError> {
    let (program, args) = launch.command.split_first().ok_or(StdioError::NoCommand)?;
    let mut cmd = Command::new(program);
    cmd.args(args).envs(launch.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &launch.cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| StdioError::Spawn {
            command: program.clone(),
            source,
        })?;
    let mut child_in = child.stdin.take().ok_or(StdioError::NoCommand)?;
    let child_out = child.stdout.take().ok_or(StdioError::NoCommand)?;

    // One writer owns the child's stdin: forwarded client messages, Warden's own requests
    // (snapshot reads) and held calls released by an approval all go through it.
    let (to_upstream, mut upstream_rx) = mpsc::channel::<String>(256);
    let child_writer = tokio::spawn(async move {
        while let Some(line) = upstream_rx.recv().await {
            if let Err(error) = write_line(&mut child_in, &line).await {
                tracing::warn!(message = "writing to the upstream failed", %error);
                break;
            }
        }
        // Dropping `child_in` closes the upstream's stdin.
    });
    gate.attach_upstream(Some(to_upstream.clone()));
    // Calls held for approval, each waiting in a task of its own.
    let mut held = tokio::task::JoinSet::new();

    // One writer owns our stdout, so replies and upstream messages never interleave.
    let (to_client, mut client_rx) = mpsc::channel::<String>(256);
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some(line) = client_rx.recv().await {
            if out.write_all(line.as_bytes()).await.is_err()
                || out.write_all(b"\n").await.is_err()
                || out.flush().await.is_err()
            {
                break;
            }
        }
    });

    // Upstream → client.
    let upstream_gate = Arc::clone(&gate);
    let upstream_tx = to_client.clone();
    let from_upstream = tokio::spawn(async move {
        // At most MAX_LINE bytes of a message are held: a longer one is skipped unread.
        let mut reader = BufReader::new(child_out);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match read_bounded_line(&mut reader, &mut buf, MAX_LINE).await {
                Ok(Line::Read) => {}
                Ok(Line::TooLong(read)) => {
                    let rest = skip_rest_of_line(&mut reader).await.unwrap_or(0);
                    tracing::warn!(
                        message = "upstream message over the size limit dropped",
                        bytes = read + rest
                    );
                    continue;
                }
                Ok(Line::End) | Err(_) => break,
            }
            let Ok(line) = std::str::from_utf8(&buf) else {
                tracing::warn!(message = "upstream message that is not UTF-8 dropped");
                continue;
            };
            if let Some(out) = upstream_gate.from_upstream(line).await {
                if upstream_tx.send(out).await.is_err() {
                    break;
                }
            }
        }
    });

    // Client → upstream (or straight back to the client). As from the upstream, at most
    // MAX_LINE bytes of a message are held: a longer one is skipped unread and answered with
    // an error.
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut buf = Vec::new();
    loop {
        tokio::select! {
            read = read_bounded_line(&mut stdin, &mut buf, MAX_LINE) => {
                let refusal = match read? {
                    Line::End => break,
                    Line::Read => None,
                    Line::TooLong(read) => {
                        let rest = skip_rest_of_line(&mut stdin).await?;
                        Some(format!("message of {} bytes is over Warden's limit of {MAX_LINE}", read + rest))
                    }
                };
                let text = std::mem::take(&mut buf);
                if let Some(message) = refusal {
                    let reply = serde_json::json!({"jsonrpc": "2.0", "id": null,
                        "error": {"code": -32600, "message": message}});
                    let _ = to_client.send(reply.to_string()).await;
                    continue;
                }
                let Ok(line) = String::from_utf8(text) else {
                    let reply = serde_json::json!({"jsonrpc": "2.0", "id": null,
                        "error": {"code": -32700, "message": "message is not UTF-8"}});
                    let _ = to_client.send(reply.to_string()).await;
                    continue;
                };
                if line.trim().is_empty() {
                    continue;
                }
                match gate.from_client(&line).await {
                    ClientAction::Forward(msg) => {
                        if to_upstream.send(msg).await.is_err() {
                            tracing::warn!(message = "the upstream's stdin is closed; message dropped");
                        }
                    }
                    ClientAction::Reply(msg) => {
                        let _ = to_client.send(msg).await;
                    }
                    ClientAction::Drop(why) => tracing::warn!(message = "client message dropped", reason = %why),
                    ClientAction::Hold(call) => {
                        held.spawn(Arc::clone(&gate).hold(call, to_client.clone()));
                    }
                }
                // Reap finished holds.
                while held.try_join_next().is_some() {}
            }
            status = child.wait() => {
                let code = status?.code().unwrap_or(1);
                held.abort_all();
                gate.attach_upstream(None);
                drop(to_upstream);
                let _ = child_writer.await;
                let _ = from_upstream.await;
                drop(to_client);
                let _ = writer.await;
                return Ok(code);
            }
        }
    }
    // The client closed its side: held calls have nobody to answer (they do not run); close
    // the upstream's stdin and let it finish.
    held.abort_all();
    gate.attach_upstream(None);
    drop(to_upstream);
    let _ = child_writer.await;
    let status = child.wait().await?;
    let _ = from_upstream.await;
    drop(to_client);
    let _ = writer.await;
    Ok(status.code().unwrap_or(0))
}

async fn write_line(out: &mut tokio::process::ChildStdin, line: &str) -> std::io::Result<()> {
    out.write_all(line.as_bytes()).await?;
    out.write_all(b"\n").await?;
    out.flush().await
}
