//! Identity end to end through the binary: tokens, OAuth clients, people, the secret store,
//! the access review on the demo's ledger — and a leak test that plants known secrets and
//! searches every output for them.

// Test code: a panic is a failed assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

fn warden() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_warden"));
    c.env_remove("WARDEN_PROJECT")
        .env_remove("WARDEN_MASTER_KEY")
        .env("WARDEN_LOG", "warn");
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Run in a project; returns the output (stdout + stderr) and fails the test on error.
fn ok(dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let o = run_in(dir, args, stdin);
    assert!(o.status.success(), "warden {args:?} failed:\n{}", text(&o));
    text(&o)
}

fn run_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = warden();
    c.args(args).arg("-p").arg(dir);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        let mut i = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            i.write_all(s.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn init() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    let o = warden()
        .args(["init", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    (tmp, dir)
}

/// A raw HTTP/1.1 exchange (so the test does not lean on the code under test).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn line_after<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in:\n{out}"))
        .trim()
}

fn base32_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for ch in s.bytes() {
        let v = match ch {
            b'A'..=b'Z' => ch - b'A',
            b'2'..=b'7' => ch - b'2' + 26,
            _ => panic!("not base32"),
        };
        buf = (buf << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            out.push((buf >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    out
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn totp_now(seed: &[u8]) -> String {
    format!(
        "{:06}",
        warden_core::identity::hotp(seed, warden_core::identity::totp_step(now()))
    )
}

/// A fake streamable-HTTP upstream that records what it receives and answers 503.
fn recording_upstream() -> (String, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            c.set_read_timeout(Some(Duration::from_millis(300))).ok();
            let mut buf = [0u8; 8192];
            if let Ok(n) = c.read(&mut buf) {
                s2.lock().unwrap().extend_from_slice(&buf[..n]);
            }
            let _ = c.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (addr, seen)
}

#[test]
fn no_planted_secret_appears_in_any_output() {
    let (_tmp, dir) = init();
    let (up_addr, upstream_seen) = recording_upstream();
    // An upstream whose credential comes from the encrypted secret store.
    let mut cfg = std::fs::read_to_string(dir.join("warden.toml")).unwrap();
    cfg.push_str(&format!(
        "\n[upstreams.vault]\nurl = \"http://{up_addr}/mcp\"\n[upstreams.vault.headers]\nAuthorization = {{ secret = \"VAULT_TOKEN\" }}\n"
    ));
    std::fs::write(dir.join("warden.toml"), cfg).unwrap();

    let mut outputs: Vec<(String, String)> = Vec::new();
    let upstream_cred = "Bearer UPSTREAM-CRED-7f3a9c2e51d04b86aa";
    let o = ok(&dir, &["secret", "set", "VAULT_TOKEN"], Some(upstream_cred));
    outputs.push(("secret set".into(), o));

    let enrol = ok(&dir, &["user", "add", "alice", "--role", "approver"], None);
    let password = line_after(&enrol, "password:").to_string();
    let uri = line_after(&enrol, "TOTP:").to_string();
    assert!(
        uri.starts_with("otpauth://totp/Warden:alice?secret="),
        "{uri}"
    );
    assert!(
        enrol.contains('▀') || enrol.contains('▄') || enrol.contains('█'),
        "a QR code is printed:\n{enrol}"
    );
    let seed_b32 = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let seed = base32_decode(&seed_b32);

    let token = ok(
        &dir,
        &[
            "token",
            "issue",
            "--agent",
            "support-triage",
            "--ttl",
            "15m",
            "--quiet",
        ],
        None,
    )
    .lines()
    .next()
    .unwrap()
    .trim()
    .to_string();
    assert!(token.starts_with("wdn_at_"), "{token}");
    let client = ok(
        &dir,
        &["token", "client-add", "--agent", "crm-writer"],
        None,
    );
    let client_id = line_after(&client, "client_id:").to_string();
    let client_secret = line_after(&client, "client_secret:").to_string();
    let bg = ok(&dir, &["user", "break-glass-seal"], None);
    let bg_cred = bg
        .lines()
        .find(|l| l.starts_with("wdn_bg_"))
        .unwrap()
        .trim()
        .to_string();

    // The gateway, with debug logs captured.
    let log_path = dir.join("serve.log");
    let mut child = warden()
        .env("WARDEN_LOG", "debug")
        .args([
            "serve",
            "-p",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();

    let json_ct = ("content-type", "application/json");
    let decision = json!({"tool": "get_ticket", "arguments": {"ticket_id": "T-1001"}}).to_string();
    let bearer = format!("Bearer {token}");
    let mut responses = Vec::new();
    let (st, h, b) = http(
        &addr,
        "POST",
        "/v1/decisions",
        &[json_ct, ("authorization", &bearer)],
        &decision,
    );
    assert_eq!(st, 200, "{b}");
    responses.push(format!("{h}\n{b}"));
    // The last character changed (to `0`, or to `1` when it already is `0`: replacing a `0`
    // with `0` is the real token, and the call succeeded one run in sixteen).
    let swap = if token.ends_with('0') { '1' } else { '0' };
    let forged = format!("Bearer {}{swap}", &token[..token.len() - 1]);
    let (st, h, b) = http(
        &addr,
        "POST",
        "/v1/decisions",
        &[json_ct, ("authorization", &forged)],
        &decision,
    );
    assert_eq!(st, 401);
    responses.push(format!("{h}\n{b}"));
    let form = format!(
        "grant_type=client_credentials&client_id={client_id}&client_secret={client_secret}"
    );
    let (st, h, b) = http(
        &addr,
        "POST",
        "/oauth/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        &form,
    );
    assert_eq!(st, 200, "{b}");
    responses.push(format!("{h}\n{b}"));
    let wrong = format!(
        "grant_type=client_credentials&client_id={client_id}&client_secret={client_secret}x"
    );
    let (st, h, b) = http(
        &addr,
        "POST",
        "/oauth/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        &wrong,
    );
    assert_eq!(st, 401);
    responses.push(format!("{h}\n{b}"));
    let bad_login =
        json!({"user": "alice", "password": format!("{password}x"), "totp": "000000"}).to_string();
    let (st, h, b) = http(&addr, "POST", "/v1/login", &[json_ct], &bad_login);
    assert_eq!(st, 401);
    responses.push(format!("{h}\n{b}"));
    let good_login =
        json!({"user": "alice", "password": password, "totp": totp_now(&seed)}).to_string();
    let (st, h, b) = http(&addr, "POST", "/v1/login", &[json_ct], &good_login);
    assert_eq!(st, 200, "{b}");
    responses.push(format!("{h}\n{b}"));
    let bg_login = json!({"break_glass": bg_cred}).to_string();
    let (st, h, b) = http(&addr, "POST", "/v1/login", &[json_ct], &bg_login);
    assert_eq!(st, 200, "{b}");
    responses.push(format!("{h}\n{b}"));
    let (_, h, b) = http(&addr, "GET", "/openapi.json", &[], "");
    responses.push(format!("{h}\n{b}"));

    #[cfg(unix)]
    {
        let _ = Command::new("kill").arg(child.id().to_string()).status();
    }
    let _ = child.wait();

    // The upstream got its credential (the secret store works) ...
    std::thread::sleep(Duration::from_millis(200));
    let seen = String::from_utf8_lossy(&upstream_seen.lock().unwrap()).to_string();
    assert!(
        seen.contains(upstream_cred),
        "the upstream receives its credential:\n{seen}"
    );

    // ... and nothing else ever shows a planted value.
    for args in [
        vec!["token", "list", "--all"],
        vec!["user", "list"],
        vec!["secret", "list"],
        vec!["audit", "tail", "-n", "1000", "--json"],
        vec!["audit", "verify"],
        vec!["access", "review"],
    ] {
        outputs.push((args.join(" "), ok(&dir, &args, None)));
    }
    let o = run_in(&dir, &["secret", "set", "bad/name"], Some(upstream_cred));
    outputs.push(("secret set bad name".into(), text(&o)));
    outputs.push((
        "serve log".into(),
        std::fs::read_to_string(&log_path).unwrap(),
    ));
    for (i, r) in responses.iter().enumerate() {
        outputs.push((format!("response {i}"), r.clone()));
    }
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("warden.db") {
            files.push((name, std::fs::read(&p).unwrap()));
        }
    }
    assert!(files.iter().any(|(n, _)| n == "warden.db"));

    let planted: Vec<(&str, Vec<u8>)> = vec![
        ("agent token", token.as_bytes().to_vec()),
        ("client secret", client_secret.as_bytes().to_vec()),
        ("break-glass credential", bg_cred.as_bytes().to_vec()),
        ("password", password.as_bytes().to_vec()),
        (
            "upstream credential",
            b"UPSTREAM-CRED-7f3a9c2e51d04b86aa".to_vec(),
        ),
        ("TOTP seed (base32)", seed_b32.as_bytes().to_vec()),
        ("TOTP seed (hex)", hex::encode(&seed).into_bytes()),
        ("TOTP seed (bytes)", seed.clone()),
    ];
    for (what, needle) in &planted {
        for (name, out) in &outputs {
            assert!(
                !out.as_bytes()
                    .windows(needle.len())
                    .any(|w| w == needle.as_slice()),
                "the {what} appears in `{name}`"
            );
        }
        for (name, bytes) in &files {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "the {what} appears in the bytes of {name}"
            );
        }
    }
    // The ledger recorded the identity events.
    let tail = &outputs
        .iter()
        .find(|(n, _)| n.starts_with("audit tail"))
        .unwrap()
        .1;
    for action in [
        "secret_set",
        "user_added",
        "mfa_enrolled",
        "token_issued",
        "client_added",
        "break_glass_sealed",
        "login_failed",
        "login",
        "break_glass_used",
        "client_token_issued",
    ] {
        if action == "client_token_issued" {
            assert!(
                tail.contains("oauth:crm-writer."),
                "the OAuth token names its client"
            );
            continue;
        }
        assert!(
            tail.contains(&format!("\"action\":\"{action}\"")),
            "no {action} record"
        );
    }
}

#[test]
fn access_review_on_the_demo_ledger_names_unused_permissions_and_their_edits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let o = warden()
        .args(["demo", "--keep", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("support-triage token "),
        "the demo issues each agent a token:\n{t}"
    );
    assert!(t.contains("crm-writer token "), "{t}");

    let review = ok(&dir, &["access", "review", "--days", "30"], None);
    // support-triage's card grants get_account, which the demo never calls.
    let edit = review
        .lines()
        .find(|l| {
            l.contains("unused:")
                && l.contains("crm/get_account")
                && l.contains("support-triage.toml")
        })
        .unwrap_or_else(|| panic!("no unused get_account for support-triage:\n{review}"));
    let n: usize = edit
        .rsplit("(line ")
        .next()
        .unwrap()
        .trim_end_matches(')')
        .parse()
        .unwrap();
    let card = std::fs::read_to_string(dir.join("agents/support-triage.toml")).unwrap();
    let lines: Vec<&str> = card.lines().collect();
    assert_eq!(
        lines[n - 1].trim(),
        "[[tools]]",
        "line {n} is the entry's header"
    );
    let entry: String = lines[n..]
        .iter()
        .take_while(|l| !l.starts_with("[["))
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(entry.contains("name = \"get_account\""), "{entry}");
    assert!(
        review.contains("used:    helpdesk/list_tickets ×1"),
        "{review}"
    );

    // Applying the edit removes the permission: the next review has nothing unused there.
    let mut kept: Vec<&str> = lines[..n - 1].to_vec();
    let rest: Vec<&str> = lines[n..]
        .iter()
        .skip_while(|l| !l.starts_with("[["))
        .copied()
        .collect();
    kept.extend(rest);
    std::fs::write(
        dir.join("agents/support-triage.toml"),
        kept.join("\n") + "\n",
    )
    .unwrap();
    let again = ok(
        &dir,
        &["access", "review", "--agent", "support-triage", "--json"],
        None,
    );
    let v: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(v[0]["unused"], json!([]), "{again}");

    // Sign-off: an owner with MFA certifies, with a fresh code.
    let enrol = ok(&dir, &["user", "add", "olivia", "--role", "owner"], None);
    let uri = line_after(&enrol, "TOTP:");
    let seed = base32_decode(
        uri.split("secret=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap(),
    );
    let o = run_in(
        &dir,
        &[
            "access",
            "certify",
            "--agent",
            "support-triage",
            "--by",
            "olivia",
        ],
        None,
    );
    assert!(!o.status.success(), "a code is required");
    let o = run_in(
        &dir,
        &[
            "access",
            "certify",
            "--agent",
            "support-triage",
            "--by",
            "olivia",
            "--totp",
            "000000",
        ],
        None,
    );
    assert!(!o.status.success() || totp_now(&seed) == "000000");
    let out = ok(
        &dir,
        &[
            "access",
            "certify",
            "--agent",
            "support-triage",
            "--by",
            "olivia",
            "--totp",
            &totp_now(&seed),
        ],
        None,
    );
    assert!(
        out.contains("olivia certified the access of support-triage"),
        "{out}"
    );
    let tail = ok(&dir, &["audit", "tail", "-n", "5", "--json"], None);
    let rec = tail
        .lines()
        .find(|l| l.contains("access_certified"))
        .unwrap();
    let v: Value = serde_json::from_str(rec).unwrap();
    assert_eq!(v["event"]["by"], "olivia");
    assert_eq!(v["event"]["mfa"], true);
    assert_eq!(v["event"]["card_hash"].as_str().unwrap().len(), 64);
    assert!(v["event"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "helpdesk/get_ticket"));
    // An auditor cannot certify.
    ok(
        &dir,
        &["user", "add", "audrey", "--role", "auditor", "--no-mfa"],
        None,
    );
    let o = run_in(
        &dir,
        &[
            "access",
            "certify",
            "--agent",
            "support-triage",
            "--by",
            "audrey",
        ],
        None,
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("only an owner or an admin"),
        "{}",
        text(&o)
    );
    assert!(ok(&dir, &["audit", "verify"], None).contains("verified"));
}

#[test]
fn token_cli_issue_list_revoke_and_master_key_rotation() {
    let (_tmp, dir) = init();
    let out = ok(
        &dir,
        &[
            "token",
            "issue",
            "--agent",
            "crm-writer",
            "--ttl",
            "15m",
            "--tools",
            "get_account,crm/update_account",
        ],
        None,
    );
    assert!(
        out.contains("tools: crm/get_account, crm/update_account"),
        "{out}"
    );
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    let list = ok(&dir, &["token", "list"], None);
    assert!(list.contains(&id) && list.contains("active"), "{list}");
    let o = run_in(
        &dir,
        &["token", "issue", "--agent", "crm-writer", "--ttl", "40d"],
        None,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("at most"), "{}", text(&o));
    let o = run_in(
        &dir,
        &[
            "token",
            "issue",
            "--agent",
            "crm-writer",
            "--tools",
            "delete_account",
        ],
        None,
    );
    assert!(text(&o).contains("not on the scope card"), "{}", text(&o));
    ok(&dir, &["token", "revoke", &id], None);
    assert!(!ok(&dir, &["token", "list"], None).contains(&id));
    assert!(ok(&dir, &["token", "list", "--all"], None).contains("revoked"));

    // Secrets survive a master-key rotation, and the old key no longer opens them.
    ok(
        &dir,
        &["secret", "set", "API_KEY"],
        Some("s3cr3t-value-for-rotation"),
    );
    let old_key = std::fs::read_to_string(dir.join("master.key")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = ok(&dir, &["secret", "rotate-master"], None);
    assert!(out.contains("re-wrapped 1 secrets"), "{out}");
    let new_key = std::fs::read_to_string(dir.join("master.key")).unwrap();
    assert_ne!(old_key, new_key);
    let list = ok(&dir, &["secret", "list"], None);
    assert!(
        list.contains("API_KEY") && !list.contains("s3cr3t"),
        "{list}"
    );
    // With the old key (through the environment), the secret cannot be opened: `serve` refuses.
    let mut cfg = std::fs::read_to_string(dir.join("warden.toml")).unwrap();
    cfg.push_str("\n[upstreams.extra]\nurl = \"http://127.0.0.1:9/mcp\"\n[upstreams.extra.headers]\nX-Key = { secret = \"API_KEY\" }\n");
    std::fs::write(dir.join("warden.toml"), cfg).unwrap();
    let o = warden()
        .env("WARDEN_MASTER_KEY", old_key.trim())
        .args([
            "serve",
            "-p",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("could not be opened"), "{t}");
    assert!(!t.contains("s3cr3t"), "{t}");
}

#[test]
fn calls_at_tier_review_run_and_queue_for_an_mfa_proven_review_with_a_deadline() {
    let (_tmp, dir) = init();
    let mut cfg = std::fs::read_to_string(dir.join("warden.toml")).unwrap();
    cfg.push_str("\n[approvals]\nreview_deadline_hours = 0\n");
    std::fs::write(dir.join("warden.toml"), cfg).unwrap();
    let enrol = ok(&dir, &["user", "add", "rita", "--role", "approver"], None);
    let uri = line_after(&enrol, "TOTP:").to_string();
    let seed = base32_decode(
        uri.split("secret=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap(),
    );
    let key = std::fs::read_to_string(dir.join("agent-keys.txt"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("crm-writer="))
        .unwrap()
        .to_string();
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
        .unwrap()
        .to_string();
    let bearer = format!("Bearer {key}");
    let mut ids = Vec::new();
    for value in ["gold", "silver"] {
        let body = json!({"tool": "update_account", "arguments":
            {"account_id": "ACC-0001", "field": "tier", "value": value}})
        .to_string();
        let (st, _, b) = http(
            &addr,
            "POST",
            "/v1/decisions",
            &[
                ("content-type", "application/json"),
                ("authorization", &bearer),
            ],
            &body,
        );
        assert_eq!(st, 200, "{b}");
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["decision"], "allow", "review runs at once: {v}");
        assert_eq!(v["tier"], "review", "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Both wait for review; with a deadline of 0 h both are overdue, alerted once each.
    let list = ok(&dir, &["approvals", "reviews"], None);
    assert!(list.contains(&ids[0]) && list.contains(&ids[1]), "{list}");
    assert!(list.contains("OVERDUE"), "{list}");
    let code = totp_now(&seed);
    let o = run_in(
        &dir,
        &[
            "approvals",
            "review",
            &ids[0],
            "--by",
            "rita",
            "--totp",
            "000000",
            "--verdict",
            "ok",
            "--note",
            "x",
        ],
        None,
    );
    assert!(
        !o.status.success() || code == "000000",
        "a wrong code is refused"
    );
    let out = ok(
        &dir,
        &[
            "approvals",
            "review",
            &ids[0],
            "--by",
            "rita",
            "--totp",
            &code,
            "--verdict",
            "ok",
            "--note",
            "tier change matches ticket T-1001",
        ],
        None,
    );
    assert!(
        out.contains(&format!("rita reviewed {} as ok", ids[0])),
        "{out}"
    );
    let list = ok(&dir, &["approvals", "reviews"], None);
    assert!(!list.contains(&ids[0]) && list.contains(&ids[1]), "{list}");
    let all = ok(&dir, &["approvals", "reviews", "--all"], None);
    assert!(all.contains("ok by rita"), "{all}");
    let tail = ok(&dir, &["audit", "tail", "-n", "10", "--json"], None);
    assert_eq!(tail.matches("\"review_overdue\"").count(), 2, "{tail}");
    assert_eq!(tail.matches("\"call_reviewed\"").count(), 1, "{tail}");
    assert!(tail.contains("tier change matches ticket T-1001"), "{tail}");
    ok(&dir, &["audit", "verify"], None);
}
