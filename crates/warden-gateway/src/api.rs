//! The HTTP routes: `/v1/decisions`, `/healthz`, `/readyz`, `/openapi.json`.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::info;
use warden_core::ledger::{DecisionEvent, LedgerEvent, OutcomeEvent};
use warden_core::{CallRequest, Decision, Tier, Verdict};

use crate::error::ApiError;
use crate::state::{now_rfc3339, AppState};

/// The OpenAPI 3.1 description of this API, served at `/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// The router. Tests drive it with `tower::ServiceExt::oneshot`; `warden serve` binds it.
pub fn app(state: AppState) -> Router {
    let limit = state.max_request_bytes;
    Router::new()
        .route("/v1/decisions", post(propose))
        .route("/v1/decisions/{id}", get(show))
        .route("/v1/decisions/{id}/outcome", post(outcome))
        .route(
            "/mcp",
            post(crate::mcp::http::post)
                .get(crate::mcp::http::get_stream)
                .delete(crate::mcp::http::delete_session),
        )
        .route("/oauth/token", post(crate::identity_api::token_endpoint))
        .route("/v1/login", post(crate::logins::login_handler))
        .route("/v1/logout", post(crate::logins::logout_handler))
        .route("/v1/session", get(crate::logins::whoami_handler))
        .route("/v1/session/step-up", post(crate::logins::step_up_handler))
        .route(
            "/v1/tokens",
            post(crate::identity_api::issue_handler).get(crate::identity_api::list_handler),
        )
        .route(
            "/v1/tokens/{id}",
            axum::routing::delete(crate::identity_api::revoke_handler),
        )
        .route("/v1/approvals", get(crate::approvals::list_handler))
        .route("/v1/approvals/key", get(crate::approvals::key_handler))
        .route("/v1/approvals/{id}", get(crate::approvals::show_handler))
        .route(
            "/v1/approvals/{id}/approve",
            post(crate::approvals::approve_handler),
        )
        .route(
            "/v1/approvals/{id}/deny",
            post(crate::approvals::deny_handler),
        )
        .merge(crate::ui::routes())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// A proposed call, from a framework that runs its tools itself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProposeBody {
    /// Optional; when given it must be the agent the key belongs to.
    agent: Option<String>,
    tool: String,
    #[serde(default)]
    arguments: Value,
    /// The session the call belongs to; calls without one share the agent's default session.
    #[serde(alias = "session_id")]
    session: Option<String>,
    correlation_id: Option<String>,
    /// The user's own request, declared trusted by the caller: argument values found in it
    /// are not counted as coming from untrusted content.
    user_request: Option<String>,
    /// The person the agent acts for; they cannot approve the call themselves.
    on_behalf_of: Option<String>,
    /// Execute a call approved under this id (the id of the held decision); the arguments
    /// must be exactly the approved ones.
    approval_id: Option<String>,
    /// The state the call will change, as the framework read it, shown to approvers.
    before_state: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomeBody {
    status: OutcomeStatus,
    #[serde(default)]
    output: Value,
    duration_ms: Option<u64>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
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

async fn propose(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = crate::telemetry::now_unix_nano();
    let principal = crate::identity::authenticate_agent(&state, &headers).await?;
    let agent = principal.agent.clone();
    let req: ProposeBody = parse_json(&body)?;
    if let Some(named) = &req.agent {
        if named != &agent {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "wrong_agent",
                "the request names a different agent than the key authenticates; an agent may only propose its own calls",
                crate::error::Fault::Agent,
            ));
        }
    }
    if req.tool.is_empty() || req.tool.len() > 256 {
        return Err(ApiError::bad_request(
            "`tool` must be a tool name of 1 to 256 characters",
        ));
    }
    let policy = &state.policy;
    let call = CallRequest {
        agent: &agent,
        tool: &req.tool,
        args: &req.arguments,
        session: req.session.as_deref(),
        correlation_id: req.correlation_id.as_deref(),
    };
    let session_state = state.sessions.get(&agent, req.session.as_deref());
    let mut decision = {
        let Ok(mut s) = session_state.lock() else {
            return Err(ApiError::ledger_unavailable("session state lock poisoned"));
        };
        if let Some(text) = &req.user_request {
            s.declare_user_request(text);
        }
        policy.decide_with(&call, Some(&s))
    };
    crate::identity::apply_token_scope(&mut decision, principal.tools.as_deref(), &req.tool);
    // Rate limits apply to calls the policy would let through.
    if decision.decision != Verdict::Deny {
        if let Some(card) = policy.cards.get(&agent) {
            let access = card.tool(&req.tool).map(|t| t.access);
            if let Some(reason) =
                state
                    .rates
                    .admit(&agent, access, &card.rate_limits, Instant::now())
            {
                decision = Decision {
                    decision: Verdict::Deny,
                    tier: decision.tier,
                    reasons: vec![reason],
                    policies: vec!["warden/rate-limit".to_string()],
                    violations: Vec::new(),
                    tool: decision.tool,
                    policy_version: decision.policy_version,
                    taint: decision.taint,
                    provenance: decision.provenance,
                    egress_off_list: decision.egress_off_list,
                };
            }
        }
    }
    let environment = policy.cards.get(&agent).map_or_else(
        || policy.environment.to_string(),
        |c| c.environment.to_string(),
    );
    let id = uuid::Uuid::now_v7().to_string();
    // Executing under an approval: bind it to exactly this call and use it up.
    if let Some(approval_id) = &req.approval_id {
        if decision.decision == Verdict::ApprovalRequired {
            let qualified = decision.tool.clone().unwrap_or_else(|| req.tool.clone());
            let used = crate::approvals::use_approval(
                &state,
                approval_id,
                &agent,
                &qualified,
                &req.arguments,
                &id,
            )
            .await;
            let approvers = crate::approvals::approvers_of(&state, approval_id).await;
            crate::approvals::apply_approval(&mut decision, used, &approvers);
        }
    }
    if req.on_behalf_of.as_ref().is_some_and(|p| p.len() > 256) {
        return Err(ApiError::bad_request(
            "`on_behalf_of` may have at most 256 characters",
        ));
    }
    let event = LedgerEvent::Decision(Box::new(DecisionEvent {
        decision_id: id.clone(),
        agent: agent.clone(),
        environment,
        tool: req.tool.clone(),
        qualified_tool: decision.tool.clone(),
        arguments: req.arguments.clone(),
        session: req.session.clone(),
        correlation_id: req.correlation_id.clone(),
        source: "api".to_string(),
        mcp_request_id: None,
        user_request: req.user_request.clone(),
        decision: decision.clone(),
        approval_id: req.approval_id.clone(),
        on_behalf_of: req.on_behalf_of.clone(),
    }));
    // The decision is durable before the caller learns it may run the call.
    let appended = match state.ledger.append(now_rfc3339(), event).await {
        Ok(a) => a,
        Err(e) => {
            // The execution did not run: an approval it used stays usable.
            if let (Some(approval_id), Verdict::Allow) = (&req.approval_id, decision.decision) {
                if let Err(error) = state.ledger.release_claim(approval_id, &id).await {
                    tracing::error!(message = "approval claim not released", %error);
                }
            }
            let body = json!({
                "id": Value::Null,
                "decision": "deny",
                "tier": Tier::Auto,
                "reasons": ["the ledger could not record this decision, so the call must not run (fail closed)"],
                "policies": [],
                "policy_version": decision.policy_version,
                "error": {"code": "ledger_unavailable", "source": "warden"},
            });
            tracing::error!(message = "decision not recorded; denied", error = %e, agent = %agent, tool = %req.tool);
            trace_decision(
                &state,
                &headers,
                &agent,
                &req,
                &decision,
                None,
                Some(warden_core::otel::error_type::LEDGER_UNAVAILABLE),
                started,
            );
            return Ok((StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response());
        }
    };
    // A call that may not run ends here; an allowed one ends when its outcome is reported.
    let refused = match decision.decision {
        Verdict::Allow => None,
        Verdict::Deny => Some(warden_core::otel::error_type::DENIED),
        Verdict::ApprovalRequired => Some(warden_core::otel::error_type::APPROVAL_REQUIRED),
    };
    if let (None, Some(telemetry)) = (refused, &state.telemetry) {
        telemetry.open_call(&id, crate::telemetry::trace_parent(&headers, None));
    }
    if refused.is_some() {
        trace_decision(
            &state,
            &headers,
            &agent,
            &req,
            &decision,
            Some(&id),
            refused,
            started,
        );
    }
    info!(
        message = "decision",
        agent = %agent,
        tool = %req.tool,
        decision = decision.decision.as_str(),
        tier = decision.tier.as_str(),
        seq = appended.seq
    );
    let mut approval = Value::Null;
    if decision.decision == Verdict::ApprovalRequired && req.approval_id.is_none() {
        let row = crate::approvals::open_request(
            &state,
            crate::approvals::HeldCall {
                decision_id: &id,
                seq: appended.seq,
                agent: &agent,
                on_behalf_of: req.on_behalf_of.as_deref(),
                tool: &req.tool,
                upstream: decision
                    .tool
                    .as_deref()
                    .and_then(|t| t.split_once('/'))
                    .map_or("", |(s, _)| s),
                args: &req.arguments,
                decision: &decision,
                session: req.session.as_deref(),
                correlation_id: req.correlation_id.as_deref(),
                source: "api",
                before_state: req.before_state.clone(),
                reader: None,
            },
        )
        .await
        .map_err(|e| ApiError::ledger_unavailable(e.to_string()))?;
        approval = json!({
            "id": row.id,
            "state": row.state,
            "required_approvals": row.required,
            "arguments_hash": row.arguments_hash,
            "expires_at": crate::identity::rfc3339(row.expires_at),
            "poll": format!("/v1/decisions/{}?wait=30", row.id),
            "execute": "when approved, POST /v1/decisions again with the same tool and arguments and \"approval_id\"",
        });
    }
    let mut body =
        serde_json::to_value(&decision).map_err(|e| ApiError::ledger_unavailable(e.to_string()))?;
    if let Some(obj) = body.as_object_mut() {
        if !approval.is_null() {
            obj.insert("approval".into(), approval);
        }
        obj.insert("id".into(), Value::String(id));
        obj.insert("agent".into(), Value::String(agent));
        obj.insert(
            "ledger".into(),
            json!({"seq": appended.seq, "hash": appended.hash}),
        );
    }
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// Send the span of a proposed call that ended at the decision (refused, held, or not
/// recordable).
#[allow(clippy::too_many_arguments)]
fn trace_decision(
    state: &AppState,
    headers: &HeaderMap,
    agent: &str,
    req: &ProposeBody,
    decision: &Decision,
    decision_id: Option<&str>,
    error_type: Option<&'static str>,
    started: u64,
) {
    let Some(telemetry) = &state.telemetry else {
        return;
    };
    let trace = crate::telemetry::CallTrace {
        tool: req.tool.clone(),
        qualified_tool: decision.tool.clone(),
        correlation_id: req.correlation_id.clone(),
        decision_id: decision_id.map(str::to_string),
        decision: decision_id.map(|_| decision.decision.as_str()),
        policy_version: Some(decision.policy_version.clone()),
        error_type,
        session: req.session.clone(),
        mcp_request_id: None,
    };
    telemetry.record(crate::telemetry::span(
        trace,
        agent,
        "api",
        crate::telemetry::trace_parent(headers, None),
        started,
    ));
}

#[derive(Debug, Deserialize)]
struct ShowQuery {
    /// Long-poll: wait up to this many seconds (at most 60) for a held decision to be voted on.
    wait: Option<u64>,
}

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
        .ledger
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
                .ledger
                .approval_votes(&id)
                .await
                .map_err(|e| ApiError::ledger_unavailable(e.to_string()))?;
            approval = crate::approvals::agent_view(&row, &votes);
        }
    }
    let records = state
        .ledger
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
        .ledger
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
    let observed = req.output.clone();
    let failed = matches!(req.status, OutcomeStatus::Error);
    let (output, output_bytes, output_truncated) =
        crate::state::bound_output(req.output, state.max_output_bytes);
    let event = LedgerEvent::Outcome(OutcomeEvent {
        decision_id: id.to_string(),
        agent: agent.to_string(),
        tool: decision.tool.clone(),
        correlation_id: decision.correlation_id.clone(),
        status: match req.status {
            OutcomeStatus::Success => "success",
            OutcomeStatus::Error => "error",
        }
        .to_string(),
        output,
        output_bytes,
        output_truncated,
        duration_ms: req.duration_ms,
    });
    let appended = state
        .ledger
        .append(now_rfc3339(), event)
        .await
        .map_err(|e| ApiError::ledger_unavailable(e.to_string()))?;
    if let Some(telemetry) = &state.telemetry {
        // The call ran between its decision and this report.
        let trace = crate::telemetry::CallTrace {
            tool: decision.tool.clone(),
            qualified_tool: decision.qualified_tool.clone(),
            correlation_id: decision.correlation_id.clone(),
            decision_id: Some(id.to_string()),
            decision: Some(decision.decision.decision.as_str()),
            policy_version: Some(decision.decision.policy_version.clone()),
            error_type: failed.then_some(warden_core::otel::error_type::TOOL_ERROR),
            session: decision.session.clone(),
            mcp_request_id: None,
        };
        let start = crate::telemetry::ts_unix_nano(&decided_at)
            .unwrap_or_else(crate::telemetry::now_unix_nano);
        // The context the call was proposed under, else the one of this report.
        let parent = telemetry.close_call(id).or(parent);
        telemetry.record(crate::telemetry::span(trace, agent, "api", parent, start));
    }
    if let Some(tool) = &decision.decision.tool {
        crate::sessions::observe_output(
            &state.policy,
            &state.ledger,
            &state.sessions,
            agent,
            decision.session.as_deref(),
            id,
            tool,
            &observed,
            appended.seq,
        )
        .await;
    }
    Ok(Json(json!({
        "id": id,
        "output_truncated": output_truncated,
        "ledger": {"seq": appended.seq, "hash": appended.hash},
    }))
    .into_response())
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.ledger.ready().await {
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

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /openapi.json")
}
