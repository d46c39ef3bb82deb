//! Human approvals through the router (no socket), with a movable clock: held calls become
//! requests, people vote (session + CSRF + recent TOTP), votes are signed ledger records, and an
//! approval runs exactly one call with exactly the approved arguments.

// Test code: a panic is a failed assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;
use warden_core::approval::verify_vote;
use warden_core::example;
use warden_core::identity::{hotp, totp_step};
use warden_core::ledger::LedgerEvent;
use warden_core::project::{load_project, Project};
use warden_gateway::identity::{issue_token, TokenRequest};
use warden_gateway::secrets::MasterKey;
use warden_gateway::session::{add_user, Role};
use warden_gateway::{app, hash_key, AppState};
use warden_store::{Ledger, LedgerOptions};

const T0: i64 = 1_800_000_000;
const PW: &str = "correct horse battery staple";

struct Env {
    _dir: tempfile::TempDir,
    state: AppState,
    clock: Arc<AtomicI64>,
    ledger: Ledger,
    project: Project,
    key: MasterKey,
    signer: ed25519_dalek::SigningKey,
}

fn project(extra: &str) -> Project {
    let mut sources = example::sources(|a| hash_key(a).trim_start_matches("sha256:").to_string());
    sources.config.text.push_str(extra);
    load_project(&sources).unwrap()
}

async fn setup(extra: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&dir.path().join("w.db"), LedgerOptions::default())
        .await
        .unwrap();
    let clock = Arc::new(AtomicI64::new(T0));
    let p = project(extra);
    let key = MasterKey::generate();
    let signer = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let c = clock.clone();
    let state = AppState::new(&p.config, Arc::new(project(extra).policy), ledger.clone())
        .with_clock(Arc::new(move || c.load(Ordering::SeqCst)))
        .with_master_key(Some(key.clone()))
        .with_approval_signer("test-approvals", Some(signer.clone()));
    Env {
        _dir: dir,
        state,
        clock,
        ledger,
        project: p,
        key,
        signer,
    }
}

struct Resp {
    status: StatusCode,
    body: Value,
    raw: String,
}

async fn send(state: &AppState, req: Request<Body>) -> Resp {
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    Resp {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        raw: String::from_utf8_lossy(&bytes).to_string(),
    }
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

fn code_at(seed: &[u8], unix: i64) -> String {
    format!("{:06}", hotp(seed, totp_step(unix as u64)))
}

/// A logged-in person: cookie, CSRF token, TOTP seed.
struct Person {
    name: String,
    cookie: String,
    csrf: String,
    seed: Vec<u8>,
}

impl Env {
    fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    fn advance(&self, secs: i64) {
        self.clock.fetch_add(secs, Ordering::SeqCst);
    }

    async fn agent_token(&self, agent: &str) -> String {
        issue_token(
            &self.ledger,
            &self.project.policy,
            &self.project.config.identity,
            TokenRequest {
                agent,
                ttl: Some(86_400),
                tools: None,
                issued_by: "test",
                break_glass: false,
                now: self.now(),
            },
        )
        .await
        .unwrap()
        .token
    }

    /// Enrol and log in (password + TOTP) through `POST /v1/login`.
    async fn person(&self, name: &str, role: Role) -> Person {
        let en = add_user(
            &self.ledger,
            &self.key,
            name,
            role,
            Some(PW.into()),
            true,
            "test",
            self.now(),
        )
        .await
        .unwrap();
        let uri = en.otpauth_uri.unwrap();
        let secret = uri
            .split("secret=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        let seed = base32_decode(secret);
        let resp = app(self.state.clone())
            .oneshot(
                Request::post("/v1/login")
                    .header("content-type", "application/json")
                    .body(Body::from(
                        json!({"user": name, "password": PW, "totp": code_at(&seed, self.now())})
                            .to_string(),
                    ))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let set = resp.headers()["set-cookie"].to_str().unwrap().to_string();
        let cookie = set.split(';').next().unwrap().to_string();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        Person {
            name: name.to_string(),
            cookie,
            csrf: body["csrf_token"].as_str().unwrap().to_string(),
            seed,
        }
    }

    async fn propose(&self, token: &str, body: Value) -> Resp {
        send(
            &self.state,
            Request::post("/v1/decisions")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    async fn poll(&self, token: &str, id: &str) -> Resp {
        send(
            &self.state,
            Request::get(format!("/v1/decisions/{id}?wait=0"))
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn vote(&self, p: &Person, id: &str, verdict: &str, body: Value, csrf: bool) -> Resp {
        let mut req = Request::post(format!("/v1/approvals/{id}/{verdict}"))
            .header("cookie", &p.cookie)
            .header("content-type", "application/json");
        if csrf {
            req = req.header("x-csrf-token", &p.csrf);
        }
        send(&self.state, req.body(Body::from(body.to_string())).unwrap()).await
    }
}

fn refund(amount: f64) -> Value {
    json!({"account_id": "ACC-0001", "amount": amount, "reason": "charged twice"})
}

async fn held(e: &Env, token: &str, args: Value) -> String {
    let r = e
        .propose(token, json!({"tool": "issue_refund", "arguments": args, "session": "s-1", "on_behalf_of": "olivia"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["decision"], "approval_required", "{}", r.raw);
    assert_eq!(r.body["approval"]["state"], "pending");
    r.body["approval"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn approved_call_runs_once_with_the_same_arguments_and_the_vote_is_signed() {
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    let id = held(&e, &token, refund(49.5)).await;

    // Not approved yet: executing is refused.
    let early = e
        .propose(
            &token,
            json!({"tool": "issue_refund", "arguments": refund(49.5), "approval_id": id}),
        )
        .await;
    assert_eq!(early.body["decision"], "deny", "{}", early.raw);

    let v = e.vote(&ann, &id, "approve", json!({}), true).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.raw);
    assert_eq!(v.body["state"], "approved");
    let polled = e.poll(&token, &id).await;
    assert_eq!(
        polled.body["approval"]["state"], "approved",
        "{}",
        polled.raw
    );

    let run = e
        .propose(
            &token,
            json!({"tool": "issue_refund", "arguments": refund(49.5), "approval_id": id}),
        )
        .await;
    assert_eq!(run.body["decision"], "allow", "{}", run.raw);
    assert!(run.body["policies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "warden/approval"));

    // Replay: the same approval id for the same call, or for another call, is refused.
    let replay = e
        .propose(
            &token,
            json!({"tool": "issue_refund", "arguments": refund(49.5), "approval_id": id}),
        )
        .await;
    assert_eq!(replay.body["decision"], "deny", "{}", replay.raw);
    assert!(replay.raw.contains("already used"), "{}", replay.raw);

    // The ledger: proposal → signed vote (approver, MFA) → execution bound to the approval.
    let records = e.ledger.records_of_decision(&id).await.unwrap();
    let vote = records
        .iter()
        .find_map(|r| match &r.record.event {
            LedgerEvent::ApprovalVote(v) => Some(v.clone()),
            _ => None,
        })
        .expect("a vote record");
    assert_eq!(vote.vote.statement.approver, "ann");
    assert!(vote.vote.statement.mfa.verified);
    assert!(verify_vote(&vote.vote, &e.signer.verifying_key()));
    let mut forged = vote.vote.clone();
    forged.statement.approver = "mallory".into();
    assert!(!verify_vote(&forged, &e.signer.verifying_key()));
    let tail = e.ledger.tail(50).await.unwrap();
    let exec = tail.iter().find(|r| matches!(&r.record.event, LedgerEvent::Decision(d) if d.approval_id.as_deref() == Some(id.as_str()) && d.decision.decision == warden_core::Verdict::Allow));
    assert!(exec.is_some(), "the execution decision names the approval");
    assert!(e.ledger.verify(|_| {}).await.unwrap().first_break.is_none());
}

#[tokio::test]
async fn changed_arguments_need_a_new_approval() {
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    let id = held(&e, &token, refund(49.5)).await;
    assert_eq!(
        e.vote(&ann, &id, "approve", json!({}), true).await.status,
        StatusCode::OK
    );
    let changed = e
        .propose(
            &token,
            json!({"tool": "issue_refund", "arguments": refund(99.0), "approval_id": id}),
        )
        .await;
    assert_eq!(changed.body["decision"], "deny", "{}", changed.raw);
    assert!(changed.raw.contains("new approval"), "{}", changed.raw);
    // Member order does not matter (canonical JSON): the approved call still runs.
    let same = e
        .propose(&token, json!({"tool": "issue_refund", "arguments": {"reason": "charged twice", "amount": 49.5, "account_id": "ACC-0001"}, "approval_id": id}))
        .await;
    assert_eq!(same.body["decision"], "allow", "{}", same.raw);
}

#[tokio::test]
async fn an_approval_cannot_be_used_by_another_agent_or_tool() {
    let e = setup("").await;
    let crm = e.agent_token("crm-writer").await;
    let triage = e.agent_token("support-triage").await;
    let ann = e.person("ann", Role::Approver).await;
    let id = held(&e, &crm, refund(49.5)).await;
    assert_eq!(
        e.vote(&ann, &id, "approve", json!({}), true).await.status,
        StatusCode::OK
    );
    let other = e
        .propose(
            &triage,
            json!({"tool": "issue_refund", "arguments": refund(49.5), "approval_id": id}),
        )
        .await;
    assert_ne!(other.body["decision"], "allow", "{}", other.raw);
    // The owner can still use it once.
    let run = e
        .propose(
            &crm,
            json!({"tool": "issue_refund", "arguments": refund(49.5), "approval_id": id}),
        )
        .await;
    assert_eq!(run.body["decision"], "allow", "{}", run.raw);
}

#[tokio::test]
async fn expiry_is_an_explicit_outcome_recorded_and_returned() {
    let e = setup("\n[approvals]\nexpiry_secs = 600\n").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    let id = held(&e, &token, refund(49.5)).await;
    e.advance(601);
    let polled = e.poll(&token, &id).await;
    assert_eq!(
        polled.body["approval"]["state"], "expired",
        "{}",
        polled.raw
    );
    assert_eq!(polled.body["approval"]["outcome"], "expired, not approved");
    let records = e.ledger.records_of_decision(&id).await.unwrap();
    assert!(records.iter().any(|r| matches!(&r.record.event, LedgerEvent::ApprovalExpired(x) if x.outcome == "expired, not approved")));
    // Nobody can approve it any more, and it cannot be executed.
    let late = e
        .vote(
            &ann,
            &id,
            "approve",
            json!({"totp": code_at(&ann.seed, e.now())}),
            true,
        )
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.raw);
    let run = e
        .propose(
            &token,
            json!({"tool": "issue_refund", "arguments": refund(49.5), "approval_id": id}),
        )
        .await;
    assert_eq!(run.body["decision"], "deny");
    assert!(run.raw.contains("expired, not approved"), "{}", run.raw);
}

#[tokio::test]
async fn self_approval_is_refused() {
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let olivia = e.person("olivia", Role::Approver).await;
    let id = held(&e, &token, refund(49.5)).await; // on behalf of olivia
    let r = e.vote(&olivia, &id, "approve", json!({}), true).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.raw);
    assert!(r.raw.contains("self_approval"), "{}", r.raw);
    // Where not configured, the same vote counts.
    let e2 = setup("\n[approvals]\nforbid_self_approval = false\n").await;
    let token2 = e2.agent_token("crm-writer").await;
    let olivia2 = e2.person("olivia", Role::Approver).await;
    let id2 = held(&e2, &token2, refund(49.5)).await;
    let ok = e2.vote(&olivia2, &id2, "approve", json!({}), true).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.raw);
}

#[tokio::test]
async fn two_person_needs_two_distinct_people_and_reasons() {
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    let bob = e.person("bob", Role::Approver).await;
    let id = held(&e, &token, refund(800.0)).await;
    let no_reason = e.vote(&ann, &id, "approve", json!({}), true).await;
    assert_eq!(
        no_reason.status,
        StatusCode::BAD_REQUEST,
        "{}",
        no_reason.raw
    );
    let first = e
        .vote(
            &ann,
            &id,
            "approve",
            json!({"reason": "customer verified"}),
            true,
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.raw);
    assert_eq!(first.body["state"], "pending");
    let again = e
        .vote(&ann, &id, "approve", json!({"reason": "me again"}), true)
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.raw);
    let early = e
        .propose(
            &token,
            json!({"tool": "issue_refund", "arguments": refund(800.0), "approval_id": id}),
        )
        .await;
    assert_eq!(early.body["decision"], "deny", "one approval is not enough");
    let second = e
        .vote(&bob, &id, "approve", json!({"reason": "finance ok"}), true)
        .await;
    assert_eq!(second.body["state"], "approved", "{}", second.raw);
    let run = e
        .propose(
            &token,
            json!({"tool": "issue_refund", "arguments": refund(800.0), "approval_id": id}),
        )
        .await;
    assert_eq!(run.body["decision"], "allow", "{}", run.raw);
}

#[tokio::test]
async fn approval_without_recent_mfa_is_refused() {
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    let id = held(&e, &token, refund(49.5)).await;
    e.advance(301); // login TOTP now older than 5 minutes
    let stale = e.vote(&ann, &id, "approve", json!({}), true).await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN, "{}", stale.raw);
    assert!(stale.raw.contains("mfa_required"), "{}", stale.raw);
    let wrong = e
        .vote(&ann, &id, "approve", json!({"totp": "000000"}), true)
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.raw);
    let fresh = e
        .vote(
            &ann,
            &id,
            "approve",
            json!({"totp": code_at(&ann.seed, e.now())}),
            true,
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.raw);
    let records = e.ledger.records_of_decision(&id).await.unwrap();
    let mfa_at = records.iter().find_map(|r| match &r.record.event {
        LedgerEvent::ApprovalVote(v) => Some(v.vote.statement.mfa.verified_at),
        _ => None,
    });
    assert_eq!(mfa_at, Some(e.now()), "the vote carries the step-up time");
}

#[tokio::test]
async fn missing_csrf_token_is_refused() {
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    let id = held(&e, &token, refund(49.5)).await;
    let r = e.vote(&ann, &id, "approve", json!({}), false).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.raw);
    assert!(r.raw.contains("csrf"), "{}", r.raw);
    // The UI form post without its hidden token is refused the same way.
    let form = send(
        &e.state,
        Request::post(format!("/ui/approvals/{id}/vote"))
            .header("cookie", &ann.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("action=approve&reason=ok"))
            .unwrap(),
    )
    .await;
    assert_eq!(form.status, StatusCode::FORBIDDEN, "{}", form.raw);
    let still = e.ledger.approval(&id).await.unwrap().unwrap();
    assert_eq!(still.state, "pending");
    assert!(e.ledger.approval_votes(&id).await.unwrap().is_empty());
}

#[tokio::test]
async fn denial_reaches_the_agent_with_its_reason() {
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    let id = held(&e, &token, refund(49.5)).await;
    let no_reason = e.vote(&ann, &id, "deny", json!({}), true).await;
    assert_eq!(no_reason.status, StatusCode::BAD_REQUEST);
    let d = e
        .vote(
            &ann,
            &id,
            "deny",
            json!({"reason": "duplicate of refund R-17"}),
            true,
        )
        .await;
    assert_eq!(d.body["state"], "denied", "{}", d.raw);
    let polled = e.poll(&token, &id).await;
    assert_eq!(polled.body["approval"]["state"], "denied");
    assert!(polled.raw.contains("duplicate of refund R-17"));
    // An auditor may look but not vote.
    let aud = e.person("audrey", Role::Auditor).await;
    let id2 = held(&e, &token, refund(12.0)).await;
    let r = e.vote(&aud, &id2, "approve", json!({}), true).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.raw);
    let list = send(
        &e.state,
        Request::get("/v1/approvals?state=pending")
            .header("cookie", &aud.cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.raw);
    assert_eq!(list.body["approvals"].as_array().unwrap().len(), 1);
    let _ = &ann.name;
}

#[tokio::test]
async fn ui_pages_escape_and_show_what_the_agent_saw() {
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    // An earlier call in the session and its (untrusted) output.
    let read = e
        .propose(&token, json!({"tool": "get_account", "arguments": {"account_id": "ACC-0001"}, "session": "s-1"}))
        .await;
    let rid = read.body["id"].as_str().unwrap();
    let out = send(
        &e.state,
        Request::post(format!("/v1/decisions/{rid}/outcome"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(json!({"status": "success", "output": {"note": "<script>alert(1)</script> refund me"}}).to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.raw);
    let r = e
        .propose(&token, json!({"tool": "issue_refund", "arguments": refund(49.5), "session": "s-1", "before_state": {"balance": 120}}))
        .await;
    let id = r.body["approval"]["id"].as_str().unwrap().to_string();
    let page = send(
        &e.state,
        Request::get(format!("/ui/approvals/{id}"))
            .header(
                "cookie",
                format!("{}; warden_csrf={}", ann.cookie, ann.csrf),
            )
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.raw.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.raw.contains("<script>"));
    assert!(
        page.raw.contains("&quot;balance&quot;: 120"),
        "{}",
        page.raw
    );
    assert!(page.raw.contains(&format!("value=\"{}\"", ann.csrf)));
    // Without a session the UI sends people to the login page.
    let anon = app(e.state.clone())
        .oneshot(Request::get("/ui/approvals").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(anon.headers()["location"], "/ui/login");
}
