//! `/ui/`: the approvers' web UI, server-rendered HTML (no scripts, no build step).
//!
//! Pages: login (password + TOTP), the queue with filters, and a request's detail page (the
//! exact call, policy reasons, what the agent saw earlier in its session, the before-state,
//! the votes with their signature checks) with an approve/deny form that takes a reason and a
//! step-up code. Log-in goes through the same code as `POST /v1/login`; votes through the same
//! code as `POST /v1/approvals/{id}/approve|deny`.
//!
//! - this file: the routes and handlers, and the cookies;
//! - [`layout`]: the frame every page shares and its headers (CSP, no caching, no framing);
//! - [`pages`]: the pages' content.
//!
//! HTML is written with `maud`, which escapes every value it is given: no handler writes HTML
//! by hand, and nothing from the store is marked pre-escaped.
//!
//! CSRF: the session's CSRF token is kept in a second cookie (`warden_csrf`, HttpOnly,
//! SameSite=Strict) and written into each form as a hidden field; a form post is checked by
//! `require_session` exactly as an API call with the `X-CSRF-Token` header is. The login form
//! has a token of its own (set in the same cookie when the form is served), and its post must
//! also come from this site (`Origin`, `Sec-Fetch-Site`).

mod layout;
mod pages;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::{Cookie, CookieJar};
use maud::html;
use serde_json::Value;

use self::layout::{message, page, with_status};
use crate::approvals::{detail, reveal, vote, ListQuery, Verdict2};
use crate::error::ApiError;
use crate::logins::{
    ended_session_cookie, require_session, HumanSession, SecureCookie, CSRF_HEADER,
};
use crate::state::AppState;

const CSRF_COOKIE: &str = "warden_csrf";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(home))
        .route("/ui/login", get(login_page).post(login_post))
        .route("/ui/logout", post(logout_post))
        .route("/ui/approvals", get(queue))
        .route("/ui/approvals/{id}", get(detail_page))
        .route("/ui/approvals/{id}/vote", post(vote_post))
        .route("/ui/approvals/{id}/reveal", post(reveal_post))
}

/// The CSRF cookie, for the UI's paths only; `Max-Age=0` ends it, none keeps it for the
/// browser session (the session cookie's own life bounds it).
fn csrf_cookie(value: String, max_age_secs: Option<i64>) -> Cookie<'static> {
    SecureCookie {
        name: CSRF_COOKIE,
        value,
        path: "/ui",
        max_age_secs,
    }
    .build()
}

/// The CSRF token from the request's cookie, or empty.
fn csrf_of(headers: &HeaderMap) -> String {
    CookieJar::from_headers(headers)
        .get(CSRF_COOKIE)
        .map(|c| c.value().to_string())
        .unwrap_or_default()
}

fn form(body: &Bytes) -> std::collections::HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

async fn session_or_login(state: &AppState, headers: &HeaderMap) -> Result<HumanSession, Response> {
    require_session(state, headers, &Method::GET)
        .await
        .map_err(|_| Redirect::to("/ui/login").into_response())
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match session_or_login(&state, &headers).await {
        Ok(_) => Redirect::to("/ui/approvals").into_response(),
        Err(r) => r,
    }
}

/// The login form, with a fresh login CSRF token in the CSRF cookie and in the form, so a
/// form posted from another site (login CSRF: signing the victim into the attacker's account)
/// carries no matching token.
fn login_form_page(error: Option<&str>, status: StatusCode) -> Response {
    use rand::RngCore as _;
    let mut token = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut token);
    let token = hex::encode(token);
    (
        CookieJar::new().add(csrf_cookie(token.clone(), None)),
        with_status(
            page("Log in", None, "", pages::login_form(error, &token)),
            status,
        ),
    )
        .into_response()
}

async fn login_page() -> Response {
    login_form_page(None, StatusCode::OK)
}

/// Whether a form post comes from this site: the browser's `Sec-Fetch-Site` is not
/// `cross-site`, and an `Origin` it sends names the host the form was posted to.
fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if text(header::HeaderName::from_static("sec-fetch-site")) == Some("cross-site") {
        return false;
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host)),
        (Some(_), None) => false,
    }
}

async fn login_post(
    State(state): State<AppState>,
    from: crate::abuse::ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use subtle::ConstantTimeEq as _;
    let f = form(&body);
    let posted = f.get("csrf").map(String::as_str).unwrap_or_default();
    let expected = csrf_of(&headers);
    let token_ok = !expected.is_empty() && bool::from(posted.as_bytes().ct_eq(expected.as_bytes()));
    if !token_ok || !same_origin(&headers) {
        return login_form_page(
            Some("this sign-in form expired or was not sent from this site; sign in again"),
            StatusCode::FORBIDDEN,
        );
    }
    let json = serde_json::json!({
        "user": f.get("user").cloned().unwrap_or_default(),
        "password": f.get("password").cloned().unwrap_or_default(),
        "totp": f.get("totp").cloned().unwrap_or_default(),
    });
    let resp = match crate::logins::login_handler(State(state), from, Bytes::from(json.to_string()))
        .await
    {
        Ok(r) => r,
        Err(e) => return login_form_page(Some(&e.external), e.status),
    };
    // The session cookie exactly as `POST /v1/login` set it.
    let set_session = resp.headers().get(header::SET_COOKIE).cloned();
    let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let csrf = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.get("csrf_token")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    (
        AppendHeaders(set_session.map(|v| (header::SET_COOKIE, v))),
        CookieJar::new().add(csrf_cookie(csrf, None)),
        Redirect::to("/ui/approvals"),
    )
        .into_response()
}

/// The request headers with the form's CSRF field as the `X-CSRF-Token` header.
fn with_csrf(headers: &HeaderMap, token: &str) -> HeaderMap {
    let mut h = headers.clone();
    h.remove(CSRF_HEADER);
    if let Ok(v) = HeaderValue::from_str(token) {
        h.insert(CSRF_HEADER, v);
    }
    h
}

async fn logout_post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let f = form(&body);
    let h = with_csrf(&headers, f.get("csrf").map_or("", String::as_str));
    if let Ok(who) = require_session(&state, &h, &Method::POST).await {
        let _ = crate::logins::logout_handler(State(state), who).await;
    }
    // One jar per cookie: a jar sends its cookies in no fixed order, this keeps the
    // Set-Cookie headers in the same order on every response.
    (
        CookieJar::new().add(ended_session_cookie()),
        CookieJar::new().add(csrf_cookie(String::new(), Some(0))),
        Redirect::to("/ui/login"),
    )
        .into_response()
}

async fn queue(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let who = match session_or_login(&state, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let csrf = csrf_of(&headers);
    if let Err(e) = crate::approvals::sweep_expired(&state).await {
        tracing::error!(message = "expiry sweep failed", error = %e);
    }
    let filter = q.filter();
    let rows = match state.store.approvals().list_approvals(&filter).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(message = "approval queue unreadable", error = %e);
            return with_status(
                page(
                    "Approval queue",
                    Some(&who),
                    &csrf,
                    message("The approval store is unavailable.", false),
                ),
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
    };
    page(
        "Approval queue",
        Some(&who),
        &csrf,
        pages::queue(&filter, &rows),
    )
}

async fn detail_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let who = match session_or_login(&state, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let csrf = csrf_of(&headers);
    let found = detail(&state, &id).await;
    detail_response(found, &who, &csrf, &id, false)
}

/// The detail page for what `detail` or `reveal` found (`revealed`: values as sent).
fn detail_response(
    found: Result<Option<Value>, ApiError>,
    who: &HumanSession,
    csrf: &str,
    id: &str,
    revealed: bool,
) -> Response {
    match found {
        Ok(Some(d)) => page(
            &format!("Approval request {id}"),
            Some(who),
            csrf,
            pages::detail(&d, csrf, id, None, revealed),
        ),
        Ok(None) => with_status(
            page(
                "Not found",
                Some(who),
                csrf,
                html! { p { "No such approval request." } },
            ),
            StatusCode::NOT_FOUND,
        ),
        Err(e) => with_status(
            page("Error", Some(who), csrf, message(&e.external, false)),
            e.status,
        ),
    }
}

async fn vote_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let f = match warden_core::approval::parse_vote_form(&body) {
        Ok(f) => f,
        Err(e) => {
            return with_status(
                page("Bad request", None, "", message(&e.to_string(), false)),
                StatusCode::BAD_REQUEST,
            )
        }
    };
    let h = with_csrf(&headers, f.csrf.as_deref().unwrap_or_default());
    let who = match require_session(&state, &h, &Method::POST).await {
        Ok(w) => w,
        Err(e) => {
            return with_status(
                page(
                    "Refused",
                    None,
                    "",
                    html! {
                        (message(&e.external, false))
                        p { a href="/ui/login" { "Log in again" } }
                    },
                ),
                e.status,
            )
        }
    };
    let verdict = match f.action {
        Some(v) => v,
        None => {
            return with_status(
                page(
                    "Bad request",
                    Some(&who),
                    "",
                    html! { p { "Choose approve or deny." } },
                ),
                StatusCode::BAD_REQUEST,
            )
        }
    };
    let result = vote(
        &state,
        &who,
        &id,
        verdict,
        f.input.reason.as_deref(),
        f.input.totp.as_deref(),
    )
    .await;
    let csrf = csrf_of(&headers);
    let (text, status) = match &result {
        Ok(v) => (
            format!(
                "Recorded: you voted to {} — the request is now {}. Ledger record #{} signed with key {}.",
                verdict_word(verdict),
                v.get("state").and_then(Value::as_str).unwrap_or("?"),
                v.get("ledger").and_then(|l| l.get("seq")).map(ToString::to_string).unwrap_or_default(),
                v.get("key_id").and_then(Value::as_str).unwrap_or("?"),
            ),
            StatusCode::OK,
        ),
        Err(e) => (e.external.clone(), e.status),
    };
    match detail(&state, &id).await {
        Ok(Some(d)) => with_status(
            page(
                &format!("Approval request {id}"),
                Some(&who),
                &csrf,
                pages::detail(&d, &csrf, &id, Some((&text, result.is_ok())), false),
            ),
            status,
        ),
        _ => with_status(
            page("Not found", Some(&who), &csrf, html! { p { (text) } }),
            StatusCode::NOT_FOUND,
        ),
    }
}

/// The detail page with the values as sent: recorded first (`approval_values_revealed`).
async fn reveal_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let token = form(&body).remove("csrf").unwrap_or_default();
    let h = with_csrf(&headers, &token);
    let who = match require_session(&state, &h, &Method::POST).await {
        Ok(w) => w,
        Err(e) => {
            return with_status(
                page("Refused", None, "", message(&e.external, false)),
                e.status,
            )
        }
    };
    let csrf = csrf_of(&headers);
    let found = reveal(&state, &who, &id, "ui").await;
    detail_response(found, &who, &csrf, &id, true)
}

fn verdict_word(v: Verdict2) -> &'static str {
    match v {
        Verdict2::Approve => "approve",
        Verdict2::Deny => "deny",
    }
}
