//! The `/mcp` endpoint's shared state: the upstreams, the open sessions with their defaults,
//! and the calls each session has in flight (`[gateway] max_concurrent_calls_per_session`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::upstream::Upstream;

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
            }
        }
    }
}
