//! Approval tables (migration `0050_approvals.sql`): the queue of held calls and each person's
//! vote. The checks (binding, MFA, self-approval, signatures) live in the gateway; this module
//! only keeps rows, with conditional updates so two requests cannot both move one approval.

use sqlx::Row;

use crate::sqlite::to_stored;
use crate::{Ledger, StoreError, StoredRecord};

/// A held call as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRow {
    pub id: String,
    pub agent: String,
    pub on_behalf_of: Option<String>,
    pub tool: String,
    pub qualified_tool: String,
    pub upstream: String,
    pub arguments: serde_json::Value,
    pub arguments_hash: String,
    pub reasons: Vec<String>,
    pub policies: Vec<String>,
    pub tier: String,
    pub required: u32,
    pub session: Option<String>,
    pub correlation_id: Option<String>,
    pub source: String,
    pub before_state: Option<serde_json::Value>,
    /// `snapshot` (read by Warden through the card's snapshot read) or `caller` (reported by
    /// the agent's framework); `None` when there is no before-state.
    pub before_state_source: Option<String>,
    /// Why a configured snapshot read gave no before-state.
    pub before_state_error: Option<String>,
    pub ledger_seq: u64,
    pub state: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    pub deny_reason: Option<String>,
    pub used_at: Option<i64>,
    pub used_by: Option<String>,
}

/// One person's vote as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteRow {
    pub approval_id: String,
    pub approver: String,
    pub verdict: String,
    pub reason: Option<String>,
    pub at: i64,
    pub mfa_at: i64,
    pub ledger_seq: u64,
}

/// Which approvals to list.
#[derive(Debug, Clone, Default)]
pub struct ApprovalFilter {
    pub state: Option<String>,
    pub agent: Option<String>,
    pub tool: Option<String>,
    pub limit: u32,
}

fn approval_row(r: &sqlx::sqlite::SqliteRow) -> Result<ApprovalRow, StoreError> {
    let args: String = r.try_get("arguments")?;
    let reasons: String = r.try_get("reasons")?;
    let policies: String = r.try_get("policies")?;
    let before: Option<String> = r.try_get("before_state")?;
    Ok(ApprovalRow {
        id: r.try_get("id")?,
        agent: r.try_get("agent")?,
        on_behalf_of: r.try_get("on_behalf_of")?,
        tool: r.try_get("tool")?,
        qualified_tool: r.try_get("qualified_tool")?,
        upstream: r.try_get("upstream")?,
        arguments: serde_json::from_str(&args)?,
        arguments_hash: r.try_get("arguments_hash")?,
        reasons: serde_json::from_str(&reasons)?,
        policies: serde_json::from_str(&policies)?,
        tier: r.try_get("tier")?,
        required: u32::try_from(r.try_get::<i64, _>("required")?).unwrap_or(u32::MAX),
        session: r.try_get("session")?,
        correlation_id: r.try_get("correlation_id")?,
        source: r.try_get("source")?,
        before_state: before.map(|b| serde_json::from_str(&b)).transpose()?,
        before_state_source: r.try_get("before_state_source")?,
        before_state_error: r.try_get("before_state_error")?,
        ledger_seq: u64::try_from(r.try_get::<i64, _>("ledger_seq")?).unwrap_or(0),
        state: r.try_get("state")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        decided_at: r.try_get("decided_at")?,
        deny_reason: r.try_get("deny_reason")?,
        used_at: r.try_get("used_at")?,
        used_by: r.try_get("used_by")?,
    })
}

fn vote_row(r: &sqlx::sqlite::SqliteRow) -> Result<VoteRow, StoreError> {
    Ok(VoteRow {
        approval_id: r.try_get("approval_id")?,
        approver: r.try_get("approver")?,
        verdict: r.try_get("verdict")?,
        reason: r.try_get("reason")?,
        at: r.try_get("at")?,
        mfa_at: r.try_get("mfa_at")?,
        ledger_seq: u64::try_from(r.try_get::<i64, _>("ledger_seq")?).unwrap_or(0),
    })
}

fn seq(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
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

impl Ledger {
    /// Seal an approval request's arguments, reasons and before-state (when the ledger seals
    /// payloads) with the keys of its held decision, so retention and erasure reach them too.
    /// Each becomes a JSON string holding the sealed value.
    async fn seal_approval(&self, a: &mut ApprovalRow) -> Result<(), StoreError> {
        let Some(v) = self.vault() else {
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

    /// Open what [`Ledger::seal_approval`] sealed; what cannot be opened shows why.
    async fn open_approval(&self, a: &mut ApprovalRow) -> Result<(), StoreError> {
        let Some(v) = self.vault() else {
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

    async fn opened_approvals(
        &self,
        rows: Vec<sqlx::sqlite::SqliteRow>,
    ) -> Result<Vec<ApprovalRow>, StoreError> {
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut a = approval_row(r)?;
            self.open_approval(&mut a).await?;
            out.push(a);
        }
        Ok(out)
    }

    pub async fn insert_approval(&self, a: &ApprovalRow) -> Result<(), StoreError> {
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
        .bind(seq(a.ledger_seq))
        .bind(a.created_at)
        .bind(a.expires_at)
        .bind(&a.before_state_source)
        .bind(&a.before_state_error)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn approval(&self, id: &str) -> Result<Option<ApprovalRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM approvals WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(r) => Ok(self.opened_approvals(vec![r]).await?.pop()),
            None => Ok(None),
        }
    }

    /// Approvals matching a filter, newest first.
    pub async fn list_approvals(&self, f: &ApprovalFilter) -> Result<Vec<ApprovalRow>, StoreError> {
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
        let rows = q.build().fetch_all(self.pool()).await?;
        self.opened_approvals(rows).await
    }

    pub async fn approval_votes(&self, id: &str) -> Result<Vec<VoteRow>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM approval_votes WHERE approval_id = ? ORDER BY at, approver")
                .bind(id)
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(vote_row).collect()
    }

    /// Every vote with the request's agent and creation time, for fatigue statistics.
    pub async fn all_votes(&self) -> Result<Vec<(VoteRow, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT v.*, a.agent AS req_agent, a.created_at AS req_created FROM approval_votes v \
             JOIN approvals a ON a.id = v.approval_id ORDER BY v.at",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    vote_row(r)?,
                    r.try_get("req_agent")?,
                    r.try_get("req_created")?,
                ))
            })
            .collect()
    }

    /// Store a vote and, when it settles the request, its new state — in one transaction,
    /// only while the request is still pending. `Ok(false)` if it was no longer pending or the
    /// person had already voted.
    pub async fn record_vote(
        &self,
        v: &VoteRow,
        settle: Option<&str>,
        deny_reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
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
        .bind(seq(v.ledger_seq))
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
    pub async fn claim_approval(&self, id: &str, by: &str, now: i64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE approvals SET used_at = ?, used_by = ? \
             WHERE id = ? AND state = 'approved' AND used_at IS NULL AND expires_at > ?",
        )
        .bind(now)
        .bind(by)
        .bind(id)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Give back a claim whose execution could not be recorded (the call did not run).
    pub async fn release_claim(&self, id: &str, by: &str) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE approvals SET used_at = NULL, used_by = NULL WHERE id = ? AND used_by = ?",
        )
        .bind(id)
        .bind(by)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Requests past their expiry that are still pending, or approved but never used.
    pub async fn due_to_expire(&self, now: i64) -> Result<Vec<ApprovalRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM approvals WHERE expires_at <= ? AND (state = 'pending' OR (state = 'approved' AND used_at IS NULL)) LIMIT 500",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        self.opened_approvals(rows).await
    }

    /// Mark a request expired if it still may be. `Ok(true)` for exactly one caller.
    pub async fn mark_expired(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE approvals SET state = 'expired', decided_at = ? \
             WHERE id = ? AND expires_at <= ? AND (state = 'pending' OR (state = 'approved' AND used_at IS NULL))",
        )
        .bind(now)
        .bind(id)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// The newest live request of an agent for exactly this call (same tool, same argument
    /// hash): pending, or approved and not yet used. A retried MCP call waits on it instead of
    /// opening a second request.
    pub async fn live_approval_for(
        &self,
        agent: &str,
        qualified_tool: &str,
        arguments_hash: &str,
        now: i64,
    ) -> Result<Option<ApprovalRow>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM approvals WHERE agent = ? AND qualified_tool = ? AND arguments_hash = ? \
             AND expires_at > ? AND (state = 'pending' OR (state = 'approved' AND used_at IS NULL)) \
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(agent)
        .bind(qualified_tool)
        .bind(arguments_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(r) => Ok(self.opened_approvals(vec![r]).await?.pop()),
            None => Ok(None),
        }
    }

    /// Every `approval_vote` record in the ledger as stored (seq, canonical record text),
    /// oldest first, for checking each vote's signature (`warden audit verify`). Read from the
    /// ledger itself, not from `approval_votes`, so a vote cannot hide by losing its row.
    pub async fn vote_records(&self) -> Result<Vec<(u64, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, record FROM ledger \
             WHERE json_extract(record, '$.event.kind') = 'approval_vote' ORDER BY seq",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let s: i64 = r.try_get(0)?;
                Ok((u64::try_from(s).unwrap_or(0), r.try_get(1)?))
            })
            .collect()
    }

    /// What the agent saw: outcome records of earlier calls in the same session, before the
    /// record at `before_seq`, oldest first (at most `limit`).
    pub async fn session_outputs(
        &self,
        session: &str,
        before_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, hash, record FROM (SELECT l.seq, l.hash, l.record FROM ledger l \
             JOIN decision_records d ON d.seq = l.seq \
             WHERE l.seq < ? AND json_extract(l.record, '$.event.kind') = 'outcome' \
             AND d.decision_id IN (SELECT dr.decision_id FROM decision_records dr JOIN ledger l2 ON l2.seq = dr.seq \
                 WHERE l2.seq < ? AND json_extract(l2.record, '$.event.kind') = 'decision' \
                 AND json_extract(l2.record, '$.event.session') = ?) \
             ORDER BY l.seq DESC LIMIT ?) ORDER BY seq",
        )
        .bind(seq(before_seq))
        .bind(seq(before_seq))
        .bind(session)
        .bind(i64::from(limit.max(1)))
        .fetch_all(self.pool())
        .await?;
        let records = rows.iter().map(to_stored).collect::<Result<_, _>>()?;
        self.opened(records).await
    }
}
