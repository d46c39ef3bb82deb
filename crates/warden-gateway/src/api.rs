//! The HTTP routes: the router and its list of documented handlers, and the handlers of
//! `/v1/decisions`, `/healthz` and `/readyz`.

use std::sync::LazyLock;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use warden_core::ledger::LedgerEvent;
use warden_core::{Tier, Verdict};

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::openapi::schemas as doc;
use crate::pipeline::{self, CallSpan, Decided, Proposal, Ran, Refusal, Reported, Source};
use crate::state::AppState;

/// The routes of the API, each handler with its `#[utoipa::path]`: the router and the OpenAPI
/// document are built from this one list, so a route added here is described. (The `/ui`
/// pages are merged in [`app`], outside the document.)
fn documented_routes() -> OpenApiRouter<AppState> {
    use crate::{approvals, identity_api, logins, mcp};
    OpenApiRouter::with_openapi(<crate::openapi::ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(propose))
        .routes(routes!(show))
        .routes(routes!(outcome))
        .routes(routes!(
            mcp::http::post,
            mcp::http::get_stream,
            mcp::http::delete_session
        ))
        .routes(routes!(identity_api::token_endpoint))
        .routes(routes!(logins::login::login_handler))
        .routes(routes!(logins::login::logout_handler))
        .routes(routes!(logins::login::whoami_handler))
        .routes(routes!(logins::step_up::step_up_handler))
        .routes(routes!(
            identity_api::issue_handler,
            identity_api::list_handler
        ))
        .routes(routes!(identity_api::revoke_handler))
        .routes(routes!(approvals::routes::list_handler))
        .routes(routes!(approvals::routes::key_handler))
        .routes(routes!(approvals::routes::show_handler))
        .routes(routes!(approvals::routes::approve_handler))
        .routes(routes!(approvals::routes::reveal_handler))
        .routes(routes!(approvals::routes::deny_handler))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(openapi_json))
}

/// The documented routes and their document, built once per process: generating the document
/// (the schema of every body) takes milliseconds, and tests build a router per request. Both
/// are a function of the code alone — nothing from configuration or state goes in — so one
/// copy serves every [`app`].
static DOCUMENTED: LazyLock<(Router<AppState>, utoipa::openapi::OpenApi)> =
    LazyLock::new(|| documented_routes().split_for_parts());

/// The OpenAPI 3.1 document of the API, as `/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    DOCUMENTED.1.clone()
}

/// `GET /openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    security(()),
    summary = "This document (OpenAPI 3.1)",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object))
)]
async fn openapi_json() -> Response {
    match openapi().to_pretty_json() {
        Ok(text) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            text,
        )
            .into_response(),
        Err(e) => crate::ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "openapi",
            "the API document could not be written",
            crate::error::Fault::Warden,
        )
        .internal(e.to_string())
        .into_response(),
    }
}

/// The router. Tests drive it with `tower::ServiceExt::oneshot`; `warden serve` binds it.
pub fn app(state: AppState) -> Router {
    let limit = state.max_request_bytes;
    DOCUMENTED
        .0
        .clone()
        // The approvers' HTML pages: not API, not in the document.
        .merge(crate::ui::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                too_large_in_words(limit, req, next)
            },
        ))
        .with_state(state)
}

/// A body over the limit is refused by the body extractor with plain text; answer in the
/// door's own format instead: a JSON-RPC error on `/mcp` (so an MCP client can read it), the
/// usual `{"error": …}` elsewhere. The status stays `413`.
async fn too_large_in_words(
    limit: usize,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mcp = req.uri().path() == "/mcp";
    let resp = next.run(req).await;
    let json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if resp.status() != StatusCode::PAYLOAD_TOO_LARGE || json {
        return resp;
    }
    let message = format!(
        "the request body is larger than the {limit} bytes this gateway accepts ([gateway] max_request_bytes)"
    );
    if mcp {
        let body = crate::mcp::jsonrpc::rpc_error(&Value::Null, -32600, &message);
        return (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response();
    }
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        message,
        crate::error::Fault::Agent,
    )
    .into_response()
}

/// A proposed call, from a framework that runs its tools itself.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ProposeBody {
    /// Optional; when given it must be the agent the key belongs to.
    agent: Option<String>,
    /// Tool name from the scope card, or `server/name`: 1 to 256 bytes.
    #[schema(min_length = 1, max_length = 256)]
    tool: String,
    /// The call's arguments (a JSON object).
    #[serde(default)]
    #[schema(value_type = Object)]
    arguments: Value,
    /// The session the call belongs to; calls without one share the agent's default session.
    #[serde(alias = "session_id")]
    session: Option<String>,
    /// The ticket or request that explains the call; recorded with it.
    #[schema(max_length = 4096)]
    correlation_id: Option<String>,
    /// The user's own request, declared trusted by the caller: argument values found in it
    /// are not counted as coming from untrusted content.
    user_request: Option<String>,
    /// The person the agent acts for; they cannot approve the call themselves.
    #[schema(max_length = 256)]
    on_behalf_of: Option<String>,
    /// Execute a call approved under this id (the id of the held decision); the arguments
    /// must be exactly the approved ones.
    approval_id: Option<String>,
    /// The state the call will change, as the framework read it, shown to approvers (any
    /// JSON; a field-by-field diff is shown when it and the arguments are objects).
    before_state: Option<Value>,
}

/// What happened when an allowed call ran.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct OutcomeBody {
    status: OutcomeStatus,
    /// The tool's output; cut to `gateway.max_output_bytes`, and the record says so.
    #[serde(default)]
    output: Value,
    duration_ms: Option<u64>,
}

#[derive(Debug, Deserialize, Clone, Copy, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum OutcomeStatus {
    Success,
    Error,
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not the JSON this endpoint takes: {e} (see /openapi.json)"
        ))
    })
}

#[utoipa::path(
    post,
    path = "/v1/decisions",
    operation_id = "proposeCall",
    tag = "decisions",
    summary = "Propose a tool call and get a decision",
    description = "The decision is durable in the ledger before it is returned. `allow`: run the call, then report its outcome. `approval_required`: people vote; poll the decision, then propose the same call again with `approval_id`. `deny`: the reasons say why. A denied call is a 200 answer, not an error.",
    request_body = ProposeBody,
    responses(
        (status = 200, description = "The decision, durable in the ledger", body = doc::DecisionAnswer),
        (status = 400, description = "Malformed request", body = doc::ErrorBody),
        (status = 401, description = "Missing or invalid agent key or token", body = doc::ErrorBody),
        (status = 403, description = "The body names another agent than the key", body = doc::ErrorBody),
        (status = 413, description = "Request body over gateway.max_request_bytes"),
        (status = 421, description = "The agent's records are kept in another region: call that region's gateway", body = doc::ErrorBody),
        (status = 503, description = "The ledger could not record the decision (decision deny), or the approval request could not be queued", body = doc::DecisionUnavailable)
    )
)]
async fn propose(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = crate::telemetry::now_unix_nano();
    let principal = crate::identity::authenticate_agent(&state, &headers).await?;
    let req: ProposeBody = parse_json(&body)?;
    if req
        .agent
        .as_ref()
        .is_some_and(|named| named != &principal.agent)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_agent",
            "the request names a different agent than the key authenticates; an agent may only propose its own calls",
            crate::error::Fault::Agent,
        ));
    }
    let mut proposal = Proposal::tool(principal, Source::Api, req.tool, None, req.arguments);
    proposal.session = req.session;
    proposal.correlation_id = req.correlation_id;
    proposal.user_request = req.user_request;
    proposal.on_behalf_of = req.on_behalf_of;
    proposal.approval_id = req.approval_id;
    proposal.before_state = req.before_state;
    let parent = crate::telemetry::trace_parent(&headers, None);
    let span = CallSpan::started_at(&state, Source::Api.as_str(), parent, started);
    let decided = match pipeline::decide(&state, proposal, span, None).await {
        Ok(d) => d,
        Err(Refusal::BadInput(why)) => return Err(ApiError::bad_request(why)),
        Err(Refusal::WrongRegion(e)) => return Err(e),
        Err(Refusal::Unrecorded { decision, .. }) => {
            let body = json!({
                "id": Value::Null,
                "decision": "deny",
                "tier": Tier::Auto,
                "reasons": ["the ledger could not record this decision, so the call must not run (fail closed)"],
                "policies": [],
                "policy_version": decision.policy_version,
                "error": {"code": "ledger_unavailable", "source": "warden"},
            });
            return Ok((StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response());
        }
        Err(Refusal::NotQueued { error, decided }) => {
            decided.span.end(
                &state,
                decided.proposal.agent(),
                Some(warden_core::otel::error_type::APPROVAL_REQUIRED),
            );
            return Err(ApiError::ledger_unavailable(error.to_string()));
        }
    };
    let Decided {
        id,
        appended,
        decision,
        approval,
        proposal,
        span,
    } = decided;
    match decision.decision {
        // The call runs in the caller's framework; its span ends with the outcome report.
        Verdict::Allow => {
            if let Some(telemetry) = &state.telemetry {
                telemetry.open_call(&id, span.parent());
            }
        }
        Verdict::ApprovalRequired => span.end(
            &state,
            proposal.agent(),
            Some(warden_core::otel::error_type::APPROVAL_REQUIRED),
        ),
        Verdict::Deny => {}
    }
    let mut body =
        serde_json::to_value(&decision).map_err(|e| ApiError::ledger_unavailable(e.to_string()))?;
    if let Some(obj) = body.as_object_mut() {
        if let Some(row) = approval {
            obj.insert(
                "approval".into(),
                json!({
                    "id": row.id,
                    "state": row.state,
                    "required_approvals": row.required,
                    "arguments_hash": row.arguments_hash,
                    "expires_at": crate::identity::rfc3339(row.expires_at),
                    "poll": format!("/v1/decisions/{}?wait=30", row.id),
                    "execute": "when approved, POST /v1/decisions again with the same tool and arguments and \"approval_id\"",
                }),
            );
        }
        obj.insert("id".into(), Value::String(id));
        obj.insert("agent".into(), Value::String(proposal.caller.agent));
        obj.insert(
            "ledger".into(),
            json!({"seq": appended.seq, "hash": appended.hash}),
        );
    }
    Ok((StatusCode::OK, Json(body)).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ShowQuery {
    /// Long-poll: wait up to this many seconds (at most 60) for a held decision to be voted on.
    wait: Option<u64>,
}

#[utoipa::path(
    get,
    path = "/v1/decisions/{id}",
    operation_id = "showDecision",
    tag = "decisions",
    summary = "The ledger records of one of the caller's decisions, and its approval request",
    params(("id" = String, Path, description = "Decision id"), ShowQuery),
    responses(
        (status = 200, description = "Records", body = doc::DecisionRecords),
        (status = 400, description = "A malformed query (`wait` not a whole number)", body = String),
        (status = 401, description = "Missing or invalid agent key or token", body = doc::ErrorBody),
        (status = 404, description = "No such decision for this agent", body = doc::ErrorBody),
        (status = 421, description = "The agent's records are kept in another region", body = doc::ErrorBody),
        (status = 503, description = "The ledger could not be read", body = doc::ErrorBody)
    )
)]
async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<ShowQuery>,
) -> Result<Response, ApiError> {
    let agent = crate::identity::authenticate_agent(&state, &headers)
        .await?
        .agent;
    let mut approval = Value::Null;
    let row = state
        .store
        .approvals()
        .approval(&id)
        .await
        .map_err(|e| ApiError::ledger_unavailable(e.to_string()))?
        .filter(|r| r.agent == agent);
    if row.is_some() {
        let wait = std::time::Duration::from_secs(q.wait.unwrap_or(0).min(60));
        let row = crate::approvals::wait_for(&state, &id, wait)
            .await
            .map_err(|e| ApiError::ledger_unavailable(e.to_string()))?;
        if let Some(row) = row {
            let votes = state
                .store
                .approvals()
                .approval_votes(&id)
                .await
                .map_err(|e| ApiError::ledger_unavailable(e.to_string()))?;
            approval = crate::approvals::agent_view(&row, &votes);
        }
    }
    let records = state
        .store
        .ledger()
        .records_of_decision(&id)
        .await
        .map_err(|e| ApiError::ledger_unavailable(e.to_string()))?;
    let mine = records
        .iter()
        .any(|r| matches!(&r.record.event, LedgerEvent::Decision(d) if d.agent == agent));
    if !mine {
        return Err(ApiError::not_found(format!(
            "no decision `{id}` for this agent"
        )));
    }
    let out: Vec<Value> = records
        .iter()
        .map(|r| json!({"seq": r.seq, "hash": r.hash, "ts": r.record.ts, "event": r.record.event}))
        .collect();
    Ok(Json(json!({"id": id, "records": out, "approval": approval})).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/decisions/{id}/outcome",
    operation_id = "reportOutcome",
    tag = "decisions",
    summary = "Report what happened when an allowed call ran",
    params(("id" = String, Path, description = "Decision id")),
    request_body = OutcomeBody,
    responses(
        (status = 200, description = "Recorded", body = doc::OutcomeRecorded),
        (status = 400, description = "Malformed request", body = doc::ErrorBody),
        (status = 401, description = "Missing or invalid agent key or token", body = doc::ErrorBody),
        (status = 404, description = "No such decision for this agent", body = doc::ErrorBody),
        (status = 409, description = "The decision was not allow, or its outcome is already recorded (or being recorded)", body = doc::ErrorBody),
        (status = 413, description = "Request body over gateway.max_request_bytes"),
        (status = 421, description = "The agent's records are kept in another region", body = doc::ErrorBody),
        (status = 503, description = "The ledger could not record the outcome", body = doc::ErrorBody)
    )
)]
async fn outcome(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let agent = crate::identity::authenticate_agent(&state, &headers)
        .await?
        .agent;
    let req: OutcomeBody = parse_json(&body)?;
    // One outcome per decision: hold the id while we check and write.
    {
        let Ok(mut set) = state.outcomes_in_flight.lock() else {
            return Err(ApiError::ledger_unavailable("outcome lock poisoned"));
        };
        if !set.insert(id.clone()) {
            return Err(ApiError::conflict(format!(
                "an outcome for `{id}` is already being recorded"
            )));
        }
    }
    let parent = crate::telemetry::trace_parent(&headers, None);
    let result = record_outcome(&state, &agent, &id, req, parent).await;
    if let Ok(mut set) = state.outcomes_in_flight.lock() {
        set.remove(&id);
    }
    result
}

async fn record_outcome(
    state: &AppState,
    agent: &str,
    id: &str,
    req: OutcomeBody,
    parent: Option<warden_core::otel::TraceParent>,
) -> Result<Response, ApiError> {
    let records = state
        .store
        .ledger()
        .records_of_decision(id)
        .await
        .map_err(|e| ApiError::ledger_unavailable(e.to_string()))?;
    let decision = records.iter().find_map(|r| match &r.record.event {
        LedgerEvent::Decision(d) if d.agent == agent => Some((d.clone(), r.record.ts.clone())),
        _ => None,
    });
    let Some((decision, decided_at)) = decision else {
        return Err(ApiError::not_found(format!(
            "no decision `{id}` for this agent"
        )));
    };
    if records
        .iter()
        .any(|r| matches!(r.record.event, LedgerEvent::Outcome(_)))
    {
        return Err(ApiError::conflict(format!(
            "the outcome of `{id}` is already recorded"
        )));
    }
    if decision.decision.decision != Verdict::Allow {
        return Err(ApiError::conflict(format!(
            "decision `{id}` was `{}`, so the call must not have run; report outcomes only for allowed calls",
            decision.decision.decision.as_str()
        )));
    }
    // The call ran between its decision and this report: its span starts at the decision,
    // under the context it was proposed with (else the one of this report).
    let start =
        crate::telemetry::ts_unix_nano(&decided_at).unwrap_or_else(crate::telemetry::now_unix_nano);
    let parent = state
        .telemetry
        .as_ref()
        .and_then(|t| t.close_call(id))
        .or(parent);
    let mut span = CallSpan::started_at(state, Source::Api.as_str(), parent, start);
    span.describe(|t| {
        t.tool = decision.tool.clone();
        t.qualified_tool = decision.qualified_tool.clone();
        t.correlation_id = decision.correlation_id.clone();
        t.decision_id = Some(id.to_string());
        t.decision = Some(decision.decision.decision.as_str());
        t.policy_version = Some(decision.decision.policy_version.clone());
        t.session = decision.session.clone();
    });
    let ran = Ran {
        decision_id: id.to_string(),
        agent: agent.to_string(),
        tool: decision.tool.clone(),
        qualified_tool: decision.decision.tool.clone(),
        session: decision.session.clone(),
        correlation_id: decision.correlation_id.clone(),
        started: std::time::Instant::now(),
        span,
    };
    let reported = Reported {
        failed: matches!(req.status, OutcomeStatus::Error),
        unreachable: false,
        output: req.output,
        duration_ms: req.duration_ms,
    };
    let (appended, output_truncated) = pipeline::record_outcome(state, ran, reported)
        .await
        .map_err(|e| ApiError::ledger_unavailable(e.to_string()))?;
    Ok(Json(json!({
        "id": id,
        "output_truncated": output_truncated,
        "ledger": {"seq": appended.seq, "hash": appended.hash},
    }))
    .into_response())
}

#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "health",
    tag = "meta",
    security(()),
    summary = "The process is up",
    responses((status = 200, description = "Up", body = doc::Health))
)]
async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "ready",
    tag = "meta",
    security(()),
    summary = "The ledger is writable and a policy is loaded",
    responses(
        (status = 200, description = "Ready", body = doc::Ready),
        (status = 503, description = "Not ready; calls are denied", body = doc::NotReady)
    )
)]
async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ledger().ready().await {
        Ok(()) => Json(json!({
            "status": "ready",
            "policy_version": state.policy.version,
            "agents": state.policy.cards.len(),
        }))
        .into_response(),
        Err(e) => {
            tracing::warn!(message = "not ready", error = %e);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "not_ready", "reason": "the ledger is not writable; calls are denied"})),
            )
                .into_response()
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /openapi.json")
}
