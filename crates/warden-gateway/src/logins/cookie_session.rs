//! Cookie sessions: the [`HumanSession`] extractor (session cookie, CSRF header, time-outs,
//! or a break-glass bearer) and the cookies that open and end a session.
//!
//! Cookies are read and written with `axum-extra`'s `CookieJar` (the `cookie` crate): every
//! cookie Warden sets is `Secure; HttpOnly; SameSite=Strict` with an explicit path.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use rand::RngCore;
use serde_json::json;
use warden_core::identity::{credential_hash, hashes_equal, parse_credential, CredentialKind};
use warden_core::ledger::IdentityEvent;
use warden_store::{SessionRow, Store};

use super::Role;
use crate::error::{ApiError, Fault};
use crate::identity::{append, check_break_glass, new_credential};
use crate::state::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "warden_session";
/// The header that must carry the CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A cookie as Warden sets all of its cookies: `Secure; HttpOnly; SameSite=Strict`, with a
/// path and, when given, a `Max-Age` in seconds.
pub(crate) struct SecureCookie<'a> {
    pub name: &'static str,
    pub value: String,
    pub path: &'a str,
    pub max_age_secs: Option<i64>,
}

impl SecureCookie<'_> {
    pub(crate) fn build(self) -> Cookie<'static> {
        let mut c = Cookie::build((self.name, self.value))
            .path(self.path.to_string())
            .secure(true)
            .http_only(true)
            .same_site(SameSite::Strict);
        if let Some(secs) = self.max_age_secs {
            c = c.max_age(time::Duration::seconds(secs));
        }
        c.build()
    }
}

/// The session cookie: the credential, for the whole site, for the session's absolute life.
fn session_cookie(value: &str, max_age_secs: u64) -> Cookie<'static> {
    SecureCookie {
        name: SESSION_COOKIE,
        value: value.to_string(),
        path: "/",
        max_age_secs: Some(i64::try_from(max_age_secs).unwrap_or(i64::MAX)),
    }
    .build()
}

/// The session cookie emptied, for the browser to drop at once (`Max-Age=0`). The jar's own
/// `remove` would add an `Expires` in the past as well; this keeps the attributes as they were.
pub(crate) fn ended_session_cookie() -> Cookie<'static> {
    SecureCookie {
        name: SESSION_COOKIE,
        value: String::new(),
        path: "/",
        max_age_secs: Some(0),
    }
    .build()
}

/// A logged-in person, as an extractor for handlers (`async fn h(session: HumanSession)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanSession {
    pub user: String,
    pub role: Role,
    /// Public id of the session (`None` for a break-glass bearer).
    pub session_id: Option<String>,
    /// Unix seconds of the last TOTP verification (login or step-up).
    pub totp_verified_at: Option<i64>,
    /// True when this identity is the break-glass credential: every record it causes says so.
    pub break_glass: bool,
}

impl HumanSession {
    /// The actor name for ledger records.
    pub fn actor(&self) -> String {
        self.user.clone()
    }
}

/// The generic refusal for a missing, expired or forged session.
fn no_session() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "no_session",
        "log in first (POST /v1/login); the session is missing, expired or invalid",
        Fault::Agent,
    )
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Check the session of a request (cookie; CSRF header for state-changing methods; idle and
/// absolute time-outs), or a break-glass bearer. Touches the session's idle timer.
pub async fn require_session(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
) -> Result<HumanSession, ApiError> {
    let unavailable = |e: warden_store::StoreError| ApiError::ledger_unavailable(e.to_string());
    if let Some(bearer) = crate::auth::bearer(headers) {
        let Some(id) = check_break_glass(&state.store, bearer.trim())
            .await
            .map_err(unavailable)?
        else {
            return Err(no_session());
        };
        break_glass_alert(&state.store, &id, "bearer")
            .await
            .map_err(unavailable)?;
        return Ok(HumanSession {
            user: format!("break-glass:{id}"),
            role: Role::Admin,
            session_id: None,
            totp_verified_at: None,
            break_glass: true,
        });
    }
    let jar = CookieJar::from_headers(headers);
    let presented = jar
        .get(SESSION_COOKIE)
        .map(Cookie::value)
        .ok_or_else(no_session)?;
    let parsed = parse_credential(presented).filter(|c| c.kind == CredentialKind::Session);
    let row = match &parsed {
        Some(c) => state
            .store
            .identities()
            .session(c.id)
            .await
            .map_err(unavailable)?,
        None => None,
    };
    let stored = row
        .as_ref()
        .and_then(|r| <[u8; 32]>::try_from(r.hash.as_slice()).ok())
        .unwrap_or([0u8; 32]);
    let ok = hashes_equal(&stored, &credential_hash(presented));
    let now = state.now();
    let cfg = state.identity_config();
    let Some(row) = row.filter(|_| ok) else {
        return Err(no_session());
    };
    let idle = i64::try_from(cfg.session_idle_secs).unwrap_or(i64::MAX);
    let absolute = i64::try_from(cfg.session_absolute_secs).unwrap_or(i64::MAX);
    if row.ended_at.is_some()
        || now.saturating_sub(row.last_seen) > idle
        || now.saturating_sub(row.created_at) > absolute
    {
        if row.ended_at.is_none() {
            state
                .store
                .identities()
                .end_session(&row.id, now)
                .await
                .map_err(unavailable)?;
        }
        return Err(no_session());
    }
    if is_state_changing(method) {
        let csrf = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let want = <[u8; 32]>::try_from(row.csrf_hash.as_slice()).unwrap_or([0u8; 32]);
        if !hashes_equal(&want, &credential_hash(csrf)) || csrf.is_empty() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "state-changing requests need the session's CSRF token in the X-CSRF-Token header (from the login response)",
                Fault::Agent,
            ));
        }
    }
    let user = if row.break_glass {
        None
    } else {
        state
            .store
            .identities()
            .user(&row.user_name)
            .await
            .map_err(unavailable)?
    };
    let role = match &user {
        Some(u) if !u.disabled => Role::parse(&u.role).ok_or_else(no_session)?,
        Some(_) => return Err(no_session()),
        None if row.break_glass => Role::Admin,
        None => return Err(no_session()),
    };
    state
        .store
        .identities()
        .touch_session(&row.id, now)
        .await
        .map_err(unavailable)?;
    Ok(HumanSession {
        user: row.user_name,
        role,
        session_id: Some(row.id),
        totp_verified_at: row.totp_at,
        break_glass: row.break_glass,
    })
}

impl FromRequestParts<AppState> for HumanSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        require_session(state, &parts.headers, &parts.method).await
    }
}

pub(super) async fn break_glass_alert(
    store: &Store,
    id: &str,
    how: &str,
) -> Result<(), warden_store::StoreError> {
    append(
        store,
        IdentityEvent {
            action: "break_glass_used".into(),
            actor: format!("break-glass:{id}"),
            subject: "admin".into(),
            severity: "high".into(),
            break_glass: true,
            details: json!({"alert": "break-glass credential used; rotate it with `warden user break-glass-seal` after the emergency", "via": how}),
        },
    )
    .await
}

/// A new session for `user`: (cookie value, CSRF token, session id).
pub(super) async fn open_session(
    store: &Store,
    user: &str,
    now: i64,
    totp_at: Option<i64>,
    break_glass: bool,
) -> Result<(String, String, String), warden_store::StoreError> {
    let (cookie, id) = new_credential(CredentialKind::Session);
    let mut csrf = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut csrf);
    let csrf = hex::encode(csrf);
    store
        .identities()
        .insert_session(&SessionRow {
            id: id.clone(),
            hash: credential_hash(&cookie).to_vec(),
            csrf_hash: credential_hash(&csrf).to_vec(),
            user_name: user.to_string(),
            created_at: now,
            last_seen: now,
            totp_at,
            break_glass,
            ended_at: None,
        })
        .await?;
    Ok((cookie, csrf, id))
}

pub(super) fn session_response(
    state: &AppState,
    cookie: &str,
    csrf: &str,
    user: &str,
    role: Role,
    break_glass: bool,
) -> Response {
    let cfg = state.identity_config();
    let jar = CookieJar::new().add(session_cookie(cookie, cfg.session_absolute_secs));
    (
        jar,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(json!({
            "user": user,
            "role": role.as_str(),
            "break_glass": break_glass,
            "csrf_token": csrf,
            "csrf_header": "X-CSRF-Token",
            "idle_timeout_secs": cfg.session_idle_secs,
            "absolute_timeout_secs": cfg.session_absolute_secs,
        })),
    )
        .into_response()
}
