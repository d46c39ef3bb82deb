//! [`SessionStore`] on SQLite (migration `0080_agent_sessions.sql`): one header row per agent
//! session (taint, data classes, version) and its texts, each sealed (`wdn1:`, the period key
//! of its day, agent and tool's classes) when the store seals payloads, else redacted. Writes
//! go through the pool, one transaction per update, with the store's durability.

use async_trait::async_trait;
use serde_json::Value;
use sha2::{Digest, Sha256};
use warden_core::redact::RedactionStats;
use warden_core::session::{MAX_TRUSTED_BYTES, MAX_UNTRUSTED_BYTES};
use warden_core::{StoredText, Taint};

use super::SqliteStore;
use crate::{SessionStore, SessionUpdate, StoreError, StoredSession};

/// The field name sealed texts are bound to (associated data).
const FIELD: &str = "session_text";

/// Bytes counted per text beside its length, so that even empty texts are bounded in number.
const ROW_OVERHEAD: i64 = 64;

/// The stored key of a session: a digest of the agent and the caller's session id, so the id
/// (caller text, possibly carrying a token) is not kept.
fn key_of(agent: &str, session: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"warden-agent-session\0");
    h.update(agent.as_bytes());
    h.update(b"\0");
    h.update(session.as_bytes());
    hex::encode(h.finalize())
}

fn version_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl SqliteStore {
    /// A text as stored: sealed with the vault, else redacted JSON.
    async fn seal_session_text(
        &self,
        agent: &str,
        tool: Option<&str>,
        text: &StoredText,
    ) -> Result<String, StoreError> {
        let json = serde_json::to_string(text)?;
        match &self.vault {
            Some(v) => {
                let ts = self.clock.rfc3339();
                let day = ts.get(..10).ok_or(StoreError::UndatedRecord)?;
                v.seal_loose(day, agent, tool, FIELD, json.as_bytes()).await
            }
            None => {
                let mut value: Value = serde_json::from_str(&json)?;
                let mut stats = RedactionStats::default();
                self.redactor.redact_json(&mut value, &mut stats);
                Ok(value.to_string())
            }
        }
    }

    /// A stored text opened; `None` when its key was destroyed (retention) or it is unreadable.
    async fn open_session_text(&self, body: &str) -> Result<Option<StoredText>, StoreError> {
        let plain = match &self.vault {
            Some(v) => match v.open_text(FIELD, body).await? {
                Some(Ok(bytes)) => bytes,
                Some(Err(_)) => return Ok(None),
                // Stored before sealing was configured: kept redacted.
                None => body.as_bytes().to_vec(),
            },
            None => body.as_bytes().to_vec(),
        };
        Ok(serde_json::from_slice(&plain).ok())
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn session_version(&self, agent: &str, session: &str) -> Result<Option<u64>, StoreError> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM agent_sessions WHERE agent = ? AND session_key = ?",
        )
        .bind(agent)
        .bind(key_of(agent, session))
        .fetch_optional(&self.pool)
        .await?;
        Ok(v.map(version_of))
    }

    async fn load_session(
        &self,
        agent: &str,
        session: &str,
    ) -> Result<Option<StoredSession>, StoreError> {
        let key = key_of(agent, session);
        // One read transaction: the header and the texts of one version.
        let mut tx = self.pool.begin().await?;
        let head: Option<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT taint, read_classes, version, updated_ms FROM agent_sessions WHERE agent = ? AND session_key = ?",
        )
        .bind(agent)
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((taint, classes, version, updated_ms)) = head else {
            return Ok(None);
        };
        let bodies: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM agent_session_texts WHERE agent = ? AND session_key = ? ORDER BY id",
        )
        .bind(agent)
        .bind(&key)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut texts = Vec::with_capacity(bodies.len());
        for b in &bodies {
            if let Some(t) = self.open_session_text(b).await? {
                texts.push(t);
            }
        }
        Ok(Some(StoredSession {
            version: version_of(version),
            taint: Taint::from_level(taint),
            // Unreadable classes read as none; the taint is what fails closed.
            read_classes: serde_json::from_str(&classes).unwrap_or_default(),
            texts,
            updated_ms,
        }))
    }

    async fn update_session(
        &self,
        agent: &str,
        session: &str,
        update: SessionUpdate,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        self.check_residency(agent)?;
        let key = key_of(agent, session);
        let sealed = match &update.text {
            Some(t) => Some(
                self.seal_session_text(agent, update.tool.as_deref(), t)
                    .await?,
            ),
            None => None,
        };
        // A new row's version starts at the clock (milliseconds), so a session that expired
        // and was created again never repeats a version a cache may still hold.
        let mut classes: Vec<&String> = update.read_classes.iter().collect();
        classes.sort();
        classes.dedup();
        let classes = serde_json::to_string(&classes)?;
        // The first statement writes, so the transaction takes the write lock at once (and
        // waits for it) instead of failing to upgrade from a read.
        let mut tx = self.pool.begin().await?;
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO agent_sessions (agent, session_key, taint, read_classes, version, updated_ms) \
             VALUES (?1, ?2, ?3, ?4, MAX(?5, 1), ?5) \
             ON CONFLICT (agent, session_key) DO UPDATE SET taint = MAX(taint, excluded.taint), \
             read_classes = (SELECT json_group_array(value) FROM (SELECT value FROM json_each(agent_sessions.read_classes) \
             UNION SELECT value FROM json_each(?6) ORDER BY value)), version = version + 1, \
             updated_ms = MAX(updated_ms, excluded.updated_ms) \
             RETURNING version",
        )
        .bind(agent)
        .bind(&key)
        .bind(i64::from(update.taint.level()))
        .bind(&classes)
        .bind(now_ms)
        .bind(&classes)
        .fetch_one(&mut *tx)
        .await?;
        if let (Some(text), Some(body)) = (&update.text, sealed) {
            let trusted = text.source.is_none();
            let cap = i64::try_from(if trusted {
                MAX_TRUSTED_BYTES
            } else {
                MAX_UNTRUSTED_BYTES
            })
            .unwrap_or(i64::MAX);
            let bytes = i64::try_from(text.text.len()).unwrap_or(i64::MAX).min(cap) + ROW_OVERHEAD;
            sqlx::query(
                "INSERT INTO agent_session_texts (agent, session_key, trusted, bytes, body) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(agent)
            .bind(&key)
            .bind(trusted)
            .bind(bytes)
            .bind(body)
            .execute(&mut *tx)
            .await?;
            // Keep the newest texts within the bound, as the session in memory does: for
            // trusted text also the one that straddles it (memory keeps its tail).
            let drop_when = if trusted {
                "newer - bytes >= ?"
            } else {
                "newer > ?"
            };
            sqlx::query(&format!(
                "DELETE FROM agent_session_texts WHERE id IN (SELECT id FROM (\
                 SELECT id, bytes, SUM(bytes) OVER (ORDER BY id DESC) AS newer \
                 FROM agent_session_texts WHERE agent = ? AND session_key = ? AND trusted = ?) \
                 WHERE {drop_when})"
            ))
            .bind(agent)
            .bind(&key)
            .bind(trusted)
            .bind(cap)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(version_of(version))
    }

    async fn expire_sessions(&self, idle_before_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM agent_session_texts WHERE (agent, session_key) IN \
             (SELECT agent, session_key FROM agent_sessions WHERE updated_ms < ?)",
        )
        .bind(idle_before_ms)
        .execute(&mut *tx)
        .await?;
        let n = sqlx::query("DELETE FROM agent_sessions WHERE updated_ms < ?")
            .bind(idle_before_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
}
