//! The cookies people's browsers get: every `Set-Cookie` of the API's and the UI's login and
//! logout, pinned attribute by attribute (HttpOnly, SameSite=Strict, Secure, Path, Max-Age),
//! and the `Cookie` header read back however a browser or a proxy lays it out.
//!
//! The expected attribute lists are the ones the gateway sent when its cookies were written
//! by hand; the attribute order may change, their set may not.

// Test code: a panic is a failed assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::json;
use warden_core::identity::{hotp, totp_step};
use warden_gateway::logins::Role;
use warden_gateway::AppState;

use common::{send, Resp, PW};

struct Env {
    _gateway: common::Env,
    state: AppState,
    clock: Arc<AtomicI64>,
    seed: Vec<u8>,
    absolute_secs: u64,
}

impl Env {
    /// A fresh TOTP code: each step is accepted once, so the clock moves a step first.
    fn code(&self) -> String {
        let now = self.clock.fetch_add(30, Ordering::SeqCst) + 30;
        format!("{:06}", hotp(&self.seed, totp_step(now as u64)))
    }
}

/// A gateway with one approver, `ann`, enrolled with a password and TOTP.
async fn setup() -> Env {
    let gateway = common::setup("").await;
    let seed = gateway.enrol("ann", Role::Approver).await;
    Env {
        state: gateway.state.clone(),
        clock: Arc::clone(&gateway.clock),
        seed,
        absolute_secs: gateway.project.config.identity.session_absolute_secs,
        _gateway: gateway,
    }
}

/// One `Set-Cookie` header taken apart: name, value and the set of attributes as written.
#[derive(Debug, PartialEq, Eq)]
struct SetCookie {
    name: String,
    value: String,
    attributes: BTreeSet<String>,
}

fn set_cookies(r: &Resp) -> Vec<SetCookie> {
    r.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| {
            let text = v.to_str().unwrap();
            println!("Set-Cookie: {text}");
            let mut parts = text.split("; ");
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            SetCookie {
                name: name.to_string(),
                value: value.to_string(),
                attributes: parts.map(str::to_string).collect(),
            }
        })
        .collect()
}

fn attrs(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

#[tokio::test]
async fn api_login_and_logout_cookies_keep_their_attributes() {
    let e = setup().await;
    let r = send(
        &e.state,
        Request::post("/v1/login")
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"user": "ann", "password": PW, "totp": e.code()}).to_string(),
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let set = set_cookies(&r);
    assert_eq!(set.len(), 1, "{set:?}");
    assert_eq!(set[0].name, "warden_session");
    assert!(set[0].value.starts_with("wdn_"), "{set:?}");
    let max_age = format!("Max-Age={}", e.absolute_secs);
    assert_eq!(
        set[0].attributes,
        attrs(&["Path=/", &max_age, "Secure", "HttpOnly", "SameSite=Strict"])
    );
    let session = format!("warden_session={}", set[0].value);
    let csrf = r.body["csrf_token"].as_str().unwrap().to_string();

    let out = send(
        &e.state,
        Request::post("/v1/logout")
            .header("cookie", &session)
            .header("x-csrf-token", &csrf)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.raw);
    assert_eq!(
        set_cookies(&out),
        vec![SetCookie {
            name: "warden_session".into(),
            value: String::new(),
            attributes: attrs(&[
                "Path=/",
                "Max-Age=0",
                "Secure",
                "HttpOnly",
                "SameSite=Strict"
            ]),
        }]
    );
}

/// The login form's CSRF token, from the cookie `GET /ui/login` sets (also in the form).
async fn login_form_token(e: &Env) -> String {
    let page = send(
        &e.state,
        Request::get("/ui/login").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    let set = set_cookies(&page);
    assert_eq!(set[0].name, "warden_csrf", "{set:?}");
    let token = set[0].value.clone();
    assert!(
        page.raw
            .contains(&format!("name=\"csrf\" value=\"{token}\"")),
        "{}",
        page.raw
    );
    token
}

fn login_post(form: String, headers: &[(&str, &str)]) -> Request<Body> {
    let mut req =
        Request::post("/ui/login").header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Body::from(form)).unwrap()
}

#[tokio::test]
async fn ui_login_form_without_its_csrf_token_or_from_another_site_is_refused() {
    let e = setup().await;
    let token = login_form_token(&e).await;
    let cookie = format!("warden_csrf={token}");
    let form = |csrf: &str| {
        format!(
            "user=ann&password={}&totp={}&csrf={csrf}",
            PW.replace(' ', "+"),
            e.code()
        )
    };
    for (why, body, headers) in [
        ("no token", form(""), vec![("cookie", cookie.as_str())]),
        ("no cookie", form(&token), vec![]),
        (
            "another token",
            form(&"0".repeat(64)),
            vec![("cookie", cookie.as_str())],
        ),
        (
            "another site's Origin",
            form(&token),
            vec![
                ("cookie", cookie.as_str()),
                ("host", "warden.example"),
                ("origin", "https://evil.example"),
            ],
        ),
        (
            "cross-site fetch",
            form(&token),
            vec![
                ("cookie", cookie.as_str()),
                ("sec-fetch-site", "cross-site"),
            ],
        ),
    ] {
        let r = send(&e.state, login_post(body, &headers)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{why}: {}", r.raw);
        assert!(
            !set_cookies(&r).iter().any(|c| c.name == "warden_session"),
            "{why}: no session"
        );
    }
    // The same form from this site signs in.
    let r = send(
        &e.state,
        login_post(
            form(&token),
            &[
                ("cookie", cookie.as_str()),
                ("host", "warden.example"),
                ("origin", "https://warden.example"),
            ],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
}

#[tokio::test]
async fn ui_login_and_logout_cookies_keep_their_attributes() {
    let e = setup().await;
    let token = login_form_token(&e).await;
    let form = format!(
        "user=ann&password={}&totp={}&csrf={token}",
        PW.replace(' ', "+"),
        e.code()
    );
    let cookie = format!("warden_csrf={token}");
    let r = send(&e.state, login_post(form, &[("cookie", cookie.as_str())])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    assert_eq!(r.headers["location"], "/ui/approvals");
    let set = set_cookies(&r);
    assert_eq!(set.len(), 2, "{set:?}");
    let max_age = format!("Max-Age={}", e.absolute_secs);
    assert_eq!(set[0].name, "warden_session");
    assert!(set[0].value.starts_with("wdn_"), "{set:?}");
    assert_eq!(
        set[0].attributes,
        attrs(&["Path=/", &max_age, "Secure", "HttpOnly", "SameSite=Strict"])
    );
    assert_eq!(set[1].name, "warden_csrf");
    assert_eq!(set[1].value.len(), 64, "{set:?}");
    assert_eq!(
        set[1].attributes,
        attrs(&["Path=/ui", "Secure", "HttpOnly", "SameSite=Strict"])
    );
    let (session, csrf) = (set[0].value.clone(), set[1].value.clone());

    // The pages read both cookies back, whatever the layout of the Cookie header(s).
    for cookies in [
        vec![format!("warden_session={session}; warden_csrf={csrf}")],
        vec![format!(
            "other=1;warden_csrf={csrf} ;  warden_session={session};x=y"
        )],
        vec![
            format!("warden_csrf={csrf}"),
            format!("theme=dark; warden_session={session}"),
        ],
    ] {
        let mut req = Request::get("/ui/approvals");
        for c in &cookies {
            req = req.header("cookie", c);
        }
        let page = send(&e.state, req.body(Body::empty()).unwrap()).await;
        assert_eq!(page.status, StatusCode::OK, "{cookies:?}: {}", page.raw);
        assert!(
            page.raw.contains(&format!("value=\"{csrf}\"")),
            "{cookies:?}: the logout form carries the CSRF token: {}",
            page.raw
        );
    }

    let out = send(
        &e.state,
        Request::post("/ui/logout")
            .header(
                "cookie",
                format!("warden_session={session}; warden_csrf={csrf}"),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf={csrf}")))
            .unwrap(),
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.raw);
    assert_eq!(out.headers["location"], "/ui/login");
    assert_eq!(
        set_cookies(&out),
        vec![
            SetCookie {
                name: "warden_session".into(),
                value: String::new(),
                attributes: attrs(&[
                    "Path=/",
                    "Max-Age=0",
                    "Secure",
                    "HttpOnly",
                    "SameSite=Strict"
                ]),
            },
            SetCookie {
                name: "warden_csrf".into(),
                value: String::new(),
                attributes: attrs(&[
                    "Path=/ui",
                    "Max-Age=0",
                    "Secure",
                    "HttpOnly",
                    "SameSite=Strict"
                ]),
            },
        ]
    );
    // The session is over: the pages send the browser to the login page.
    let after = send(
        &e.state,
        Request::get("/ui/approvals")
            .header("cookie", format!("warden_session={session}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.headers["location"], "/ui/login");
}
