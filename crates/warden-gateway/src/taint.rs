//! Agents' session taint, per (agent, session id), in memory: what each agent session has
//! read (trust, data classes, untrusted text), for prompt-injection containment. Not to be
//! confused with people's login sessions (`logins.rs`).
//!
//! The state itself lives in the core ([`warden_core::SessionState`]); this module keeps one
//! per session. The pipeline's outcome path (`pipeline/outcome.rs`) feeds it tool outputs.
//! A call that names no session shares the agent's default session (`""`), so leaving the
//! session id out never escapes taint.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use warden_core::scope_card::Trust;
use warden_core::SessionState;

/// Most sessions kept; past it the least recently used are forgotten (a forgotten session
/// starts clean again, so keep this well above the number of live sessions).
const MAX_SESSIONS: usize = 10_000;

struct Entry {
    state: Arc<Mutex<SessionState>>,
    used: u64,
}

/// The taint state of every agent session the gateway has seen.
#[derive(Default)]
pub struct SessionTaint {
    map: Mutex<HashMap<(String, String), Entry>>,
    clock: AtomicU64,
}

impl SessionTaint {
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
