//! `/v1/approvals`: list, show, approve, deny, and the verifier key of vote signatures.

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use warden_core::approval::parse_vote_json;
use warden_store::ApprovalFilter;

use super::{approval_json, detail, reveal, sweep_expired, vote, Verdict2};
use crate::error::ApiError;
use crate::logins::HumanSession;
use crate::state::AppState;

// ---- HTTP -------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// `pending`, `approved`, `denied` or `expired`; empty for all.
    state: Option<String>,
    /// Only this agent's requests.
    agent: Option<String>,
    /// Only requests for this tool.
    tool: Option<String>,
    /// At most this many, newest first (default 100).
    limit: Option<u32>,
}

impl ListQuery {
    pub(crate) fn filter(&self) -> ApprovalFilter {
        let nonempty = |s: &Option<String>| s.clone().filter(|v| !v.is_empty());
        ApprovalFilter {
            state: nonempty(&self.state),
            agent: nonempty(&self.agent),
            tool: nonempty(&self.tool),
            limit: self.limit.unwrap_or(100),
        }
    }
}

/// `GET /v1/approvals?state=&agent=&tool=&limit=`.
#[utoipa::path(
    get,
    path = "/v1/approvals",
    operation_id = "listApprovals",
    tag = "approvals",
    security(("session" = []), ("breakGlass" = [])),
    summary = "Approval requests, newest first",
    params(ListQuery),
    responses(
        (status = 200, description = "The requests", body = crate::openapi::schemas::ApprovalList),
        (status = 400, description = "A malformed query", body = String),
        (status = 401, description = "No session", body = crate::openapi::schemas::ErrorBody),
        (status = 503, description = "The ledger could not be read", body = crate::openapi::schemas::ErrorBody)
    )
)]
pub(crate) async fn list_handler(
    State(state): State<AppState>,
    _who: HumanSession,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    sweep_expired(&state)
        .await
        .map_err(ApiError::store_unavailable)?;
    let rows = state
        .store
        .approvals()
        .list_approvals(&q.filter())
        .await
        .map_err(ApiError::store_unavailable)?;
    let items: Vec<Value> = rows.iter().map(|r| approval_json(r, &[])).collect();
    Ok(Json(json!({"approvals": items})).into_response())
}

/// `GET /v1/approvals/{id}`.
#[utoipa::path(
    get,
    path = "/v1/approvals/{id}",
    operation_id = "showApproval",
    tag = "approvals",
    security(("session" = []), ("breakGlass" = [])),
    summary = "One approval request with its votes and signatures, the before-state and what the agent saw",
    params(("id" = String, Path, description = "Approval request id (the held decision's id)")),
    responses(
        (status = 200, description = "The request", body = crate::openapi::schemas::ApprovalDetail),
        (status = 401, description = "No session", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such request", body = crate::openapi::schemas::ErrorBody),
        (status = 503, description = "The ledger could not be read", body = crate::openapi::schemas::ErrorBody)
    )
)]
pub(crate) async fn show_handler(
    State(state): State<AppState>,
    _who: HumanSession,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    match detail(&state, &id).await? {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(ApiError::not_found(format!("no approval request `{id}`"))),
    }
}

/// `POST /v1/approvals/{id}/reveal` (session cookie + CSRF header).
#[utoipa::path(
    post,
    path = "/v1/approvals/{id}/reveal",
    operation_id = "revealApproval",
    tag = "approvals",
    security(("session" = [], "csrfToken" = [])),
    summary = "One approval request with its values as the agent sent them, on the record",
    description = "`GET /v1/approvals/{id}` shows values redacted. Approvers and admins (not break-glass) may see them as sent: an `approval_values_revealed` record naming them is durable before the answer.",
    params(("id" = String, Path, description = "Approval request id")),
    responses(
        (status = 200, description = "The request, unredacted", body = crate::openapi::schemas::ApprovalDetail),
        (status = 401, description = "No session", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an approver or admin, break-glass, or missing CSRF token", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such request", body = crate::openapi::schemas::ErrorBody),
        (status = 503, description = "The view could not be recorded", body = crate::openapi::schemas::ErrorBody)
    )
)]
pub(crate) async fn reveal_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let who = crate::logins::require_session(&state, &headers, &Method::POST).await?;
    match reveal(&state, &who, &id, "api").await? {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(ApiError::not_found(format!("no approval request `{id}`"))),
    }
}

async fn vote_handler(
    state: AppState,
    headers: HeaderMap,
    id: String,
    body: Bytes,
    verdict: Verdict2,
) -> Result<Response, ApiError> {
    let who = crate::logins::require_session(&state, &headers, &Method::POST).await?;
    let req = parse_vote_json(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let out = vote(
        &state,
        &who,
        &id,
        verdict,
        req.reason.as_deref(),
        req.totp.as_deref(),
    )
    .await?;
    Ok(Json(out).into_response())
}

/// `POST /v1/approvals/{id}/approve` (session cookie + CSRF header).
#[utoipa::path(
    post,
    path = "/v1/approvals/{id}/approve",
    operation_id = "approve",
    tag = "approvals",
    security(("session" = [], "csrfToken" = [])),
    summary = "Approve a held call",
    description = "Approvers and admins only, with a TOTP verification within the configured window (or a fresh `totp` in the body); the agent's principal cannot vote on its own call. The vote is signed with Warden's key and recorded in the ledger.",
    params(("id" = String, Path, description = "Approval request id")),
    request_body(content = crate::openapi::schemas::VoteBody, description = "May be empty"),
    responses(
        (status = 200, description = "The vote, signed and recorded", body = crate::openapi::schemas::VoteRecorded),
        (status = 400, description = "Malformed body, a reason over 2000 characters, or no reason where one is required", body = crate::openapi::schemas::ErrorBody),
        (status = 401, description = "No session, or a wrong, expired or reused TOTP code", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an approver or admin, break-glass, no TOTP verification recent enough, self-approval, or missing CSRF token", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such request", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "The request is no longer pending, or this person already voted", body = crate::openapi::schemas::ErrorBody),
        (status = 503, description = "The ledger could not record the vote, or no signing key is loaded", body = crate::openapi::schemas::ErrorBody)
    )
)]
pub(crate) async fn approve_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    vote_handler(state, headers, id, body, Verdict2::Approve).await
}

/// `POST /v1/approvals/{id}/deny` (session cookie + CSRF header).
#[utoipa::path(
    post,
    path = "/v1/approvals/{id}/deny",
    operation_id = "deny",
    tag = "approvals",
    security(("session" = [], "csrfToken" = [])),
    summary = "Deny a held call (a reason is required)",
    description = "Approvers and admins only, with a TOTP verification within the configured window (or a fresh `totp` in the body); the agent's principal cannot vote on its own call. The vote is signed with Warden's key and recorded in the ledger.",
    params(("id" = String, Path, description = "Approval request id")),
    request_body(content = crate::openapi::schemas::VoteBody, description = "May be empty"),
    responses(
        (status = 200, description = "The vote, signed and recorded", body = crate::openapi::schemas::VoteRecorded),
        (status = 400, description = "Malformed body, a reason over 2000 characters, or no reason where one is required", body = crate::openapi::schemas::ErrorBody),
        (status = 401, description = "No session, or a wrong, expired or reused TOTP code", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Not an approver or admin, break-glass, no TOTP verification recent enough, self-approval, or missing CSRF token", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such request", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "The request is no longer pending, or this person already voted", body = crate::openapi::schemas::ErrorBody),
        (status = 503, description = "The ledger could not record the vote, or no signing key is loaded", body = crate::openapi::schemas::ErrorBody)
    )
)]
pub(crate) async fn deny_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    vote_handler(state, headers, id, body, Verdict2::Deny).await
}

/// `GET /v1/approvals/key`: the verifier key of the approval signatures — the ledger's key.
#[utoipa::path(
    get,
    path = "/v1/approvals/key",
    operation_id = "approvalKey",
    tag = "approvals",
    security(()),
    summary = "The verifier key of vote signatures (the ledger's checkpoint key)",
    responses(
        (status = 200, description = "The key and what it signs", body = crate::openapi::schemas::VerifierKey),
        (status = 404, description = "No ledger signing key is loaded", body = crate::openapi::schemas::MessageError)
    )
)]
pub(crate) async fn key_handler(State(state): State<AppState>) -> Response {
    match state.approval_signer.as_deref() {
        Some(s) => {
            let v = s.verifier();
            Json(json!({
                "verifier_key": v.to_vkey(),
                "key_id": hex::encode(v.key_id()),
                "algorithm": "Ed25519",
                "key": "the ledger's checkpoint key (`warden audit pubkey`)",
                "signed": format!("{:?} followed by the RFC 8785 canonical JSON of the vote record without `signature` and `state_after`", warden_core::approval::VOTE_SIGNING_CONTEXT),
            }))
            .into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no ledger signing key loaded"})),
        )
            .into_response(),
    }
}
