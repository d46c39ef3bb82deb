//! [`Lifecycle`] on SQLite: destroying payload keys (retention, erasure), recording it,
//! reading what is held about a data subject, and re-wrapping the keys for a new master key.
//! No record is changed or removed, so `warden audit verify` and every signed checkpoint still
//! pass afterwards.

use async_trait::async_trait;
use warden_core::ledger::{ErasureEvent, LedgerEvent, PurgedKey, RetentionEvent};
use warden_core::vault::normalize_subject;

use super::vault::Vault;
use super::SqliteStore;
use crate::lifecycle::{day_start_ms, DAY_MS};
use crate::{ErasureReport, LedgerLog, Lifecycle, RetentionReport, StoreError, StoredRecord};

/// A period key row (`SELECT id, agent, classes, day FROM vault_keys`).
#[derive(sqlx::FromRow)]
struct PeriodKey {
    id: String,
    agent: Option<String>,
    classes: Option<String>,
    day: Option<String>,
}

impl PeriodKey {
    /// (id, agent, classes, day), missing text as empty.
    fn parts(self) -> (String, String, Vec<String>, String) {
        let classes = self
            .classes
            .unwrap_or_default()
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        (
            self.id,
            self.agent.unwrap_or_default(),
            classes,
            self.day.unwrap_or_default(),
        )
    }
}

impl SqliteStore {
    fn vault_required(&self) -> Result<&Vault, StoreError> {
        self.vault.as_ref().ok_or(StoreError::VaultDisabled)
    }

    /// Records whose payloads were sealed with a key id (a period key id, or a subject key
    /// id with its `+` separator).
    async fn records_sealed_with(&self, needle: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger WHERE instr(record, ?) > 0")
            .bind(needle)
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Destroy `ids` (set their wrapped key to NULL) with SQLite's secure delete on, so the
    /// wrapped bytes do not linger in free pages, then truncate the WAL.
    async fn destroy_keys(&self, ids: &[String], by: &str, at_ms: i64) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("PRAGMA secure_delete = ON")
            .execute(&mut *conn)
            .await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        for id in ids {
            sqlx::query(
                "UPDATE vault_keys SET wrapped = NULL, destroyed_ms = ?, destroyed_by = ? WHERE id = ? AND wrapped IS NOT NULL",
            )
            .bind(at_ms)
            .bind(by)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        // Old page images of the key rows live in the WAL until it is checkpointed.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *conn)
            .await?;
        if let Some(v) = &self.vault {
            v.forget();
        }
        Ok(())
    }
}

#[async_trait]
impl Lifecycle for SqliteStore {
    /// Run retention as of `as_of_ms` (normally now): destroy each period key whose day
    /// ended more than its retention ago, then write one `retention_purged` record naming
    /// them (also for keys an earlier run destroyed but could not record). A dry run only
    /// reports what is due.
    async fn retention_run(
        &self,
        as_of_ms: i64,
        as_of: &str,
        actor: &str,
        ts: String,
        dry_run: bool,
    ) -> Result<RetentionReport, StoreError> {
        let vault = self.vault_required()?;
        let rows: Vec<PeriodKey> = sqlx::query_as(
            "SELECT id, agent, classes, day FROM vault_keys WHERE kind = 'period' AND wrapped IS NOT NULL ORDER BY day, id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut report = RetentionReport::default();
        let mut due = Vec::new();
        for row in rows {
            let (id, agent, classes, day) = row.parts();
            let Some(days) = vault.plan().retention_days(&agent, &classes) else {
                report.kept += 1;
                continue;
            };
            let Some(start) = day_start_ms(&day) else {
                report.kept += 1;
                continue;
            };
            if as_of_ms >= start + (i64::from(days) + 1) * DAY_MS {
                due.push(PurgedKey {
                    key_id: id,
                    agent,
                    classes,
                    day,
                    retention_days: days,
                });
            } else {
                report.kept += 1;
            }
        }
        if dry_run {
            for k in &due {
                report.records += self
                    .records_sealed_with(&format!("wdn1:{}", k.key_id))
                    .await?;
            }
            report.keys = due;
            return Ok(report);
        }
        let ids: Vec<String> = due.iter().map(|k| k.key_id.clone()).collect();
        if !ids.is_empty() {
            self.destroy_keys(&ids, "retention", self.clock.unix_ms())
                .await?;
        }
        // Record every destroyed key not yet recorded (this run's and any left by a run that
        // failed between destroying and recording).
        let pending: Vec<PeriodKey> = sqlx::query_as(
            "SELECT id, agent, classes, day FROM vault_keys WHERE kind = 'period' AND wrapped IS NULL AND recorded = 0 ORDER BY day, id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut keys = Vec::new();
        for row in pending {
            let (id, agent, classes, day) = row.parts();
            let retention_days = due
                .iter()
                .find(|k| k.key_id == id)
                .map(|k| k.retention_days)
                .or_else(|| vault.plan().retention_days(&agent, &classes))
                .unwrap_or(0);
            keys.push(PurgedKey {
                key_id: id,
                agent,
                classes,
                day,
                retention_days,
            });
        }
        if keys.is_empty() {
            return Ok(report);
        }
        for k in &keys {
            report.records += self
                .records_sealed_with(&format!("wdn1:{}", k.key_id))
                .await?;
        }
        let appended = self
            .append(
                ts,
                LedgerEvent::RetentionPurged(RetentionEvent {
                    keys: keys.clone(),
                    records: report.records,
                    as_of: as_of.to_string(),
                    actor: actor.to_string(),
                }),
            )
            .await?;
        for k in &keys {
            sqlx::query("UPDATE vault_keys SET recorded = 1 WHERE id = ?")
                .bind(&k.key_id)
                .execute(&self.pool)
                .await?;
        }
        report.keys = keys;
        report.recorded_seq = Some(appended.seq);
        Ok(report)
    }

    /// Erase a data subject: destroy every key of the subject, and record the erasure
    /// (also when nothing was held, as evidence the request was served).
    async fn erase_subject(
        &self,
        subject: &str,
        actor: &str,
        reason: &str,
        ts: String,
    ) -> Result<ErasureReport, StoreError> {
        let vault = self.vault_required()?;
        let subject = normalize_subject(subject).ok_or(StoreError::BadSubject)?;
        let sref = vault.subject_ref(&subject);
        let keys: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM vault_keys WHERE subject_ref = ? AND wrapped IS NOT NULL ORDER BY generation",
        )
        .bind(&sref)
        .fetch_all(&self.pool)
        .await?;
        if !keys.is_empty() {
            self.destroy_keys(&keys, "erasure", self.clock.unix_ms())
                .await?;
        }
        let records = self.records_sealed_with(&format!("+s-{sref}-")).await?;
        let appended = self
            .append(
                ts,
                LedgerEvent::SubjectErased(ErasureEvent {
                    subject_ref: sref.clone(),
                    keys: keys.clone(),
                    records,
                    actor: actor.to_string(),
                    reason: reason.to_string(),
                }),
            )
            .await?;
        for k in &keys {
            sqlx::query("UPDATE vault_keys SET recorded = 1 WHERE id = ?")
                .bind(k)
                .execute(&self.pool)
                .await?;
        }
        Ok(ErasureReport {
            subject_ref: sref,
            keys,
            records,
            recorded_seq: appended.seq,
        })
    }

    /// Everything the ledger holds about a subject (records sealed for it, and its erasure
    /// records), opened where the keys still exist. Returns the subject's reference too.
    async fn subject_records(
        &self,
        subject: &str,
    ) -> Result<(String, Vec<StoredRecord>), StoreError> {
        let vault = self.vault_required()?;
        let subject = normalize_subject(subject).ok_or(StoreError::BadSubject)?;
        let sref = vault.subject_ref(&subject);
        let records: Vec<StoredRecord> = sqlx::query_as(
            "SELECT seq, hash, record FROM ledger WHERE instr(record, ?) > 0 \
             OR (json_extract(record, '$.event.kind') = 'subject_erased' AND json_extract(record, '$.event.subject_ref') = ?) \
             ORDER BY seq",
        )
        .bind(format!("+s-{sref}-"))
        .bind(&sref)
        .fetch_all(&self.pool)
        .await?;
        Ok((sref, self.opened(records).await?))
    }

    /// Re-wrap every live payload key from the `old` master key to `new` (master key
    /// rotation): no record changes. Returns the number of keys re-wrapped.
    async fn rewrap_vault_keys(&self, old: &[u8; 32], new: &[u8; 32]) -> Result<u64, StoreError> {
        use rand::RngCore as _;
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT id, wrapped FROM vault_keys WHERE wrapped IS NOT NULL")
                .fetch_all(&self.pool)
                .await?;
        let new_id = warden_core::envelope::key_id(new);
        let mut tx = self.pool.begin().await?;
        let mut n = 0;
        for (id, wrapped) in rows {
            let key = warden_core::vault::unwrap_key(old, &id, &wrapped)
                .map_err(|_| StoreError::KeyDoesNotOpen { id: id.clone() })?;
            let mut nonce = [0u8; 24];
            rand::rngs::OsRng.fill_bytes(&mut nonce);
            sqlx::query("UPDATE vault_keys SET wrapped = ?, master_id = ? WHERE id = ?")
                .bind(warden_core::vault::wrap_key(new, &id, &key, nonce))
                .bind(&new_id)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            n += 1;
        }
        tx.commit().await?;
        Ok(n)
    }
}
