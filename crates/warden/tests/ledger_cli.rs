//! The verifiable ledger from the command line: checkpoints, proofs, `verify --checkpoint`,
//! exports checked by the standalone `warden-verify` binary in a directory with no Warden
//! store, and OCSF.

// Test code: a panic is a failed assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

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

/// The standalone verifier: built beside `warden` by `cargo test --workspace`; built here
/// (in its own target directory) when only this package's tests run.
fn warden_verify() -> PathBuf {
    let beside = Path::new(env!("CARGO_BIN_EXE_warden")).with_file_name("warden-verify");
    if beside.exists() {
        return beside;
    }
    let target = Path::new(env!("CARGO_BIN_EXE_warden"))
        .parent()
        .unwrap()
        .join("nested-warden-verify");
    let st = Command::new(env!("CARGO"))
        .args(["build", "-p", "warden-verify", "--target-dir"])
        .arg(&target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(st.success(), "building warden-verify");
    target.join("debug").join("warden-verify")
}

fn post(addr: &str, key: &str, body: &Value) -> Value {
    let (status, v) = post_status(addr, key, body);
    assert_eq!(status, 200, "{v}");
    v
}

/// `POST /v1/decisions`: the status code and the JSON body.
fn post_status(addr: &str, key: &str, body: &Value) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let b = body.to_string();
    write!(
        s,
        "POST /v1/decisions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
        b.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{resp}"));
    let body = serde_json::from_str(resp.split("\r\n\r\n").nth(1).unwrap())
        .unwrap_or_else(|e| panic!("{e}: {resp}"));
    (status, body)
}

fn key_of(dir: &Path, agent: &str) -> String {
    std::fs::read_to_string(dir.join("agent-keys.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .find(|(a, _)| *a == agent)
        .map(|(_, k)| k.to_string())
        .unwrap()
}

fn sqlite(dir: &Path, sql: &str) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", dir.join("warden.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query(sql)
            .execute(&mut c)
            .await
            .unwrap()
            .rows_affected()
    })
}

/// `warden serve` on the project at a free loopback port: the child and its address.
fn serve(dir: &Path) -> (std::process::Child, String) {
    serve_with(dir, &[])
}

/// `warden serve` with more arguments (`--region eu`).
fn serve_with(dir: &Path, extra: &[&str]) -> (std::process::Child, String) {
    let mut child = warden()
        .args(extra)
        .args([
            "serve",
            "-p",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .to_string();
    (child, addr)
}

/// `kill -TERM` and wait: a clean stop (the final checkpoint is signed).
fn stop(child: &mut std::process::Child) {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(child.wait().unwrap().success());
}

/// A project with `n` decisions recorded by a gateway that was stopped cleanly (SIGTERM).
fn project_with_decisions(n: usize) -> (tempfile::TempDir, PathBuf) {
    project_with(n, "")
}

fn project_with(n: usize, extra_config: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    let o = run(&["init", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    if !extra_config.is_empty() {
        let toml = dir.join("warden.toml");
        let mut text = std::fs::read_to_string(&toml).unwrap();
        text.push_str(extra_config);
        std::fs::write(&toml, text).unwrap();
    }
    let (mut child, addr) = serve(&dir);
    let key = key_of(&dir, "support-triage");
    for i in 0..n {
        let v = post(
            &addr,
            &key,
            &json!({"tool": "get_ticket", "arguments": {"ticket_id": format!("T-{:04}", 1000 + i)}}),
        );
        assert_eq!(v["decision"], "allow");
    }
    // The one denied call, for the OCSF export.
    let v = post(
        &addr,
        &key,
        &json!({"tool": "get_ticket", "arguments": {"ticket_id": "not-a-ticket"}}),
    );
    assert_eq!(v["decision"], "deny", "{v}");
    stop(&mut child);
    (tmp, dir)
}

#[test]
fn clean_shutdown_checkpoints_and_proofs_and_verify_against_an_older_checkpoint() {
    let (tmp, dir) = project_with_decisions(20);
    let p = dir.to_str().unwrap();

    let o = run(&["audit", "checkpoint", "-p", p]);
    assert!(o.status.success(), "{}", text(&o));
    let note = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = note.lines().collect();
    assert!(lines[0].starts_with("warden-ledger-"), "{note}");
    assert_eq!(
        lines[1], "21",
        "the clean shutdown checkpointed all 21 records: {note}"
    );
    assert!(lines[4].starts_with("\u{2014} warden-ledger-"), "{note}");
    let older = tmp.path().join("older.checkpoint");
    std::fs::write(&older, &note).unwrap();

    let key_file = dir.join(".warden/ledger.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let o = run(&["audit", "pubkey", "-p", p]);
    assert!(o.status.success(), "{}", text(&o));
    let vkey = String::from_utf8(o.stdout).unwrap();
    assert!(vkey.starts_with(lines[0]), "{vkey}");
    assert!(!vkey.contains("PRIVATE"));

    let o = run(&["audit", "prove", "7", "-p", p, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let proof: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(proof["tree_size"], 21);
    assert_eq!(proof["inclusion_proof"].as_array().unwrap().len(), 5);

    let o = run(&[
        "audit",
        "verify",
        "-p",
        p,
        "--checkpoint",
        older.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("extends the checkpoint"), "{}", text(&o));

    // Grow the log (a new checkpoint via --now), then truncate it back past the older
    // checkpoint and drop the stored checkpoints as an intruder would: the chain of what is
    // left verifies, the older checkpoint does not.
    let o = run(&["audit", "checkpoint", "--now", "-p", p]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(sqlite(&dir, "DELETE FROM ledger WHERE seq >= 15") > 0);
    let o = run(&["audit", "verify", "-p", p]);
    assert!(
        !o.status.success(),
        "the stored checkpoint still covers 21: {}",
        text(&o)
    );
    assert!(text(&o).contains("records were removed"), "{}", text(&o));
    sqlite(&dir, "DELETE FROM ledger_checkpoints");
    let o = run(&["audit", "verify", "-p", p]);
    assert!(
        o.status.success(),
        "a truncated chain alone verifies: {}",
        text(&o)
    );
    let o = run(&[
        "audit",
        "verify",
        "-p",
        p,
        "--checkpoint",
        older.to_str().unwrap(),
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("truncated"), "{}", text(&o));
}

#[test]
fn an_export_verifies_with_the_standalone_verifier_and_no_store() {
    let (tmp, dir) = project_with_decisions(12);
    let p = dir.to_str().unwrap();
    let vkey = String::from_utf8(run(&["audit", "pubkey", "-p", p]).stdout).unwrap();
    let out = tmp.path().join("bundle");
    let o = run(&[
        "audit",
        "export",
        "-p",
        p,
        "--format",
        "jsonl",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("exported records 1..13 (13)"),
        "{}",
        text(&o)
    );

    // An auditor's machine: only the exported files and the public key, no project, no store.
    let auditor = tempfile::tempdir().unwrap();
    for f in ["ledger.jsonl", "checkpoint.txt"] {
        std::fs::copy(out.join(f), auditor.path().join(f)).unwrap();
    }
    std::fs::write(auditor.path().join("ledger.vkey"), &vkey).unwrap();
    let verify = |extra: &[&str]| {
        Command::new(warden_verify())
            .current_dir(auditor.path())
            .args([
                "--key",
                "ledger.vkey",
                "--log",
                "ledger.jsonl",
                "--checkpoint",
                "checkpoint.txt",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = verify(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("ok: records 1..13 (13 records)"),
        "{}",
        text(&o)
    );

    // A changed byte in one record is refused.
    let log = std::fs::read_to_string(auditor.path().join("ledger.jsonl")).unwrap();
    std::fs::write(
        auditor.path().join("ledger.jsonl"),
        log.replacen("\"allow\"", "\"allaw\"", 1),
    )
    .unwrap();
    let o = verify(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // A dropped last record is refused.
    let mut lines: Vec<&str> = log.lines().collect();
    lines.pop();
    std::fs::write(auditor.path().join("ledger.jsonl"), lines.join("\n") + "\n").unwrap();
    let o = verify(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("ends at record 12"), "{}", text(&o));
    // Another key does not open the checkpoint.
    std::fs::write(auditor.path().join("ledger.jsonl"), &log).unwrap();
    std::fs::write(
        auditor.path().join("ledger.vkey"),
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n",
    )
    .unwrap();
    let o = verify(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    std::fs::write(auditor.path().join("ledger.vkey"), &vkey).unwrap();

    // A range export (records from the 6th on) verifies with its proof.
    let sixth: Value = serde_json::from_str(log.lines().nth(5).unwrap()).unwrap();
    let since = sixth["ts"].as_str().unwrap();
    let range = tmp.path().join("range");
    let o = run(&[
        "audit",
        "export",
        "-p",
        p,
        "--since",
        since,
        "--out",
        range.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(range.join("ledger.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert!(first["seq"].as_u64().unwrap() >= 2, "{first}");
    for f in ["ledger.jsonl", "checkpoint.txt", "proof.json"] {
        std::fs::copy(range.join(f), auditor.path().join(f)).unwrap();
    }
    let o = verify(&["--proof", "proof.json"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = verify(&[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a range without its proof: {}",
        text(&o)
    );
}

#[test]
fn ocsf_export_maps_decisions_to_api_activity_with_security_control() {
    let (_tmp, dir) = project_with_decisions(3);
    let p = dir.to_str().unwrap();
    let o = run(&["audit", "export", "-p", p, "--format", "ocsf"]);
    assert!(o.status.success(), "{}", text(&o));
    let events: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 4);
    for e in &events {
        assert_eq!(e["class_uid"], 6003);
        assert_eq!(e["category_uid"], 6);
        assert_eq!(e["type_uid"], 600_399);
        assert_eq!(e["metadata"]["profiles"], json!(["security_control"]));
        assert_eq!(e["actor"]["user"]["uid"], "support-triage");
        assert!(e["time"].as_i64().unwrap() > 1_700_000_000_000);
        assert!(e["src_endpoint"].is_object() && e["api"]["operation"] == "get_ticket");
    }
    assert_eq!(
        events
            .iter()
            .filter(|e| e["action_id"] == 1 && e["disposition_id"] == 1)
            .count(),
        3
    );
    let denied: Vec<&Value> = events.iter().filter(|e| e["action_id"] == 2).collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["disposition"], "Blocked");
}

/// A plain HTTP server that answers 200 to every POST and keeps the bodies.
fn http_witness() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let Ok(k) = s.read(&mut chunk) else {
                    break None;
                };
                if k == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..k]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        assert!(head.starts_with("POST /add "), "{head}");
                        break Some(body.to_string());
                    }
                }
            };
            if let Some(b) = body {
                keep.lock().unwrap().push(b);
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (addr, got)
}

#[test]
fn checkpoints_reach_every_kind_of_witness() {
    let (addr, posted) = http_witness();
    let config = format!(
        "\n[ledger]\ncheckpoint_every_records = 5\n\n[[ledger.witnesses]]\nfile = \"witness/latest.checkpoint\"\n\n[[ledger.witnesses]]\ndir = \"witness/all\"\n\n[[ledger.witnesses]]\nurl = \"http://{addr}/add\"\n"
    );
    let (_tmp, dir) = project_with(12, &config);
    let p = dir.to_str().unwrap();
    let latest = String::from_utf8(run(&["audit", "checkpoint", "-p", p]).stdout).unwrap();
    assert!(
        latest.contains("\n13\n"),
        "the final checkpoint covers all 13 records: {latest}"
    );
    let vkey = String::from_utf8(run(&["audit", "pubkey", "-p", p]).stdout).unwrap();
    let key = warden_verify::NoteVerifier::parse(vkey.trim()).unwrap();

    // The file witness holds the latest checkpoint; the directory one file per checkpoint.
    let file = std::fs::read_to_string(dir.join("witness/latest.checkpoint")).unwrap();
    assert_eq!(file, latest);
    let mut sizes = Vec::new();
    for entry in std::fs::read_dir(dir.join("witness/all")).unwrap() {
        let note = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        sizes.push(warden_verify::Checkpoint::open(&note, &key).unwrap().size);
    }
    sizes.sort_unstable();
    assert!(sizes.len() >= 2 && sizes.last() == Some(&13), "{sizes:?}");
    // The HTTP witness was sent each checkpoint, the last being the latest.
    let posted = posted.lock().unwrap().clone();
    assert_eq!(posted.len(), sizes.len(), "{posted:?}");
    assert_eq!(posted.last().unwrap(), &latest);
}

#[test]
fn a_witness_with_two_targets_is_a_located_config_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    assert!(run(&["init", dir.to_str().unwrap()]).status.success());
    let toml = dir.join("warden.toml");
    let mut config = std::fs::read_to_string(&toml).unwrap();
    let line = config.lines().count() + 3;
    config.push_str("\n[ledger]\n[[ledger.witnesses]]\nfile = \"a\"\ndir = \"b\"\n");
    std::fs::write(&toml, config).unwrap();
    let o = run(&["check", "-p", dir.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains(&format!(
            "warden.toml:{line}:1: error: [[ledger.witnesses]] number 1 must have exactly one of"
        )),
        "{}",
        text(&o)
    );
}

/// Every byte of the project's SQLite files.
fn store_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for name in ["warden.db", "warden.db-wal"] {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            out.extend(b);
        }
    }
    out
}

#[test]
fn retention_and_erasure_from_the_command_line_leave_the_ledger_verifiable() {
    let (tmp, dir) = project_with(0, "");
    let p = dir.to_str().unwrap();
    // Three account reads by the gateway (the card's subject_args = ["account_id"]).
    let (mut child, addr) = serve(&dir);
    let key = key_of(&dir, "support-triage");
    for account in ["ACC-0417", "ACC-0417", "ACC-0932"] {
        let v = post(
            &addr,
            &key,
            &json!({"tool": "get_account", "arguments": {"account_id": account}}),
        );
        assert_eq!(v["decision"], "allow", "{v}");
    }
    stop(&mut child);
    assert!(
        !store_bytes(&dir).windows(8).any(|w| w == b"ACC-0417"),
        "arguments are sealed at rest"
    );
    let o = run(&["audit", "checkpoint", "--now", "-p", p]);
    assert!(o.status.success(), "{}", text(&o));
    let older = tmp.path().join("before-erasure.checkpoint");
    std::fs::write(&older, &o.stdout).unwrap();

    // What is held about the subject, opened.
    let o = run(&["data", "export", "--subject", "acc-0417", "-p", p]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("\"account_id\":\"ACC-0417\""), "{out}");
    assert!(!out.contains("ACC-0932"), "{out}");

    // Erase it: the chain verifies, also against the checkpoint taken before.
    let o = run(&[
        "data",
        "erase",
        "--subject",
        "ACC-0417",
        "--reason",
        "DSAR-118",
        "-p",
        p,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("1 key destroyed, 2 records unreadable"),
        "{}",
        text(&o)
    );
    let o = run(&["data", "export", "--subject", "ACC-0417", "-p", p]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(!out.contains("\"account_id\""), "{out}");
    assert_eq!(
        out.matches("\"arguments\":\"[erased: data subject]\"")
            .count(),
        2,
        "{out}"
    );
    assert!(out.contains("\"subject_erased\""), "{out}");
    let o = run(&[
        "audit",
        "verify",
        "-p",
        p,
        "--checkpoint",
        older.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("extends the checkpoint"), "{}", text(&o));
    let o = run(&[
        "data",
        "erase",
        "--subject",
        "ACC-0417",
        "--reason",
        " ",
        "-p",
        p,
    ]);
    assert!(!o.status.success(), "a reason is required");

    // Retention: nothing is due today; 92 days on (the 90d default), the day key of the four
    // decisions (three account reads, the denied ticket read of `project_with`) is.
    let o = run(&["retention", "run", "-p", p]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(": 0 keys destroyed"), "{}", text(&o));
    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(92))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let o = run(&["retention", "run", "--dry-run", "--as-of", &later, "-p", p]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("1 key due, 4 records with payloads to purge"),
        "{}",
        text(&o)
    );
    let o = run(&["retention", "run", "--as-of", &later, "-p", p]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("recorded as ledger record"),
        "{}",
        text(&o)
    );
    let o = run(&[
        "audit",
        "search",
        "--agent",
        "support-triage",
        "--json",
        "-p",
        p,
    ]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("[purged: past retention]"), "{out}");
    assert!(!out.contains("ACC-0932"), "{out}");
    let o = run(&[
        "audit",
        "verify",
        "-p",
        p,
        "--checkpoint",
        older.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["audit", "tail", "-n", "3", "--json", "-p", p]);
    assert!(text(&o).contains("retention_purged"), "{}", text(&o));
    assert!(text(&o).contains("subject_erased"), "{}", text(&o));
}

/// Rows of the ledger as stored: (seq, hash, record).
fn ledger_rows(dir: &Path) -> Vec<(i64, String, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Row};
        let url = format!("sqlite://{}", dir.join("warden.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("SELECT seq, hash, record FROM ledger ORDER BY seq")
            .fetch_all(&mut c)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    })
}

/// Write rows back (same seq), in one transaction.
fn rewrite_rows(dir: &Path, rows: &[(i64, String, String)]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", dir.join("warden.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let mut tx = c.begin().await.unwrap();
        for (seq, hash, record) in rows {
            sqlx::query("UPDATE ledger SET hash = ?, record = ? WHERE seq = ?")
                .bind(hash)
                .bind(record)
                .bind(seq)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    });
}

#[test]
fn a_forged_vote_signature_is_named_by_audit_verify_even_with_the_chain_recomputed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let p = dir.to_str().unwrap();
    // The demo's scripted approver votes through the same API a browser uses.
    let o = run(&["demo", "--keep", p]);
    assert!(o.status.success(), "{}", text(&o));
    // Stored checkpoints would catch a rewritten chain on their own; remove them so only the
    // signature check is left to catch the forgery.
    sqlite(&dir, "DELETE FROM ledger_checkpoints");
    let o = run(&["audit", "verify", "-p", p]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("ok: 1 approval vote signatures verified with the ledger key"),
        "{}",
        text(&o)
    );
    // The vote names the ledger key: the same key id `warden audit pubkey` shows.
    let pubkey = run(&["audit", "pubkey", "-p", p]);
    assert!(pubkey.status.success(), "{}", text(&pubkey));
    let vkey = String::from_utf8_lossy(&pubkey.stdout).trim().to_string();
    let key_id = vkey.split('+').nth(1).unwrap().to_string();

    let mut rows = ledger_rows(&dir);
    let at = rows
        .iter()
        .position(|(_, _, r)| r.contains(r#""kind":"approval_vote""#))
        .expect("the demo's approval vote is in the ledger");
    let vote_seq = rows[at].0;
    let record: Value = serde_json::from_str(&rows[at].2).unwrap();
    assert_eq!(record["event"]["key_id"], key_id.as_str(), "{record}");
    let sig = record["event"]["signature"].as_str().unwrap().to_string();
    // Flip a byte inside the signature: change one base64 digit (same length, still base64).
    let mut forged: Vec<char> = sig.chars().collect();
    forged[10] = if forged[10] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    rows[at].2 = rows[at].2.replace(&sig, &forged);
    // Recompute every hash from the forged record on, so the chain stays consistent.
    let mut prev = if at == 0 {
        warden_core::ledger::GENESIS_HASH.to_string()
    } else {
        rows[at - 1].1.clone()
    };
    for row in rows.iter_mut().skip(at) {
        let mut rec: Value = serde_json::from_str(&row.2).unwrap();
        rec["prev_hash"] = Value::String(prev.clone());
        row.2 = warden_core::ledger::canonical_json(&rec).unwrap();
        row.1 = warden_core::ledger::leaf_hash(row.2.as_bytes());
        prev = row.1.clone();
    }
    rewrite_rows(&dir, &rows[at..]);

    let o = run(&["audit", "verify", "-p", p]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("records verified") && !t.contains("broken"),
        "the recomputed chain still verifies, so only the signature check catches it:\n{t}"
    );
    assert!(
        t.contains(&format!("FAILED: approval vote record {vote_seq} ")),
        "the forged vote is named:\n{t}"
    );
    assert!(t.contains("signature does not verify"), "{t}");
}

/// Records in a store (a `sqlite://` database of the project) that name an agent.
fn records_naming(db: &Path, agent: &str) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Row};
        let url = format!("sqlite://{}", db.display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM ledger WHERE record LIKE ?")
            .bind(format!("%\"agent\":\"{agent}\"%"))
            .fetch_one(&mut c)
            .await
            .unwrap()
            .get(0);
        u64::try_from(n).unwrap()
    })
}

#[test]
fn an_agent_of_a_region_is_served_and_recorded_only_by_that_region() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    let p = dir.to_str().unwrap();
    let o = run(&["init", p]);
    assert!(o.status.success(), "{}", text(&o));
    let toml = dir.join("warden.toml");
    let mut config = std::fs::read_to_string(&toml).unwrap();
    config.push_str("\n[regions.eu]\nurl = \"sqlite://eu/warden.db\"\n");
    std::fs::write(&toml, config).unwrap();
    let card = dir.join("agents/support-triage.toml");
    let original = std::fs::read_to_string(&card).unwrap();

    // A region the project does not declare is a located error with a suggestion.
    std::fs::write(&card, format!("region = \"ue\"\n{original}")).unwrap();
    let o = run(&["check", "-p", p]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("agents/support-triage.toml:1:10: error: region `ue` is not declared"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("did you mean `eu`?"), "{}", text(&o));
    std::fs::write(&card, format!("region = \"eu\"\n{original}")).unwrap();
    let o = run(&["check", "-p", p]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("records of region `eu`: support-triage"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("records of the home store: crm-writer"),
        "{}",
        text(&o)
    );
    let o = run(&["--region", "us", "audit", "pubkey", "-p", p]);
    assert!(!o.status.success());
    assert!(text(&o).contains("regions: eu"), "{}", text(&o));

    // The home gateway and the gateway of region eu, side by side.
    let (mut home, home_addr) = serve(&dir);
    let (mut eu, eu_addr) = serve_with(&dir, &["--region", "eu"]);
    let triage = key_of(&dir, "support-triage");
    let writer = key_of(&dir, "crm-writer");
    let read = json!({"tool": "get_account", "arguments": {"account_id": "ACC-0417"}});
    let (status, v) = post_status(&home_addr, &triage, &read);
    assert_eq!(status, 421, "{v}");
    assert!(v.to_string().contains("region `eu`"), "{v}");
    let v = post(&eu_addr, &triage, &read);
    assert_eq!(v["decision"], "allow", "{v}");
    let (status, v) = post_status(&eu_addr, &writer, &read);
    assert_eq!(status, 421, "{v}");
    assert!(v.to_string().contains("home store"), "{v}");
    let v = post(&home_addr, &writer, &read);
    assert_eq!(v["decision"], "allow", "{v}");
    stop(&mut home);
    stop(&mut eu);

    // Each agent's records are in its own store only.
    let home_db = dir.join("warden.db");
    let eu_db = dir.join("eu/warden.db");
    assert_eq!(records_naming(&home_db, "support-triage"), 0);
    assert_eq!(records_naming(&home_db, "crm-writer"), 1);
    assert_eq!(records_naming(&eu_db, "support-triage"), 1);
    assert_eq!(records_naming(&eu_db, "crm-writer"), 0);
    // A search by agent looks in the agent's region without being told.
    let o = run(&[
        "audit",
        "search",
        "--agent",
        "support-triage",
        "--json",
        "-p",
        p,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ACC-0417"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("searching region `eu`"), "{}", text(&o));

    // Two logs, two keys; `audit verify` without --region checks every store.
    let home_key = run(&["audit", "pubkey", "-p", p]);
    let eu_key = run(&["--region", "eu", "audit", "pubkey", "-p", p]);
    assert!(home_key.status.success() && eu_key.status.success());
    assert_ne!(home_key.stdout, eu_key.stdout);
    let o = run(&["audit", "verify", "-p", p]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("== region `eu` =="), "{}", text(&o));
    assert_eq!(
        text(&o).matches("records verified").count(),
        2,
        "{}",
        text(&o)
    );

    // Nothing about the agent can be written to the wrong store from the command line either.
    let o = run(&["token", "issue", "--agent", "support-triage", "-p", p]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--region eu"), "{}", text(&o));
    let o = run(&[
        "--region",
        "eu",
        "token",
        "issue",
        "--agent",
        "support-triage",
        "-p",
        p,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(records_naming(&home_db, "support-triage"), 0);

    // A subject's data is exported and erased in every store.
    let o = run(&[
        "data",
        "erase",
        "--subject",
        "ACC-0417",
        "--reason",
        "DSAR-7",
        "-p",
        p,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["data", "export", "--subject", "ACC-0417", "-p", p]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(!out.contains("\"account_id\""), "{out}");
    assert_eq!(
        out.matches("\"arguments\":\"[erased: data subject]\"")
            .count(),
        2,
        "{out}"
    );
    assert_eq!(out.matches("\"region\":\"eu\"").count(), 2, "{out}");
    let o = run(&["audit", "verify", "-p", p]);
    assert!(o.status.success(), "{}", text(&o));
}
