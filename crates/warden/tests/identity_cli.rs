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

mod common;

use std::time::Duration;

use common::{text, wait_until, warden, Gateway, Http, Peer, Project, Response};
use serde_json::{json, Value};

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

/// A person added by `warden user add <name> --role <role>`: what it printed and the TOTP
/// enrolment it showed.
struct Enrolment {
    output: String,
    /// The `otpauth://` URI.
    uri: String,
    seed_b32: String,
    seed: Vec<u8>,
}

impl Enrolment {
    fn password(&self) -> String {
        line_after(&self.output, "password:").to_string()
    }
}

fn enrol(project: &Project, name: &str, role: &str) -> Enrolment {
    let output = project.ok(&["user", "add", name, "--role", role]);
    let uri = line_after(&output, "TOTP:").to_string();
    let seed_b32 = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let seed = base32_decode(&seed_b32);
    Enrolment {
        output,
        uri,
        seed_b32,
        seed,
    }
}

/// The credentials the leak test plants, each of which must never show again.
struct Planted {
    upstream_cred: &'static str,
    token: String,
    client_id: String,
    client_secret: String,
    bg_cred: String,
    alice: Enrolment,
}

/// Plant every kind of secret through the CLI: an upstream credential in the secret store,
/// a person with a password and TOTP, an agent token, an OAuth client, a break-glass
/// credential. The output of `secret set` joins `outputs`.
fn plant_secrets(project: &Project, outputs: &mut Vec<(String, String)>) -> Planted {
    let upstream_cred = "Bearer UPSTREAM-CRED-7f3a9c2e51d04b86aa";
    let o = project.run_with_stdin(&["secret", "set", "VAULT_TOKEN"], Some(upstream_cred));
    assert!(o.status.success(), "{}", text(&o));
    outputs.push(("secret set".into(), text(&o)));

    let alice = enrol(project, "alice", "approver");
    assert!(
        alice.uri.starts_with("otpauth://totp/Warden:alice?secret="),
        "{}",
        alice.uri
    );
    let enrol = &alice.output;
    assert!(
        enrol.contains('▀') || enrol.contains('▄') || enrol.contains('█'),
        "a QR code is printed:\n{enrol}"
    );

    let token = project
        .ok(&[
            "token",
            "issue",
            "--agent",
            "support-triage",
            "--ttl",
            "15m",
            "--quiet",
        ])
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_string();
    assert!(token.starts_with("wdn_at_"), "{token}");
    let client = project.ok(&["token", "client-add", "--agent", "crm-writer"]);
    let bg = project.ok(&["user", "break-glass-seal"]);
    let bg_cred = bg
        .lines()
        .find(|l| l.starts_with("wdn_bg_"))
        .unwrap()
        .trim()
        .to_string();
    Planted {
        upstream_cred,
        token,
        client_id: line_after(&client, "client_id:").to_string(),
        client_secret: line_after(&client, "client_secret:").to_string(),
        bg_cred,
        alice,
    }
}

/// Use each planted credential against the gateway, rightly and wrongly: every response.
fn exercise_gateway(gateway: &Gateway, planted: &Planted) -> Vec<String> {
    let http = Http::new();
    let send = |method: reqwest::Method, path: &str, headers: &[(&str, &str)], body: String| {
        let mut request = http.client().request(method, gateway.url(path));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        http.send(request.body(body))
    };
    let post = |path: &str, headers: &[(&str, &str)], body: String| {
        send(reqwest::Method::POST, path, headers, body)
    };
    let shown = |r: &Response| format!("{}\n{}", r.head, r.body);
    let json_ct = ("content-type", "application/json");
    let form_ct = ("content-type", "application/x-www-form-urlencoded");
    let decision = json!({"tool": "get_ticket", "arguments": {"ticket_id": "T-1001"}}).to_string();
    let token = &planted.token;
    let mut responses = Vec::new();
    let bearer = format!("Bearer {token}");
    let r = post(
        "/v1/decisions",
        &[json_ct, ("authorization", &bearer)],
        decision.clone(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    responses.push(shown(&r));
    // The last character changed (to `0`, or to `1` when it already is `0`: replacing a `0`
    // with `0` is the real token, and the call succeeded one run in sixteen).
    let swap = if token.ends_with('0') { '1' } else { '0' };
    let forged = format!("Bearer {}{swap}", &token[..token.len() - 1]);
    let r = post(
        "/v1/decisions",
        &[json_ct, ("authorization", &forged)],
        decision,
    );
    assert_eq!(r.status, 401);
    responses.push(shown(&r));
    let (id, secret) = (&planted.client_id, &planted.client_secret);
    let form = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    let r = post("/oauth/token", &[form_ct], form);
    assert_eq!(r.status, 200, "{}", r.body);
    responses.push(shown(&r));
    let wrong = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}x");
    let r = post("/oauth/token", &[form_ct], wrong);
    assert_eq!(r.status, 401);
    responses.push(shown(&r));
    let password = planted.alice.password();
    let bad_login = json!({"user": "alice", "password": format!("{password}x"), "totp": "000000"});
    let r = post("/v1/login", &[json_ct], bad_login.to_string());
    assert_eq!(r.status, 401);
    responses.push(shown(&r));
    let good_login =
        json!({"user": "alice", "password": password, "totp": totp_now(&planted.alice.seed)});
    let r = post("/v1/login", &[json_ct], good_login.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    responses.push(shown(&r));
    let bg_login = json!({"break_glass": planted.bg_cred});
    let r = post("/v1/login", &[json_ct], bg_login.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    responses.push(shown(&r));
    let r = send(reqwest::Method::GET, "/openapi.json", &[], String::new());
    responses.push(shown(&r));
    responses
}

/// No planted value in any output, nor in the bytes of the store's files.
fn assert_nothing_shows(planted: &Planted, outputs: &[(String, String)], project: &Project) {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in std::fs::read_dir(project.dir()).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("warden.db") {
            files.push((name, std::fs::read(&p).unwrap()));
        }
    }
    assert!(files.iter().any(|(n, _)| n == "warden.db"));

    let seed = &planted.alice.seed;
    let needles: Vec<(&str, Vec<u8>)> = vec![
        ("agent token", planted.token.as_bytes().to_vec()),
        ("client secret", planted.client_secret.as_bytes().to_vec()),
        (
            "break-glass credential",
            planted.bg_cred.as_bytes().to_vec(),
        ),
        ("password", planted.alice.password().into_bytes()),
        (
            "upstream credential",
            b"UPSTREAM-CRED-7f3a9c2e51d04b86aa".to_vec(),
        ),
        (
            "TOTP seed (base32)",
            planted.alice.seed_b32.as_bytes().to_vec(),
        ),
        ("TOTP seed (hex)", hex::encode(seed).into_bytes()),
        ("TOTP seed (bytes)", seed.clone()),
    ];
    for (what, needle) in &needles {
        for (name, out) in outputs {
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
}

/// The ledger (`audit tail --json`) recorded each identity event.
fn assert_identity_events_recorded(tail: &str) {
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
fn no_planted_secret_appears_in_any_output() {
    let project = Project::init();
    // A fake streamable-HTTP upstream that records what it receives and answers 503, whose
    // credential comes from the encrypted secret store.
    let upstream = Peer::start(503, "");
    project.append_config(&format!(
        "\n[upstreams.vault]\nurl = \"http://{}/mcp\"\n[upstreams.vault.headers]\nAuthorization = {{ secret = \"VAULT_TOKEN\" }}\n",
        upstream.addr
    ));

    let mut outputs: Vec<(String, String)> = Vec::new();
    let planted = plant_secrets(&project, &mut outputs);
    // The gateway, with debug logs captured.
    let gateway = project.serving().env("WARDEN_LOG", "debug").start();
    let responses = exercise_gateway(&gateway, &planted);
    let serve_log = gateway.stop();

    // The upstream got its credential (the secret store works) ...
    let seen = || {
        let raw: Vec<u8> = upstream
            .requests()
            .into_iter()
            .flat_map(|r| r.raw)
            .collect();
        String::from_utf8_lossy(&raw).to_string()
    };
    wait_until(Duration::from_secs(10), || {
        seen().contains(planted.upstream_cred)
    });
    let seen = seen();
    assert!(
        seen.contains(planted.upstream_cred),
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
        outputs.push((args.join(" "), project.ok(&args)));
    }
    let o = project.run_with_stdin(&["secret", "set", "bad/name"], Some(planted.upstream_cred));
    outputs.push(("secret set bad name".into(), text(&o)));
    outputs.push(("serve log".into(), serve_log));
    for (i, r) in responses.iter().enumerate() {
        outputs.push((format!("response {i}"), r.clone()));
    }
    assert_nothing_shows(&planted, &outputs, &project);
    let tail = &outputs
        .iter()
        .find(|(n, _)| n.starts_with("audit tail"))
        .unwrap()
        .1;
    assert_identity_events_recorded(tail);
}

/// The line of the `[[tools]]` entry an access review's `unused:` line for support-triage's
/// `crm/get_account` points at (1-based).
fn unused_get_account_entry(review: &str) -> usize {
    let edit = review
        .lines()
        .find(|l| {
            l.contains("unused:")
                && l.contains("crm/get_account")
                && l.contains("support-triage.toml")
        })
        .unwrap_or_else(|| panic!("no unused get_account for support-triage:\n{review}"));
    edit.rsplit("(line ")
        .next()
        .unwrap()
        .trim_end_matches(')')
        .parse()
        .unwrap()
}

/// `warden access certify --agent support-triage --by <by>` with `extra` arguments.
fn certify(project: &Project, by: &str, extra: &[&str]) -> std::process::Output {
    let args = [
        &["access", "certify", "--agent", "support-triage", "--by", by][..],
        extra,
    ]
    .concat();
    project.run(&args)
}

#[test]
fn access_review_on_the_demo_ledger_names_unused_permissions_and_their_edits() {
    let (project, o) = Project::demo();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("support-triage token "),
        "the demo issues each agent a token:\n{t}"
    );
    assert!(t.contains("crm-writer token "), "{t}");

    let review = project.ok(&["access", "review", "--days", "30"]);
    // support-triage's card grants get_account, which the demo never calls.
    let n = unused_get_account_entry(&review);
    let card = project.read("agents/support-triage.toml");
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
    kept.extend(lines[n..].iter().skip_while(|l| !l.starts_with("[[")));
    project.write("agents/support-triage.toml", &(kept.join("\n") + "\n"));
    let again = project.ok(&["access", "review", "--agent", "support-triage", "--json"]);
    let v: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(v[0]["unused"], json!([]), "{again}");

    // Sign-off: an owner with MFA certifies, with a fresh code.
    let olivia = enrol(&project, "olivia", "owner");
    let o = certify(&project, "olivia", &[]);
    assert!(!o.status.success(), "a code is required");
    let o = certify(&project, "olivia", &["--totp", "000000"]);
    assert!(!o.status.success() || totp_now(&olivia.seed) == "000000");
    let o = certify(&project, "olivia", &["--totp", &totp_now(&olivia.seed)]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("olivia certified the access of support-triage"),
        "{out}"
    );
    let tail = project.ok(&["audit", "tail", "-n", "5", "--json"]);
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
    project.ok(&["user", "add", "audrey", "--role", "auditor", "--no-mfa"]);
    let o = certify(&project, "audrey", &[]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("only an owner or an admin"),
        "{}",
        text(&o)
    );
    assert!(project.ok(&["audit", "verify"]).contains("verified"));
}

#[test]
fn token_cli_issue_list_revoke_and_master_key_rotation() {
    let project = Project::init();
    let out = project.ok(&[
        "token",
        "issue",
        "--agent",
        "crm-writer",
        "--ttl",
        "15m",
        "--tools",
        "get_account,crm/update_account",
    ]);
    assert!(
        out.contains("tools: crm/get_account, crm/update_account"),
        "{out}"
    );
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    let list = project.ok(&["token", "list"]);
    assert!(list.contains(&id) && list.contains("active"), "{list}");
    let out = project.fails(&["token", "issue", "--agent", "crm-writer", "--ttl", "40d"]);
    assert!(out.contains("at most"), "{out}");
    let o = project.run(&[
        "token",
        "issue",
        "--agent",
        "crm-writer",
        "--tools",
        "delete_account",
    ]);
    assert!(text(&o).contains("not on the scope card"), "{}", text(&o));
    project.ok(&["token", "revoke", &id]);
    assert!(!project.ok(&["token", "list"]).contains(&id));
    assert!(project.ok(&["token", "list", "--all"]).contains("revoked"));

    // Secrets survive a master-key rotation, and the old key no longer opens them.
    let o = project.run_with_stdin(
        &["secret", "set", "API_KEY"],
        Some("s3cr3t-value-for-rotation"),
    );
    assert!(o.status.success(), "{}", text(&o));
    let old_key = project.read("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(project.path("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = project.ok(&["secret", "rotate-master"]);
    assert!(out.contains("re-wrapped 1 secrets"), "{out}");
    let new_key = project.read("master.key");
    assert_ne!(old_key, new_key);
    let list = project.ok(&["secret", "list"]);
    assert!(
        list.contains("API_KEY") && !list.contains("s3cr3t"),
        "{list}"
    );
    // With the old key (through the environment), the secret cannot be opened: `serve` refuses.
    project.append_config("\n[upstreams.extra]\nurl = \"http://127.0.0.1:9/mcp\"\n[upstreams.extra.headers]\nX-Key = { secret = \"API_KEY\" }\n");
    let o = warden()
        .env("WARDEN_MASTER_KEY", old_key.trim())
        .args(["serve", "-p", project.p(), "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("could not be opened"), "{t}");
    assert!(!t.contains("s3cr3t"), "{t}");
}

#[test]
fn calls_at_tier_review_run_and_queue_for_an_mfa_proven_review_with_a_deadline() {
    let project = Project::with_config("\n[approvals]\nreview_deadline_hours = 0\n");
    let rita = enrol(&project, "rita", "approver");
    let key = project.agent_key("crm-writer");
    let gateway = project.serve();
    let mut ids = Vec::new();
    for value in ["gold", "silver"] {
        let v = gateway.propose(
            &key,
            &json!({"tool": "update_account", "arguments":
                {"account_id": "ACC-0001", "field": "tier", "value": value}}),
        );
        assert_eq!(v["decision"], "allow", "review runs at once: {v}");
        assert_eq!(v["tier"], "review", "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    gateway.kill();

    // Both wait for review; with a deadline of 0 h both are overdue, alerted once each.
    let list = project.ok(&["approvals", "reviews"]);
    assert!(list.contains(&ids[0]) && list.contains(&ids[1]), "{list}");
    assert!(list.contains("OVERDUE"), "{list}");
    let code = totp_now(&rita.seed);
    let review = |code: &str, note: &str| {
        project.run(&[
            "approvals",
            "review",
            &ids[0],
            "--by",
            "rita",
            "--totp",
            code,
            "--verdict",
            "ok",
            "--note",
            note,
        ])
    };
    let o = review("000000", "x");
    assert!(
        !o.status.success() || code == "000000",
        "a wrong code is refused"
    );
    let o = review(&code, "tier change matches ticket T-1001");
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains(&format!("rita reviewed {} as ok", ids[0])),
        "{out}"
    );
    let list = project.ok(&["approvals", "reviews"]);
    assert!(!list.contains(&ids[0]) && list.contains(&ids[1]), "{list}");
    let all = project.ok(&["approvals", "reviews", "--all"]);
    assert!(all.contains("ok by rita"), "{all}");
    let tail = project.ok(&["audit", "tail", "-n", "10", "--json"]);
    assert_eq!(tail.matches("\"review_overdue\"").count(), 2, "{tail}");
    assert_eq!(tail.matches("\"call_reviewed\"").count(), 1, "{tail}");
    assert!(tail.contains("tier change matches ticket T-1001"), "{tail}");
    project.ok(&["audit", "verify"]);
}

#[test]
fn approvals_show_prints_values_redacted_unless_an_approver_reveals_them_on_the_record() {
    // Before: `warden approvals show` printed raw arguments (a card number, a PEM block) to
    // anyone with the project directory, and nobody knew who had seen them.
    let (project, o) = Project::demo();
    assert!(o.status.success(), "{}", text(&o));
    let rita = enrol(&project, "rita", "approver");
    let card = "4111 1111 1111 1111";
    let gateway = project.serve();
    let held = gateway.propose(
        &project.agent_key("crm-writer"),
        &serde_json::json!({"tool": "issue_refund", "session": "s-show",
            "arguments": {"account_id": "ACC-0001", "amount": 42,
                          "reason": format!("refund to card {card}")}}),
    );
    assert_eq!(held["decision"], "approval_required", "{held}");
    let id = held["id"].as_str().unwrap().to_string();
    gateway.stop();

    let shown = project.ok(&["approvals", "show", &id]);
    assert!(!shown.contains(card), "{shown}");
    assert!(shown.contains("[REDACTED:"), "{shown}");

    let o = project.run(&["approvals", "show", &id, "--reveal"]);
    assert!(!o.status.success(), "--reveal needs --by and --totp");
    let revealed = project.ok(&[
        "approvals",
        "show",
        &id,
        "--reveal",
        "--by",
        "rita",
        "--totp",
        &totp_now(&rita.seed),
    ]);
    assert!(revealed.contains(card), "{revealed}");
    let tail = project.ok(&["audit", "tail", "-n", "5", "--json"]);
    assert!(
        tail.contains("approval_values_revealed") && tail.contains(&id),
        "who saw the values is recorded:\n{tail}"
    );
}
