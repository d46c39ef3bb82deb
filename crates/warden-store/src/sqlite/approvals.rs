//! [`ApprovalStore`] on SQLite (migration `0050_approvals.sql`): the queue of held calls and
//! each person's vote, with conditional updates so two requests cannot both move one
//! approval. With a master key the request's arguments, reasons and before-state are sealed
//! with the keys of its held decision, so retention and erasure reach them too.

use async_trait::async_trait;

use super::{seq_param, SqliteStore};
use crate::{ApprovalFilter, ApprovalRow, ApprovalStore, StoreError, VoteRow};

/// A vote with its request's agent and creation time (`all_votes`).
#[derive(sqlx::FromRow)]
struct VoteOfRequest {
    #[sqlx(flatten)]
    vote: VoteRow,
    req_agent: String,
    req_created: i64,
}

/// `YYYY-MM-DD` (UTC) of Unix seconds.
fn day_of(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

impl SqliteStore {
    /// Seal an approval request's arguments, reasons and before-state (when the ledger seals
    /// payloads) with the keys of its held decision, so retention and erasure reach them too.
    /// Each becomes a JSON string holding the sealed value.
    async fn seal_approval(&self, a: &mut ApprovalRow) -> Result<(), StoreError> {
        let Some(v) = &self.vault else {
            return Ok(());
        };
        let (period, subject, key) = v
            .key_for_decision(
                &day_of(a.created_at),
                &a.agent,
                &[Some(&a.tool), Some(&a.qualified_tool)],
                &a.id,
            )
            .await?;
        let seal = |field: &str, plain: &[u8]| {
            let mut nonce = [0u8; 24];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
            warden_core::vault::seal_payload(&key, &period, subject.as_deref(), field, plain, nonce)
        };
        a.arguments = serde_json::Value::String(seal(
            "approval_arguments",
            a.arguments.to_string().as_bytes(),
        ));
        if !a.reasons.is_empty() {
            a.reasons = vec![seal(
                "approval_reasons",
                serde_json::to_string(&a.reasons)?.as_bytes(),
            )];
        }
        if let Some(b) = a.before_state.as_mut() {
            *b = serde_json::Value::String(seal("approval_before_state", b.to_string().as_bytes()));
        }
        Ok(())
    }

    /// Open what [`SqliteStore::seal_approval`] sealed; what cannot be opened shows why.
    async fn open_approval(&self, a: &mut ApprovalRow) -> Result<(), StoreError> {
        let Some(v) = &self.vault else {
            return Ok(());
        };
        let marker = |why: warden_core::vault::Unreadable| why.marker().to_string();
        if let serde_json::Value::String(s) = &a.arguments {
            if let Some(r) = v.open_text("approval_arguments", s).await? {
                a.arguments = match r {
                    Ok(b) => serde_json::from_slice(&b)?,
                    Err(why) => serde_json::Value::String(marker(why)),
                };
            }
        }
        if let [one] = a.reasons.as_slice() {
            if let Some(r) = v.open_text("approval_reasons", one).await? {
                a.reasons = match r {
                    Ok(b) => serde_json::from_slice(&b)?,
                    Err(why) => vec![marker(why)],
                };
            }
        }
        if let Some(serde_json::Value::String(s)) = &a.before_state {
            if let Some(r) = v.open_text("approval_before_state", s).await? {
                a.before_state = Some(match r {
                    Ok(b) => serde_json::from_slice(&b)?,
                    Err(why) => serde_json::Value::String(marker(why)),
                });
            }
        }
        Ok(())
    }

    /// Rows read back, their sealed values opened.
    async fn opened_approvals(
        &self,
        mut rows: Vec<ApprovalRow>,
    ) -> Result<Vec<ApprovalRow>, StoreError> {
        for a in &mut rows {
            self.open_approval(a).await?;
        }
        Ok(rows)
    }
}

#[async_trait]
impl ApprovalStore for SqliteStore {
    async fn insert_approval(&self, a: &ApprovalRow) -> Result<(), StoreError> {
        self.check_residency(&a.agent)?;
        let mut sealed = a.clone();
        self.seal_approval(&mut sealed).await?;
        let a = &sealed;
        sqlx::query(
            "INSERT INTO approvals (id, agent, on_behalf_of, tool, qualified_tool, upstream, arguments, \
             arguments_hash, reasons, policies, tier, required, session, correlation_id, source, \
             before_state, ledger_seq, state, created_at, expires_at, before_state_source, \
             before_state_error) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
        )
        .bind(&a.id)
        .bind(&a.agent)
        .bind(&a.on_behalf_of)
        .bind(&a.tool)
        .bind(&a.qualified_tool)
        .bind(&a.upstream)
        .bind(a.arguments.to_string())
        .bind(&a.arguments_hash)
        .bind(serde_json::to_string(&a.reasons)?)
        .bind(serde_json::to_string(&a.policies)?)
        .bind(&a.tier)
        .bind(i64::from(a.required))
        .bind(&a.session)
        .bind(&a.correlation_id)
        .bind(&a.source)
        .bind(a.before_state.as_ref().map(ToString::to_string))
        .bind(seq_param(a.ledger_seq))
        .bind(a.created_at)
        .bind(a.expires_at)
        .bind(&a.before_state_source)
        .bind(&a.before_state_error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn approval(&self, id: &str) -> Result<Option<ApprovalRow>, StoreError> {
        let rows = sqlx::query_as("SELECT * FROM approvals WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(self
            .opened_approvals(rows.into_iter().collect())
            .await?
            .pop())
    }

    /// Approvals matching a filter, newest first.
    async fn list_approvals(&self, f: &ApprovalFilter) -> Result<Vec<ApprovalRow>, StoreError> {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("SELECT * FROM approvals WHERE 1=1");
        if let Some(s) = &f.state {
            q.push(" AND state = ").push_bind(s.clone());
        }
        if let Some(a) = &f.agent {
            q.push(" AND agent = ").push_bind(a.clone());
        }
        if let Some(t) = &f.tool {
            q.push(" AND (tool = ")
                .push_bind(t.clone())
                .push(" OR qualified_tool = ")
                .push_bind(t.clone())
                .push(")");
        }
        q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(f.limit.clamp(1, 1000)));
        let rows = q.build_query_as().fetch_all(&self.pool).await?;
        self.opened_approvals(rows).await
    }

    async fn approval_votes(&self, id: &str) -> Result<Vec<VoteRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM approval_votes WHERE approval_id = ? ORDER BY at, approver",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every vote with the request's agent and creation time, for fatigue statistics.
    async fn all_votes(&self) -> Result<Vec<(VoteRow, String, i64)>, StoreError> {
        let rows: Vec<VoteOfRequest> = sqlx::query_as(
            "SELECT v.*, a.agent AS req_agent, a.created_at AS req_created FROM approval_votes v \
             JOIN approvals a ON a.id = v.approval_id ORDER BY v.at",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.vote, r.req_agent, r.req_created))
            .collect())
    }

    /// Store a vote and, when it settles the request, its new state — in one transaction,
    /// only while the request is still pending. `Ok(false)` if it was no longer pending or the
    /// person had already voted.
    async fn record_vote(
        &self,
        v: &VoteRow,
        settle: Option<&str>,
        deny_reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let pending: Option<String> =
            sqlx::query_scalar("SELECT state FROM approvals WHERE id = ? AND state = 'pending'")
                .bind(&v.approval_id)
                .fetch_optional(&mut *tx)
                .await?;
        if pending.is_none() {
            return Ok(false);
        }
        let inserted = sqlx::query(
            "INSERT OR IGNORE INTO approval_votes (approval_id, approver, verdict, reason, at, mfa_at, ledger_seq) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&v.approval_id)
        .bind(&v.approver)
        .bind(&v.verdict)
        .bind(&v.reason)
        .bind(v.at)
        .bind(v.mfa_at)
        .bind(seq_param(v.ledger_seq))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted != 1 {
            return Ok(false);
        }
        if let Some(state) = settle {
            sqlx::query("UPDATE approvals SET state = ?, decided_at = ?, deny_reason = ? WHERE id = ? AND state = 'pending'")
                .bind(state)
                .bind(v.at)
                .bind(deny_reason)
                .bind(&v.approval_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Use an approved request for one execution. `Ok(true)` for exactly one caller: the
    /// request must be approved, unused and unexpired.
    async fn claim_approval(&self, id: &str, by: &str, now: i64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE approvals SET used_at = ?, used_by = ? \
             WHERE id = ? AND state = 'approved' AND used_at IS NULL AND expires_at > ?",
        )
        .bind(now)
        .bind(by)
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Give back a claim whose execution could not be recorded (the call did not run).
    async fn release_claim(&self, id: &str, by: &str) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE approvals SET used_at = NULL, used_by = NULL WHERE id = ? AND used_by = ?",
        )
        .bind(id)
        .bind(by)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Requests past their expiry that are still pending, or approved but never used.
    async fn due_to_expire(&self, now: i64) -> Result<Vec<ApprovalRow>, StoreError> {
        let rows = sqlx::query_as(
            "SELECT * FROM approvals WHERE expires_at <= ? AND (state = 'pending' OR (state = 'approved' AND used_at IS NULL)) LIMIT 500",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        self.opened_approvals(rows).await
    }

    /// Mark a request expired if it still may be. `Ok(true)` for exactly one caller.
    async fn mark_expired(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE approvals SET state = 'expired', decided_at = ? \
             WHERE id = ? AND expires_at <= ? AND (state = 'pending' OR (state = 'approved' AND used_at IS NULL))",
        )
        .bind(now)
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// The newest live request of an agent for exactly this call (same tool, same argument
    /// hash): pending, or approved and not yet used. A retried MCP call waits on it instead of
    /// opening a second request.
    async fn live_approval_for(
        &self,
        agent: &str,
        qualified_tool: &str,
        arguments_hash: &str,
        now: i64,
    ) -> Result<Option<ApprovalRow>, StoreError> {
        let row = sqlx::query_as(
            "SELECT * FROM approvals WHERE agent = ? AND qualified_tool = ? AND arguments_hash = ? \
             AND expires_at > ? AND (state = 'pending' OR (state = 'approved' AND used_at IS NULL)) \
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(agent)
        .bind(qualified_tool)
        .bind(arguments_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(self
            .opened_approvals(row.into_iter().collect())
            .await?
            .pop())
    }
}
