//! The key store behind sealed payloads (see `warden_core::vault` for the scheme): keys are
//! created on first use, kept wrapped by the master key in `vault_keys`, cached unwrapped in
//! memory for a few seconds, and destroyed by retention and erasure.
//!
//! A key destroyed by another process (the `warden retention run` or `warden data erase`
//! command beside a running `warden serve`) is forgotten by this process's cache within
//! [`CACHE_TTL`]; a payload sealed in that window with the destroyed key is unreadable too.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore as _;
use sqlx::SqlitePool;
use warden_core::clock::Clock;
use warden_core::ledger::LedgerEvent;
use warden_core::vault::{
    self as core_vault, event_scope, period_key_id, subject_key_id, subject_ref, PayloadPlan,
    SealedRef, Unreadable,
};

use crate::{StoreError, VaultOptions};

/// How long an unwrapped key is trusted without asking the database again.
pub const CACHE_TTL: Duration = Duration::from_secs(2);

#[derive(Clone)]
enum KeyState {
    Live([u8; 32]),
    Destroyed(Unreadable),
}

pub(crate) struct Vault {
    master: [u8; 32],
    master_id: String,
    plan: PayloadPlan,
    pool: SqlitePool,
    index_key: [u8; 32],
    keys: Mutex<HashMap<String, (Instant, KeyState)>>,
    /// Subject reference → its current key id.
    current_subject: Mutex<HashMap<String, (Instant, String)>>,
    /// Decision id → subject key id of its payloads, so its outcome is sealed alike.
    decisions: Mutex<HashMap<String, Option<String>>>,
    /// Key creation and destruction times.
    clock: Clock,
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

impl Vault {
    pub(crate) async fn open(
        pool: SqlitePool,
        opts: VaultOptions,
        clock: Clock,
    ) -> Result<Self, StoreError> {
        let master_id = warden_core::envelope::key_id(&opts.master);
        let index_key = match fetch(&pool, &opts.master, "index").await? {
            Some(KeyState::Live(k)) => k,
            Some(KeyState::Destroyed(_)) => return Err(StoreError::WrongMasterKey),
            None => {
                let key = random::<32>();
                let wrapped = core_vault::wrap_key(&opts.master, "index", &key, random());
                sqlx::query(
                    "INSERT OR IGNORE INTO vault_keys (id, kind, wrapped, master_id, created_ms) VALUES ('index', 'index', ?, ?, ?)",
                )
                .bind(wrapped)
                .bind(&master_id)
                .bind(clock.unix_ms())
                .execute(&pool)
                .await?;
                match fetch(&pool, &opts.master, "index").await? {
                    Some(KeyState::Live(k)) => k,
                    _ => {
                        return Err(StoreError::KeyNotStored {
                            what: "the subject index key",
                        })
                    }
                }
            }
        };
        Ok(Self {
            master: opts.master,
            master_id,
            plan: opts.plan,
            pool,
            index_key,
            keys: Mutex::new(HashMap::new()),
            current_subject: Mutex::new(HashMap::new()),
            decisions: Mutex::new(HashMap::new()),
            clock,
        })
    }

    pub(crate) fn plan(&self) -> &PayloadPlan {
        &self.plan
    }

    /// The pseudonymous reference of a (normalised) subject.
    pub(crate) fn subject_ref(&self, subject: &str) -> String {
        subject_ref(&self.index_key, subject)
    }

    /// The subject of a decision, from the card's `subject_args`, read before redaction.
    pub(crate) fn subject_of(&self, event: &LedgerEvent) -> Option<String> {
        match event {
            LedgerEvent::Decision(d) => self.plan.subject_of(&d.agent, &d.arguments),
            _ => None,
        }
    }

    fn cached(&self, id: &str) -> Option<KeyState> {
        let map = self.keys.lock().ok()?;
        let (at, state) = map.get(id)?;
        match state {
            KeyState::Destroyed(_) => Some(state.clone()),
            KeyState::Live(_) if at.elapsed() < CACHE_TTL => Some(state.clone()),
            KeyState::Live(_) => None,
        }
    }

    fn remember(&self, id: &str, state: KeyState) {
        if let Ok(mut map) = self.keys.lock() {
            if map.len() > 50_000 {
                map.clear();
            }
            map.insert(id.to_string(), (Instant::now(), state));
        }
    }

    /// Forget every cached key (after this process destroyed some).
    pub(crate) fn forget(&self) {
        if let Ok(mut m) = self.keys.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.current_subject.lock() {
            m.clear();
        }
    }

    async fn key(&self, id: &str) -> Result<Option<KeyState>, StoreError> {
        if let Some(s) = self.cached(id) {
            return Ok(Some(s));
        }
        let state = fetch(&self.pool, &self.master, id).await?;
        if let Some(s) = &state {
            self.remember(id, s.clone());
        }
        Ok(state)
    }

    /// The live period key for `(day, agent, classes)`, created if there is none.
    async fn period_key(
        &self,
        day: &str,
        agent: &str,
        classes: &[String],
    ) -> Result<(String, [u8; 32]), StoreError> {
        let id = period_key_id(day, agent, classes);
        if let Some(KeyState::Live(k)) = self.key(&id).await? {
            return Ok((id, k));
        }
        let key = random::<32>();
        sqlx::query(
            "INSERT OR IGNORE INTO vault_keys (id, kind, wrapped, master_id, agent, classes, day, created_ms) \
             VALUES (?, 'period', ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(core_vault::wrap_key(&self.master, &id, &key, random()))
        .bind(&self.master_id)
        .bind(agent)
        .bind(classes.join(","))
        .bind(day)
        .bind(self.clock.unix_ms())
        .execute(&self.pool)
        .await?;
        match self.key(&id).await? {
            Some(KeyState::Live(k)) => Ok((id, k)),
            // Only a retention run evaluated at a future time destroys today's key; refuse
            // rather than seal with a destroyed key (the call is refused: fail closed).
            Some(KeyState::Destroyed(_)) => Err(StoreError::KeyDestroyed {
                day: day.to_string(),
            }),
            None => Err(StoreError::KeyNotStored {
                what: "a payload key",
            }),
        }
    }

    /// The live key of a subject, a new generation if every earlier one was erased.
    async fn subject_key(&self, subject: &str) -> Result<(String, [u8; 32]), StoreError> {
        self.subject_key_for_ref(self.subject_ref(subject)).await
    }

    async fn subject_key_for_ref(&self, sref: String) -> Result<(String, [u8; 32]), StoreError> {
        let current = self.current_subject.lock().ok().and_then(|m| {
            m.get(&sref)
                .filter(|(at, _)| at.elapsed() < CACHE_TTL)
                .map(|(_, id)| id.clone())
        });
        if let Some(id) = current {
            if let Some(KeyState::Live(k)) = self.key(&id).await? {
                return Ok((id, k));
            }
        }
        for _ in 0..3 {
            let current: Option<String> = sqlx::query_scalar(
                "SELECT id FROM vault_keys WHERE subject_ref = ? AND wrapped IS NOT NULL ORDER BY generation DESC LIMIT 1",
            )
            .bind(&sref)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(id) = current {
                if let Some(KeyState::Live(k)) = self.key(&id).await? {
                    if let Ok(mut m) = self.current_subject.lock() {
                        m.insert(sref.clone(), (Instant::now(), id.clone()));
                    }
                    return Ok((id, k));
                }
            }
            let generation: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(generation), 0) + 1 FROM vault_keys WHERE subject_ref = ?",
            )
            .bind(&sref)
            .fetch_one(&self.pool)
            .await?;
            let id = subject_key_id(&sref, u32::try_from(generation).unwrap_or(u32::MAX));
            sqlx::query(
                "INSERT OR IGNORE INTO vault_keys (id, kind, wrapped, master_id, subject_ref, generation, created_ms) \
                 VALUES (?, 'subject', ?, ?, ?, ?, ?)",
            )
            .bind(&id)
            .bind(core_vault::wrap_key(&self.master, &id, &random(), random()))
            .bind(&self.master_id)
            .bind(&sref)
            .bind(generation)
            .bind(self.clock.unix_ms())
            .execute(&self.pool)
            .await?;
        }
        Err(StoreError::KeyNotStored {
            what: "a subject key",
        })
    }

    /// The subject key id an outcome (or detector finding) of decision `id` is sealed with:
    /// the one its decision used, remembered, or read back from the decision record.
    async fn decision_subject(&self, id: &str) -> Result<Option<String>, StoreError> {
        if let Some(s) = self.decisions.lock().ok().and_then(|m| m.get(id).cloned()) {
            return Ok(s);
        }
        let record: Option<String> = sqlx::query_scalar(
            "SELECT l.record FROM decision_records d JOIN ledger l ON l.seq = d.seq \
             WHERE d.decision_id = ? AND json_extract(l.record, '$.event.kind') = 'decision' LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let subject = record
            .and_then(|r| serde_json::from_str::<serde_json::Value>(&r).ok())
            .and_then(|v| {
                v.pointer("/event/arguments")
                    .and_then(|a| a.as_str())
                    .and_then(SealedRef::parse)
                    .and_then(|s| s.subject.map(str::to_string))
            });
        Ok(subject)
    }

    /// The live subject key for what follows decision `id` (its outcome, findings, approval
    /// request): the decision's own, or — when the subject was erased since — the subject's
    /// next generation, which a further erasure destroys. `None` when it had no subject.
    async fn decision_subject_key(
        &self,
        id: &str,
    ) -> Result<Option<(String, [u8; 32])>, StoreError> {
        let Some(key_id) = self.decision_subject(id).await? else {
            return Ok(None);
        };
        if let Some(KeyState::Live(k)) = self.key(&key_id).await? {
            return Ok(Some((key_id, k)));
        }
        let sref = key_id.split('-').nth(1).unwrap_or_default().to_string();
        Ok(Some(self.subject_key_for_ref(sref).await?))
    }

    /// Seal the payloads of `event`, written at `ts`, for `subject` (of a decision).
    pub(crate) async fn seal(
        &self,
        ts: &str,
        event: &mut LedgerEvent,
        subject: Option<String>,
    ) -> Result<(), StoreError> {
        let Some((agent, tool, qualified)) = event_scope(event) else {
            return Ok(());
        };
        let classes = self.plan.classes(agent, &[Some(tool), qualified]);
        let day = ts
            .get(..10)
            .filter(|d| d.len() == 10)
            .ok_or(StoreError::UndatedRecord)?;
        let agent = agent.to_string();
        let (period_id, period) = self.period_key(day, &agent, &classes).await?;
        let subject_key = match (&*event, subject) {
            (LedgerEvent::Decision(d), Some(s)) => {
                let (id, key) = self.subject_key(&s).await?;
                self.note_decision(&d.decision_id, Some(id.clone()));
                Some((id, key))
            }
            (LedgerEvent::Decision(d), None) => {
                self.note_decision(&d.decision_id, None);
                None
            }
            (other, _) => match other.decision_id() {
                Some(did) => self.decision_subject_key(did).await?,
                None => None,
            },
        };
        let key = core_vault::payload_key(
            &period,
            subject_key.as_ref().map(|(_, k)| k),
            &period_id,
            subject_key.as_ref().map(|(id, _)| id.as_str()),
        );
        let sid = subject_key.as_ref().map(|(id, _)| id.clone());
        core_vault::seal_event(event, |field, plain| {
            core_vault::seal_payload(&key, &period_id, sid.as_deref(), field, plain, random())
        });
        Ok(())
    }

    /// The payload key for values kept beside the ledger about decision `decision_id` (an
    /// approval request's arguments, reasons and before-state): the same period and subject
    /// keys as the decision's own payloads. Returns (period id, subject id, key).
    pub(crate) async fn key_for_decision(
        &self,
        day: &str,
        agent: &str,
        tools: &[Option<&str>],
        decision_id: &str,
    ) -> Result<(String, Option<String>, [u8; 32]), StoreError> {
        let classes = self.plan.classes(agent, tools);
        let (period_id, period) = self.period_key(day, agent, &classes).await?;
        let subject = self.decision_subject_key(decision_id).await?;
        let key = core_vault::payload_key(
            &period,
            subject.as_ref().map(|(_, k)| k),
            &period_id,
            subject.as_ref().map(|(id, _)| id.as_str()),
        );
        Ok((period_id, subject.map(|(id, _)| id), key))
    }

    /// Seal a value kept beside the ledger that belongs to no decision (an agent session's
    /// text): with the period key of `day`, `agent` and the data classes of `tool`, so
    /// retention reaches it like the ledger's payloads.
    pub(crate) async fn seal_loose(
        &self,
        day: &str,
        agent: &str,
        tool: Option<&str>,
        field: &str,
        plain: &[u8],
    ) -> Result<String, StoreError> {
        let classes = self.plan.classes(agent, &[tool]);
        let (period_id, period) = self.period_key(day, agent, &classes).await?;
        let key = core_vault::payload_key(&period, None, &period_id, None);
        Ok(core_vault::seal_payload(
            &key,
            &period_id,
            None,
            field,
            plain,
            random(),
        ))
    }

    /// Open one sealed value of `field`; `None` when `text` is not sealed.
    pub(crate) async fn open_text(
        &self,
        field: &str,
        text: &str,
    ) -> Result<Option<Result<Vec<u8>, Unreadable>>, StoreError> {
        let Some(r) = SealedRef::parse(text) else {
            return Ok(None);
        };
        let get = |state: Option<KeyState>| match state {
            Some(KeyState::Live(k)) => Ok(k),
            Some(KeyState::Destroyed(why)) => Err(why),
            None => Err(Unreadable::Unavailable),
        };
        let period = get(self.key(r.period).await?);
        let subject = match r.subject {
            Some(id) => Some(get(self.key(id).await?)),
            None => None,
        };
        let opened = (|| {
            let period = period?;
            let subject = subject.transpose()?;
            let key = core_vault::payload_key(&period, subject.as_ref(), r.period, r.subject);
            core_vault::open_payload(&key, &r, field).map_err(|_| Unreadable::Unavailable)
        })();
        Ok(Some(opened))
    }

    fn note_decision(&self, id: &str, subject_key: Option<String>) {
        if let Ok(mut m) = self.decisions.lock() {
            if m.len() > 100_000 {
                m.clear();
            }
            m.insert(id.to_string(), subject_key);
        }
    }

    /// Open the sealed payloads of a record read back; what cannot be opened shows why.
    pub(crate) async fn open_payloads(&self, event: &mut LedgerEvent) -> Result<(), StoreError> {
        let mut ids: Vec<String> = Vec::new();
        core_vault::open_event(&mut event.clone(), |_, r| {
            ids.push(r.period.to_string());
            if let Some(s) = r.subject {
                ids.push(s.to_string());
            }
            Err(Unreadable::Unavailable)
        });
        if ids.is_empty() {
            return Ok(());
        }
        ids.sort();
        ids.dedup();
        let mut keys = HashMap::new();
        for id in ids {
            let state = self.key(&id).await?;
            keys.insert(id, state);
        }
        let get = |id: &str| -> Result<[u8; 32], Unreadable> {
            match keys.get(id) {
                Some(Some(KeyState::Live(k))) => Ok(*k),
                Some(Some(KeyState::Destroyed(why))) => Err(why.clone()),
                _ => Err(Unreadable::Unavailable),
            }
        };
        core_vault::open_event(event, |field, r| {
            let period = get(r.period)?;
            let subject = r.subject.map(get).transpose()?;
            let key = core_vault::payload_key(&period, subject.as_ref(), r.period, r.subject);
            core_vault::open_payload(&key, r, field).map_err(|_| Unreadable::Unavailable)
        });
        Ok(())
    }
}

/// Read and unwrap one key. `None` if there is no such key.
async fn fetch(
    pool: &SqlitePool,
    master: &[u8; 32],
    id: &str,
) -> Result<Option<KeyState>, StoreError> {
    let row: Option<(Option<Vec<u8>>, Option<String>)> =
        sqlx::query_as("SELECT wrapped, destroyed_by FROM vault_keys WHERE id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    let Some((wrapped, by)) = row else {
        return Ok(None);
    };
    Ok(Some(match wrapped {
        Some(w) => match core_vault::unwrap_key(master, id, &w) {
            Ok(k) => KeyState::Live(k),
            Err(_) => KeyState::Destroyed(Unreadable::Unavailable),
        },
        None => KeyState::Destroyed(match by.as_deref() {
            Some("erasure") => Unreadable::Erased,
            Some("retention") => Unreadable::Purged,
            _ => Unreadable::Unavailable,
        }),
    }))
}
