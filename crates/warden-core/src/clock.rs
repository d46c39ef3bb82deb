//! The one injectable clock: ledger timestamps, checkpoint and key times in the store, token
//! and approval expiry, rate windows and lock-outs all take "now" from a [`Clock`] handed to
//! them (the gateway's `AppState` holds one and passes it to the store it opens), so a test can
//! move time for all of them at once.

use std::sync::Arc;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A source of the current time, in Unix milliseconds. Cheap to clone.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Clock").field(&self.unix_ms()).finish()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Self(Arc::new(|| {
            let now = OffsetDateTime::now_utc();
            i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
        }))
    }

    /// A clock that reads `unix_ms` (Unix milliseconds).
    pub fn from_unix_ms(unix_ms: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Self(Arc::new(unix_ms))
    }

    /// A clock that reads `unix_secs` (Unix seconds; tests move it a second at a time).
    pub fn from_unix_secs(unix_secs: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Self(Arc::new(move || unix_secs().saturating_mul(1000)))
    }

    /// Unix milliseconds now.
    pub fn unix_ms(&self) -> i64 {
        (self.0)()
    }

    /// Unix seconds now.
    pub fn unix(&self) -> i64 {
        self.unix_ms().div_euclid(1000)
    }

    /// Now as the ledger writes it: RFC 3339 UTC with milliseconds, fixed width.
    pub fn rfc3339(&self) -> String {
        format_ms(self.unix_ms())
    }
}

/// Unix milliseconds as the ledger writes them (`2026-12-04T15:05:46.123Z`).
pub fn format_ms(unix_ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let base = t
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string());
    format!(
        "{}.{:03}Z",
        base.trim_end_matches('Z'),
        unix_ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_timestamps_have_fixed_width_milliseconds() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1_796_396_746_007), "2026-12-04T15:05:46.007Z");
        let c = Clock::from_unix_secs(|| 1_796_396_746);
        assert_eq!(c.rfc3339(), "2026-12-04T15:05:46.000Z");
        assert_eq!(c.unix(), 1_796_396_746);
    }
}
