//! Per-agent call-rate limits from the scope card (`[rate_limits]`), over sliding windows.
//!
//! Every proposal of an agent counts, whatever the policy then decides: an agent stuck in a
//! loop of refused calls is slowed down too. A proposal over a limit is not counted. The
//! execution of an approved call is the same call as its proposal: it uses the proposal's
//! slot while that is still in the window, and takes a new one once it has left it.
//! Windows are bounded: an agent holds at most its limits' worth of entries.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use warden_core::scope_card::{Access, RateLimits};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// When a call was counted, and the decision it was counted for.
#[derive(Debug)]
struct Slot {
    at_ms: i64,
    decision_id: String,
}

/// An agent's recent calls and recent writes.
#[derive(Debug, Default)]
struct AgentWindow {
    calls: VecDeque<Slot>,
    writes: VecDeque<Slot>,
}

/// What a proposal asks of the windows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admission<'a> {
    pub agent: &'a str,
    /// The card's access for the tool (`None`: not on the card, or not a tool call).
    pub access: Option<Access>,
    pub limits: &'a RateLimits,
    pub now_ms: i64,
    /// The id this proposal is recorded under.
    pub decision_id: &'a str,
    /// For the execution of an approved call: the held proposal's decision id, whose slot
    /// it may use.
    pub proposal_id: Option<&'a str>,
}

#[derive(Debug, Default)]
pub struct RateWindows {
    inner: Mutex<HashMap<String, AgentWindow>>,
}

fn expire(window: &mut VecDeque<Slot>, now_ms: i64, span_ms: i64) {
    while window
        .front()
        .is_some_and(|s| now_ms.saturating_sub(s.at_ms) >= span_ms)
    {
        window.pop_front();
    }
}

fn holds(window: &VecDeque<Slot>, id: Option<&str>) -> bool {
    id.is_some_and(|id| window.iter().any(|s| s.decision_id == id))
}

impl RateWindows {
    /// Count a proposal; `Some(reason)` when it is over a limit (and then it is not counted).
    pub(crate) fn admit(&self, a: Admission<'_>) -> Option<String> {
        let limits = a.limits;
        if limits.calls_per_minute.is_none() && limits.writes_per_hour.is_none() {
            return None;
        }
        let Ok(mut map) = self.inner.lock() else {
            return Some("the rate limiter is unavailable; denied (fail closed)".to_string());
        };
        let AgentWindow { calls, writes } = map.entry(a.agent.to_string()).or_default();
        expire(calls, a.now_ms, MINUTE_MS);
        expire(writes, a.now_ms, HOUR_MS);
        let agent = a.agent;
        let is_write = a.access == Some(Access::Write);
        let count_call = !holds(calls, a.proposal_id);
        let count_write = is_write && !holds(writes, a.proposal_id);
        if let (Some(limit), true) = (limits.calls_per_minute, count_call) {
            if calls.len() >= limit as usize {
                return Some(format!(
                    "`{agent}` has made {limit} calls in the last minute, its scope card's limit"
                ));
            }
        }
        if let (Some(limit), true) = (limits.writes_per_hour, count_write) {
            if writes.len() >= limit as usize {
                return Some(format!(
                    "`{agent}` has made {limit} write calls in the last hour, its scope card's limit"
                ));
            }
        }
        let slot = || Slot {
            at_ms: a.now_ms,
            decision_id: a.decision_id.to_string(),
        };
        if count_call && limits.calls_per_minute.is_some() {
            calls.push_back(slot());
        }
        if count_write && limits.writes_per_hour.is_some() {
            writes.push_back(slot());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask<'a>(limits: &'a RateLimits, id: &'a str, now_ms: i64) -> Admission<'a> {
        Admission {
            agent: "a",
            access: Some(Access::Write),
            limits,
            now_ms,
            decision_id: id,
            proposal_id: None,
        }
    }

    #[test]
    fn an_execution_uses_its_proposals_slot_while_it_is_in_the_window() {
        let limits = RateLimits {
            calls_per_minute: None,
            writes_per_hour: Some(1),
        };
        let w = RateWindows::default();
        assert!(w.admit(ask(&limits, "held", 0)).is_none());
        assert!(w.admit(ask(&limits, "other", 1_000)).is_some());
        let release = Admission {
            proposal_id: Some("held"),
            ..ask(&limits, "exec", 2_000)
        };
        assert!(w.admit(release).is_none(), "the proposal's slot stands");
        // An hour on, the proposal has left the window: the execution needs a slot of its own.
        assert!(w.admit(ask(&limits, "next", HOUR_MS + 1)).is_none());
        let late = Admission {
            proposal_id: Some("held"),
            ..ask(&limits, "exec2", HOUR_MS + 2)
        };
        assert!(w.admit(late).is_some());
    }

    #[test]
    fn windows_hold_no_more_entries_than_the_limit() {
        let limits = RateLimits {
            calls_per_minute: Some(3),
            writes_per_hour: None,
        };
        let w = RateWindows::default();
        for i in 0..100 {
            let id = format!("d{i}");
            let _ = w.admit(ask(&limits, &id, i));
        }
        let len = w.inner.lock().map(|m| m["a"].calls.len()).unwrap_or(0);
        assert_eq!(len, 3);
    }
}
