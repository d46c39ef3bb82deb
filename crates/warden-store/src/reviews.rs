//! The after-the-fact review queue of calls allowed at tier `review` (migration 0071). Rows
//! are inserted by the ledger writer in the same transaction as the decision record.

use sqlx::Row as _;
use warden_core::ledger::{LedgerEvent, ReviewEvent, ReviewOverdueEvent};

use crate::sqlite::Ledger;
use crate::StoreError;

/// One queued review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewRow {
    pub decision_id: String,
    pub seq: u64,
    pub agent: String,
    pub tool: String,
    /// Unix seconds when the call was allowed (and ran).
    pub created_at: i64,
    pub reviewed_at: Option<i64>,
    pub reviewer: Option<String>,
    pub verdict: Option<String>,
    pub note: Option<String>,
}

fn review_row(r: &sqlx::sqlite::SqliteRow) -> Result<ReviewRow, StoreError> {
    Ok(ReviewRow {
        decision_id: r.try_get("decision_id")?,
        seq: u64::try_from(r.try_get::<i64, _>("seq")?).unwrap_or(0),
        agent: r.try_get("agent")?,
        tool: r.try_get("tool")?,
        created_at: r.try_get("created_at")?,
        reviewed_at: r.try_get("reviewed_at")?,
        reviewer: r.try_get("reviewer")?,
        verdict: r.try_get("verdict")?,
        note: r.try_get("note")?,
    })
}

impl Ledger {
    /// Reviews, oldest first: only those still open unless `all`.
    pub async fn reviews(&self, all: bool, limit: u32) -> Result<Vec<ReviewRow>, StoreError> {
        let sql = if all {
            "SELECT * FROM reviews ORDER BY created_at, decision_id LIMIT ?"
        } else {
            "SELECT * FROM reviews WHERE reviewed_at IS NULL ORDER BY created_at, decision_id LIMIT ?"
        };
        let rows = sqlx::query(sql)
            .bind(i64::from(limit.max(1)))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(review_row).collect()
    }

    pub async fn review(&self, id: &str) -> Result<Option<ReviewRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM reviews WHERE decision_id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(review_row).transpose()
    }

    /// Record a person's review: the queue row is closed only if it was open, and then the
    /// `call_reviewed` record is appended. Returns the record's seq, or `None` if the call was
    /// already reviewed (or is not in the queue).
    pub async fn record_review(
        &self,
        review: ReviewEvent,
        now: i64,
        ts: String,
    ) -> Result<Option<u64>, StoreError> {
        let done = sqlx::query(
            "UPDATE reviews SET reviewed_at = ?, reviewer = ?, verdict = ?, note = ? \
             WHERE decision_id = ? AND reviewed_at IS NULL",
        )
        .bind(now)
        .bind(&review.reviewer)
        .bind(&review.verdict)
        .bind(&review.note)
        .bind(&review.decision_id)
        .execute(self.pool())
        .await?
        .rows_affected();
        if done == 0 {
            return Ok(None);
        }
        let appended = self.append(ts, LedgerEvent::CallReviewed(review)).await?;
        Ok(Some(appended.seq))
    }

    /// Record a `review_overdue` alert, once, for each open review older than the deadline.
    pub async fn alert_overdue_reviews(
        &self,
        now: i64,
        deadline_hours: u64,
        ts: &str,
    ) -> Result<u32, StoreError> {
        let deadline_secs = i64::try_from(deadline_hours.saturating_mul(3600)).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT * FROM reviews WHERE reviewed_at IS NULL AND overdue_alerted = 0 AND created_at <= ?",
        )
        .bind(now.saturating_sub(deadline_secs))
        .fetch_all(self.pool())
        .await?;
        let mut n = 0;
        for r in rows.iter().map(review_row) {
            let r = r?;
            let claimed = sqlx::query(
                "UPDATE reviews SET overdue_alerted = 1 WHERE decision_id = ? AND overdue_alerted = 0",
            )
            .bind(&r.decision_id)
            .execute(self.pool())
            .await?
            .rows_affected();
            if claimed == 0 {
                continue;
            }
            self.append(
                ts.to_string(),
                LedgerEvent::ReviewOverdue(ReviewOverdueEvent {
                    decision_id: r.decision_id,
                    agent: r.agent,
                    tool: r.tool,
                    ran_at: r.created_at,
                    deadline_hours,
                    severity: "high".into(),
                }),
            )
            .await?;
            n += 1;
        }
        Ok(n)
    }
}
