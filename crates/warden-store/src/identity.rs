//! Identity tables (migration `0010_identity.sql`): agent tokens, OAuth clients, users and
//! their sessions, the break-glass credential, sealed secrets. Hashes and sealed bytes only;
//! the checks themselves (constant-time comparison, expiry, TOTP) live with the callers.

use sqlx::Row;

use crate::{Ledger, StoreError};

/// An agent token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub hash: Vec<u8>,
    pub agent: String,
    pub environment: String,
    /// `None`: every tool of the card.
    pub tools: Option<Vec<String>>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub issued_by: String,
}

/// An OAuth client as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRow {
    pub client_id: String,
    pub agent: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub disabled: bool,
}

/// A person as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub mfa: bool,
    pub disabled: bool,
    pub failed_logins: u32,
    pub locked_until: i64,
    pub last_totp_step: Option<i64>,
    pub created_at: i64,
}

/// A human session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub hash: Vec<u8>,
    pub csrf_hash: Vec<u8>,
    pub user_name: String,
    pub created_at: i64,
    pub last_seen: i64,
    pub totp_at: Option<i64>,
    pub break_glass: bool,
    pub ended_at: Option<i64>,
}

/// A sealed secret as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRow {
    pub name: String,
    pub wrapped_key: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub master_id: String,
    pub updated_at: i64,
}

fn token_row(r: &sqlx::sqlite::SqliteRow) -> Result<TokenRow, StoreError> {
    let tools: Option<String> = r.try_get("tools")?;
    Ok(TokenRow {
        id: r.try_get("id")?,
        hash: r.try_get("hash")?,
        agent: r.try_get("agent")?,
        environment: r.try_get("environment")?,
        tools: tools.map(|t| serde_json::from_str(&t)).transpose()?,
        issued_at: r.try_get("issued_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        issued_by: r.try_get("issued_by")?,
    })
}

fn user_row(r: &sqlx::sqlite::SqliteRow) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        password_hash: r.try_get("password_hash")?,
        mfa: r.try_get::<i64, _>("mfa")? != 0,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        failed_logins: u32::try_from(r.try_get::<i64, _>("failed_logins")?).unwrap_or(u32::MAX),
        locked_until: r.try_get("locked_until")?,
        last_totp_step: r.try_get("last_totp_step")?,
        created_at: r.try_get("created_at")?,
    })
}

fn session_row(r: &sqlx::sqlite::SqliteRow) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        id: r.try_get("id")?,
        hash: r.try_get("hash")?,
        csrf_hash: r.try_get("csrf_hash")?,
        user_name: r.try_get("user_name")?,
        created_at: r.try_get("created_at")?,
        last_seen: r.try_get("last_seen")?,
        totp_at: r.try_get("totp_at")?,
        break_glass: r.try_get::<i64, _>("break_glass")? != 0,
        ended_at: r.try_get("ended_at")?,
    })
}

impl Ledger {
    // ---- agent tokens -------------------------------------------------------------------

    pub async fn insert_token(&self, t: &TokenRow) -> Result<(), StoreError> {
        let tools = t.tools.as_ref().map(serde_json::to_string).transpose()?;
        sqlx::query("INSERT INTO agent_tokens (id, hash, agent, environment, tools, issued_at, expires_at, revoked_at, issued_by) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)")
            .bind(&t.id)
            .bind(&t.hash)
            .bind(&t.agent)
            .bind(&t.environment)
            .bind(tools)
            .bind(t.issued_at)
            .bind(t.expires_at)
            .bind(&t.issued_by)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A token by its public id. Read from the store on every call (no cache), so a
    /// revocation takes effect on the next request.
    pub async fn token(&self, id: &str) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM agent_tokens WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(token_row).transpose()
    }

    /// Tokens, newest first; with `include_inactive` also expired and revoked ones.
    pub async fn tokens(
        &self,
        now: i64,
        include_inactive: bool,
    ) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM agent_tokens WHERE ? OR (revoked_at IS NULL AND expires_at > ?) ORDER BY issued_at DESC, id")
            .bind(include_inactive)
            .bind(now)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(token_row).collect()
    }

    /// Revoke a token; `false` if there is no such active token.
    pub async fn revoke_token(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE agent_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    // ---- OAuth clients ------------------------------------------------------------------

    pub async fn insert_client(&self, c: &ClientRow) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO oauth_clients (client_id, agent, secret_hash, created_at, disabled) VALUES (?, ?, ?, ?, 0)")
            .bind(&c.client_id)
            .bind(&c.agent)
            .bind(&c.secret_hash)
            .bind(c.created_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<ClientRow>, StoreError> {
        let row = sqlx::query("SELECT client_id, agent, secret_hash, created_at, disabled FROM oauth_clients WHERE client_id = ?")
            .bind(client_id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(ClientRow {
                client_id: r.try_get(0)?,
                agent: r.try_get(1)?,
                secret_hash: r.try_get(2)?,
                created_at: r.try_get(3)?,
                disabled: r.try_get::<i64, _>(4)? != 0,
            })
        })
        .transpose()
    }

    // ---- users --------------------------------------------------------------------------

    pub async fn insert_user(&self, u: &UserRow) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO users (name, role, password_hash, mfa, disabled, failed_logins, locked_until, last_totp_step, created_at) VALUES (?, ?, ?, ?, 0, 0, 0, NULL, ?)")
            .bind(&u.name)
            .bind(&u.role)
            .bind(&u.password_hash)
            .bind(u.mfa)
            .bind(u.created_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn user(&self, name: &str) -> Result<Option<UserRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    pub async fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(user_row).collect()
    }

    /// Disable a user and end their sessions; `false` if no such enabled user.
    pub async fn disable_user(&self, name: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let r = sqlx::query("UPDATE users SET disabled = 1 WHERE name = ? AND disabled = 0")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE user_sessions SET ended_at = ? WHERE user_name = ? AND ended_at IS NULL",
        )
        .bind(now)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Record a failed login: count it and lock until `locked_until`.
    pub async fn record_login_failure(
        &self,
        name: &str,
        failed: u32,
        locked_until: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET failed_logins = ?, locked_until = ? WHERE name = ?")
            .bind(i64::from(failed))
            .bind(locked_until)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Record an accepted TOTP step, only if it is newer than the last one (so two racing
    /// requests cannot both use one code). `false` if the step was already used.
    pub async fn use_totp_step(&self, name: &str, step: i64) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE users SET last_totp_step = ? WHERE name = ? AND (last_totp_step IS NULL OR last_totp_step < ?)")
            .bind(step)
            .bind(name)
            .bind(step)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A successful login clears the failure count.
    pub async fn record_login_success(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET failed_logins = 0, locked_until = 0 WHERE name = ?")
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    // ---- sessions -----------------------------------------------------------------------

    pub async fn insert_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO user_sessions (id, hash, csrf_hash, user_name, created_at, last_seen, totp_at, break_glass, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)")
            .bind(&s.id)
            .bind(&s.hash)
            .bind(&s.csrf_hash)
            .bind(&s.user_name)
            .bind(s.created_at)
            .bind(s.last_seen)
            .bind(s.totp_at)
            .bind(s.break_glass)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM user_sessions WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(session_row).transpose()
    }

    pub async fn touch_session(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE user_sessions SET last_seen = ? WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn session_totp_verified(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE user_sessions SET totp_at = ? WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn end_session(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE user_sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    // ---- break-glass --------------------------------------------------------------------

    /// Seal a new break-glass credential; earlier ones are revoked.
    pub async fn seal_break_glass(
        &self,
        id: &str,
        hash: &[u8],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE break_glass SET revoked_at = ? WHERE revoked_at IS NULL")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO break_glass (id, hash, created_at, revoked_at) VALUES (?, ?, ?, NULL)",
        )
        .bind(id)
        .bind(hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The hash of an active break-glass credential by id.
    pub async fn break_glass_hash(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT hash FROM break_glass WHERE id = ? AND revoked_at IS NULL")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|r| r.0))
    }

    // ---- sealed secrets -----------------------------------------------------------------

    pub async fn put_secret(&self, s: &SecretRow) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO secrets (name, wrapped_key, ciphertext, master_id, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET wrapped_key = excluded.wrapped_key, ciphertext = excluded.ciphertext, master_id = excluded.master_id, updated_at = excluded.updated_at")
            .bind(&s.name)
            .bind(&s.wrapped_key)
            .bind(&s.ciphertext)
            .bind(&s.master_id)
            .bind(s.updated_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn secret(&self, name: &str) -> Result<Option<SecretRow>, StoreError> {
        let rows = self.secrets_where(Some(name)).await?;
        Ok(rows.into_iter().next())
    }

    pub async fn secrets(&self) -> Result<Vec<SecretRow>, StoreError> {
        self.secrets_where(None).await
    }

    async fn secrets_where(&self, name: Option<&str>) -> Result<Vec<SecretRow>, StoreError> {
        let rows = sqlx::query("SELECT name, wrapped_key, ciphertext, master_id, updated_at FROM secrets WHERE ? IS NULL OR name = ? ORDER BY name")
            .bind(name)
            .bind(name)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SecretRow {
                    name: r.try_get(0)?,
                    wrapped_key: r.try_get(1)?,
                    ciphertext: r.try_get(2)?,
                    master_id: r.try_get(3)?,
                    updated_at: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Replace every sealed secret in one transaction (master-key rotation).
    pub async fn replace_secrets(&self, rows: &[SecretRow]) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        for s in rows {
            sqlx::query(
                "UPDATE secrets SET wrapped_key = ?, master_id = ?, updated_at = ? WHERE name = ?",
            )
            .bind(&s.wrapped_key)
            .bind(&s.master_id)
            .bind(s.updated_at)
            .bind(&s.name)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- access review ------------------------------------------------------------------

    /// Decision records since `since` (RFC 3339), counted by (agent, tool as recorded:
    /// `qualified_tool` when the card grants it, else the name used).
    pub async fn decision_usage(
        &self,
        since: &str,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT json_extract(record, '$.event.agent') AS agent, \
             COALESCE(json_extract(record, '$.event.qualified_tool'), json_extract(record, '$.event.tool')) AS tool, \
             COUNT(*) AS n FROM ledger \
             WHERE json_extract(record, '$.event.kind') = 'decision' AND json_extract(record, '$.ts') >= ? \
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.try_get(2)?;
                Ok((
                    r.try_get::<Option<String>, _>(0)?.unwrap_or_default(),
                    r.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
                    u64::try_from(n).unwrap_or(0),
                ))
            })
            .collect()
    }
}
