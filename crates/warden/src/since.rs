//! Time bounds on the command line: `--since 30m`, `--from 2026-11-01T00:00:00Z`.
//!
//! Shared by `warden audit` and `warden ledger export`; kept apart from both so neither
//! command's module imports the other.

use anyhow::{bail, Context as _};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `30m`, `12h`, `7d` ago, or an RFC 3339 time, as the ledger's timestamp text.
pub fn since_to_ts(since: &str, now: OffsetDateTime) -> anyhow::Result<String> {
    let s = since.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(warden_ts(t));
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().with_context(|| {
        format!("`{since}` is neither an RFC 3339 time nor an age like 30m, 12h, 7d")
    })?;
    let d = match unit {
        "s" => time::Duration::seconds(n),
        "m" => time::Duration::minutes(n),
        "h" => time::Duration::hours(n),
        "d" => time::Duration::days(n),
        _ => bail!("`{since}`: the unit of an age must be s, m, h or d"),
    };
    Ok(warden_ts(now - d))
}

fn warden_ts(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_ages_and_times() {
        let now = OffsetDateTime::parse("2026-11-25T12:00:00Z", &Rfc3339).unwrap();
        assert_eq!(since_to_ts("30m", now).unwrap(), "2026-11-25T11:30:00.000Z");
        assert_eq!(since_to_ts("2d", now).unwrap(), "2026-11-23T12:00:00.000Z");
        assert_eq!(
            since_to_ts("2026-11-01T00:00:00+01:00", now).unwrap(),
            "2026-10-31T23:00:00.000Z"
        );
        assert!(since_to_ts("yesterday", now).is_err());
    }
}
