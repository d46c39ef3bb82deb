//! The harness the gateway's tests share: a project from the example with edits, a gateway
//! state on a fresh SQLite store with a movable clock, the router driven without a socket,
//! people who log in with password and TOTP and vote, and agents that call through each door
//! (the decision API, `/mcp`, the stdio gate).

// Test code: a panic is a failed assertion. Each test binary uses part of the harness.
#![allow(
    dead_code,
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
use warden_core::example;
use warden_core::identity::{hotp, totp_step};
use warden_core::ledger::{DecisionEvent, LedgerEvent};
use warden_core::project::{load_project, Project};
use warden_gateway::identity::{issue_token, TokenRequest};
use warden_gateway::logins::{add_user, Role};
use warden_gateway::secrets::MasterKey;
use warden_gateway::{app, hash_key, AppState, Clock};
use warden_store::{Store, StoreOptions};
use warden_verify::NoteSigner;

pub const T0: i64 = 1_800_000_000;
pub const PW: &str = "correct horse battery staple";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub state: AppState,
    pub clock: Arc<AtomicI64>,
    pub store: Store,
    pub project: Project,
    pub key: MasterKey,
    /// The ledger's key (it signs checkpoints and votes).
    pub signer: Arc<NoteSigner>,
}

/// The example project with `extra` appended to warden.toml and each card's text passed
/// through `card_edit(agent, text)`.
pub fn project_with(extra: &str, card_edit: &dyn Fn(&str, &str) -> String) -> Project {
    project_edited(&|config| format!("{config}{extra}"), card_edit)
}

/// The example project with warden.toml passed through `config_edit` and each card's text
/// through `card_edit(agent, text)`. An agent's static key is its name.
pub fn project_edited(
    config_edit: &dyn Fn(&str) -> String,
    card_edit: &dyn Fn(&str, &str) -> String,
) -> Project {
    let mut sources = example::sources(|a| hash_key(a).trim_start_matches("sha256:").to_string());
    sources.config.text = config_edit(&sources.config.text);
    for c in &mut sources.cards {
        let agent = c
            .path
            .rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(".toml")
            .to_string();
        c.text = card_edit(&agent, &c.text);
    }
    load_project(&sources).unwrap()
}

/// The example project, `card_edit` applied to the crm-writer card.
pub fn project(extra: &str, card_edit: fn(&str) -> String) -> Project {
    project_with(extra, &|agent, text| {
        if agent == "crm-writer" {
            card_edit(text)
        } else {
            text.to_string()
        }
    })
}

pub async fn setup(extra: &str) -> Env {
    setup_with(extra, |t| t.to_string()).await
}

pub async fn setup_with(extra: &str, card_edit: fn(&str) -> String) -> Env {
    let p = project(extra, card_edit);
    let again = project(extra, card_edit);
    Env::open(p, again).await
}

/// A gateway over the example, with `card_edit(agent, text)` applied to every card.
pub async fn setup_cards(extra: &str, card_edit: impl Fn(&str, &str) -> String) -> Env {
    let p = project_with(extra, &card_edit);
    let again = project_with(extra, &card_edit);
    Env::open(p, again).await
}

/// A gateway over the example with warden.toml and the cards edited.
pub async fn setup_edited(
    config_edit: impl Fn(&str) -> String,
    card_edit: impl Fn(&str, &str) -> String,
) -> Env {
    let p = project_edited(&config_edit, &card_edit);
    let again = project_edited(&config_edit, &card_edit);
    Env::open(p, again).await
}

/// A gateway over the example with warden.toml and the cards edited, its store opened with
/// the options `options` makes for the project.
pub async fn setup_store(
    config_edit: impl Fn(&str) -> String,
    card_edit: impl Fn(&str, &str) -> String,
    options: impl Fn(&Project) -> StoreOptions,
) -> Env {
    let p = project_edited(&config_edit, &card_edit);
    let again = project_edited(&config_edit, &card_edit);
    let opts = options(&p);
    Env::open_with(p, again, opts).await
}

impl Env {
    async fn open(p: Project, policy_of: Project) -> Env {
        Self::open_with(p, policy_of, StoreOptions::default()).await
    }

    /// The one place the gateway tests open a store. The store reads the movable clock, and
    /// the gateway takes it from the store: one clock for every timestamp.
    async fn open_with(p: Project, policy_of: Project, mut options: StoreOptions) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(AtomicI64::new(T0));
        let c = clock.clone();
        options.clock = Clock::from_unix_secs(move || c.load(Ordering::SeqCst));
        let store = Store::open_sqlite(&dir.path().join("w.db"), options)
            .await
            .unwrap();
        let key = MasterKey::generate();
        let signer = Arc::new(NoteSigner::from_seed("test.example/ledger", &[9u8; 32]).unwrap());
        let state = AppState::new(&p.config, Arc::new(policy_of.policy), store.clone())
            .with_master_key(Some(key.clone()))
            .with_ledger_signer(Some(Arc::clone(&signer)));
        Env {
            dir,
            state,
            clock,
            store,
            project: p,
            key,
            signer,
        }
    }

    /// A second gateway on the same store and clock, serving `project` (a changed
    /// configuration, as after a restart).
    pub fn restarted_with(&self, project: Project) -> AppState {
        AppState::new(
            &project.config,
            Arc::new(project.policy),
            self.store.clone(),
        )
        .with_master_key(Some(self.key.clone()))
        .with_ledger_signer(Some(Arc::clone(&self.signer)))
    }

    pub fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    pub fn advance(&self, secs: i64) {
        self.clock.fetch_add(secs, Ordering::SeqCst);
    }

    pub async fn agent_token(&self, agent: &str) -> String {
        issue_token(
            &self.store,
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

    /// Enrol a person with a password and TOTP; their TOTP seed.
    pub async fn enrol(&self, name: &str, role: Role) -> Vec<u8> {
        let en = add_user(
            &self.store,
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
        seed_of(en.otpauth_uri.as_deref().unwrap())
    }

    /// Enrol and log in (password + TOTP) through `POST /v1/login`.
    pub async fn person(&self, name: &str, role: Role) -> Person {
        let seed = self.enrol(name, role).await;
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

    pub async fn propose(&self, token: &str, body: Value) -> Resp {
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

    pub async fn poll(&self, token: &str, id: &str) -> Resp {
        send(
            &self.state,
            Request::get(format!("/v1/decisions/{id}?wait=0"))
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    pub async fn vote(&self, p: &Person, id: &str, verdict: &str, body: Value, csrf: bool) -> Resp {
        let mut req = Request::post(format!("/v1/approvals/{id}/{verdict}"))
            .header("cookie", &p.cookie)
            .header("content-type", "application/json");
        if csrf {
            req = req.header("x-csrf-token", &p.csrf);
        }
        send(&self.state, req.body(Body::from(body.to_string())).unwrap()).await
    }

    /// One JSON-RPC message to `/mcp` (`session`: the `Mcp-Session-Id`).
    pub async fn mcp(&self, token: &str, session: Option<&str>, msg: Value) -> Resp {
        let mut req = Request::post("/mcp")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        send(&self.state, req.body(Body::from(msg.to_string())).unwrap()).await
    }

    /// `initialize` on `/mcp` with `meta` as `params._meta`; the session id.
    pub async fn mcp_session(&self, token: &str, meta: Value) -> String {
        let resp = app(self.state.clone())
            .oneshot(
                Request::post("/mcp")
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .body(Body::from(
                        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                            "protocolVersion": "2025-06-18", "capabilities": {},
                            "clientInfo": {"name": "test", "version": "1"}, "_meta": meta}})
                        .to_string(),
                    ))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_string()
    }

    /// The decision records in the ledger, oldest first.
    pub async fn decisions(&self) -> Vec<DecisionEvent> {
        self.store
            .ledger()
            .tail(10_000)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|r| match r.record.event {
                LedgerEvent::Decision(d) => Some(*d),
                _ => None,
            })
            .collect()
    }

    /// The newest decision record.
    pub async fn last_decision(&self) -> DecisionEvent {
        self.decisions().await.pop().expect("a decision record")
    }
}

/// A `tools/call` JSON-RPC request.
pub fn tool_call(id: u64, name: &str, args: Value, meta: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": name, "arguments": args, "_meta": meta}})
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub raw: String,
}

pub async fn send(state: &AppState, req: Request<Body>) -> Resp {
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    Resp {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        raw: String::from_utf8_lossy(&bytes).to_string(),
    }
}

/// The TOTP seed in an `otpauth://` URI.
pub fn seed_of(otpauth_uri: &str) -> Vec<u8> {
    let secret = otpauth_uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    warden_core::identity::base32_decode(secret).unwrap()
}

pub fn code_at(seed: &[u8], unix: i64) -> String {
    format!("{:06}", hotp(seed, totp_step(unix as u64)))
}

/// A logged-in person: cookie, CSRF token, TOTP seed.
pub struct Person {
    pub name: String,
    pub cookie: String,
    pub csrf: String,
    pub seed: Vec<u8>,
}

/// Poll `cond` until it holds or `within` passes; the last value either way.
pub async fn wait_until<F, Fut>(within: std::time::Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
