//! The outcome path: what an allowed call returned, recorded once, and what the session now
//! knows because of it.
//!
//! 1. bound the output (`[gateway] max_output_bytes`; a cut output says so);
//! 2. scan it with the injection detector (untrusted tools) and, if it raises the session's
//!    taint or adds data classes, store the raised taint first: a crash before step 4 leaves
//!    the session tainted, never clean;
//! 3. append the outcome record (the store redacts and seals it) and wait until it is durable;
//! 4. update the session — stored (the text sealed) before the outcome is acknowledged — and
//!    record the detector's findings as an `injection_detected` alert;
//! 5. end the call's span.
//!
//! What a crash can lose: after step 2 and before step 4, the output's text (argument
//! provenance then does not know it) but not its taint or data classes. A session update the
//! store refuses is kept in memory and the session is refused until the store takes it.

use std::time::Instant;

use serde_json::Value;
use warden_core::ledger::{InjectionEvent, LedgerEvent};
use warden_core::scope_card::Trust;
use warden_core::session::{output_text, Source};
use warden_core::{SessionState, StoredText, Taint};
use warden_store::{Appended, SessionUpdate, StoreError};

use super::CallSpan;
use crate::state::AppState;

/// An allowed call that ran (or was sent to run), as its outcome is recorded.
#[derive(Debug)]
pub(crate) struct Ran {
    pub decision_id: String,
    pub agent: String,
    /// The tool as the agent named it (or the MCP method of a read).
    pub tool: String,
    /// `server/name` when the card grants the tool: whose trust label the output takes.
    pub qualified_tool: Option<String>,
    pub session: Option<String>,
    pub correlation_id: Option<String>,
    /// When the call was sent, for its duration (when the caller does not report one).
    pub started: Instant,
    pub span: CallSpan,
}

/// What the call returned.
#[derive(Debug)]
pub(crate) struct Reported {
    /// The tool reported a failure (a JSON-RPC error, `isError`, or `status: error`).
    pub failed: bool,
    /// The upstream could not be reached at all (for the span's error type).
    pub unreachable: bool,
    pub output: Value,
    /// As reported by the caller; else measured from [`Ran::started`].
    pub duration_ms: Option<u64>,
}

/// Record the outcome of an allowed call and let its output update the session. Returns
/// where the record landed and whether the output was cut to the bound; an error when either
/// the record or the session update could not be stored.
pub(crate) async fn record_outcome(
    state: &AppState,
    ran: Ran,
    mut reported: Reported,
) -> Result<(Appended, bool), StoreError> {
    use warden_core::otel::error_type;
    // The session sees the whole output; the record keeps it up to the bound.
    let observed = std::mem::take(&mut reported.output);
    let (event, output_truncated) =
        super::records::outcome(state, &ran, observed.clone(), &reported);
    let Ran {
        decision_id,
        agent,
        qualified_tool,
        session,
        span,
        ..
    } = ran;
    let seen = qualified_tool
        .as_deref()
        .and_then(|tool| Seen::of(state, &agent, tool, &observed));
    if let Some(seen) = &seen {
        seen.store_floor(state, &agent, session.as_deref()).await;
    }
    let appended = state
        .store
        .ledger()
        .append(state.clock.rfc3339(), event)
        .await;
    let error = match (reported.unreachable, reported.failed) {
        (true, _) => Some(error_type::UPSTREAM_UNAVAILABLE),
        (false, true) => Some(error_type::TOOL_ERROR),
        _ => None,
    };
    span.end(state, &agent, error);
    let appended = appended?;
    if let Some(seen) = seen {
        seen.observe(
            state,
            &agent,
            session.as_deref(),
            &decision_id,
            appended.seq,
        )
        .await?;
    }
    Ok((appended, output_truncated))
}

/// A tool output as the session sees it: its text, the tool's labels, what the detector
/// found in it.
struct Seen {
    /// `server/name`.
    tool: String,
    trust: Trust,
    data_classes: Vec<String>,
    text: String,
    findings: Vec<warden_core::injection::Finding>,
}

impl Seen {
    /// `None` when the card does not grant the tool.
    fn of(state: &AppState, agent: &str, tool: &str, output: &Value) -> Option<Self> {
        let grant = state.policy.cards.get(agent).and_then(|c| c.tool(tool))?;
        let text = output_text(output);
        let findings = match grant.output_trust {
            Trust::Trusted => Vec::new(),
            Trust::Untrusted => state.policy.detector(agent).scan(&text),
        };
        Some(Self {
            tool: grant.qualified().to_string(),
            trust: grant.output_trust,
            data_classes: grant.data_classes.clone(),
            text,
            findings,
        })
    }

    fn taint(&self) -> Taint {
        SessionState::taint_of(self.trust, &self.findings)
    }

    /// Before the outcome record: store the taint and data classes this output gives the
    /// session, unless the cached session already has them (the store has at least what is
    /// cached). A failure here is not fatal: the update after the record tries again.
    async fn store_floor(&self, state: &AppState, agent: &str, session: Option<&str>) {
        let taint = self.taint();
        let covered = state.taint.peek(agent, session).is_some_and(|s| {
            s.lock().is_ok_and(|s| {
                s.taint() >= taint
                    && self
                        .data_classes
                        .iter()
                        .all(|c| s.read_classes().contains(c))
            })
        });
        if covered || (taint == Taint::Clean && self.data_classes.is_empty()) {
            return;
        }
        let update = SessionUpdate {
            taint,
            read_classes: self.data_classes.clone(),
            text: None,
            tool: Some(self.tool.clone()),
        };
        let (_, stored) = state
            .taint
            .update(&state.store, agent, session, update, None, |s| {
                s.raise_taint(taint);
            })
            .await;
        if let Err(error) = stored {
            tracing::error!(message = "session taint not stored before the outcome", %error, agent = %agent);
        }
    }

    /// After the outcome record (`outcome_seq`): store the session update (the text sealed by
    /// the store) and apply it; if the detector fired, append an `injection_detected` record
    /// and log an alert.
    async fn observe(
        self,
        state: &AppState,
        agent: &str,
        session: Option<&str>,
        decision_id: &str,
        outcome_seq: u64,
    ) -> Result<(), StoreError> {
        let taint = self.taint();
        let update = SessionUpdate {
            taint,
            read_classes: self.data_classes.clone(),
            text: Some(StoredText {
                source: (self.trust == Trust::Untrusted).then(|| Source {
                    tool: self.tool.clone(),
                    seq: outcome_seq,
                }),
                text: self.text.to_lowercase(),
                findings: self.findings.clone(),
            }),
            tool: Some(self.tool.clone()),
        };
        // The state before, for the alert's `taint_before` (when it cannot be read, the
        // update still goes to the store).
        let held = state.taint.get(&state.store, agent, session).await.ok();
        let (effect, stored) = state
            .taint
            .update(&state.store, agent, session, update, held.as_ref(), |s| {
                s.record_scanned(
                    &self.tool,
                    self.trust,
                    &self.data_classes,
                    &self.text,
                    outcome_seq,
                    self.findings.clone(),
                )
            })
            .await;
        if !self.findings.is_empty() {
            let (before, after) =
                effect.map_or((Taint::Clean, taint), |e| (e.taint_before, e.taint_after));
            alert(
                state,
                agent,
                session,
                decision_id,
                &self.tool,
                outcome_seq,
                self.findings,
                before,
                after,
            )
            .await;
        }
        if let Err(error) = &stored {
            tracing::error!(message = "session update not stored; the session is refused until it is", %error, agent = %agent);
        }
        stored
    }
}

/// The detector fired: an `injection_detected` record and a logged alert.
#[allow(clippy::too_many_arguments)]
async fn alert(
    state: &AppState,
    agent: &str,
    session: Option<&str>,
    decision_id: &str,
    tool: &str,
    outcome_seq: u64,
    findings: Vec<warden_core::injection::Finding>,
    before: Taint,
    after: Taint,
) {
    let rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
    tracing::warn!(
        message = "ALERT: injected instructions detected in tool output; session is suspicious",
        agent = %agent,
        session = session.unwrap_or_default(),
        tool = %tool,
        outcome_seq,
        rules = %rules.join(","),
    );
    let event = LedgerEvent::InjectionDetected(InjectionEvent {
        decision_id: decision_id.to_string(),
        agent: agent.to_string(),
        session: session.map(str::to_string),
        tool: tool.to_string(),
        outcome_seq,
        taint_before: before.as_str().to_string(),
        taint_after: after.as_str().to_string(),
        findings,
    });
    if let Err(error) = state
        .store
        .ledger()
        .append(state.clock.rfc3339(), event)
        .await
    {
        tracing::error!(message = "injection alert not recorded", %error);
    }
}
