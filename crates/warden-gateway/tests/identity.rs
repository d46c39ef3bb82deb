//! Identity and access through the router (no socket): agent tokens, the OAuth
//! client-credentials grant, human login with TOTP, sessions, break-glass.

// Test code: a panic is a failed assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use warden_core::ledger::LedgerEvent;
use warden_core::project::Project;
use warden_gateway::identity::{issue_token, revoke_token, IssuedToken, TokenRequest};
use warden_gateway::logins::{add_user, Role};
use warden_gateway::AppState;
use warden_store::Store;

use common::{code_at, send, Env, Resp, PW, T0};

/// The example project with the gateway and every card in environment `env`.
fn project(env: &str) -> Project {
    let to = format!("environment = \"{env}\"");
    common::project_edited(
        &|config| config.replace("environment = \"prod\"", &to),
        &|_, card| card.replace("environment = \"prod\"", &to),
    )
}

async fn setup(env: &str) -> Env {
    let to = format!("environment = \"{env}\"");
    common::setup_edited(
        |config| config.replace("environment = \"prod\"", &to),
        |_, card| card.replace("environment = \"prod\"", &to),
    )
    .await
}

/// A token for `agent`, issued now.
async fn issue(e: &Env, agent: &str, ttl: u64, tools: Option<Vec<&str>>) -> IssuedToken {
    issue_token(
        &e.store,
        &e.project.policy,
        &e.project.config.identity,
        TokenRequest {
            agent,
            ttl: Some(ttl),
            tools: tools.map(|v| v.into_iter().map(str::to_string).collect()),
            issued_by: "test",
            break_glass: false,
            now: e.clock.load(Ordering::SeqCst),
        },
    )
    .await
    .unwrap()
}

async fn propose(state: &AppState, bearer: &str, tool: &str, args: Value) -> Resp {
    let req = Request::post("/v1/decisions")
        .header("authorization", format!("Bearer {bearer}"))
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"tool": tool, "arguments": args}).to_string(),
        ))
        .unwrap();
    send(state, req).await
}

async fn read_ticket(state: &AppState, bearer: &str) -> Resp {
    propose(state, bearer, "get_ticket", json!({"ticket_id": "T-1001"})).await
}

async fn identity_actions(store: &Store) -> Vec<(String, String, bool)> {
    store
        .ledger()
        .tail(10_000)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.record.event {
            LedgerEvent::Identity(e) => Some((e.action, e.severity, e.break_glass)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_token_works_for_its_agent_and_is_recorded_without_its_secret() {
    let e = setup("prod").await;
    let t = issue(&e, "support-triage", 900, None).await;
    assert!(t.token.starts_with("wdn_at_"));
    let r = read_ticket(&e.state, &t.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["agent"], "support-triage");
    assert_eq!(r.body["decision"], "allow");
    let all = e.store.ledger().tail(100).await.unwrap();
    let text = serde_json::to_string(&all.iter().map(|r| &r.record).collect::<Vec<_>>()).unwrap();
    assert!(text.contains(&t.id), "the record names the token id");
    assert!(!text.contains(&t.token), "the record never holds the token");
}

#[tokio::test]
async fn a_dev_token_is_refused_in_prod_and_a_prod_token_in_dev() {
    let prod = setup("prod").await;
    let dev_project = project("dev");
    let dev_state = prod.restarted_with(project("dev"));
    let prod_token = issue(&prod, "support-triage", 900, None).await;
    let dev_token = issue_token(
        &prod.store,
        &dev_project.policy,
        &dev_project.config.identity,
        TokenRequest {
            agent: "support-triage",
            ttl: Some(900),
            tools: None,
            issued_by: "test",
            break_glass: false,
            now: T0,
        },
    )
    .await
    .unwrap();
    assert_eq!(dev_token.environment, "dev");
    assert_eq!(
        read_ticket(&prod.state, &prod_token.token).await.status,
        StatusCode::OK
    );
    assert_eq!(
        read_ticket(&dev_state, &dev_token.token).await.status,
        StatusCode::OK
    );
    let a = read_ticket(&prod.state, &dev_token.token).await;
    let b = read_ticket(&dev_state, &prod_token.token).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(b.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.body["error"]["code"], "unauthenticated");
    assert_eq!(a.raw, b.raw);
}

#[tokio::test]
async fn a_token_expires() {
    let e = setup("prod").await;
    let t = issue(&e, "support-triage", 60, None).await;
    e.advance(59);
    assert_eq!(read_ticket(&e.state, &t.token).await.status, StatusCode::OK);
    e.advance(1);
    let r = read_ticket(&e.state, &t.token).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"]["code"], "unauthenticated");
}

#[tokio::test]
async fn ttl_above_the_hard_maximum_is_refused() {
    let e = setup("prod").await;
    let max = e.project.config.identity.token_ttl_max_secs;
    let err = issue_token(
        &e.store,
        &e.project.policy,
        &e.project.config.identity,
        TokenRequest {
            agent: "support-triage",
            ttl: Some(max + 1),
            tools: None,
            issued_by: "test",
            break_glass: false,
            now: T0,
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("at most"), "{err}");
    // The default applies when no TTL is given: one hour.
    let t = issue_token(
        &e.store,
        &e.project.policy,
        &e.project.config.identity,
        TokenRequest {
            agent: "support-triage",
            ttl: None,
            tools: None,
            issued_by: "test",
            break_glass: false,
            now: T0,
        },
    )
    .await
    .unwrap();
    assert_eq!(t.expires_at - T0, 3600);
}

#[tokio::test]
async fn revocation_takes_effect_on_the_next_call() {
    let e = setup("prod").await;
    let t = issue(&e, "support-triage", 900, None).await;
    assert_eq!(read_ticket(&e.state, &t.token).await.status, StatusCode::OK);
    revoke_token(&e.store, &t.id, "test", false, T0)
        .await
        .unwrap();
    assert_eq!(
        read_ticket(&e.state, &t.token).await.status,
        StatusCode::UNAUTHORIZED
    );
    let actions: Vec<String> = identity_actions(&e.store)
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert!(
        actions.contains(&"token_revoked".to_string()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn rotation_two_tokens_overlap() {
    let e = setup("prod").await;
    let old = issue(&e, "support-triage", 900, None).await;
    e.advance(300);
    let new = issue(&e, "support-triage", 900, None).await;
    assert_eq!(
        read_ticket(&e.state, &old.token).await.status,
        StatusCode::OK
    );
    assert_eq!(
        read_ticket(&e.state, &new.token).await.status,
        StatusCode::OK
    );
    revoke_token(&e.store, &old.id, "test", false, T0 + 400)
        .await
        .unwrap();
    assert_eq!(
        read_ticket(&e.state, &old.token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        read_ticket(&e.state, &new.token).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn forged_and_truncated_tokens_are_refused_alike() {
    let e = setup("prod").await;
    let t = issue(&e, "support-triage", 900, None).await;
    let mut flipped = t.token.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == '0' { '1' } else { '0' });
    let other_secret = format!("wdn_at_{}_{}", t.id, "a".repeat(64));
    let unknown_id = format!(
        "wdn_at_{}_{}",
        "0".repeat(16),
        &t.token[t.token.len() - 64..]
    );
    let wrong_kind = t.token.replacen("wdn_at_", "wdn_bg_", 1);
    let candidates = [
        flipped,
        other_secret,
        unknown_id,
        wrong_kind,
        t.token[..t.token.len() - 1].to_string(),
        t.token[..20].to_string(),
        format!("{}0", t.token),
        "wdn_".to_string(),
    ];
    let mut bodies = std::collections::BTreeSet::new();
    for c in &candidates {
        let r = read_ticket(&e.state, c).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{c}");
        bodies.insert(r.raw);
    }
    // Expired and revoked answer the same too.
    let expired = issue(&e, "support-triage", 1, None).await;
    let revoked = issue(&e, "support-triage", 900, None).await;
    revoke_token(&e.store, &revoked.id, "test", false, T0)
        .await
        .unwrap();
    e.advance(2);
    bodies.insert(read_ticket(&e.state, &expired.token).await.raw);
    bodies.insert(read_ticket(&e.state, &revoked.token).await.raw);
    assert_eq!(
        bodies.len(),
        1,
        "one generic answer for every failure: {bodies:?}"
    );
    let only = bodies.into_iter().next().unwrap();
    for word in ["expired", "revoked", "environment", "forged", "secret"] {
        assert!(!only.contains(word), "the answer reveals `{word}`: {only}");
    }
    // The real token still works.
    assert_eq!(read_ticket(&e.state, &t.token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_token_limited_to_some_tools_cannot_call_others() {
    let e = setup("prod").await;
    let t = issue(&e, "support-triage", 900, Some(vec!["get_ticket"])).await;
    assert_eq!(
        t.tools.as_deref(),
        Some(&["helpdesk/get_ticket".to_string()][..])
    );
    let ok = read_ticket(&e.state, &t.token).await;
    assert_eq!(ok.body["decision"], "allow", "{}", ok.raw);
    let r = propose(
        &e.state,
        &t.token,
        "list_tickets",
        json!({"status": "open", "limit": 5}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["decision"], "deny");
    assert_eq!(r.body["policies"][0], "warden/token-scope");
    assert!(
        r.body["reasons"][0]
            .as_str()
            .unwrap()
            .contains("limited to helpdesk/get_ticket"),
        "{}",
        r.raw
    );
    // A tool outside the card cannot be put into a token.
    let err = issue_token(
        &e.store,
        &e.project.policy,
        &e.project.config.identity,
        TokenRequest {
            agent: "support-triage",
            ttl: Some(60),
            tools: Some(vec!["issue_refund".into()]),
            issued_by: "test",
            break_glass: false,
            now: T0,
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not on the scope card"), "{err}");
}

#[tokio::test]
async fn static_keys_keep_working() {
    let e = setup("prod").await;
    let r = read_ticket(&e.state, "support-triage").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
}

// ---- OAuth client credentials ------------------------------------------------------------

async fn token_request(state: &AppState, basic: Option<(&str, &str)>, form: &str) -> Resp {
    use base64::Engine as _;
    let mut req =
        Request::post("/oauth/token").header("content-type", "application/x-www-form-urlencoded");
    if let Some((id, secret)) = basic {
        let enc = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        req = req.header("authorization", format!("Basic {enc}"));
    }
    send(state, req.body(Body::from(form.to_string())).unwrap()).await
}

#[tokio::test]
async fn client_credentials_grant_returns_a_token_that_works_and_expires() {
    let e = setup("prod").await;
    let c = warden_gateway::identity::add_client(
        &e.store,
        &e.project.policy,
        "support-triage",
        "test",
        T0,
    )
    .await
    .unwrap();
    let r = token_request(
        &e.state,
        Some((&c.client_id, &c.secret)),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.headers["cache-control"], "no-store");
    let expires_in = r.body["expires_in"].as_i64().unwrap();
    assert_eq!(expires_in, 3600);
    let token = r.body["access_token"].as_str().unwrap().to_string();
    let ok = read_ticket(&e.state, &token).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.raw);
    assert_eq!(ok.body["agent"], "support-triage");
    e.advance(expires_in);
    assert_eq!(
        read_ticket(&e.state, &token).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Credentials in the body, with a scope: the token is narrowed.
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope=get_ticket",
        c.client_id, c.secret
    );
    let r = token_request(&e.state, None, &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["scope"], "helpdesk/get_ticket");
    let scoped = r.body["access_token"].as_str().unwrap().to_string();
    let denied = propose(
        &e.state,
        &scoped,
        "list_tickets",
        json!({"status": "open", "limit": 5}),
    )
    .await;
    assert_eq!(denied.body["decision"], "deny");

    // RFC 6749 §5.2 errors.
    let r = token_request(
        &e.state,
        Some((&c.client_id, "wdn_cs_wrong")),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "invalid_client");
    assert!(r.headers.contains_key("www-authenticate"));
    let r = token_request(
        &e.state,
        Some(("nobody", &c.secret)),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(r.body["error"], "invalid_client");
    let r = token_request(
        &e.state,
        Some((&c.client_id, &c.secret)),
        "grant_type=password",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "unsupported_grant_type");
    let r = token_request(
        &e.state,
        Some((&c.client_id, &c.secret)),
        "grant_type=client_credentials&scope=issue_refund",
    )
    .await;
    assert_eq!(r.body["error"], "invalid_scope");
    assert!(!r.raw.contains(&c.secret));
}

// ---- people -------------------------------------------------------------------------------

async fn login(state: &AppState, body: Value) -> Resp {
    let req = Request::post("/v1/login")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(state, req).await
}

#[tokio::test]
async fn totp_wrong_reused_and_missing_codes_are_refused() {
    let e = setup("prod").await;
    let seed = e.enrol("alice", Role::Approver).await;
    let now = e.clock.load(Ordering::SeqCst);
    let good = code_at(&seed, now);
    let wrong = format!("{:06}", (good.parse::<u32>().unwrap() + 1) % 1_000_000);

    let missing = login(&e.state, json!({"user": "alice", "password": PW})).await;
    assert_eq!(
        missing.status,
        StatusCode::UNAUTHORIZED,
        "an approver cannot log in without MFA"
    );
    let bad = login(
        &e.state,
        json!({"user": "alice", "password": PW, "totp": wrong}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    let ok = login(
        &e.state,
        json!({"user": "alice", "password": PW, "totp": good}),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.raw);
    let reused = login(
        &e.state,
        json!({"user": "alice", "password": PW, "totp": good}),
    )
    .await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED, "a code works once");
    // The previous step's code is within the window but older than the one used: refused.
    let older = login(
        &e.state,
        json!({"user": "alice", "password": PW, "totp": code_at(&seed, now - 30)}),
    )
    .await;
    assert_eq!(older.status, StatusCode::UNAUTHORIZED);
    // Next step: accepted.
    e.advance(30);
    let next = login(
        &e.state,
        json!({"user": "alice", "password": PW, "totp": code_at(&seed, now + 30)}),
    )
    .await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.raw);
    // All failures answer alike.
    assert_eq!(missing.raw, bad.raw);
    assert_eq!(bad.raw, reused.raw);
    let actions: Vec<String> = identity_actions(&e.store)
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "login_failed").count(),
        4,
        "{actions:?}"
    );
    assert_eq!(actions.iter().filter(|a| *a == "login").count(), 2);
    assert!(actions.contains(&"mfa_enrolled".to_string()));
}

#[tokio::test]
async fn mfa_cannot_be_turned_off_for_admins_and_approvers() {
    let e = setup("prod").await;
    for role in [Role::Admin, Role::Approver] {
        let err = add_user(
            &e.store,
            &e.key,
            "bob",
            role,
            Some(PW.into()),
            false,
            "test",
            T0,
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("MFA cannot be turned off"),
            "{err}"
        );
    }
    // An auditor may go without; they log in with a password only.
    add_user(
        &e.store,
        &e.key,
        "carol",
        Role::Auditor,
        Some(PW.into()),
        false,
        "test",
        T0,
    )
    .await
    .unwrap();
    let r = login(&e.state, json!({"user": "carol", "password": PW})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
}

fn cookie_of(r: &Resp) -> String {
    let set = r.headers["set-cookie"].to_str().unwrap().to_string();
    for attr in ["Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(set.contains(attr), "{set}");
    }
    set.split(';').next().unwrap().to_string()
}

async fn with_session(
    state: &AppState,
    method: &str,
    uri: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> Resp {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("cookie", cookie);
    if let Some(c) = csrf {
        req = req.header("x-csrf-token", c);
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    send(
        state,
        req.header("content-type", "application/json")
            .body(body)
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn sessions_need_csrf_for_changes_and_time_out() {
    let e = setup("prod").await;
    let seed = e.enrol("admin1", Role::Admin).await;
    let r = login(
        &e.state,
        json!({"user": "admin1", "password": PW, "totp": code_at(&seed, T0)}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let cookie = cookie_of(&r);
    let csrf = r.body["csrf_token"].as_str().unwrap().to_string();
    let who = with_session(&e.state, "GET", "/v1/session", &cookie, None, None).await;
    assert_eq!(who.body["user"], "admin1");
    assert_eq!(who.body["role"], "admin");
    assert!(who.body["totp_verified_at"].is_string());

    // A state-changing request without (or with a wrong) CSRF token is refused.
    let body = json!({"agent": "support-triage", "ttl_secs": 60});
    let r = with_session(
        &e.state,
        "POST",
        "/v1/tokens",
        &cookie,
        None,
        Some(body.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = with_session(
        &e.state,
        "POST",
        "/v1/tokens",
        &cookie,
        Some("00"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = with_session(
        &e.state,
        "POST",
        "/v1/tokens",
        &cookie,
        Some(&csrf),
        Some(body),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let token = r.body["token"].as_str().unwrap().to_string();
    assert_eq!(read_ticket(&e.state, &token).await.status, StatusCode::OK);

    // Step-up: a fresh code verifies; the same code again does not.
    e.advance(30);
    let code = code_at(&seed, T0 + 30);
    let r = with_session(
        &e.state,
        "POST",
        "/v1/session/step-up",
        &cookie,
        Some(&csrf),
        Some(json!({"totp": code})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let r = with_session(
        &e.state,
        "POST",
        "/v1/session/step-up",
        &cookie,
        Some(&csrf),
        Some(json!({"totp": code})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Idle time-out.
    e.advance(i64::try_from(e.project.config.identity.session_idle_secs).unwrap() + 1);
    let r = with_session(&e.state, "GET", "/v1/session", &cookie, None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Absolute time-out, even when active.
    let t = e.clock.load(Ordering::SeqCst);
    let r = login(
        &e.state,
        json!({"user": "admin1", "password": PW, "totp": code_at(&seed, t)}),
    )
    .await;
    let cookie = cookie_of(&r);
    let idle = i64::try_from(e.project.config.identity.session_idle_secs).unwrap() - 5;
    let absolute = i64::try_from(e.project.config.identity.session_absolute_secs).unwrap();
    let mut elapsed = 0;
    while elapsed + idle <= absolute {
        e.advance(idle);
        elapsed += idle;
        let r = with_session(&e.state, "GET", "/v1/session", &cookie, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "active at {elapsed}");
    }
    e.advance(idle);
    let r = with_session(&e.state, "GET", "/v1/session", &cookie, None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A forged cookie is refused.
    let r = with_session(
        &e.state,
        "GET",
        "/v1/session",
        "warden_session=wdn_ss_0000000000000000_00",
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn repeated_failures_lock_the_account_with_back_off() {
    let e = setup("prod").await;
    let seed = e.enrol("dave", Role::Approver).await;
    let max = e.project.config.identity.max_failed_logins;
    for _ in 0..max {
        let r = login(
            &e.state,
            json!({"user": "dave", "password": "wrong password!", "totp": "000000"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let t = e.clock.load(Ordering::SeqCst);
    let r = login(
        &e.state,
        json!({"user": "dave", "password": PW, "totp": code_at(&seed, t)}),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "locked: even the right credentials fail"
    );
    e.advance(31);
    let r = login(
        &e.state,
        json!({"user": "dave", "password": PW, "totp": code_at(&seed, t + 31)}),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the lock lifts after the back-off: {}",
        r.raw
    );
    let actions = identity_actions(&e.store).await;
    assert!(
        actions
            .iter()
            .any(|(a, sev, _)| a == "login_failed" && sev == "high"),
        "the lock-out is an alert"
    );
}

#[tokio::test]
async fn break_glass_works_raises_an_alert_and_marks_its_records() {
    let e = setup("prod").await;
    let (cred, _id) = warden_gateway::identity::seal_break_glass(&e.store, "test", T0)
        .await
        .unwrap();
    // As a bearer on the admin API.
    let req = Request::post("/v1/tokens")
        .header("authorization", format!("Bearer {cred}"))
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"agent": "crm-writer", "ttl_secs": 300}).to_string(),
        ))
        .unwrap();
    let r = send(&e.state, req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    // As a login.
    let r = login(&e.state, json!({"break_glass": cred})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["break_glass"], true);
    // A wrong credential does nothing but is recorded.
    let r = login(
        &e.state,
        json!({"break_glass": "wdn_bg_0000000000000000_".to_string() + &"0".repeat(64)}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let actions = identity_actions(&e.store).await;
    let alerts: Vec<_> = actions
        .iter()
        .filter(|(a, _, _)| a == "break_glass_used")
        .collect();
    assert_eq!(alerts.len(), 2, "{actions:?}");
    assert!(alerts.iter().all(|(_, sev, bg)| sev == "high" && *bg));
    assert!(
        actions.iter().any(|(a, _, bg)| a == "token_issued" && *bg),
        "the token issued with break-glass is marked: {actions:?}"
    );
    // A newly sealed credential replaces the old one.
    warden_gateway::identity::seal_break_glass(&e.store, "test", T0)
        .await
        .unwrap();
    let r = login(&e.state, json!({"break_glass": cred})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn openapi_describes_the_identity_routes() {
    let e = setup("prod").await;
    let r = send(
        &e.state,
        Request::get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;
    for path in [
        "/oauth/token",
        "/v1/login",
        "/v1/logout",
        "/v1/session",
        "/v1/session/step-up",
        "/v1/tokens",
        "/v1/tokens/{id}",
    ] {
        assert!(
            r.body["paths"].get(path).is_some(),
            "{path} missing from openapi.json"
        );
    }
}

/// A login request from `addr` (as the listener would report it).
fn login_from(body: Value, addr: std::net::SocketAddr) -> Request<Body> {
    let mut req = Request::post("/v1/login")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(warden_gateway::PeerAddr(addr)));
    req
}

fn address(n: u32) -> std::net::SocketAddr {
    std::net::SocketAddr::from((std::net::Ipv4Addr::from(0x0a00_0000 + n), 40_000))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_lockout_loses_no_update_under_concurrency() {
    let e = setup("prod").await;
    e.enrol("erin", Role::Approver).await;
    let max = e.project.config.identity.max_failed_logins;
    // 40 wrong passwords at once, each from an address of its own.
    let tries: Vec<_> = (0..40)
        .map(|i| {
            let state = e.state.clone();
            tokio::spawn(async move {
                let body = json!({"user": "erin", "password": "wrong password!", "totp": "000000"});
                send(&state, login_from(body, address(i))).await.status
            })
        })
        .collect();
    for t in tries {
        assert_eq!(t.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    let row = e.store.identities().user("erin").await.unwrap().unwrap();
    assert_eq!(
        row.failed_logins, max,
        "every counted attempt kept; none past the lock-out"
    );
    assert!(row.locked_until > e.now(), "locked");
    let failures = identity_actions(&e.store)
        .await
        .into_iter()
        .filter(|(a, _, _)| a == "login_failed")
        .count();
    assert_eq!(
        failures,
        usize::try_from(max).unwrap(),
        "refusals while locked are not recorded one by one"
    );
}

#[tokio::test]
async fn step_up_and_vote_codes_are_limited_like_passwords() {
    let e = setup("prod").await;
    let seed = e.enrol("fay", Role::Approver).await;
    let r = login(
        &e.state,
        json!({"user": "fay", "password": PW, "totp": code_at(&seed, T0)}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let cookie = cookie_of(&r);
    let csrf = r.body["csrf_token"].as_str().unwrap().to_string();
    let max = e.project.config.identity.max_failed_logins;
    let step_up = |code: String| {
        with_session(
            &e.state,
            "POST",
            "/v1/session/step-up",
            &cookie,
            Some(&csrf),
            Some(json!({"totp": code})),
        )
    };
    e.advance(30);
    let right = code_at(&seed, T0 + 30);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..max {
        let r = step_up(wrong.to_string()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.raw);
    }
    // Locked: the right code is not even checked, and a vote's code neither.
    let r = step_up(right.clone()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.raw);
    assert_eq!(r.body["error"]["code"], "mfa_locked");
    let vote = with_session(
        &e.state,
        "POST",
        "/v1/approvals/no-such-request/approve",
        &cookie,
        Some(&csrf),
        Some(json!({"totp": right, "reason": "ok"})),
    )
    .await;
    assert_eq!(vote.status, StatusCode::TOO_MANY_REQUESTS, "{}", vote.raw);
    // After the back-off the right code works, and clears the count.
    e.advance(31);
    let r = step_up(code_at(&seed, T0 + 61)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let row = e.store.identities().user("fay").await.unwrap().unwrap();
    assert_eq!(row.failed_logins, 0);
    let actions = identity_actions(&e.store).await;
    assert!(
        actions
            .iter()
            .any(|(a, sev, _)| a == "step_up_failed" && sev == "high"),
        "the lock-out is an alert"
    );
}

#[tokio::test]
async fn sign_in_failures_are_throttled_per_address_and_the_ledger_is_not_flooded() {
    use warden_gateway::abuse::{PER_ADDRESS_BURST, RECORDS_PER_MINUTE};
    let e = setup("prod").await;
    let wrong = |n: u32| json!({"user": format!("nobody-{n}"), "password": "x", "totp": "000000"});
    // One address: its burst, then 429 before any hash; the refusal recorded once.
    for n in 0..PER_ADDRESS_BURST {
        let r = send(&e.state, login_from(wrong(n), address(1))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.raw);
    }
    for n in 0..5 {
        let r = send(&e.state, login_from(wrong(n), address(1))).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.raw);
        assert_eq!(r.body["error"]["code"], "rate_limited");
    }
    // Another address is not affected.
    let r = send(&e.state, login_from(wrong(0), address(2))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let throttled = identity_actions(&e.store)
        .await
        .into_iter()
        .filter(|(a, _, _)| a == "sign_in_throttled")
        .count();
    assert_eq!(
        throttled, 1,
        "one record per address and minute, not per request"
    );
    // Many addresses: failure records stop at the budget; the rest are counted.
    for n in 0..(RECORDS_PER_MINUTE + 100) {
        let r = send(&e.state, login_from(wrong(n), address(1000 + n))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let failures = identity_actions(&e.store)
        .await
        .into_iter()
        .filter(|(a, _, _)| a == "login_failed")
        .count();
    assert_eq!(
        failures + throttled,
        usize::try_from(RECORDS_PER_MINUTE).unwrap()
    );
}
