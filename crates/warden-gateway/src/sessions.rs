//! Session state for prompt-injection containment, per (agent, session id), in memory.
//!
//! The state itself lives in the core ([`warden_core::SessionState`]); this module keeps one per
//! session, feeds it tool outputs, and writes the detector's findings to the ledger as
//! `injection_detected` alert records. A call that names no session shares the agent's
//! default session (`""`), so leaving the session id out never escapes taint.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use warden_core::ledger::{InjectionEvent, LedgerEvent};
use warden_core::scope_card::Trust;
use warden_core::session::output_text;
use warden_core::{CompiledPolicy, SessionState};
use warden_store::Ledger;

use crate::state::now_rfc3339;

/// Most sessions kept; past it the least recently used are forgotten (a forgotten session
/// starts clean again, so keep this well above the number of live sessions).
const MAX_SESSIONS: usize = 10_000;

struct Entry {
    state: Arc<Mutex<SessionState>>,
    used: u64,
}

/// The gateway's sessions.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<(String, String), Entry>>,
    clock: AtomicU64,
}

impl Sessions {
    /// The state of one session (created clean on first use).
    pub fn get(&self, agent: &str, session: Option<&str>) -> Arc<Mutex<SessionState>> {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let key = (agent.to_string(), session.unwrap_or_default().to_string());
        let Ok(mut map) = self.map.lock() else {
            // A poisoned map: hand out a fresh state marked untrusted, never a clean one.
            let mut s = SessionState::default();
            s.record_text(
                "warden/sessions",
                Trust::Untrusted,
                &[],
                "",
                0,
                &warden_core::injection::Detector::default(),
            );
            return Arc::new(Mutex::new(s));
        };
        if map.len() >= MAX_SESSIONS && !map.contains_key(&key) {
            let mut ages: Vec<u64> = map.values().map(|e| e.used).collect();
            ages.sort_unstable();
            let cutoff = ages.get(MAX_SESSIONS / 10).copied().unwrap_or(u64::MAX);
            map.retain(|_, e| e.used > cutoff);
        }
        let entry = map.entry(key).or_insert_with(|| Entry {
            state: Arc::new(Mutex::new(SessionState::default())),
            used: now,
        });
        entry.used = now;
        Arc::clone(&entry.state)
    }

    /// Number of sessions kept.
    pub fn len(&self) -> usize {
        self.map.lock().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A tool output reached the agent: update its session (trust label, data classes, detector)
/// and, if the detector fired, append an `injection_detected` record and log an alert.
/// `tool` is the tool as `server/name`; `outcome_seq` the ledger seq of the outcome record.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn observe_output(
    policy: &CompiledPolicy,
    ledger: &Ledger,
    sessions: &Sessions,
    agent: &str,
    session: Option<&str>,
    decision_id: &str,
    tool: &str,
    output: &Value,
    outcome_seq: u64,
) {
    let Some(grant) = policy.cards.get(agent).and_then(|c| c.tool(tool)) else {
        return;
    };
    let text = output_text(output);
    let state = sessions.get(agent, session);
    let effect = {
        let Ok(mut s) = state.lock() else { return };
        s.record_text(
            grant.qualified(),
            grant.output_trust,
            &grant.data_classes,
            &text,
            outcome_seq,
            policy.detector(agent),
        )
    };
    if effect.findings.is_empty() {
        return;
    }
    let rules: Vec<&str> = effect.findings.iter().map(|f| f.rule.as_str()).collect();
    tracing::warn!(
        message = "ALERT: injected instructions detected in tool output; session is suspicious",
        agent = %agent,
        session = session.unwrap_or_default(),
        tool = %grant.qualified(),
        outcome_seq,
        rules = %rules.join(","),
    );
    let event = LedgerEvent::InjectionDetected(InjectionEvent {
        decision_id: decision_id.to_string(),
        agent: agent.to_string(),
        session: session.map(str::to_string),
        tool: grant.qualified().to_string(),
        outcome_seq,
        taint_before: effect.taint_before.as_str().to_string(),
        taint_after: effect.taint_after.as_str().to_string(),
        findings: effect.findings,
    });
    if let Err(error) = ledger.append(now_rfc3339(), event).await {
        tracing::error!(message = "injection alert not recorded", %error);
    }
}
