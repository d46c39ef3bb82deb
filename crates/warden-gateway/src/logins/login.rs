//! `POST /v1/login` (password + TOTP, or the break-glass credential), `POST /v1/logout` and
//! `GET /v1/session`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::json;
use warden_core::ledger::IdentityEvent;
use warden_store::Attempt;

use super::cookie_session::{
    break_glass_alert, ended_session_cookie, open_session, session_response,
};
use super::users::check_totp;
use super::{HumanSession, Role};
use crate::abuse::ClientAddr;
use crate::error::{ApiError, Fault};
use crate::identity::{append, check_break_glass};
use crate::state::AppState;

/// A login: `user`, `password` and `totp` (the code of the person's authenticator), or
/// `break_glass` alone.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    user: Option<String>,
    password: Option<String>,
    /// The current TOTP code (RFC 6238, 6 digits).
    totp: Option<String>,
    /// The sealed break-glass credential instead of user, password and code.
    break_glass: Option<String>,
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "login failed: the user name, password or one-time code is wrong or missing, or the account is locked after repeated failures (wait and retry)",
        Fault::Agent,
    )
}

/// `POST /v1/login`.
#[utoipa::path(
    post,
    path = "/v1/login",
    operation_id = "login",
    tag = "logins",
    security(()),
    summary = "Log a person in with password and TOTP code (or the break-glass credential)",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Session opened: `Set-Cookie: warden_session` (Secure, HttpOnly, SameSite=Strict); the body carries the CSRF token for the `X-CSRF-Token` header",
            headers(("Set-Cookie" = String, description = "The session cookie")),
            body = crate::openapi::schemas::SessionOpened),
        (status = 400, description = "The body is not the JSON this endpoint takes", body = crate::openapi::schemas::ErrorBody),
        (status = 401, description = "Login failed (one answer for every cause)", body = crate::openapi::schemas::ErrorBody),
        (status = 429, description = "Too many failed sign-ins from this address (`rate_limited`); retry after the time the message gives", body = crate::openapi::schemas::ErrorBody),
        (status = 503, description = "The ledger could not record the login, no master key is loaded, or too many sign-ins are being checked at once (`busy`; retry)", body = crate::openapi::schemas::ErrorBody)
    )
)]
pub(crate) async fn login_handler(
    State(state): State<AppState>,
    from: ClientAddr,
    body: Bytes,
) -> Result<Response, ApiError> {
    crate::logins::throttle::admit(&state, from, "login").await?;
    let req: LoginBody = serde_json::from_slice(&body).map_err(|_| {
        ApiError::bad_request(
            "the body must be JSON: {\"user\", \"password\", \"totp\"} or {\"break_glass\"}",
        )
    })?;
    let unavailable = |e: warden_store::StoreError| ApiError::ledger_unavailable(e.to_string());
    let now = state.now();
    if let Some(bg) = &req.break_glass {
        let Some(id) = check_break_glass(&state.store, bg.trim())
            .await
            .map_err(unavailable)?
        else {
            state.abuse.failed(from.0);
            let details = json!({"reason": "break-glass credential not valid"});
            if let Some(details) = crate::logins::throttle::budgeted(&state, details) {
                append(
                    &state.store,
                    IdentityEvent {
                        action: "login_failed".into(),
                        actor: "break-glass".into(),
                        subject: "admin".into(),
                        severity: "high".into(),
                        break_glass: true,
                        details,
                    },
                )
                .await
                .map_err(unavailable)?;
            }
            return Err(invalid_credentials());
        };
        break_glass_alert(&state.store, &id, "login")
            .await
            .map_err(unavailable)?;
        let user = format!("break-glass:{id}");
        let (cookie, csrf, _) = open_session(&state.store, &user, now, None, true)
            .await
            .map_err(unavailable)?;
        return Ok(session_response(
            &state,
            &cookie,
            &csrf,
            &user,
            Role::Admin,
            true,
        ));
    }
    let name: String = req
        .user
        .clone()
        .unwrap_or_default()
        .chars()
        .take(64)
        .collect();
    let password = req.password.clone().unwrap_or_default();
    match login(&state, &name, &password, req.totp.as_deref(), now, from).await? {
        Ok(role) => {
            let (cookie, csrf, sid) = open_session(&state.store, &name, now, Some(now), false)
                .await
                .map_err(unavailable)?;
            append(
                &state.store,
                IdentityEvent {
                    action: "login".into(),
                    actor: name.clone(),
                    subject: name.clone(),
                    severity: "info".into(),
                    break_glass: false,
                    details: json!({"session_id": sid, "mfa": true, "role": role.as_str()}),
                },
            )
            .await
            .map_err(unavailable)?;
            Ok(session_response(&state, &cookie, &csrf, &name, role, false))
        }
        Err(()) => Err(invalid_credentials()),
    }
}

/// Check a password and TOTP code. `Ok(Ok(role))` on success; `Ok(Err(()))` on any failure,
/// already counted (against the person and the client's address) and recorded with its reason
/// (the caller answers generically).
async fn login(
    state: &AppState,
    name: &str,
    password: &str,
    totp: Option<&str>,
    now: i64,
    from: ClientAddr,
) -> Result<Result<Role, ()>, ApiError> {
    let unavailable = |e: warden_store::StoreError| ApiError::ledger_unavailable(e.to_string());
    let user = state
        .store
        .identities()
        .user(name)
        .await
        .map_err(unavailable)?;
    // Counted before the hash runs, atomically, so concurrent guesses cannot slip past the
    // lock-out (see `IdentityStore::begin_attempt`).
    let max = state.identity_config().max_failed_logins;
    let attempt = match &user {
        Some(_) => state
            .store
            .identities()
            .begin_attempt(name, now, max)
            .await
            .map_err(unavailable)?,
        None => Attempt::Unknown,
    };
    let failure: Option<&str> = match (&user, attempt) {
        (_, Attempt::Locked(_)) => Some("account locked"),
        _ => {
            // Argon2id off the async threads, bounded in number and memory; an unknown user
            // costs the same as a known one.
            let phc = user.as_ref().map(|u| u.password_hash.clone());
            let password_ok = state
                .passwords
                .verify(password.to_string(), phc)
                .await
                .map_err(|_| ApiError::busy())?;
            match &user {
                None => Some("unknown user"),
                Some(u) if u.disabled => Some("user disabled"),
                Some(_) if !password_ok => Some("wrong password"),
                Some(u) => second_factor(state, name, u, totp, now).await?.err(),
            }
        }
    };
    let Some(reason) = failure else {
        state
            .store
            .identities()
            .record_login_success(name)
            .await
            .map_err(unavailable)?;
        let role = user
            .and_then(|u| Role::parse(&u.role))
            .ok_or_else(invalid_credentials)?;
        return Ok(Ok(role));
    };
    state.abuse.failed(from.0);
    let mut details = serde_json::Map::new();
    details.insert("reason".into(), json!(reason));
    let mut severity = "info";
    let locked_now = match attempt {
        Attempt::Counted {
            failed,
            locked_until,
        } => {
            details.insert("failed_in_a_row".into(), json!(failed));
            if locked_until > now {
                severity = "high";
                details.insert("locked_for_secs".into(), json!(locked_until - now));
            }
            locked_until > now
        }
        // The lock was recorded when it was set; refusals while it lasts are not.
        Attempt::Locked(_) => return Ok(Err(())),
        Attempt::Unknown => false,
    };
    // A lock is always recorded (at most one per person per lock-out); other failures anyone
    // can cause share the ledger budget.
    let mut details = serde_json::Value::Object(details);
    if !locked_now {
        match crate::logins::throttle::budgeted(state, details) {
            Some(d) => details = d,
            None => return Ok(Err(())),
        }
    }
    append(
        &state.store,
        IdentityEvent {
            action: "login_failed".into(),
            actor: name.to_string(),
            subject: name.to_string(),
            severity: severity.into(),
            break_glass: false,
            details,
        },
    )
    .await
    .map_err(unavailable)?;
    Ok(Err(()))
}

/// The role and the one-time code of a person whose password was right.
async fn second_factor(
    state: &AppState,
    name: &str,
    u: &warden_store::UserRow,
    totp: Option<&str>,
    now: i64,
) -> Result<Result<(), &'static str>, ApiError> {
    let role = Role::parse(&u.role);
    Ok(match (role, u.mfa, totp) {
        (None, _, _) => Err("unknown role"),
        (Some(r), false, _) if r.requires_mfa() => Err("role requires MFA but none is enrolled"),
        (Some(_), false, _) => Ok(()),
        (Some(_), true, None) => Err("one-time code missing"),
        (Some(_), true, Some(code)) => {
            let Some(key) = state.master_key.as_deref() else {
                return Err(ApiError::ledger_unavailable(
                    "no master key: TOTP seeds cannot be read, so nobody can log in (fail closed)",
                ));
            };
            match check_totp(&state.store, key, name, code, now).await {
                Ok(true) => Ok(()),
                Ok(false) => Err("one-time code wrong or already used"),
                Err(e) => return Err(ApiError::ledger_unavailable(e.to_string())),
            }
        }
    })
}

/// `POST /v1/logout` (needs the CSRF token).
#[utoipa::path(
    post,
    path = "/v1/logout",
    operation_id = "logout",
    tag = "logins",
    security(("session" = [], "csrfToken" = []), ("breakGlass" = [])),
    summary = "End the session",
    responses(
        (status = 204, description = "Ended; the cookie is cleared",
            headers(("Set-Cookie" = String, description = "The ended session cookie"))),
        (status = 401, description = "No session", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Missing or wrong CSRF token", body = crate::openapi::schemas::ErrorBody),
        (status = 503, description = "The ledger could not record the logout", body = crate::openapi::schemas::ErrorBody)
    )
)]
pub(crate) async fn logout_handler(
    State(state): State<AppState>,
    session: HumanSession,
) -> Result<Response, ApiError> {
    if let Some(sid) = &session.session_id {
        let now = state.now();
        state
            .store
            .identities()
            .end_session(sid, now)
            .await
            .map_err(|e| ApiError::ledger_unavailable(e.to_string()))?;
        append(
            &state.store,
            IdentityEvent {
                action: "logout".into(),
                actor: session.user.clone(),
                subject: session.user.clone(),
                severity: "info".into(),
                break_glass: session.break_glass,
                details: json!({"session_id": sid}),
            },
        )
        .await
        .map_err(|e| ApiError::ledger_unavailable(e.to_string()))?;
    }
    let jar = CookieJar::new().add(ended_session_cookie());
    Ok((jar, StatusCode::NO_CONTENT).into_response())
}

/// `GET /v1/session`: who is logged in.
#[utoipa::path(
    get,
    path = "/v1/session",
    operation_id = "whoami",
    tag = "logins",
    security(("session" = []), ("breakGlass" = [])),
    summary = "The logged-in person, role and time of the last TOTP verification",
    responses(
        (status = 200, description = "The session", body = crate::openapi::schemas::SessionInfo),
        (status = 401, description = "No session", body = crate::openapi::schemas::ErrorBody),
        (status = 503, description = "The ledger could not be read", body = crate::openapi::schemas::ErrorBody)
    )
)]
pub(crate) async fn whoami_handler(session: HumanSession) -> Response {
    Json(json!({
        "user": session.user,
        "role": session.role.as_str(),
        "break_glass": session.break_glass,
        "totp_verified_at": session.totp_verified_at.map(crate::identity::rfc3339),
    }))
    .into_response()
}
