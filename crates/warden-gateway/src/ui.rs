//! `/ui/`: the approvers' web UI, server-rendered HTML (no scripts, no build step).
//!
//! Pages: login (password + TOTP), the queue with filters, and a request's detail page (the
//! exact call, policy reasons, what the agent saw earlier in its session, the before-state,
//! the votes with their signature checks) with an approve/deny form that takes a reason and a
//! step-up code. Log-in goes through the same code as `POST /v1/login`; votes through the same
//! code as `POST /v1/approvals/{id}/approve|deny`.
//!
//! CSRF: the session's CSRF token is kept in a second cookie (`warden_csrf`, HttpOnly,
//! SameSite=Strict) and written into each form as a hidden field; a form post is checked by
//! `require_session` exactly as an API call with the `X-CSRF-Token` header is.
//! Every value from the store is HTML-escaped by [`esc`].

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

use crate::approvals::{detail, vote, ListQuery, Verdict2};
use crate::logins::{require_session, HumanSession, CSRF_HEADER};
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
}

/// Escape text for HTML element content and quoted attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn page(title: &str, who: Option<&HumanSession>, csrf: &str, body: &str) -> Response {
    let nav = match who {
        Some(w) => format!(
            r#"<nav aria-label="Main"><a href="/ui/approvals">Approval queue</a> · Signed in as <strong>{}</strong> ({})
<form method="post" action="/ui/logout" class="inline"><input type="hidden" name="csrf" value="{}"><button type="submit">Log out</button></form></nav>"#,
            esc(&w.user),
            esc(w.role.as_str()),
            esc(csrf)
        ),
        None => String::new(),
    };
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Warden</title>
<style>
body{{font-family:system-ui,sans-serif;margin:0;color:#1a1a1a;background:#fafafa}}
header,main{{padding:0.75rem 1.5rem}} header{{background:#17324d;color:#fff}} header a{{color:#fff}}
table{{border-collapse:collapse;width:100%;background:#fff}} th,td{{border:1px solid #ccc;padding:0.35rem 0.5rem;text-align:left;vertical-align:top}}
pre{{background:#fff;border:1px solid #ccc;padding:0.5rem;overflow:auto;max-height:24rem}}
.inline{{display:inline}} .error{{color:#8b0000;font-weight:bold}} .ok{{color:#064e00;font-weight:bold}}
tr.changes td{{background:#fff3cd;font-weight:bold}} caption{{text-align:left;font-style:italic}}
label{{display:block;margin-top:0.5rem}} section{{margin-bottom:1.5rem}} .cols{{display:flex;gap:1rem;flex-wrap:wrap}} .cols>div{{flex:1;min-width:18rem}}
</style></head>
<body><header><p><strong>Warden</strong> — approvals</p>{nav}</header>
<main id="main">
<h1>{title}</h1>
{body}
</main></body></html>"#,
        title = esc(title)
    );
    let mut resp = (StatusCode::OK, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    );
    resp
}

fn with_status(mut r: Response, status: StatusCode) -> Response {
    *r.status_mut() = status;
    r
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
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

fn login_form(error: Option<&str>) -> String {
    let err = error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, esc(e)))
        .unwrap_or_default();
    format!(
        r#"{err}<form method="post" action="/ui/login">
<label for="user">User name</label><input id="user" name="user" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<label for="totp">One-time code (authenticator app)</label><input id="totp" name="totp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{{6}}" required>
<p><button type="submit">Log in</button></p></form>"#
    )
}

async fn login_page() -> Response {
    page("Log in", None, "", &login_form(None))
}

async fn login_post(State(state): State<AppState>, body: Bytes) -> Response {
    let f = form(&body);
    let json = serde_json::json!({
        "user": f.get("user").cloned().unwrap_or_default(),
        "password": f.get("password").cloned().unwrap_or_default(),
        "totp": f.get("totp").cloned().unwrap_or_default(),
    });
    let resp = match crate::logins::login_handler(State(state), Bytes::from(json.to_string())).await
    {
        Ok(r) => r,
        Err(e) => {
            return with_status(
                page("Log in", None, "", &login_form(Some(&e.external.clone()))),
                StatusCode::UNAUTHORIZED,
            )
        }
    };
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
    let mut out = Redirect::to("/ui/approvals").into_response();
    *out.status_mut() = StatusCode::SEE_OTHER;
    if let Some(c) = set_session {
        out.headers_mut().append(header::SET_COOKIE, c);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{CSRF_COOKIE}={csrf}; Path=/ui; Secure; HttpOnly; SameSite=Strict"
    )) {
        out.headers_mut().append(header::SET_COOKIE, v);
    }
    out
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
    let mut out = Redirect::to("/ui/login").into_response();
    *out.status_mut() = StatusCode::SEE_OTHER;
    for c in [
        format!(
            "{}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict",
            crate::logins::SESSION_COOKIE
        ),
        format!("{CSRF_COOKIE}=; Path=/ui; Max-Age=0; Secure; HttpOnly; SameSite=Strict"),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            out.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    out
}

fn opt(v: &Value) -> String {
    match v {
        Value::Null => "—".to_string(),
        Value::String(s) => esc(s),
        other => esc(&other.to_string()),
    }
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
    let csrf = cookie(&headers, CSRF_COOKIE)
        .unwrap_or_default()
        .to_string();
    if let Err(e) = crate::approvals::sweep_expired(&state).await {
        tracing::error!(message = "expiry sweep failed", error = %e);
    }
    let filter = q.filter();
    let rows = match state.ledger.list_approvals(&filter).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(message = "approval queue unreadable", error = %e);
            return with_status(
                page(
                    "Approval queue",
                    Some(&who),
                    &csrf,
                    r#"<p class="error" role="alert">The approval store is unavailable.</p>"#,
                ),
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
    };
    let sel = |v: &str| {
        if filter.state.as_deref() == Some(v) {
            " selected"
        } else {
            ""
        }
    };
    let mut body = format!(
        r#"<form method="get" action="/ui/approvals" aria-label="Filter the queue">
<label for="f-state">State</label><select id="f-state" name="state">
<option value="">any</option><option value="pending"{}>pending</option><option value="approved"{}>approved</option><option value="denied"{}>denied</option><option value="expired"{}>expired</option></select>
<label for="f-agent">Agent</label><input id="f-agent" name="agent" value="{}">
<label for="f-tool">Tool</label><input id="f-tool" name="tool" value="{}">
<p><button type="submit">Filter</button></p></form>
<table><caption>{} request(s)</caption>
<thead><tr><th scope="col">Request</th><th scope="col">State</th><th scope="col">Agent</th><th scope="col">Tool</th><th scope="col">Tier</th><th scope="col">Requested</th><th scope="col">Expires</th></tr></thead><tbody>"#,
        sel("pending"),
        sel("approved"),
        sel("denied"),
        sel("expired"),
        esc(filter.agent.as_deref().unwrap_or_default()),
        esc(filter.tool.as_deref().unwrap_or_default()),
        rows.len()
    );
    for r in &rows {
        body.push_str(&format!(
            r#"<tr><th scope="row"><a href="/ui/approvals/{id}">{id}</a></th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(&r.state),
            esc(&r.agent),
            esc(&r.qualified_tool),
            esc(&r.tier),
            esc(&crate::identity::rfc3339(r.created_at)),
            esc(&crate::identity::rfc3339(r.expires_at)),
            id = esc(&r.id),
        ));
    }
    body.push_str("</tbody></table>");
    page("Approval queue", Some(&who), &csrf, &body)
}

fn pretty(v: &Value) -> String {
    esc(&serde_json::to_string_pretty(v).unwrap_or_default())
}

/// The before-state → proposed change table: one row per field, matched by name.
fn render_diff(rows: &Value) -> String {
    let Some(rows) = rows.as_array().filter(|r| !r.is_empty()) else {
        return String::new();
    };
    let mut out = String::from(
        r#"<h3>Before-state → proposed change</h3><table id="diff"><caption>Fields of the before-state and the call's arguments, matched by name</caption><thead><tr><th scope="col">Field</th><th scope="col">Before</th><th scope="col">Proposed</th><th scope="col">Change</th></tr></thead><tbody>"#,
    );
    for r in rows {
        let cell = |k: &str| match r.get(k) {
            None | Some(Value::Null) => "—".to_string(),
            Some(v) => format!("<code>{}</code>", esc(&v.to_string())),
        };
        let change = r.get("change").and_then(Value::as_str).unwrap_or_default();
        let word = match change {
            "changes" => "changes",
            "same" => "unchanged",
            "kept" => "not in the call",
            "new" => "only in the call",
            other => other,
        };
        out.push_str(&format!(
            r#"<tr class="{cls}"><th scope="row">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(r.get("field").and_then(Value::as_str).unwrap_or_default()),
            cell("before"),
            cell("proposed"),
            esc(word),
            cls = esc(change),
        ));
    }
    out.push_str("</tbody></table>");
    out
}

fn render_detail(d: &Value, csrf: &str, id: &str, message: Option<(&str, bool)>) -> String {
    let s = |k: &str| d.get(k).cloned().unwrap_or(Value::Null);
    let mut body = String::new();
    if let Some((m, ok)) = message {
        body.push_str(&format!(
            r#"<p class="{}" role="{}">{}</p>"#,
            if ok { "ok" } else { "error" },
            if ok { "status" } else { "alert" },
            esc(m)
        ));
    }
    body.push_str(&format!(
        r#"<section aria-labelledby="h-call"><h2 id="h-call">The call</h2>
<table><tbody>
<tr><th scope="row">State</th><td id="state">{}</td></tr>
<tr><th scope="row">Outcome</th><td>{}</td></tr>
<tr><th scope="row">Agent</th><td>{}</td></tr>
<tr><th scope="row">On behalf of</th><td>{}</td></tr>
<tr><th scope="row">Tool</th><td id="tool">{}</td></tr>
<tr><th scope="row">Upstream</th><td>{}</td></tr>
<tr><th scope="row">Tier</th><td>{} ({} approval(s) needed)</td></tr>
<tr><th scope="row">Argument hash (SHA-256, RFC 8785)</th><td><code>{}</code></td></tr>
<tr><th scope="row">Correlation id</th><td>{}</td></tr>
<tr><th scope="row">Session</th><td>{}</td></tr>
<tr><th scope="row">Requested</th><td>{}</td></tr>
<tr><th scope="row">Expires</th><td>{}</td></tr>
</tbody></table></section>"#,
        opt(&s("state")),
        opt(&s("outcome")),
        opt(&s("agent")),
        opt(&s("on_behalf_of")),
        opt(&s("qualified_tool")),
        opt(&s("upstream")),
        opt(&s("tier")),
        opt(&s("required_approvals")),
        opt(&s("arguments_hash")),
        opt(&s("correlation_id")),
        opt(&s("session")),
        opt(&s("created_at")),
        opt(&s("expires_at")),
    ));
    body.push_str(r#"<section aria-labelledby="h-change"><h2 id="h-change">What it will do</h2>"#);
    body.push_str(&render_diff(&s("before_state_diff")));
    let provenance = match s("before_state_source").as_str() {
        _ if !s("before_state_error").is_null() => "",
        Some("snapshot") => {
            r#"<p id="before-state-source">Read by Warden through the scope card's snapshot read, with Warden's credentials, when the call was held (redacted).</p>"#
        }
        Some("caller") => {
            r#"<p id="before-state-source">Reported by the agent's framework; Warden did not read it.</p>"#
        }
        _ => "",
    };
    body.push_str(r#"<div class="cols">"#);
    body.push_str(&format!(
        r#"<div><h3>Before-state</h3>{provenance}{}</div><div><h3>Arguments (exactly as proposed)</h3><pre id="arguments">{}</pre></div></div></section>"#,
        match (s("before_state"), s("before_state_error")) {
            (_, Value::String(e)) => format!(
                r#"<p id="before-state-unavailable" role="status">before-state unavailable: {}</p>"#,
                esc(&e)
            ),
            (Value::Null, _) => "<p>No before-state was read for this call.</p>".to_string(),
            (v, _) => format!(r#"<pre id="before-state">{}</pre>"#, pretty(&v)),
        },
        pretty(&s("arguments")),
    ));
    body.push_str(r#"<section aria-labelledby="h-reasons"><h2 id="h-reasons">Why it is held (policy reasons)</h2><ul id="reasons">"#);
    for r in s("reasons").as_array().cloned().unwrap_or_default() {
        body.push_str(&format!("<li>{}</li>", opt(&r)));
    }
    body.push_str("</ul></section>");
    body.push_str(r#"<section aria-labelledby="h-saw"><h2 id="h-saw">What the agent saw before this call</h2>"#);
    let saw = s("what_the_agent_saw")
        .as_array()
        .cloned()
        .unwrap_or_default();
    if saw.is_empty() {
        body.push_str("<p>No earlier tool outputs in this session.</p>");
    } else {
        body.push_str(r#"<table id="agent-saw"><thead><tr><th scope="col">Ledger #</th><th scope="col">Time</th><th scope="col">Tool</th><th scope="col">Status</th><th scope="col">Output (as recorded, redacted)</th></tr></thead><tbody>"#);
        for o in &saw {
            let g = |k: &str| o.get(k).cloned().unwrap_or(Value::Null);
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
                opt(&g("seq")),
                opt(&g("ts")),
                opt(&g("tool")),
                opt(&g("status")),
                pretty(&g("output"))
            ));
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("</section>");
    body.push_str(r#"<section aria-labelledby="h-votes"><h2 id="h-votes">Votes</h2>"#);
    let votes = s("signed_votes").as_array().cloned().unwrap_or_default();
    if votes.is_empty() {
        body.push_str("<p>No votes yet.</p>");
    } else {
        body.push_str(r#"<table id="votes"><thead><tr><th scope="col">Approver</th><th scope="col">Vote</th><th scope="col">MFA verified at</th><th scope="col">Key id</th><th scope="col">Signature valid</th></tr></thead><tbody>"#);
        for v in &votes {
            let g = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
            let mfa_at = v
                .get("mfa")
                .and_then(|m| m.get("verified_at"))
                .and_then(Value::as_i64)
                .map(crate::identity::rfc3339)
                .unwrap_or_default();
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                opt(&g("approver")),
                opt(&g("verdict")),
                esc(&mfa_at),
                opt(&g("key_id")),
                opt(&g("signature_valid")),
            ));
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("</section>");
    if s("state").as_str() == Some("pending") {
        body.push_str(&format!(
            r#"<section aria-labelledby="h-decide"><h2 id="h-decide">Decide</h2>
<form method="post" action="/ui/approvals/{id}/vote">
<input type="hidden" name="csrf" value="{csrf}">
<label for="reason">Reason (required to deny, and for two-person approvals)</label>
<textarea id="reason" name="reason" rows="3" cols="60" maxlength="2000"></textarea>
<label for="step-up">One-time code (step-up; may be left empty if you logged in or verified a code in the last 5 minutes)</label>
<input id="step-up" name="totp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{{6}}">
<p><button type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="deny">Deny</button></p>
</form></section>"#,
            id = esc(id),
            csrf = esc(csrf)
        ));
    }
    body
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
    let csrf = cookie(&headers, CSRF_COOKIE)
        .unwrap_or_default()
        .to_string();
    match detail(&state, &id).await {
        Ok(Some(d)) => page(
            &format!("Approval request {id}"),
            Some(&who),
            &csrf,
            &render_detail(&d, &csrf, &id, None),
        ),
        Ok(None) => with_status(
            page(
                "Not found",
                Some(&who),
                &csrf,
                "<p>No such approval request.</p>",
            ),
            StatusCode::NOT_FOUND,
        ),
        Err(e) => with_status(
            page(
                "Error",
                Some(&who),
                &csrf,
                &format!(
                    r#"<p class="error" role="alert">{}</p>"#,
                    esc(&e.external.clone())
                ),
            ),
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
                page(
                    "Bad request",
                    None,
                    "",
                    &format!(
                        r#"<p class="error" role="alert">{}</p>"#,
                        esc(&e.to_string())
                    ),
                ),
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
                    &format!(
                        r#"<p class="error" role="alert">{}</p><p><a href="/ui/login">Log in again</a></p>"#,
                        esc(&e.external.clone())
                    ),
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
                    "<p>Choose approve or deny.</p>",
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
    let csrf = cookie(&headers, CSRF_COOKIE)
        .unwrap_or_default()
        .to_string();
    let (message, status) = match &result {
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
                &render_detail(&d, &csrf, &id, Some((&message, result.is_ok()))),
            ),
            status,
        ),
        _ => with_status(
            page(
                "Not found",
                Some(&who),
                &csrf,
                &format!("<p>{}</p>", esc(&message)),
            ),
            StatusCode::NOT_FOUND,
        ),
    }
}

fn verdict_word(v: Verdict2) -> &'static str {
    match v {
        Verdict2::Approve => "approve",
        Verdict2::Deny => "deny",
    }
}
