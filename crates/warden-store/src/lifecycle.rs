//! [`Lifecycle`]: retention and erasure by destroying payload keys, a subject's records, and
//! master-key rotation of the payload keys. No record is changed or removed, so
//! `warden audit verify` and every signed checkpoint still pass afterwards.

use async_trait::async_trait;
use warden_core::ledger::PurgedKey;

use crate::{StoreError, StoredRecord};

/// Milliseconds in a day.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// What a retention run did (or, for a dry run, would do).
#[derive(Debug, Clone, Default)]
pub struct RetentionReport {
    /// Period keys destroyed (or due, for a dry run).
    pub keys: Vec<PurgedKey>,
    /// Records whose payloads became unreadable.
    pub records: u64,
    /// The `retention_purged` record, when one was written.
    pub recorded_seq: Option<u64>,
    /// Live period keys not yet due.
    pub kept: u64,
}

/// What an erasure did.
#[derive(Debug, Clone)]
pub struct ErasureReport {
    /// The subject's pseudonymous reference (what the records name).
    pub subject_ref: String,
    /// The subject keys destroyed.
    pub keys: Vec<String>,
    /// Records whose payloads became unreadable.
    pub records: u64,
    /// The `subject_erased` record.
    pub recorded_seq: u64,
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian). Hand-written (Howard
/// Hinnant's `days_from_civil`) so the store needs no date crate for one conversion.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Milliseconds since the epoch at the start (UTC) of `YYYY-MM-DD`.
pub fn day_start_ms(day: &str) -> Option<i64> {
    let mut parts = day.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d) * DAY_MS)
}

/// Retention, erasure and key rotation. Every operation needs a store opened with a master
/// key ([`StoreError::VaultDisabled`] otherwise).
#[async_trait]
pub trait Lifecycle: Send + Sync {
    /// Run retention as of `as_of_ms` (normally now): destroy each period key whose day
    /// ended more than its retention ago, then write one `retention_purged` record (at `ts`)
    /// naming them (also for keys an earlier run destroyed but could not record). A dry run
    /// only reports what is due.
    async fn retention_run(
        &self,
        as_of_ms: i64,
        as_of: &str,
        actor: &str,
        ts: String,
        dry_run: bool,
    ) -> Result<RetentionReport, StoreError>;

    /// Erase a data subject: destroy every key of the subject, and record the erasure (at
    /// `ts`; also when nothing was held, as evidence the request was served).
    async fn erase_subject(
        &self,
        subject: &str,
        actor: &str,
        reason: &str,
        ts: String,
    ) -> Result<ErasureReport, StoreError>;

    /// Everything the ledger holds about a subject (records sealed for it, and its erasure
    /// records), opened where the keys still exist. Returns the subject's reference too.
    async fn subject_records(
        &self,
        subject: &str,
    ) -> Result<(String, Vec<StoredRecord>), StoreError>;

    /// Re-wrap every live payload key from the `old` master key to `new` (master key
    /// rotation): no record changes. Returns the number of keys re-wrapped.
    async fn rewrap_vault_keys(&self, old: &[u8; 32], new: &[u8; 32]) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(day_start_ms("1970-01-01"), Some(0));
        assert_eq!(day_start_ms("2026-11-26"), Some(1_795_651_200_000));
        assert_eq!(day_start_ms("2024-03-01").map(|m| m / DAY_MS), Some(19_783));
        assert_eq!(day_start_ms("2026-13-01"), None);
        assert_eq!(day_start_ms("nope"), None);
    }
}
