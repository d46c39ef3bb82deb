//! HTTP routes for identity: `POST /oauth/token` (RFC 6749 §4.4 client credentials) and the
//! admin token API (`/v1/tokens`), which a logged-in admin or the break-glass credential uses.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use warden_core::identity::{parse_token_request, OAuthError};
use warden_core::ledger::IdentityEvent;

use crate::error::ApiError;
use crate::identity::{append, issue_token, revoke_token, rfc3339, IdentityError, TokenRequest};
use crate::logins::{HumanSession, Role};
use crate::state::AppState;

/// An RFC 6749 §5.2 error response: 400, or 401 with `WWW-Authenticate` for
/// `invalid_client` (401 also when the client tried HTTP Basic).
fn oauth_error(e: &OAuthError) -> Response {
    let status = if e.error == "invalid_client" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut resp = (
        status,
        Json(json!({"error": e.error, "error_description": e.description})),
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if status == StatusCode::UNAUTHORIZED {
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"warden\""),
        );
    }
    resp
}

/// `POST /oauth/token`.
#[utoipa::path(
    post,
    path = "/oauth/token",
    operation_id = "clientCredentialsToken",
    tag = "tokens",
    security(()),
    summary = "OAuth 2.0 client-credentials grant (RFC 6749 §4.4): a short-lived agent token",
    description = "Form-encoded body with `grant_type=client_credentials` and an optional `scope` (space-separated tool names of the agent's card). Client authentication by HTTP Basic or `client_id`/`client_secret` in the body, not both. Errors follow RFC 6749 §5.2.",
    request_body(content = crate::openapi::schemas::ClientCredentialsForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The token (`Cache-Control: no-store`)", body = crate::openapi::schemas::AccessToken),
        (status = 400, description = "invalid_request, unsupported_grant_type, invalid_scope, unauthorized_client", body = crate::openapi::schemas::OAuthErrorBody),
        (status = 401, description = "invalid_client (with `WWW-Authenticate: Basic`)", body = crate::openapi::schemas::OAuthErrorBody),
        (status = 421, description = "The client's agent keeps its records in another region", body = crate::openapi::schemas::ErrorBody),
        (status = 503, description = "The ledger could not be read or written, or too many client secrets are being checked at once (`busy`; retry)", body = crate::openapi::schemas::ErrorBody)
    )
)]
pub(crate) async fn token_endpoint(
    State(state): State<AppState>,
    from: crate::abuse::ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = crate::logins::throttle::admit(&state, from, "oauth_token").await {
        return e.into_response();
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let req = match parse_token_request(ct, auth, &body) {
        Ok(r) => r,
        Err(e) => return oauth_error(&e),
    };
    let failed = || OAuthError::new("invalid_client", "client authentication failed");
    let client = match state.store.identities().client(&req.client_id).await {
        Ok(c) => c,
        Err(e) => return ApiError::ledger_unavailable(e.to_string()).into_response(),
    };
    let phc = client
        .as_ref()
        .filter(|c| !c.disabled)
        .map(|c| c.secret_hash.clone());
    let ok = match state.passwords.verify(req.client_secret.clone(), phc).await {
        Ok(ok) => ok,
        Err(_) => return ApiError::busy().into_response(),
    };
    let Some(client) = client.filter(|_| ok) else {
        state.abuse.failed(from.0);
        let Some(details) = crate::logins::throttle::budgeted(&state, json!({})) else {
            return oauth_error(&failed());
        };
        let logged = append(
            &state.store,
            IdentityEvent {
                action: "client_auth_failed".into(),
                actor: format!(
                    "oauth:{}",
                    req.client_id.chars().take(128).collect::<String>()
                ),
                subject: "oauth".into(),
                severity: "info".into(),
                break_glass: false,
                details,
            },
        )
        .await;
        if let Err(e) = logged {
            return ApiError::ledger_unavailable(e.to_string()).into_response();
        }
        return oauth_error(&failed());
    };
    if let Err(e) = state.serves_agent(&client.agent) {
        return e.into_response();
    }
    let issued = issue_token(
        &state.store,
        &state.policy,
        &state.identity,
        TokenRequest {
            agent: &client.agent,
            ttl: None,
            tools: req.scope.clone(),
            issued_by: &format!("oauth:{}", client.client_id),
            break_glass: false,
            now: state.now(),
        },
    )
    .await;
    match issued {
        Ok(t) => {
            let expires_in = t.expires_at - state.now();
            let mut body = json!({
                "access_token": t.token,
                "token_type": "Bearer",
                "expires_in": expires_in,
            });
            if let (Some(tools), Some(obj)) = (&t.tools, body.as_object_mut()) {
                obj.insert("scope".into(), json!(tools.join(" ")));
            }
            let mut resp = Json(body).into_response();
            let h = resp.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            resp
        }
        Err(IdentityError::ToolNotOnCard { .. }) => oauth_error(&OAuthError::new(
            "invalid_scope",
            "the scope names a tool the agent's scope card does not grant",
        )),
        Err(IdentityError::UnknownAgent(_)) => oauth_error(&OAuthError::new(
            "unauthorized_client",
            "the client's agent has no scope card",
        )),
        Err(e) => ApiError::ledger_unavailable(e.to_string()).into_response(),
    }
}

fn forbidden(msg: &str) -> ApiError {
    ApiError::forbidden(msg)
}

/// A token to issue.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct IssueBody {
    /// The agent the token acts as; it must have a scope card.
    agent: String,
    /// Lifetime in seconds (default and maximum from `[identity]` in warden.toml).
    ttl_secs: Option<u64>,
    /// Limit the token to these tools of the card.
    tools: Option<Vec<String>>,
}

/// `POST /v1/tokens` (admin): issue a token; it is in this response only.
#[utoipa::path(
    post,
    path = "/v1/tokens",
    operation_id = "issueToken",
    tag = "tokens",
    security(("session" = [], "csrfToken" = []), ("breakGlass" = [])),
    summary = "Issue an agent token (admin); the secret is shown once",
    request_body = IssueBody,
    responses(
        (status = 200, description = "The token (`Cache-Control: no-store`)", body = crate::openapi::schemas::TokenIssued),
        (status = 400, description = "Malformed body, unknown agent, tool not on the card, TTL above the maximum", body = crate::openapi::schemas::ErrorBody),
        (status = 401, description = "No session", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin, or missing CSRF token", body = crate::openapi::schemas::ErrorBody),
        (status = 421, description = "The agent keeps its records in another region", body = crate::openapi::schemas::ErrorBody),
        (status = 503, description = "The ledger could not record the token", body = crate::openapi::schemas::ErrorBody)
    )
)]
pub(crate) async fn issue_handler(
    State(state): State<AppState>,
    session: HumanSession,
    body: Bytes,
) -> Result<Response, ApiError> {
    if session.role != Role::Admin {
        return Err(forbidden("only admins issue tokens"));
    }
    let req: IssueBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be {{\"agent\", \"ttl_secs\"?, \"tools\"?}}: {e}"
        ))
    })?;
    state.serves_agent(&req.agent)?;
    let t = issue_token(
        &state.store,
        &state.policy,
        &state.identity,
        TokenRequest {
            agent: &req.agent,
            ttl: req.ttl_secs,
            tools: req.tools,
            issued_by: &session.actor(),
            break_glass: session.break_glass,
            now: state.now(),
        },
    )
    .await
    .map_err(|e| match e {
        IdentityError::Store(s) => ApiError::ledger_unavailable(s.to_string()),
        other => ApiError::bad_request(other.to_string()),
    })?;
    let mut resp = Json(json!({
        "token": t.token,
        "id": t.id,
        "agent": t.agent,
        "environment": t.environment,
        "tools": t.tools,
        "expires_at": rfc3339(t.expires_at),
    }))
    .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `GET /v1/tokens` (admin, auditor): active tokens, without secrets.
#[utoipa::path(
    get,
    path = "/v1/tokens",
    operation_id = "listTokens",
    tag = "tokens",
    security(("session" = []), ("breakGlass" = [])),
    summary = "Active tokens, without secrets (admin, auditor)",
    responses(
        (status = 200, description = "The active tokens", body = crate::openapi::schemas::TokenList),
        (status = 401, description = "No session", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin or auditor", body = crate::openapi::schemas::ErrorBody),
        (status = 503, description = "The ledger could not be read", body = crate::openapi::schemas::ErrorBody)
    )
)]
pub(crate) async fn list_handler(
    State(state): State<AppState>,
    session: HumanSession,
) -> Result<Response, ApiError> {
    if !matches!(session.role, Role::Admin | Role::Auditor) {
        return Err(forbidden("only admins and auditors list tokens"));
    }
    let rows = state
        .store
        .identities()
        .tokens(state.now(), false)
        .await
        .map_err(|e| ApiError::ledger_unavailable(e.to_string()))?;
    let out: Vec<_> = rows
        .iter()
        .map(|t| {
            json!({"id": t.id, "agent": t.agent, "environment": t.environment, "tools": t.tools,
                   "issued_at": rfc3339(t.issued_at), "expires_at": rfc3339(t.expires_at), "issued_by": t.issued_by})
        })
        .collect();
    Ok(Json(json!({"tokens": out})).into_response())
}

/// `DELETE /v1/tokens/{id}` (admin): revoke; effective on the token's next call.
#[utoipa::path(
    delete,
    path = "/v1/tokens/{id}",
    operation_id = "revokeToken",
    tag = "tokens",
    security(("session" = [], "csrfToken" = []), ("breakGlass" = [])),
    summary = "Revoke a token (admin); its next call is refused",
    params(("id" = String, Path, description = "Token id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No session", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an admin, or missing CSRF token", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such active token", body = crate::openapi::schemas::ErrorBody),
        (status = 503, description = "The ledger could not record the revocation", body = crate::openapi::schemas::ErrorBody)
    )
)]
pub(crate) async fn revoke_handler(
    State(state): State<AppState>,
    session: HumanSession,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if session.role != Role::Admin {
        return Err(forbidden("only admins revoke tokens"));
    }
    revoke_token(
        &state.store,
        &id,
        &session.actor(),
        session.break_glass,
        state.now(),
    )
    .await
    .map_err(|e| match e {
        IdentityError::NoSuchToken(_) => ApiError::not_found(e.to_string()),
        IdentityError::Store(s) => ApiError::ledger_unavailable(s.to_string()),
        other => ApiError::bad_request(other.to_string()),
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
