//! [`IdentityStore`] on SQLite (migration `0010_identity.sql`): agent tokens, OAuth clients,
//! users and their sessions, the break-glass credential, sealed secrets.

use async_trait::async_trait;

use super::SqliteStore;
use crate::{
    Attempt, ClientRow, IdentityStore, SecretRow, SessionRow, StoreError, TokenRow, UserRow,
};

#[async_trait]
impl IdentityStore for SqliteStore {
    // ---- agent tokens -------------------------------------------------------------------

    async fn insert_token(&self, t: &TokenRow) -> Result<(), StoreError> {
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
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A token by its public id. Read from the store on every call (no cache), so a
    /// revocation takes effect on the next request.
    async fn token(&self, id: &str) -> Result<Option<TokenRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM agent_tokens WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Tokens, newest first; with `include_inactive` also expired and revoked ones.
    async fn tokens(&self, now: i64, include_inactive: bool) -> Result<Vec<TokenRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM agent_tokens WHERE ? OR (revoked_at IS NULL AND expires_at > ?) ORDER BY issued_at DESC, id")
            .bind(include_inactive)
            .bind(now)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Revoke a token; `false` if there is no such active token.
    async fn revoke_token(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE agent_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    // ---- OAuth clients ------------------------------------------------------------------

    async fn insert_client(&self, c: &ClientRow) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO oauth_clients (client_id, agent, secret_hash, created_at, disabled) VALUES (?, ?, ?, ?, 0)")
            .bind(&c.client_id)
            .bind(&c.agent)
            .bind(&c.secret_hash)
            .bind(c.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn client(&self, client_id: &str) -> Result<Option<ClientRow>, StoreError> {
        Ok(sqlx::query_as("SELECT client_id, agent, secret_hash, created_at, disabled FROM oauth_clients WHERE client_id = ?")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    // ---- users --------------------------------------------------------------------------

    async fn insert_user(&self, u: &UserRow) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO users (name, role, password_hash, mfa, disabled, failed_logins, locked_until, last_totp_step, created_at) VALUES (?, ?, ?, ?, 0, 0, 0, NULL, ?)")
            .bind(&u.name)
            .bind(&u.role)
            .bind(&u.password_hash)
            .bind(u.mfa)
            .bind(u.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn user(&self, name: &str) -> Result<Option<UserRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Disable a user and end their sessions; `false` if no such enabled user.
    async fn disable_user(&self, name: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
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

    async fn begin_attempt(&self, name: &str, now: i64, max: u32) -> Result<Attempt, StoreError> {
        // One statement: the count, the lock check and the lock cannot interleave with another
        // attempt's. In SET, `failed_logins` is the value before this update.
        let counted: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE users SET failed_logins = failed_logins + 1, \
               locked_until = CASE WHEN failed_logins + 1 >= ? \
                 THEN ? + MIN(30 << MIN(failed_logins + 1 - ?, 7), 3600) ELSE locked_until END \
             WHERE name = ? AND locked_until <= ? RETURNING failed_logins, locked_until",
        )
        .bind(i64::from(max))
        .bind(now)
        .bind(i64::from(max))
        .bind(name)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if let Some((failed, locked_until)) = counted {
            return Ok(Attempt::Counted {
                failed: u32::try_from(failed).unwrap_or(u32::MAX),
                locked_until,
            });
        }
        let locked: Option<i64> =
            sqlx::query_scalar("SELECT locked_until FROM users WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(locked.map_or(Attempt::Unknown, Attempt::Locked))
    }

    /// Record an accepted TOTP step, only if it is newer than the last one (so two racing
    /// requests cannot both use one code). `false` if the step was already used.
    async fn use_totp_step(&self, name: &str, step: i64) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE users SET last_totp_step = ? WHERE name = ? AND (last_totp_step IS NULL OR last_totp_step < ?)")
            .bind(step)
            .bind(name)
            .bind(step)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A successful login clears the failure count.
    async fn record_login_success(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET failed_logins = 0, locked_until = 0 WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- sessions -----------------------------------------------------------------------

    async fn insert_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO user_sessions (id, hash, csrf_hash, user_name, created_at, last_seen, totp_at, break_glass, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)")
            .bind(&s.id)
            .bind(&s.hash)
            .bind(&s.csrf_hash)
            .bind(&s.user_name)
            .bind(s.created_at)
            .bind(s.last_seen)
            .bind(s.totp_at)
            .bind(s.break_glass)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM user_sessions WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn touch_session(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE user_sessions SET last_seen = ? WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn session_totp_verified(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE user_sessions SET totp_at = ? WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn end_session(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE user_sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- break-glass --------------------------------------------------------------------

    /// Seal a new break-glass credential; earlier ones are revoked.
    async fn seal_break_glass(&self, id: &str, hash: &[u8], now: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
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
    async fn break_glass_hash(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT hash FROM break_glass WHERE id = ? AND revoked_at IS NULL")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.0))
    }

    // ---- sealed secrets -----------------------------------------------------------------

    async fn put_secret(&self, s: &SecretRow) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO secrets (name, wrapped_key, ciphertext, master_id, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET wrapped_key = excluded.wrapped_key, ciphertext = excluded.ciphertext, master_id = excluded.master_id, updated_at = excluded.updated_at")
            .bind(&s.name)
            .bind(&s.wrapped_key)
            .bind(&s.ciphertext)
            .bind(&s.master_id)
            .bind(s.updated_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn secret(&self, name: &str) -> Result<Option<SecretRow>, StoreError> {
        Ok(sqlx::query_as("SELECT name, wrapped_key, ciphertext, master_id, updated_at FROM secrets WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn secrets(&self) -> Result<Vec<SecretRow>, StoreError> {
        Ok(sqlx::query_as("SELECT name, wrapped_key, ciphertext, master_id, updated_at FROM secrets ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Replace every sealed secret in one transaction (master-key rotation).
    async fn replace_secrets(&self, rows: &[SecretRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
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
}
