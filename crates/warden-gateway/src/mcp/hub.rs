//! The `/mcp` endpoint's shared state: the upstreams, the open sessions with their defaults,
//! and the calls each session has in flight (`[gateway] max_concurrent_calls_per_session`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::upstream::Upstream;

/// Most `/mcp` sessions one agent keeps open; past it the agent's oldest is ended.
pub const MAX_SESSIONS_PER_AGENT: usize = 1_000;

/// An open `/mcp` session.
#[derive(Debug, Clone)]
pub(super) struct McpSession {
    pub(super) agent: String,
    /// The correlation id the client gave in `initialize` (`_meta["warden/correlation_id"]`),
    /// for the session's calls that name none.
    pub(super) correlation_id: Option<String>,
}

/// The upstreams and the open sessions.
#[derive(Default)]
pub struct McpHub {
    pub upstreams: HashMap<String, Upstream>,
    /// Session id → its agent and defaults.
    pub(super) sessions: Mutex<HashMap<String, McpSession>>,
    /// Session id → `tools/call` requests in flight.
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    pub(super) max_in_flight: usize,
    /// Definitions (server, tool, hash) already checked against their pins by this process:
    /// upstream tool lists only change when an upstream restarts, so a listing need not go to
    /// the store for each tool every time.
    pub(super) checked: Mutex<std::collections::HashSet<(String, String, String)>>,
}

impl McpHub {
    pub fn new(upstreams: HashMap<String, Upstream>, max_in_flight: usize) -> Self {
        Self {
            upstreams,
            sessions: Mutex::new(HashMap::new()),
            in_flight: Arc::new(Mutex::new(HashMap::new())),
            max_in_flight: max_in_flight.max(1),
            checked: Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// Open a session (`id` from [`crate::new_id`], so ids sort by age). An agent keeps at most
    /// [`MAX_SESSIONS_PER_AGENT`] open: past it its oldest is ended (its client gets `404` and
    /// initializes again). Clients that never send `DELETE /mcp` — the official SDK's `close()`
    /// does not — would otherwise grow the table for as long as the gateway runs; one agent
    /// can only end its own sessions this way.
    pub(super) fn open_session(&self, id: String, session: McpSession) {
        let Ok(mut map) = self.sessions.lock() else {
            return;
        };
        let mine: Vec<&String> = map
            .iter()
            .filter(|(_, s)| s.agent == session.agent)
            .map(|(k, _)| k)
            .collect();
        if mine.len() >= MAX_SESSIONS_PER_AGENT {
            if let Some(oldest) = mine.into_iter().min().cloned() {
                map.remove(&oldest);
            }
        }
        map.insert(id, session);
    }

    /// Count a call in flight for a session; `None` when the session is at its limit.
    pub(super) fn admit(&self, session: &str) -> Option<InFlight> {
        let mut map = self.in_flight.lock().ok()?;
        let n = map.entry(session.to_string()).or_insert(0);
        if *n >= self.max_in_flight {
            return None;
        }
        *n += 1;
        Some(InFlight {
            map: Arc::clone(&self.in_flight),
            session: session.to_string(),
        })
    }
}

/// A call in flight; dropping it frees the session's slot.
pub(super) struct InFlight {
    map: Arc<Mutex<HashMap<String, usize>>>,
    session: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut map) = self.map.lock() {
            if let Some(n) = map.get_mut(&self.session) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&self.session);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn session(agent: &str) -> McpSession {
        McpSession {
            agent: agent.to_string(),
            correlation_id: None,
        }
    }

    #[test]
    fn mcp_sessions_never_closed_by_their_clients_stay_bounded_per_agent() {
        let hub = McpHub::new(HashMap::new(), 4);
        hub.open_session(crate::new_id(), session("other"));
        let first = crate::new_id();
        hub.open_session(first.clone(), session("flooder"));
        for _ in 0..(MAX_SESSIONS_PER_AGENT + 500) {
            hub.open_session(crate::new_id(), session("flooder"));
        }
        let map = hub.sessions.lock().unwrap();
        let flooder = map.values().filter(|s| s.agent == "flooder").count();
        assert_eq!(flooder, MAX_SESSIONS_PER_AGENT);
        assert!(!map.contains_key(&first), "the oldest went first");
        assert_eq!(
            map.values().filter(|s| s.agent == "other").count(),
            1,
            "another agent's session stays"
        );
    }

    #[test]
    fn a_finished_call_leaves_no_in_flight_entry() {
        let hub = McpHub::new(HashMap::new(), 4);
        drop(hub.admit("s-1").unwrap());
        assert!(hub.in_flight.lock().unwrap().is_empty());
    }
}
