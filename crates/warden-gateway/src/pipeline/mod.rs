//! The decision pipeline: the one path every proposed call takes, whatever door it came in by.
//!
//! `/v1/decisions` (`api.rs`), `/mcp` (`mcp/http.rs`), `warden mcp stdio`
//! (`mcp/stdio_gate.rs`) and the execution of an approved call (`approvals/hold.rs`, and the
//! decision API with `approval_id`) only translate their transport into a [`Proposal`], and
//! the [`Decided`] back into their answer. [`decide`] runs these steps, in this order:
//!
//! | step | what it does | where |
//! |---|---|---|
//! | input | bounds on the caller's free-text fields and on the number of arguments | [`check_input`] |
//! | agent and region | an agent of another region is refused unrecorded (`421`); a card bound to another environment skips to the core, which denies (`warden/environment`) | [`decide`] |
//! | *(kill switch, anomaly pause)* | later steps go here | — |
//! | rate limits | the card's `[rate_limits]` (`warden/rate-limit`) | [`rate_step`], `rate.rs` |
//! | tool pin | a tool whose definition changed is blocked (`warden/tool-pinning`) | [`pin_step`] |
//! | decide | card, arguments, Cedar, session taint and provenance (the session read from the store; unreadable: `warden/session-state`) | [`core_step`], `taint.rs`, `warden_core::CompiledPolicy` |
//! | token scope | a token narrowed to some tools (`warden/token-scope`) | [`token_scope_step`] |
//! | approval binding | an execution under an approval: same agent, tool and argument hash, approved, unused (`warden/approval`, `warden/approval-binding`) | `approvals::binding` |
//! | record | the decision record, durable before anyone learns the verdict | [`record_step`] |
//! | hold | a held call opens (or joins) its approval request | `approvals::queue` |
//!
//! After an allowed call ran, [`outcome::record_outcome`] is the one outcome path: bound the
//! output, record it (the store redacts and seals), then update the session (taint, data
//! classes, injection detector).
//!
//! A step that refuses turns the decision into a `deny` with its reason and policy id; the
//! refusal is recorded like any decision. Only two things are not recorded: a proposal too
//! malformed to record, and an agent whose records belong to another region's store.

pub(crate) mod call;
pub(crate) mod outcome;
pub(crate) mod pin;
mod records;
pub(crate) mod span;

use serde_json::Value;
use warden_core::{CallRequest, Decision, Tier, Verdict};
use warden_store::{Appended, StoreError};

use crate::approvals::snapshot::SnapshotReader;
use crate::state::AppState;

pub(crate) use call::{
    Decided, Proposal, Refusal, Source, Target, MAX_ARGUMENTS, MAX_CORRELATION_CHARS,
    MAX_LABEL_CHARS,
};
pub(crate) use outcome::{record_outcome, Ran, Reported};
use pin::pin_refusal;
pub(crate) use span::CallSpan;

/// Bounds on what the caller may put in free-text fields that end up in every record.
fn check_input(p: &Proposal) -> Result<(), Refusal> {
    for (field, value, max) in [
        ("correlation_id", &p.correlation_id, MAX_CORRELATION_CHARS),
        ("on_behalf_of", &p.on_behalf_of, MAX_LABEL_CHARS),
        ("session", &p.session, MAX_LABEL_CHARS),
    ] {
        if value.as_ref().is_some_and(|v| v.chars().count() > max) {
            return Err(Refusal::BadInput(format!(
                "`{field}` may have at most {max} characters"
            )));
        }
    }
    if let Some(args) = p.arguments.as_object() {
        if args.len() > MAX_ARGUMENTS {
            return Err(Refusal::BadInput(format!(
                "a call may have at most {MAX_ARGUMENTS} arguments; this one has {}",
                args.len()
            )));
        }
    }
    if let Target::Tool { name, .. } = &p.target {
        if name.is_empty() || name.len() > 256 {
            return Err(Refusal::BadInput(
                "the tool name must have 1 to 256 characters".to_string(),
            ));
        }
    }
    Ok(())
}

/// A decision refusing the call at a gateway step, before or instead of the core's.
fn refused(state: &AppState, p: &Proposal, reason: String, policy: &str) -> Decision {
    let card = state.policy.cards.get(p.agent());
    let grant = match &p.target {
        Target::Tool { .. } => card.and_then(|c| c.tool(&p.target.core_name())),
        Target::Read { .. } => None,
    };
    Decision {
        decision: Verdict::Deny,
        tier: grant.map_or(Tier::Auto, |g| g.approval),
        reasons: vec![reason],
        policies: vec![policy.to_string()],
        violations: Vec::new(),
        tool: grant.map(|g| g.qualified().to_string()),
        policy_version: state.policy.version.clone(),
        taint: None,
        provenance: Vec::new(),
        egress_off_list: Vec::new(),
    }
}

/// Decide a proposal and record the decision; see the module documentation for the steps.
/// `reader` runs the snapshot read of a call that is held (`None`: the gateway's upstream).
pub(crate) async fn decide(
    state: &AppState,
    mut p: Proposal,
    span: CallSpan,
    reader: Option<&dyn SnapshotReader>,
) -> Result<Decided, Refusal> {
    check_input(&p)?;
    state
        .serves_agent(p.agent())
        .map_err(Refusal::WrongRegion)?;
    let id = crate::new_id();
    let policy = &state.policy;
    // A card bound to another environment is refused by the core, with its reason; such a
    // proposal takes no rate-limit slot and reads no pin.
    let admitted = policy
        .cards
        .get(p.agent())
        .is_some_and(|c| c.environment == policy.environment);
    let mut early = None;
    if admitted {
        early = rate_step(state, &p, &id);
        if early.is_none() {
            early = pin_step(state, &p).await;
        }
    }
    let mut decision = match early {
        Some(d) => d,
        None => {
            let mut d = core_step(state, &p).await;
            token_scope_step(&p, &mut d);
            d
        }
    };
    if let Some(approval_id) = &p.approval_id {
        let approved =
            crate::approvals::binding::bind(state, &mut decision, &p, approval_id, &id).await;
        // The execution carries the ticket of the call people approved, unless it names one.
        if let (None, Some(row)) = (&p.correlation_id, approved) {
            p.correlation_id = row.correlation_id;
        }
    }
    let appended = match record_step(state, &p, &id, &decision).await {
        Ok(a) => a,
        Err(error) => {
            // The execution did not run: an approval it used stays usable.
            if let (Some(approval_id), Verdict::Allow) = (&p.approval_id, decision.decision) {
                if let Err(error) = state
                    .store
                    .approvals()
                    .release_claim(approval_id, &id)
                    .await
                {
                    tracing::error!(message = "approval claim not released", %error);
                }
            }
            tracing::error!(message = "decision not recorded; call refused", %error, agent = %p.agent(), tool = %p.target.recorded_name());
            let mut span = span;
            describe(&mut span, state, &p, &decision, None);
            span.end(
                state,
                p.agent(),
                Some(warden_core::otel::error_type::LEDGER_UNAVAILABLE),
            );
            return Err(Refusal::Unrecorded {
                decision: Box::new(decision),
            });
        }
    };
    tracing::info!(
        message = "decision",
        agent = %p.agent(),
        tool = %p.target.recorded_name(),
        source = p.source.as_str(),
        decision = decision.decision.as_str(),
        tier = decision.tier.as_str(),
        seq = appended.seq
    );
    let mut decided = Decided {
        id,
        appended,
        decision,
        approval: None,
        proposal: p,
        span,
    };
    let Decided {
        span,
        proposal,
        decision,
        id,
        ..
    } = &mut decided;
    describe(span, state, proposal, decision, Some(id));
    match decided.decision.decision {
        Verdict::Deny => {
            let span = std::mem::take(&mut decided.span);
            span.end(
                state,
                decided.proposal.agent(),
                Some(warden_core::otel::error_type::DENIED),
            );
        }
        Verdict::ApprovalRequired if decided.proposal.approval_id.is_none() => {
            match crate::approvals::queue::hold(state, &decided, reader).await {
                Ok(row) => decided.approval = Some(row),
                Err(error) => {
                    return Err(Refusal::NotQueued {
                        decided: Box::new(decided),
                        error,
                    })
                }
            }
        }
        _ => {}
    }
    Ok(decided)
}

/// What the span of a call says about its decision.
fn describe(
    span: &mut CallSpan,
    state: &AppState,
    p: &Proposal,
    decision: &Decision,
    id: Option<&str>,
) {
    span.describe(|t| {
        if let Target::Tool { name, .. } = &p.target {
            t.tool = name.clone();
        }
        t.qualified_tool = decision.tool.clone().or_else(|| match &p.target {
            Target::Tool {
                name,
                server: Some(s),
            } => Some(format!("{s}/{name}")),
            _ => None,
        });
        t.correlation_id = p.correlation_id.clone();
        t.decision_id = id.map(str::to_string);
        t.decision = id.map(|_| decision.decision.as_str());
        t.policy_version = Some(state.policy.version.to_string());
        t.session = p.session.clone();
        t.mcp_request_id = p.mcp_request_id.as_ref().map(Value::to_string);
    });
}

/// The card's `[rate_limits]`: `Some(deny)` when this proposal is over one.
fn rate_step(state: &AppState, p: &Proposal, id: &str) -> Option<Decision> {
    let card = state.policy.cards.get(p.agent())?;
    let access = match &p.target {
        Target::Tool { .. } => card.tool(&p.target.core_name()).map(|t| t.access),
        Target::Read { .. } => None,
    };
    let reason = state.rates.admit(crate::rate::Admission {
        agent: p.agent(),
        access,
        limits: &card.rate_limits,
        now_ms: state.clock.unix_ms(),
        decision_id: id,
        proposal_id: p.approval_id.as_deref(),
    })?;
    Some(refused(state, p, reason, "warden/rate-limit"))
}

/// Tool pinning: a granted tool whose announced definition changed since it was approved is
/// blocked for every agent until an admin reviews it. `Some(deny)` when blocked, or when the
/// pin cannot be read (fail closed).
async fn pin_step(state: &AppState, p: &Proposal) -> Option<Decision> {
    let Target::Tool { .. } = &p.target else {
        return None;
    };
    let grant = state
        .policy
        .cards
        .get(p.agent())?
        .tool(&p.target.core_name())?;
    let reason = pin_refusal(state, &grant.server, &grant.name, grant.qualified()).await?;
    Some(refused(state, p, reason, "warden/tool-pinning"))
}

/// The core's decision: card, argument constraints, Cedar, and the session's taint and
/// provenance (the user's request, when declared, counts as trusted text from now on, once
/// stored). A session whose state cannot be read from the store is refused (fail closed).
async fn core_step(state: &AppState, p: &Proposal) -> Decision {
    let policy = &state.policy;
    if let Some(target) = p.target.read_target() {
        return policy.decide_read(p.agent(), &target);
    }
    let tool = p.target.core_name();
    let call = CallRequest {
        agent: p.agent(),
        tool: &tool,
        args: &p.arguments,
        session: p.session.as_deref(),
        correlation_id: p.correlation_id.as_deref(),
    };
    let fail_closed = |reason: String| {
        let mut d = policy.decide(&call);
        d.decision = Verdict::Deny;
        d.reasons = vec![reason];
        d.policies = vec!["warden/session-state".to_string()];
        d
    };
    let session = match state
        .taint
        .get(&state.store, p.agent(), p.session.as_deref())
        .await
    {
        Ok(s) => s,
        Err(crate::taint::Unavailable(reason)) => return fail_closed(reason),
    };
    if let Some(text) = &p.user_request {
        // Stored before it counts: a request that cannot be stored is not trusted (stricter).
        let update = warden_store::SessionUpdate {
            text: Some(warden_core::StoredText {
                source: None,
                text: text.to_lowercase(),
                findings: Vec::new(),
            }),
            ..Default::default()
        };
        let (_, stored) = state
            .taint
            .update(
                &state.store,
                p.agent(),
                p.session.as_deref(),
                update,
                Some(&session),
                |s| s.declare_user_request(text),
            )
            .await;
        if let Err(error) = stored {
            tracing::warn!(message = "user request not stored; not trusted", %error, agent = %p.agent());
        }
    }
    let Ok(s) = session.lock() else {
        return fail_closed(
            "the session's taint state could not be read, so the call is refused (fail closed)"
                .to_string(),
        );
    };
    policy.decide_with(&call, Some(&s))
}

/// A token narrowed to some tools: a call outside them is denied whatever the policy said;
/// such a token carries no access to resources or prompts.
fn token_scope_step(p: &Proposal, decision: &mut Decision) {
    let Some(subset) = p.caller.tools.as_deref() else {
        return;
    };
    match &p.target {
        Target::Tool { .. } => {
            crate::identity::apply_token_scope(decision, Some(subset), &p.target.core_name());
        }
        Target::Read { .. } if decision.decision != Verdict::Deny => {
            decision.decision = Verdict::Deny;
            decision.reasons = vec![
                "the agent's token is narrowed to a list of tools; resources and prompts are outside its scope"
                    .to_string(),
            ];
            decision.policies = vec!["warden/token-scope".to_string()];
        }
        Target::Read { .. } => {}
    }
}

/// Append the decision record and wait until it is durable.
async fn record_step(
    state: &AppState,
    p: &Proposal,
    id: &str,
    decision: &Decision,
) -> Result<Appended, StoreError> {
    let event = records::decision(state, p, id, decision);
    state
        .store
        .ledger()
        .append(state.clock.rfc3339(), event)
        .await
}
