//! Per-agent call-rate limits from the scope card (`[rate_limits]`), over sliding windows.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use warden_core::scope_card::{Access, RateLimits};

/// Times of an agent's recent calls and recent writes.
#[derive(Debug, Default)]
struct AgentWindow {
    calls: VecDeque<Instant>,
    writes: VecDeque<Instant>,
}

#[derive(Debug, Default)]
pub struct RateWindows {
    inner: Mutex<HashMap<String, AgentWindow>>,
}

impl RateWindows {
    /// Count a call; `Some(reason)` when it is over a limit (and then it is not counted).
    pub fn admit(
        &self,
        agent: &str,
        access: Option<Access>,
        limits: &RateLimits,
        now: Instant,
    ) -> Option<String> {
        if limits.calls_per_minute.is_none() && limits.writes_per_hour.is_none() {
            return None;
        }
        let Ok(mut map) = self.inner.lock() else {
            return Some("the rate limiter is unavailable; denied (fail closed)".to_string());
        };
        let AgentWindow { calls, writes } = map.entry(agent.to_string()).or_default();
        let minute = Duration::from_secs(60);
        let hour = Duration::from_secs(3600);
        while calls
            .front()
            .is_some_and(|t| now.duration_since(*t) >= minute)
        {
            calls.pop_front();
        }
        while writes
            .front()
            .is_some_and(|t| now.duration_since(*t) >= hour)
        {
            writes.pop_front();
        }
        if let Some(limit) = limits.calls_per_minute {
            if calls.len() >= limit as usize {
                return Some(format!(
                    "`{agent}` has made {limit} calls in the last minute, its scope card's limit"
                ));
            }
        }
        let is_write = access == Some(Access::Write);
        if let (Some(limit), true) = (limits.writes_per_hour, is_write) {
            if writes.len() >= limit as usize {
                return Some(format!(
                    "`{agent}` has made {limit} write calls in the last hour, its scope card's limit"
                ));
            }
        }
        calls.push_back(now);
        if is_write {
            writes.push_back(now);
        }
        None
    }
}
