//! People: enrolment, login with password + TOTP, sessions, step-up, break-glass.
//!
//! The approval UI and any admin API log people in through this module:
//! - [`login`] checks a password (Argon2id) and a TOTP code (RFC 6238, ±1 step, each step
//!   accepted once per user) and opens a session;
//! - [`HumanSession`] is an axum extractor: it checks the session cookie (idle and absolute
//!   time-outs) and, for state-changing methods, the CSRF token in the `X-CSRF-Token`
//!   header; it yields the user, the role and the time of the last TOTP verification;
//! - [`step_up`] re-verifies a TOTP code inside a session (for approvals);
//! - a `Authorization: Bearer wdn_bg_…` break-glass credential passes as an admin, raising a
//!   high-severity alert record on every use.
//!
//! MFA cannot be turned off for admins and approvers: they are enrolled with TOTP and a login
//! without a valid code is refused. Repeated failures lock the account with doubling back-off.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::RngCore;
use serde::Deserialize;
use serde_json::json;
use warden_core::identity::{
    credential_hash, hashes_equal, otpauth_uri, parse_credential, totp_step, verify_totp,
    CredentialKind,
};
use warden_core::ledger::IdentityEvent;
use warden_store::{Ledger, SessionRow, UserRow};

use crate::error::{ApiError, Fault};
use crate::identity::{append, check_break_glass, hash_password, new_credential, verify_password};
use crate::secrets::{get_sealed, put_sealed, MasterKey, SecretError};
use crate::state::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "warden_session";
/// The header that must carry the CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A person's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Approver,
    Auditor,
    Owner,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "approver" => Some(Self::Approver),
            "auditor" => Some(Self::Auditor),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Approver => "approver",
            Self::Auditor => "auditor",
            Self::Owner => "owner",
        }
    }

    /// Admins and approvers always need a second factor.
    pub fn requires_mfa(self) -> bool {
        matches!(self, Self::Admin | Self::Approver)
    }
}

/// The store name of a user's sealed TOTP seed.
fn totp_name(user: &str) -> String {
    format!("totp/{user}")
}

/// What `warden user add` prints once.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub password: String,
    /// `None` when the user was added without MFA (auditor or owner only).
    pub otpauth_uri: Option<String>,
}

/// Why a user could not be added.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user names may use letters, digits, `-`, `_`, `.` and `@` only (1 to 64)")]
    BadName,
    #[error("a user `{0}` already exists")]
    Exists(String),
    #[error("MFA cannot be turned off for the {0} role")]
    MfaRequired(&'static str),
    #[error("the password must have at least 12 characters")]
    WeakPassword,
    #[error("no enabled user `{0}`")]
    NoSuchUser(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    #[error(transparent)]
    Store(#[from] warden_store::StoreError),
}

fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

/// A generated password: 20 characters from a 57-letter alphabet without look-alikes (~116 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(20);
    while out.len() < 20 {
        let mut b = [0u8; 1];
        rand::rngs::OsRng.fill_bytes(&mut b);
        // Rejection sampling keeps the choice uniform.
        let v = usize::from(b[0] & 0x3f);
        if let Some(c) = ALPHABET.get(v) {
            out.push(char::from(*c));
        }
    }
    out
}

/// Enrol a person: password (given or generated) stored as Argon2id, TOTP seed sealed under
/// the master key. Records `user_added` and, with MFA, `mfa_enrolled`.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site per front end; a struct would only rename the arguments"
)]
pub async fn add_user(
    ledger: &Ledger,
    key: &MasterKey,
    name: &str,
    role: Role,
    password: Option<String>,
    mfa: bool,
    actor: &str,
    now: i64,
) -> Result<Enrollment, UserError> {
    if !valid_user_name(name) {
        return Err(UserError::BadName);
    }
    if !mfa && role.requires_mfa() {
        return Err(UserError::MfaRequired(role.as_str()));
    }
    if ledger.user(name).await?.is_some() {
        return Err(UserError::Exists(name.to_string()));
    }
    let password = match password {
        Some(p) if p.chars().count() < 12 => return Err(UserError::WeakPassword),
        Some(p) => p,
        None => generate_password(),
    };
    let password_hash = hash_password(&password)?;
    let mut uri = None;
    if mfa {
        let mut seed = [0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        put_sealed(ledger, key, &totp_name(name), &seed, now).await?;
        uri = Some(otpauth_uri("Warden", name, &seed));
    }
    append(
        ledger,
        IdentityEvent {
            action: "user_added".into(),
            actor: actor.to_string(),
            subject: name.to_string(),
            severity: "info".into(),
            break_glass: false,
            details: json!({"role": role.as_str(), "mfa": mfa, "password": "argon2id"}),
        },
    )
    .await?;
    ledger
        .insert_user(&UserRow {
            name: name.to_string(),
            role: role.as_str().to_string(),
            password_hash,
            mfa,
            disabled: false,
            failed_logins: 0,
            locked_until: 0,
            last_totp_step: None,
            created_at: now,
        })
        .await?;
    if mfa {
        append(
            ledger,
            IdentityEvent {
                action: "mfa_enrolled".into(),
                actor: actor.to_string(),
                subject: name.to_string(),
                severity: "info".into(),
                break_glass: false,
                details: json!({"method": "totp", "rfc": 6238, "digits": 6, "period": 30, "master_key_id": key.id()}),
            },
        )
        .await?;
    }
    Ok(Enrollment {
        password,
        otpauth_uri: uri,
    })
}

/// Disable a user and end their sessions.
pub async fn disable_user(
    ledger: &Ledger,
    name: &str,
    actor: &str,
    now: i64,
) -> Result<(), UserError> {
    if !ledger.disable_user(name, now).await? {
        return Err(UserError::NoSuchUser(name.to_string()));
    }
    append(
        ledger,
        IdentityEvent {
            action: "user_disabled".into(),
            actor: actor.to_string(),
            subject: name.to_string(),
            severity: "info".into(),
            break_glass: false,
            details: json!({}),
        },
    )
    .await?;
    Ok(())
}

/// Check a TOTP code for a user and consume its step (so it cannot be used again). `Ok(true)`
/// when accepted. Used by login, step-up and sign-offs on the command line.
pub async fn check_totp(
    ledger: &Ledger,
    key: &MasterKey,
    user: &str,
    code: &str,
    now: i64,
) -> Result<bool, UserError> {
    let Some(row) = ledger.user(user).await? else {
        return Ok(false);
    };
    let seed = get_sealed(ledger, key, &totp_name(user)).await?;
    let last = row.last_totp_step.and_then(|s| u64::try_from(s).ok());
    let now = u64::try_from(now).unwrap_or(0);
    let Some(step) = verify_totp(&seed, code, now, last) else {
        return Ok(false);
    };
    Ok(ledger
        .use_totp_step(user, i64::try_from(step).unwrap_or(i64::MAX))
        .await?)
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

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
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
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        let Some(id) = check_break_glass(&state.ledger, bearer.trim())
            .await
            .map_err(unavailable)?
        else {
            return Err(no_session());
        };
        break_glass_alert(&state.ledger, &id, "bearer")
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
    let presented = cookie_value(headers, SESSION_COOKIE).ok_or_else(no_session)?;
    let parsed = parse_credential(presented).filter(|c| c.kind == CredentialKind::Session);
    let row = match &parsed {
        Some(c) => state.ledger.session(c.id).await.map_err(unavailable)?,
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
                .ledger
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
            .ledger
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
        .ledger
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

/// Re-verify a TOTP code inside a session (step-up before an approval). Returns the time of
/// verification, which the caller can bind to what it authorises.
pub async fn step_up(
    state: &AppState,
    session: &HumanSession,
    code: &str,
) -> Result<i64, ApiError> {
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "mfa_failed",
            "the one-time code is wrong, expired or already used",
            Fault::Agent,
        )
    };
    let Some(sid) = &session.session_id else {
        return Err(refused());
    };
    let Some(key) = state.master_key.as_deref() else {
        return Err(ApiError::ledger_unavailable(
            "no master key: TOTP seeds cannot be read",
        ));
    };
    let now = state.now();
    let ok = check_totp(&state.ledger, key, &session.user, code, now)
        .await
        .map_err(|e| ApiError::ledger_unavailable(e.to_string()))?;
    let unavailable = |e: warden_store::StoreError| ApiError::ledger_unavailable(e.to_string());
    append(
        &state.ledger,
        IdentityEvent {
            action: if ok { "step_up" } else { "step_up_failed" }.into(),
            actor: session.user.clone(),
            subject: session.user.clone(),
            severity: "info".into(),
            break_glass: session.break_glass,
            details: json!({"session_id": sid}),
        },
    )
    .await
    .map_err(unavailable)?;
    if !ok {
        return Err(refused());
    }
    state
        .ledger
        .session_totp_verified(sid, now)
        .await
        .map_err(unavailable)?;
    Ok(now)
}

async fn break_glass_alert(
    ledger: &Ledger,
    id: &str,
    how: &str,
) -> Result<(), warden_store::StoreError> {
    append(
        ledger,
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

// ---- HTTP handlers ----------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    user: Option<String>,
    password: Option<String>,
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

/// A new session for `user`: (cookie value, CSRF token, session id).
async fn open_session(
    ledger: &Ledger,
    user: &str,
    now: i64,
    totp_at: Option<i64>,
    break_glass: bool,
) -> Result<(String, String, String), warden_store::StoreError> {
    let (cookie, id) = new_credential(CredentialKind::Session);
    let mut csrf = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut csrf);
    let csrf = hex::encode(csrf);
    ledger
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

fn session_response(
    state: &AppState,
    cookie: &str,
    csrf: &str,
    user: &str,
    role: Role,
    break_glass: bool,
) -> Response {
    let cfg = state.identity_config();
    let set = format!(
        "{SESSION_COOKIE}={cookie}; Path=/; Max-Age={}; Secure; HttpOnly; SameSite=Strict",
        cfg.session_absolute_secs
    );
    let mut resp = Json(json!({
        "user": user,
        "role": role.as_str(),
        "break_glass": break_glass,
        "csrf_token": csrf,
        "csrf_header": "X-CSRF-Token",
        "idle_timeout_secs": cfg.session_idle_secs,
        "absolute_timeout_secs": cfg.session_absolute_secs,
    }))
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&set) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `POST /v1/login`.
pub(crate) async fn login_handler(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: LoginBody = serde_json::from_slice(&body).map_err(|_| {
        ApiError::bad_request(
            "the body must be JSON: {\"user\", \"password\", \"totp\"} or {\"break_glass\"}",
        )
    })?;
    let unavailable = |e: warden_store::StoreError| ApiError::ledger_unavailable(e.to_string());
    let now = state.now();
    if let Some(bg) = &req.break_glass {
        let Some(id) = check_break_glass(&state.ledger, bg.trim())
            .await
            .map_err(unavailable)?
        else {
            append(
                &state.ledger,
                IdentityEvent {
                    action: "login_failed".into(),
                    actor: "break-glass".into(),
                    subject: "admin".into(),
                    severity: "high".into(),
                    break_glass: true,
                    details: json!({"reason": "break-glass credential not valid"}),
                },
            )
            .await
            .map_err(unavailable)?;
            return Err(invalid_credentials());
        };
        break_glass_alert(&state.ledger, &id, "login")
            .await
            .map_err(unavailable)?;
        let user = format!("break-glass:{id}");
        let (cookie, csrf, _) = open_session(&state.ledger, &user, now, None, true)
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
    match login(&state, &name, &password, req.totp.as_deref(), now).await? {
        Ok(role) => {
            let (cookie, csrf, sid) = open_session(&state.ledger, &name, now, Some(now), false)
                .await
                .map_err(unavailable)?;
            append(
                &state.ledger,
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
/// already counted and recorded with its reason (the caller answers generically).
async fn login(
    state: &AppState,
    name: &str,
    password: &str,
    totp: Option<&str>,
    now: i64,
) -> Result<Result<Role, ()>, ApiError> {
    let unavailable = |e: warden_store::StoreError| ApiError::ledger_unavailable(e.to_string());
    let user = state.ledger.user(name).await.map_err(unavailable)?;
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    let pw = password.to_string();
    // Argon2id off the async threads; an unknown user costs the same as a known one.
    let password_ok = tokio::task::spawn_blocking(move || verify_password(&pw, phc.as_deref()))
        .await
        .unwrap_or(false);
    let failure: Option<&str> = match &user {
        None => Some("unknown user"),
        Some(u) if u.disabled => Some("user disabled"),
        Some(u) if u.locked_until > now => Some("account locked"),
        Some(_) if !password_ok => Some("wrong password"),
        Some(u) => {
            let role = Role::parse(&u.role);
            match (role, u.mfa, totp) {
                (None, _, _) => Some("unknown role"),
                (Some(r), false, _) if r.requires_mfa() => {
                    Some("role requires MFA but none is enrolled")
                }
                (Some(_), false, _) => None,
                (Some(_), true, None) => Some("one-time code missing"),
                (Some(_), true, Some(code)) => {
                    let Some(key) = state.master_key.as_deref() else {
                        return Err(ApiError::ledger_unavailable("no master key: TOTP seeds cannot be read, so nobody can log in (fail closed)"));
                    };
                    match check_totp(&state.ledger, key, name, code, now).await {
                        Ok(true) => None,
                        Ok(false) => Some("one-time code wrong or already used"),
                        Err(e) => return Err(ApiError::ledger_unavailable(e.to_string())),
                    }
                }
            }
        }
    };
    let Some(reason) = failure else {
        state
            .ledger
            .record_login_success(name)
            .await
            .map_err(unavailable)?;
        let role = user
            .and_then(|u| Role::parse(&u.role))
            .ok_or_else(invalid_credentials)?;
        return Ok(Ok(role));
    };
    let mut details = serde_json::Map::new();
    details.insert("reason".into(), json!(reason));
    let mut severity = "info";
    if let Some(u) = &user {
        if reason != "account locked" {
            let failed = u.failed_logins.saturating_add(1);
            let max = state.identity_config().max_failed_logins;
            let mut locked_until = u.locked_until;
            if failed >= max {
                // 30 s, doubling with each further failure, at most an hour.
                let extra = (failed - max).min(7);
                let secs = (30i64 << extra).min(3600);
                locked_until = now + secs;
                severity = "high";
                details.insert("locked_for_secs".into(), json!(secs));
            }
            state
                .ledger
                .record_login_failure(name, failed, locked_until)
                .await
                .map_err(unavailable)?;
            details.insert("failed_in_a_row".into(), json!(failed));
        }
    }
    append(
        &state.ledger,
        IdentityEvent {
            action: "login_failed".into(),
            actor: name.to_string(),
            subject: name.to_string(),
            severity: severity.into(),
            break_glass: false,
            details: serde_json::Value::Object(details),
        },
    )
    .await
    .map_err(unavailable)?;
    Ok(Err(()))
}

/// `POST /v1/logout` (needs the CSRF token).
pub(crate) async fn logout_handler(
    State(state): State<AppState>,
    session: HumanSession,
) -> Result<Response, ApiError> {
    if let Some(sid) = &session.session_id {
        let now = state.now();
        state
            .ledger
            .end_session(sid, now)
            .await
            .map_err(|e| ApiError::ledger_unavailable(e.to_string()))?;
        append(
            &state.ledger,
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
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict"
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// `GET /v1/session`: who is logged in.
pub(crate) async fn whoami_handler(session: HumanSession) -> Response {
    Json(json!({
        "user": session.user,
        "role": session.role.as_str(),
        "break_glass": session.break_glass,
        "totp_verified_at": session.totp_verified_at.map(crate::identity::rfc3339),
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepUpBody {
    totp: String,
}

/// `POST /v1/session/step-up`: verify a fresh TOTP code in this session.
pub(crate) async fn step_up_handler(
    State(state): State<AppState>,
    session: HumanSession,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: StepUpBody = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("the body must be JSON: {\"totp\": \"123456\"}"))?;
    let at = step_up(&state, &session, &req.totp).await?;
    Ok(Json(json!({"totp_verified_at": crate::identity::rfc3339(at)})).into_response())
}

/// The RFC 6238 step of a time (re-exported for callers that bind approvals to a step).
pub fn current_totp_step(unix: i64) -> u64 {
    totp_step(u64::try_from(unix).unwrap_or(0))
}
