//! [`PinStore`] on SQLite: tool pins (migration `0002_tool_pins.sql`) — first-seen
//! definition hashes of upstream tools — and the after-the-fact review queue of calls
//! allowed at tier `review` (migration `0071_reviews.sql`), whose rows the writer inserts in
//! the same transaction as the decision record.

use std::collections::HashSet;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use warden_core::ledger::{LedgerEvent, ReviewEvent, ReviewOverdueEvent};

use super::SqliteStore;
use crate::{LedgerLog, Pin, PinCheck, PinStore, ReviewRow, StoreError};

/// How long the set of blocked tools is trusted before it is read again: a block made by
/// another process (a replica) or an approval from the CLI takes effect within this time; a
/// block made by this process takes effect at once.
const BLOCKED_TTL: Duration = Duration::from_secs(1);

/// (server, tool) pairs.
type ToolSet = HashSet<(String, String)>;

/// The blocked tools, read from the store at most once per [`BLOCKED_TTL`].
#[derive(Debug, Default)]
pub(super) struct BlockedCache {
    inner: RwLock<Option<(Instant, ToolSet)>>,
}

impl BlockedCache {
    fn lookup(&self, server: &str, tool: &str) -> Option<bool> {
        let guard = self.inner.read().ok()?;
        let (at, set) = guard.as_ref()?;
        if at.elapsed() > BLOCKED_TTL {
            return None;
        }
        Some(set.contains(&(server.to_string(), tool.to_string())))
    }

    fn store(&self, set: ToolSet) {
        if let Ok(mut g) = self.inner.write() {
            *g = Some((Instant::now(), set));
        }
    }

    fn invalidate(&self) {
        if let Ok(mut g) = self.inner.write() {
            *g = None;
        }
    }
}

#[async_trait]
impl PinStore for SqliteStore {
    /// Compare an announced tool definition hash with its pin, pinning it if new and blocking
    /// the tool if it changed.
    async fn check_pin(
        &self,
        server: &str,
        tool: &str,
        hash: &str,
        definition: &str,
        now: &str,
    ) -> Result<PinCheck, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT hash, status FROM tool_pins WHERE server = ? AND tool = ?")
                .bind(server)
                .bind(tool)
                .fetch_optional(&mut *tx)
                .await?;
        let check = match row {
            None => {
                sqlx::query("INSERT INTO tool_pins (server, tool, hash, status, definition, new_hash, new_definition, updated_at) VALUES (?, ?, ?, 'approved', ?, NULL, NULL, ?)")
                    .bind(server)
                    .bind(tool)
                    .bind(hash)
                    .bind(definition)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                PinCheck::New
            }
            Some((pinned, status)) => {
                if status == "blocked" {
                    sqlx::query("UPDATE tool_pins SET new_hash = ?, new_definition = ? WHERE server = ? AND tool = ?")
                        .bind(hash)
                        .bind(definition)
                        .bind(server)
                        .bind(tool)
                        .execute(&mut *tx)
                        .await?;
                    PinCheck::Blocked
                } else if pinned == hash {
                    PinCheck::Same
                } else {
                    sqlx::query("UPDATE tool_pins SET status = 'blocked', new_hash = ?, new_definition = ?, updated_at = ? WHERE server = ? AND tool = ?")
                        .bind(hash)
                        .bind(definition)
                        .bind(now)
                        .bind(server)
                        .bind(tool)
                        .execute(&mut *tx)
                        .await?;
                    PinCheck::Changed { previous: pinned }
                }
            }
        };
        tx.commit().await?;
        if matches!(check, PinCheck::Changed { .. }) {
            self.blocked_cache.invalidate();
        }
        Ok(check)
    }

    /// Whether a tool is blocked by its pin (unknown tools are not). Served from memory,
    /// re-read from the store at most once a second.
    async fn is_blocked(&self, server: &str, tool: &str) -> Result<bool, StoreError> {
        if let Some(answer) = self.blocked_cache.lookup(server, tool) {
            return Ok(answer);
        }
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT server, tool FROM tool_pins WHERE status = 'blocked'")
                .fetch_all(&self.pool)
                .await?;
        let set: HashSet<(String, String)> = rows.into_iter().collect();
        let answer = set.contains(&(server.to_string(), tool.to_string()));
        self.blocked_cache.store(set);
        Ok(answer)
    }

    /// Every pin, blocked ones first.
    async fn pins(&self) -> Result<Vec<Pin>, StoreError> {
        Ok(sqlx::query_as("SELECT server, tool, hash, status = 'blocked' AS blocked, new_hash, updated_at, definition, new_definition FROM tool_pins ORDER BY status = 'approved', server, tool")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Approve the announced definition of a blocked tool: it becomes the pin. Returns
    /// `(previous, approved)` hashes, or `None` if the tool is not blocked.
    async fn approve_pin(
        &self,
        server: &str,
        tool: &str,
        now: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as("SELECT hash, new_hash, new_definition FROM tool_pins WHERE server = ? AND tool = ? AND status = 'blocked'")
            .bind(server)
            .bind(tool)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((previous, Some(new_hash), new_definition)) = row else {
            return Ok(None);
        };
        sqlx::query("UPDATE tool_pins SET hash = ?, definition = COALESCE(?, definition), status = 'approved', new_hash = NULL, new_definition = NULL, updated_at = ? WHERE server = ? AND tool = ?")
            .bind(&new_hash)
            .bind(new_definition)
            .bind(now)
            .bind(server)
            .bind(tool)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.blocked_cache.invalidate();
        Ok(Some((previous, new_hash)))
    }

    // ---- the review queue (migration 0071; rows inserted by the writer with the decision
    // record) ----

    /// Reviews, oldest first: only those still open unless `all`.
    async fn reviews(&self, all: bool, limit: u32) -> Result<Vec<ReviewRow>, StoreError> {
        let sql = if all {
            "SELECT * FROM reviews ORDER BY created_at, decision_id LIMIT ?"
        } else {
            "SELECT * FROM reviews WHERE reviewed_at IS NULL ORDER BY created_at, decision_id LIMIT ?"
        };
        Ok(sqlx::query_as(sql)
            .bind(i64::from(limit.max(1)))
            .fetch_all(&self.pool)
            .await?)
    }

    async fn review(&self, id: &str) -> Result<Option<ReviewRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM reviews WHERE decision_id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Record a person's review: the queue row is closed only if it was open, and then the
    /// `call_reviewed` record is appended. Returns the record's seq, or `None` if the call was
    /// already reviewed (or is not in the queue).
    async fn record_review(
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
        .execute(&self.pool)
        .await?
        .rows_affected();
        if done == 0 {
            return Ok(None);
        }
        let appended = LedgerLog::append(self, ts, LedgerEvent::CallReviewed(review)).await?;
        Ok(Some(appended.seq))
    }

    /// Record a `review_overdue` alert, once, for each open review older than the deadline.
    async fn alert_overdue_reviews(
        &self,
        now: i64,
        deadline_hours: u64,
        ts: &str,
    ) -> Result<u32, StoreError> {
        let deadline_secs = i64::try_from(deadline_hours.saturating_mul(3600)).unwrap_or(i64::MAX);
        let rows: Vec<ReviewRow> = sqlx::query_as(
            "SELECT * FROM reviews WHERE reviewed_at IS NULL AND overdue_alerted = 0 AND created_at <= ?",
        )
        .bind(now.saturating_sub(deadline_secs))
        .fetch_all(&self.pool)
        .await?;
        let mut n = 0;
        for r in rows {
            let claimed = sqlx::query(
                "UPDATE reviews SET overdue_alerted = 1 WHERE decision_id = ? AND overdue_alerted = 0",
            )
            .bind(&r.decision_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if claimed == 0 {
                continue;
            }
            LedgerLog::append(
                self,
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
