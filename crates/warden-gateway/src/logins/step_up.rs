//! Step-up: a fresh TOTP code inside a session, before an approval.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use warden_core::identity::totp_step;
use warden_core::ledger::IdentityEvent;
use warden_store::Attempt;

use super::users::check_totp;
use super::HumanSession;
use crate::error::{ApiError, Fault};
use crate::identity::append;
use crate::state::AppState;

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
    let unavailable = |e: warden_store::StoreError| ApiError::ledger_unavailable(e.to_string());
    // Wrong codes count against the person like wrong passwords (the same lock-out), so a
    // stolen session cannot try the million codes; while locked, no code is checked.
    let max = state.identity_config().max_failed_logins;
    let attempt = state
        .store
        .identities()
        .begin_attempt(&session.user, now, max)
        .await
        .map_err(unavailable)?;
    let locked_until = match attempt {
        Attempt::Locked(until) => {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "mfa_locked",
                format!(
                    "too many wrong one-time codes: locked for another {} s",
                    until.saturating_sub(now)
                ),
                Fault::Agent,
            ))
        }
        Attempt::Counted { locked_until, .. } => locked_until,
        // A break-glass or removed person has no codes to check.
        Attempt::Unknown => return Err(refused()),
    };
    let ok = check_totp(&state.store, key, &session.user, code, now)
        .await
        .map_err(|e| ApiError::ledger_unavailable(e.to_string()))?;
    if ok {
        state
            .store
            .identities()
            .record_login_success(&session.user)
            .await
            .map_err(unavailable)?;
    }
    let mut details = serde_json::Map::new();
    details.insert("session_id".into(), json!(sid));
    if let (false, Attempt::Counted { failed, .. }) = (ok, attempt) {
        details.insert("failed_in_a_row".into(), json!(failed));
        if locked_until > now {
            details.insert("locked_for_secs".into(), json!(locked_until - now));
        }
    }
    let details = serde_json::Value::Object(details);
    append(
        &state.store,
        IdentityEvent {
            action: if ok { "step_up" } else { "step_up_failed" }.into(),
            actor: session.user.clone(),
            subject: session.user.clone(),
            severity: if !ok && locked_until > now {
                "high"
            } else {
                "info"
            }
            .into(),
            break_glass: session.break_glass,
            details,
        },
    )
    .await
    .map_err(unavailable)?;
    if !ok {
        return Err(refused());
    }
    state
        .store
        .identities()
        .session_totp_verified(sid, now)
        .await
        .map_err(unavailable)?;
    Ok(now)
}

/// A fresh TOTP code.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StepUpBody {
    totp: String,
}

/// `POST /v1/session/step-up`: verify a fresh TOTP code in this session.
#[utoipa::path(
    post,
    path = "/v1/session/step-up",
    operation_id = "stepUp",
    tag = "logins",
    security(("session" = [], "csrfToken" = [])),
    summary = "Verify a fresh TOTP code inside the session (before an approval)",
    request_body = StepUpBody,
    responses(
        (status = 200, description = "Verified", body = crate::openapi::schemas::SteppedUp),
        (status = 400, description = "The body is not the JSON this endpoint takes", body = crate::openapi::schemas::ErrorBody),
        (status = 401, description = "No session, or a wrong, expired or reused code", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Missing or wrong CSRF token", body = crate::openapi::schemas::ErrorBody),
        (status = 429, description = "Too many wrong codes: the person is locked out for a while (`mfa_locked`), like after wrong passwords", body = crate::openapi::schemas::ErrorBody),
        (status = 503, description = "The ledger could not record the step-up, or no master key is loaded", body = crate::openapi::schemas::ErrorBody)
    )
)]
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
