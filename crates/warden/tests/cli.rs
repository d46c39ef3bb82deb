//! The `warden` binary end to end: init, check, test, demo, serve, audit — and a SIGKILL in
//! the middle of a burst of decisions.

// Test code: a panic is a failed assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
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

fn init() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    let o = run(&["init", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    (tmp, dir)
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

struct Server {
    child: Child,
    addr: String,
}

fn serve(dir: &Path) -> Server {
    let mut child = warden()
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
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();
    Server { child, addr }
}

#[test]
fn init_then_check_and_test_pass() {
    let (_t, dir) = init();
    let p = dir.to_str().unwrap();
    let o = run(&["check", "-p", p]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("ok: 2 agents, 9 tools granted"),
        "{}",
        text(&o)
    );
    let junit = dir.join("junit.xml");
    let o = run(&["test", "-p", p, "--junit", junit.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("policy scenarios: 13 passed, 0 failed"),
        "{}",
        text(&o)
    );
    assert!(std::fs::read_to_string(junit)
        .unwrap()
        .contains("tests=\"13\" failures=\"0\""));
    // The built-in adversarial corpus: no injected call runs without a human.
    let o = run(&["test", "-p", p, "--adversarial"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("0 could run without a human (contained)"),
        "{}",
        text(&o)
    );
    // Loosen a card and the same run fails, naming the call.
    let card = dir.join("agents/crm-writer.toml");
    let loose = std::fs::read_to_string(&card).unwrap().replace(
        "name = \"update_account\"\naccess = \"write\"",
        "name = \"update_account\"\nafter_untrusted = \"auto\"\nafter_suspicious = \"auto\"\nuntrusted_args = \"auto\"\naccess = \"write\"",
    );
    std::fs::write(&card, loose).unwrap();
    let o = run(&["test", "-p", p, "--adversarial"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("UNSEEN"), "{}", text(&o));
    let o = run(&["init", p]);
    assert!(!o.status.success(), "init must not overwrite a project");
}

#[test]
fn broken_cards_fail_check_with_file_line_col() {
    let (_t, dir) = init();
    let p = dir.to_str().unwrap();
    let card = dir.join("agents/crm-writer.toml");
    let good = std::fs::read_to_string(&card).unwrap();
    let line_of = |needle: &str| good.lines().position(|l| l.contains(needle)).unwrap() + 1;
    for (from, to, expect) in [
        (
            "purpose =",
            "purpos =",
            format!("agents/crm-writer.toml:{}:1: error: unknown field `purpos`", line_of("purpose =")),
        ),
        (
            "pattern = \"ACC-[0-9]{4}\"",
            "pattern = \"ACC-[0-9{4}\"",
            format!(
                "agents/crm-writer.toml:{}:11: error: argument `account_id`: `pattern` is not a valid regular expression",
                line_of("pattern = \"ACC")
            ),
        ),
        (
            "approval = \"approve\"",
            "approval = \"manager\"",
            format!(
                "agents/crm-writer.toml:{}:12: error: unknown variant `manager`",
                line_of("approval = \"approve\"")
            ),
        ),
    ] {
        std::fs::write(&card, good.replacen(from, to, 1)).unwrap();
        let o = run(&["check", "-p", p]);
        assert!(!o.status.success(), "{from} -> {to} must fail");
        assert!(text(&o).contains(&expect), "expected `{expect}` in:\n{}", text(&o));
    }
    std::fs::write(&card, good).unwrap();
    assert!(run(&["check", "-p", p]).status.success());
}

#[test]
fn decide_is_a_dry_run_with_reasons() {
    let (_t, dir) = init();
    let o = run(&[
        "decide",
        "-p",
        dir.to_str().unwrap(),
        "--agent",
        "crm-writer",
        "--tool",
        "issue_refund",
        "--args",
        r#"{"account_id":"ACC-0001","amount":120,"reason":"x"}"#,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("decision: approval_required (tier approve)"),
        "{t}"
    );
    assert!(t.contains("dry run"), "{t}");
    assert!(!dir.join("warden.db").exists(), "a dry run records nothing");
}

#[test]
fn demo_exits_zero_and_shows_every_kind_of_decision() {
    let o = run(&["demo"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for needle in [
        "allow",
        "deny",
        "approval_required (approve)",
        "approval_required (two_person)",
        "not on the scope card",
        "hash chain verified",
    ] {
        assert!(
            t.contains(needle),
            "`{needle}` missing from demo output:\n{t}"
        );
    }
}

/// A tiny blocking HTTP/1.1 client, so the test does not lean on the code under test.
fn post(addr: &str, key: &str, path: &str, body: Value) -> Option<Value> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let b = body.to_string();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
        b.len()
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    if !resp.starts_with("HTTP/1.1 200") {
        return None;
    }
    let body = resp.split("\r\n\r\n").nth(1)?;
    serde_json::from_str(body).ok()
}

fn sqlite(dir: &Path, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", dir.join("warden.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let n = sqlx::query(sql)
            .execute(&mut c)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(n, 1, "{sql}");
    });
}

#[test]
fn tampering_with_any_row_is_named_by_audit_verify() {
    let (_t, dir) = init();
    let p = dir.to_str().unwrap();
    let mut server = serve(&dir);
    let key = key_of(&dir, "support-triage");
    for i in 0..20 {
        // Arguments are sealed at rest; the correlation id is in the clear.
        let args = json!({"tool": "get_ticket", "correlation_id": format!("CASE-{}", 1000 + i),
            "arguments": {"ticket_id": format!("T-{:04}", 1000 + i)}});
        let v = post(&server.addr, &key, "/v1/decisions", args).unwrap();
        assert_eq!(v["decision"], "allow");
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let o = run(&["audit", "verify", "-p", p]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("ok: 20 records verified"), "{}", text(&o));

    sqlite(
        &dir,
        "UPDATE ledger SET record = replace(record, 'CASE-1006', 'CASE-9006') WHERE seq = 7",
    );
    let o = run(&["audit", "verify", "-p", p]);
    assert!(!o.status.success());
    assert!(text(&o).contains("broken at record 7"), "{}", text(&o));

    sqlite(
        &dir,
        "UPDATE ledger SET record = replace(record, 'CASE-9006', 'CASE-1006') WHERE seq = 7",
    );
    assert!(
        run(&["audit", "verify", "-p", p]).status.success(),
        "restoring the byte restores the chain"
    );

    sqlite(&dir, "DELETE FROM ledger WHERE seq = 13");
    let o = run(&["audit", "verify", "-p", p]);
    assert!(!o.status.success());
    assert!(text(&o).contains("broken at record 13"), "{}", text(&o));
    assert!(text(&o).contains("missing"), "{}", text(&o));

    let o = run(&[
        "audit",
        "search",
        "-p",
        p,
        "--agent",
        "support-triage",
        "--tool",
        "get_ticket",
        "--since",
        "1h",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("19 records"), "{}", text(&o));
}

#[test]
fn flipping_a_byte_in_the_database_file_is_named_by_audit_verify() {
    let (_t, dir) = init();
    let p = dir.to_str().unwrap();
    let mut server = serve(&dir);
    let key = key_of(&dir, "support-triage");
    for i in 0..12 {
        let args = json!({"tool": "get_ticket", "correlation_id": format!("CASE-{}", 2000 + i),
            "arguments": {"ticket_id": format!("T-{:04}", 2000 + i)}});
        post(&server.addr, &key, "/v1/decisions", args).unwrap();
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    // Move everything from the WAL into the database file, then edit the file itself.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", dir.join("warden.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    });
    let db = dir.join("warden.db");
    let mut bytes = std::fs::read(&db).unwrap();
    let needle = b"CASE-2008";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("record text in the file");
    bytes[at + 2] = b'9';
    std::fs::write(&db, bytes).unwrap();
    let o = run(&["audit", "verify", "-p", p]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("broken at record 9"), "{}", text(&o));
}

#[test]
fn sigkill_during_a_burst_loses_no_acknowledged_decision() {
    let (_t, dir) = init();
    let p = dir.to_str().unwrap().to_string();
    let mut server = serve(&dir);
    let key = key_of(&dir, "support-triage");
    // support-triage's card allows 120 calls a minute; rate-limited denials are still
    // decisions, acknowledged and recorded, so they count too.
    let addr = server.addr.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (addr, key, stop) = (addr.clone(), key.clone(), stop.clone());
        workers.push(std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 5000 {
                i += 1;
                let body = json!({"tool": "get_ticket", "arguments": {"ticket_id": "T-1001"}, "correlation_id": format!("w{w}-{i}")});
                match post(&addr, &key, "/v1/decisions", body) {
                    Some(v) => acked.push((
                        v["id"].as_str().unwrap().to_string(),
                        v["ledger"]["seq"].as_u64().unwrap(),
                    )),
                    None => break,
                }
            }
            acked
        }));
    }
    std::thread::sleep(Duration::from_millis(700));
    // SIGKILL: no shutdown code runs.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked: Vec<(String, u64)> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(
        acked.len() > 50,
        "the burst must get going before the kill ({} acked)",
        acked.len()
    );

    let o = run(&["audit", "verify", "-p", &p]);
    assert!(o.status.success(), "{}", text(&o));
    // Every acknowledged decision is in the ledger, at the sequence number it was given.
    let o = run(&["audit", "tail", "-p", &p, "-n", "1000000", "--json"]);
    let stored: std::collections::HashMap<String, u64> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|r| {
            (
                r["event"]["decision_id"].as_str().unwrap().to_string(),
                r["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    for (id, seq) in &acked {
        assert_eq!(
            stored.get(id),
            Some(seq),
            "acknowledged decision {id} (seq {seq}) lost"
        );
    }

    // After a restart the chain continues and still verifies.
    let mut server = serve(&dir);
    let v = post(
        &server.addr,
        &key,
        "/v1/decisions",
        json!({"tool": "get_ticket", "arguments": {"ticket_id": "T-1001"}}),
    )
    .unwrap();
    assert_eq!(
        v["ledger"]["seq"].as_u64().unwrap(),
        stored.len() as u64 + 1
    );
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let o = run(&["audit", "verify", "-p", &p]);
    assert!(o.status.success(), "{}", text(&o));
    eprintln!(
        "acknowledged before SIGKILL: {}, stored: {}",
        acked.len(),
        stored.len()
    );
}
