//! Deciding: a proposed call (or a read of a resource or prompt) in, a [`Decision`] with its
//! reasons out. Pure: the same policy, call and session give the same decision.
//!
//! A call the card grants is turned into a Cedar request — the typed arguments and, when the
//! evaluated policies may read them, the session's taint, provenance and egress facts — and
//! evaluated against the slice of policies for its (agent, tool) pair.

use std::collections::BTreeSet;

use cedar_policy::{
    Context, Decision as CedarDecision, EntityUid, PolicySet, Request, RestrictedExpression,
};

use super::generate::is_guard_id;
use super::index::Reads;
use super::schema::{cedar_type, placeholder, to_cedar};
use super::{
    AgentIndex, CallRequest, CompiledPolicy, Decision, PolicyMeta, ReadTarget, ToolIndex, Verdict,
};
use crate::args::{check_arguments, Violation};
use crate::scope_card::{ScopeCard, Tier, ToolGrant};
use crate::session::{egress_off_list, ArgProvenance, SessionState, Source, Taint};

/// Why [`CompiledPolicy::request_conforms`] found a request not to conform.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The card does not grant the call, or its arguments cannot be expressed.
    #[error("no request could be built")]
    NotBuilt,
    /// The built request lacks a part (`context`, `principal`, `action`, `resource`).
    #[error("no {0}")]
    Missing(&'static str),
    /// The request does not conform to the schema.
    #[error(transparent)]
    Schema(Box<cedar_policy::RequestValidationError>),
}

/// A call's card, grant and indexes, once the card is known to grant the tool.
struct Granted<'p> {
    card: &'p ScopeCard,
    grant: &'p ToolGrant,
    ids: &'p AgentIndex,
    tool_ids: &'p ToolIndex,
}

/// Why a call is refused before any policy runs.
enum NotGranted<'p> {
    /// The agent has no scope card.
    NoCard,
    /// The card does not grant the tool.
    NotOnCard(&'p ScopeCard),
    /// No slice was built for the pair (cannot happen for a compiled card; fail closed).
    NoSlice(&'p ToolGrant),
}

/// What a session contributes to a request's context.
struct SessionFacts<'a> {
    taint: Taint,
    provenance: &'a [ArgProvenance],
    read_classes: Option<&'a BTreeSet<String>>,
    sources: &'a [Source],
    egress: &'static str,
    off_list: &'a [String],
}

impl<'a> SessionFacts<'a> {
    fn clean(grant: &ToolGrant) -> SessionFacts<'static> {
        SessionFacts {
            taint: Taint::Clean,
            provenance: &[],
            read_classes: None,
            sources: &[],
            egress: if grant.egress.is_some() {
                "allowed"
            } else {
                "none"
            },
            off_list: &[],
        }
    }

    fn of(
        session: Option<&'a SessionState>,
        grant: &ToolGrant,
        provenance: &'a [ArgProvenance],
        off_list: &'a [String],
    ) -> Self {
        SessionFacts {
            taint: session.map_or(Taint::Clean, SessionState::taint),
            provenance,
            read_classes: session.map(SessionState::read_classes),
            sources: session.map_or(&[], SessionState::untrusted_sources),
            egress: match (&grant.egress, off_list.is_empty()) {
                (None, _) => "none",
                (Some(_), true) => "allowed",
                (Some(_), false) => "off_list",
            },
            off_list,
        }
    }
}

impl CompiledPolicy {
    /// Decide a read of an MCP resource or prompt. Scope cards grant these by name or URI
    /// prefix (`[[resources]]`, `[[prompts]]`); anything not listed is denied, and so is
    /// everything when the agent is bound to another environment.
    pub fn decide_read(&self, agent: &str, target: &ReadTarget<'_>) -> Decision {
        let (kind, server, what) = match target {
            ReadTarget::Resource { server, uri } => ("resource", *server, *uri),
            ReadTarget::Prompt { server, name } => ("prompt", *server, *name),
        };
        let label = format!("{server}/{kind}:{what}");
        let Some(card) = self.cards.get(agent) else {
            return self.deny(
                Some(label),
                vec![format!(
                    "agent `{agent}` has no scope card, so it may read nothing (deny by default)"
                )],
                Vec::new(),
            );
        };
        if card.environment != self.environment {
            return self.deny(
                Some(label),
                vec![format!(
                    "agent `{}` is bound to the `{}` environment and this gateway serves `{}`",
                    card.id, card.environment, self.environment
                )],
                vec!["warden/environment".to_string()],
            );
        }
        if let ReadTarget::Resource { uri, .. } = target {
            if let Some(why) = crate::scope_card::uri_refusal(uri) {
                return self.deny(
                    Some(label),
                    vec![format!(
                        "{why}; Warden refuses it rather than guess (deny by default)"
                    )],
                    vec!["warden/resource-uri".to_string()],
                );
            }
        }
        let granted = match target {
            ReadTarget::Resource { server, uri } => card
                .resource(server, uri)
                .map(|g| format!("the card grants resources `{}` on `{server}`", g.uri)),
            ReadTarget::Prompt { server, name } => card
                .prompt(server, name)
                .map(|_| format!("the card grants prompt `{name}` on `{server}`")),
        };
        match granted {
            Some(reason) => Decision {
                decision: Verdict::Allow,
                tier: Tier::Auto,
                reasons: vec![format!("{reason} ({})", card.path)],
                policies: vec![format!("card/{}/{kind}s", card.id)],
                violations: Vec::new(),
                tool: Some(label),
                policy_version: self.version.clone(),
                taint: None,
                provenance: Vec::new(),
                egress_off_list: Vec::new(),
            },
            None => self.deny(
                Some(label),
                vec![format!(
                    "{kind} `{what}` of `{server}` is not on the scope card of `{}` ({}), so the agent may not read it (deny by default)",
                    card.id, card.path
                )],
                Vec::new(),
            ),
        }
    }

    /// Build the Cedar request for a call the card grants. Exposed for benchmarks and tests.
    pub fn cedar_request(&self, call: &CallRequest<'_>) -> Option<(Request, Vec<Violation>)> {
        let card = self.cards.get(call.agent)?;
        let i = card.tool_index(call.tool)?;
        let grant = card.tools.get(i)?;
        let ids = self.index.get(&card.id)?;
        let tool_ids = ids.tools.get(i)?;
        self.request_for(
            grant,
            &ids.uid,
            tool_ids,
            call,
            Reads::ALL,
            &SessionFacts::clean(grant),
        )
    }

    /// Validate a Cedar request against the schema (used by tests to pin that requests built
    /// by [`Self::cedar_request`] conform).
    pub fn request_conforms(&self, call: &CallRequest<'_>) -> Result<(), RequestError> {
        let (req, _) = self.cedar_request(call).ok_or(RequestError::NotBuilt)?;
        let ctx = req
            .context()
            .ok_or(RequestError::Missing("context"))?
            .clone();
        let p = req
            .principal()
            .ok_or(RequestError::Missing("principal"))?
            .clone();
        let a = req.action().ok_or(RequestError::Missing("action"))?.clone();
        let r = req
            .resource()
            .ok_or(RequestError::Missing("resource"))?
            .clone();
        Request::new(p, a, r, ctx, Some(&self.schema))
            .map_err(|e| RequestError::Schema(Box::new(e)))?;
        Ok(())
    }

    /// Decide a proposed call outside any session state (a clean session). Pure: the same
    /// policy and call give the same decision.
    pub fn decide(&self, call: &CallRequest<'_>) -> Decision {
        self.decide_with(call, None)
    }

    /// Decide a proposed call in a session: its taint, the data classes it read and the
    /// provenance of the call's arguments reach Cedar as context (`taint`, `read_classes`,
    /// `untrusted_args`, `untrusted_sources`, `egress`, `egress_off_list`). Pure.
    pub fn decide_with(&self, call: &CallRequest<'_>, session: Option<&SessionState>) -> Decision {
        let g = match self.granted(call) {
            Ok(g) => g,
            Err(why) => return self.refuse(why, call),
        };
        let qualified = g.grant.qualified().to_string();
        let provenance = session
            .filter(|s| s.has_untrusted_text())
            .map(|s| s.provenance(call.args))
            .unwrap_or_default();
        let off_list = g
            .grant
            .egress
            .as_ref()
            .map(|e| egress_off_list(e, call.args))
            .unwrap_or_default();
        let facts = SessionFacts::of(session, g.grant, &provenance, &off_list);
        let Some((request, violations, slice)) = self.request_and_slice(&g, call, &facts) else {
            return self.deny(
                Some(qualified),
                vec![
                    "the call could not be expressed as a policy request; denied (fail closed)"
                        .to_string(),
                ],
                Vec::new(),
            );
        };
        let response = self
            .authorizer
            .is_authorized(&request, slice, &self.entities);
        let diagnostics = response.diagnostics();
        let mut determining: Vec<&PolicyMeta> = diagnostics
            .reason()
            .filter_map(|id| self.meta.get(id))
            .collect();
        determining.sort_by(|a, b| a.id.cmp(&b.id));
        let policies: Vec<String> = determining.iter().map(|m| m.id.clone()).collect();
        let errors: Vec<String> = diagnostics.errors().map(ToString::to_string).collect();
        if !errors.is_empty() {
            // Cedar skips a policy that fails to evaluate; a skipped forbid must not let a
            // call through, so any evaluation error denies.
            let mut reasons: Vec<String> = errors
                .into_iter()
                .map(|e| {
                    format!(
                        "a policy could not be evaluated, so the call is denied (fail closed): {e}"
                    )
                })
                .collect();
            reasons.extend(violations.iter().map(|v| v.message.clone()));
            let mut d = self.deny(Some(qualified), reasons, policies);
            d.violations = violations;
            return d;
        }
        let (decision, tier, reasons) = match response.decision() {
            CedarDecision::Deny => {
                let reasons = deny_reasons(
                    g.card,
                    &qualified,
                    &determining,
                    &violations,
                    session,
                    &facts,
                );
                (Verdict::Deny, g.grant.approval, reasons)
            }
            CedarDecision::Allow => allow_verdict(&determining, session, &facts),
        };
        let taint = (facts.taint != Taint::Clean).then_some(facts.taint);
        Decision {
            decision,
            tier,
            reasons,
            policies,
            violations,
            tool: Some(qualified),
            policy_version: self.version.clone(),
            taint,
            provenance,
            egress_off_list: off_list,
        }
    }

    /// The card, grant and indexes of a call, or why it is refused before any policy runs.
    fn granted(&self, call: &CallRequest<'_>) -> Result<Granted<'_>, NotGranted<'_>> {
        let card = self.cards.get(call.agent).ok_or(NotGranted::NoCard)?;
        let found = card
            .tool_index(call.tool)
            .and_then(|i| Some((card.tools.get(i)?, self.index.get(&card.id)?, i)));
        let (grant, ids, i) = found.ok_or(NotGranted::NotOnCard(card))?;
        let tool_ids = ids.tools.get(i).ok_or(NotGranted::NoSlice(grant))?;
        Ok(Granted {
            card,
            grant,
            ids,
            tool_ids,
        })
    }

    /// The denial of a call refused before any policy runs (deny by default, fail closed).
    fn refuse(&self, why: NotGranted<'_>, call: &CallRequest<'_>) -> Decision {
        match why {
            NotGranted::NoCard => self.deny(
                None,
                vec![format!(
                    "agent `{}` has no scope card, so it may call nothing (deny by default)",
                    call.agent
                )],
                Vec::new(),
            ),
            NotGranted::NotOnCard(card) => self.deny(
                None,
                vec![format!(
                    "tool `{}` is not on the scope card of `{}` ({}), so the agent may not call it (deny by default)",
                    call.tool, card.id, card.path
                )],
                Vec::new(),
            ),
            NotGranted::NoSlice(grant) => self.deny(
                Some(grant.qualified().to_string()),
                vec!["no policy slice for this agent and tool; denied (fail closed)".to_string()],
                Vec::new(),
            ),
        }
    }

    /// The request for a call and the slice to evaluate it against. The built-in forbids and
    /// the guards can only fire on bad arguments, a foreign environment, a tainted session or
    /// an off-list destination; when none holds, the call is evaluated without them, with
    /// only the context the remaining policies may read.
    fn request_and_slice<'p>(
        &self,
        g: &Granted<'p>,
        call: &CallRequest<'_>,
        facts: &SessionFacts<'_>,
    ) -> Option<(Request, Vec<Violation>, &'p PolicySet)> {
        let guards_quiet =
            facts.taint == Taint::Clean && facts.provenance.is_empty() && facts.off_list.is_empty();
        let tool_ids = g.tool_ids;
        if g.ids.environment_ok && guards_quiet {
            let built = self.request_for(
                g.grant,
                &g.ids.uid,
                tool_ids,
                call,
                tool_ids.fast_reads,
                facts,
            );
            if let Some((request, violations)) = built.filter(|(_, v)| v.is_empty()) {
                return Some((request, violations, &tool_ids.fast));
            }
            // Bad arguments: the whole slice decides, with the context it may read.
        }
        let (request, violations) = self.request_for(
            g.grant,
            &g.ids.uid,
            tool_ids,
            call,
            tool_ids.slice_reads,
            facts,
        )?;
        Some((request, violations, &tool_ids.slice))
    }

    fn request_for(
        &self,
        grant: &ToolGrant,
        agent_uid: &EntityUid,
        tool_ids: &ToolIndex,
        call: &CallRequest<'_>,
        reads: Reads,
        facts: &SessionFacts<'_>,
    ) -> Option<(Request, Vec<Violation>)> {
        let mut violations = check_arguments(grant, call.args);
        let args = if reads.args {
            typed_args(grant, call, &mut violations)
        } else {
            Vec::new()
        };
        let args = RestrictedExpression::new_record(args).ok()?;
        let string = |s: &str| RestrictedExpression::new_string(s.to_string());
        let mut pairs = vec![
            ("environment".to_string(), string(self.environment.as_str())),
            (
                "args_valid".to_string(),
                RestrictedExpression::new_bool(violations.is_empty()),
            ),
            (
                "session".to_string(),
                string(call.session.unwrap_or_default()),
            ),
            (
                "correlation_id".to_string(),
                string(call.correlation_id.unwrap_or_default()),
            ),
            ("tool_access".to_string(), string(grant.access.as_str())),
            ("tool_impact".to_string(), string(grant.impact.as_str())),
            ("args".to_string(), args),
        ];
        if reads.session {
            pairs.extend(session_context(facts));
        }
        let context = Context::from_pairs(pairs).ok()?;
        let request = Request::new(
            agent_uid.clone(),
            tool_ids.action.clone(),
            tool_ids.resource.clone(),
            context,
            None,
        )
        .ok()?;
        Some((request, violations))
    }

    fn deny(&self, tool: Option<String>, reasons: Vec<String>, policies: Vec<String>) -> Decision {
        Decision {
            decision: Verdict::Deny,
            tier: Tier::Auto,
            reasons,
            policies,
            violations: Vec::new(),
            tool,
            policy_version: self.version.clone(),
            taint: None,
            provenance: Vec::new(),
            egress_off_list: Vec::new(),
        }
    }
}

/// The typed arguments of a call's context. Required arguments are always present (the
/// arguments forbid wins when they are missing); optional ones only when well-typed. A value
/// Cedar cannot hold adds a violation.
fn typed_args(
    grant: &ToolGrant,
    call: &CallRequest<'_>,
    violations: &mut Vec<Violation>,
) -> Vec<(String, RestrictedExpression)> {
    let mut args = Vec::new();
    for (name, c) in &grant.args {
        if cedar_type(c.kind).is_none() {
            continue;
        }
        let given = call.args.get(name).filter(|v| !v.is_null());
        let bad = violations.iter().any(|v| &v.argument == name);
        let value = match given.filter(|_| !bad) {
            Some(v) => match to_cedar(c.kind, v) {
                Some(x) => Some(x),
                None => {
                    violations.push(Violation {
                        argument: name.clone(),
                        message: format!(
                            "argument `{name}` is too large or too precise to evaluate against policy"
                        ),
                    });
                    None
                }
            },
            None => None,
        };
        match value {
            Some(x) => args.push((name.clone(), x)),
            None if c.required => {
                if let Some(p) = placeholder(c.kind) {
                    args.push((name.clone(), p));
                }
            }
            None => {}
        }
    }
    args
}

/// The session attributes of a request's context.
fn session_context(
    facts: &SessionFacts<'_>,
) -> impl Iterator<Item = (String, RestrictedExpression)> {
    [
        (
            "taint".to_string(),
            RestrictedExpression::new_string(facts.taint.as_str().to_string()),
        ),
        (
            "untrusted_args".to_string(),
            RestrictedExpression::new_set(facts.provenance.iter().map(|p| {
                RestrictedExpression::new_string(
                    p.argument.split('.').next().unwrap_or_default().to_string(),
                )
            })),
        ),
        (
            "read_classes".to_string(),
            RestrictedExpression::new_set(
                facts
                    .read_classes
                    .into_iter()
                    .flatten()
                    .map(|c| RestrictedExpression::new_string(c.clone())),
            ),
        ),
        (
            "untrusted_sources".to_string(),
            RestrictedExpression::new_set(
                facts
                    .sources
                    .iter()
                    .map(|s| RestrictedExpression::new_string(s.tool.clone())),
            ),
        ),
        (
            "egress".to_string(),
            RestrictedExpression::new_string(facts.egress.to_string()),
        ),
        (
            "egress_off_list".to_string(),
            RestrictedExpression::new_set(
                facts
                    .off_list
                    .iter()
                    .map(|d| RestrictedExpression::new_string(d.clone())),
            ),
        ),
    ]
    .into_iter()
}

/// The reasons of a denial: the forbids (or that nothing permits), the broken constraints,
/// and what set off a guard.
fn deny_reasons(
    card: &ScopeCard,
    qualified: &str,
    determining: &[&PolicyMeta],
    violations: &[Violation],
    session: Option<&SessionState>,
    facts: &SessionFacts<'_>,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if determining.is_empty() {
        reasons.push(format!(
            "no policy permits `{}` to call `{qualified}` here (deny by default)",
            card.id
        ));
    }
    for m in determining {
        if m.id == super::ARGUMENTS_POLICY {
            reasons.extend(violations.iter().map(|v| v.message.clone()));
        } else {
            reasons.push(m.because.clone());
        }
    }
    if determining.iter().any(|m| is_guard_id(&m.id)) {
        reasons.extend(guard_details(session, facts));
    }
    reasons
}

/// The verdict, tier and reasons of a call Cedar permits: the highest tier of the permits
/// that matched, lowered by an explicit auto-approval, holding the call at `approve` and
/// `two_person`.
fn allow_verdict(
    determining: &[&PolicyMeta],
    session: Option<&SessionState>,
    facts: &SessionFacts<'_>,
) -> (Verdict, Tier, Vec<String>) {
    let mut tier = determining
        .iter()
        .map(|m| m.tier)
        .max()
        .unwrap_or(Tier::Auto);
    let mut reasons: Vec<String> = determining.iter().map(|m| m.because.clone()).collect();
    let guarded = determining.iter().any(|m| is_guard_id(&m.id));
    // An explicit auto-approve rule lowers `approve` (never `two_person`, never a session
    // guard's hold) to `review`: the call runs now, is logged as auto-approved by that
    // policy, and still waits for a person's review.
    let auto = determining
        .iter()
        .find_map(|m| m.auto_approve.as_ref().map(|why| (&m.id, why)));
    if let Some((id, why)) = auto {
        if tier == Tier::Approve && !guarded {
            tier = Tier::Review;
            reasons.push(format!(
                "auto-approved by explicit policy `{id}`: {why} (tier approve lowered to review: runs now, reviewed afterwards)"
            ));
        }
    }
    if guarded {
        reasons.extend(guard_details(session, facts));
    }
    let verdict = if tier.holds_call() {
        reasons.push(match tier {
            Tier::TwoPerson => {
                "tier two_person: two different people must approve before it runs".to_string()
            }
            _ => "tier approve: a person must approve before it runs".to_string(),
        });
        Verdict::ApprovalRequired
    } else {
        if tier == Tier::Review {
            reasons.push(
                "tier review: runs now; the ledger marks it for a person to review afterwards"
                    .to_string(),
            );
        }
        Verdict::Allow
    };
    (verdict, tier, reasons)
}

/// Reasons that explain a taint or egress guard: what the session read, what the detector
/// found, where argument values came from, which destinations are off the list.
fn guard_details(session: Option<&SessionState>, facts: &SessionFacts<'_>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = session {
        if facts.taint != Taint::Clean {
            let read: Vec<String> = s
                .untrusted_sources()
                .iter()
                .rev()
                .take(3)
                .map(|src| format!("`{}` (seq {})", src.tool, src.seq))
                .collect();
            out.push(format!(
                "session taint is {}: it read untrusted output of {}",
                facts.taint.as_str(),
                read.join(", ")
            ));
        }
        for (src, f) in s.findings().iter().take(3) {
            out.push(format!(
                "injection detector: rule `{}` in output of `{}` (seq {}, bytes {}..{}): \"{}\"",
                f.rule, src.tool, src.seq, f.start, f.end, f.excerpt
            ));
        }
    }
    out.extend(facts.provenance.iter().map(ArgProvenance::describe));
    for d in facts.off_list {
        out.push(format!(
            "destination `{d}` is not on the tool's egress allowlist"
        ));
    }
    out
}
