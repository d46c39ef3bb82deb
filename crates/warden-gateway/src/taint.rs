//! Agents' session taint, per (agent, session id): what each agent session has read (trust,
//! data classes, untrusted text), for prompt-injection containment. Not to be confused with
//! people's login sessions (`logins.rs`).
//!
//! The state itself lives in the core ([`warden_core::SessionState`]); the truth is the
//! store ([`warden_store::SessionStore`]), and this module keeps a bounded cache of it in
//! memory. A session evicted from the cache is reloaded from the store on its next use, so
//! neither eviction nor a restart clears a taint: an agent flooding session ids only churns
//! the cache (bounded per agent and in total, in entries and in text bytes).
//!
//! - **Reads** ([`SessionTable::get`]): one small store read per decision (the session's
//!   version); the cached copy is used when it is current, otherwise the session is reloaded.
//!   A read that fails refuses the call (fail closed).
//! - **Updates** ([`SessionTable::update`]): stored first, then applied to the cached copy.
//!   An update that would tighten the session (untrusted text, a higher taint) and cannot be
//!   stored is kept in memory anyway and the session is refused until the store takes it;
//!   one that would loosen it (trusted text) and cannot be stored is dropped.
//!
//! A call that names no session shares the agent's default session (`""`), so leaving the
//! session id out never escapes taint.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use warden_core::SessionState;
use warden_store::{SessionUpdate, Store};

/// Most sessions of one agent kept in memory.
pub const MAX_SESSIONS_PER_AGENT: usize = 1_000;
/// Most sessions kept in memory in all.
pub const MAX_SESSIONS: usize = 10_000;
/// Most text bytes (untrusted and trusted) kept in memory in all. One session keeps at most
/// 384 KiB of text ([`warden_core::session::MAX_UNTRUSTED_BYTES`] +
/// [`warden_core::session::MAX_TRUSTED_BYTES`]).
pub const MAX_TEXT_BYTES: usize = 256 * 1024 * 1024;
/// Bytes counted per cached session beside its text (maps, sources, findings; an estimate).
const ENTRY_OVERHEAD: usize = 1024;
/// How often expired sessions are deleted from the store.
const SWEEP_EVERY_MS: i64 = 10 * 60 * 1000;

/// One session's state, shared by the calls that use it.
pub type Shared = Arc<Mutex<SessionState>>;

struct Entry {
    state: Shared,
    /// The store's version this copy reflects (0: nothing stored yet).
    version: u64,
    used: u64,
    bytes: usize,
    /// An update that tightens the session could not be stored: refuse until it is.
    unsaved: bool,
}

#[derive(Default)]
struct Cache {
    agents: HashMap<String, HashMap<String, Entry>>,
    count: usize,
    bytes: usize,
    tick: u64,
}

impl Cache {
    fn entry(&mut self, agent: &str, session: &str) -> Option<&mut Entry> {
        self.tick += 1;
        let tick = self.tick;
        let e = self.agents.get_mut(agent)?.get_mut(session)?;
        e.used = tick;
        Some(e)
    }

    fn remove(&mut self, agent: &str, session: &str) {
        if let Some(m) = self.agents.get_mut(agent) {
            if let Some(e) = m.remove(session) {
                self.count -= 1;
                self.bytes = self.bytes.saturating_sub(e.bytes);
            }
            if m.is_empty() {
                self.agents.remove(agent);
            }
        }
    }

    /// Evict the least recently used saved session of `agent`; false if there is none.
    fn evict_from(&mut self, agent: &str) -> bool {
        let Some(m) = self.agents.get(agent) else {
            return false;
        };
        let oldest = m
            .iter()
            .filter(|(_, e)| !e.unsaved)
            .min_by_key(|(_, e)| e.used)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => {
                self.remove(agent, &k);
                true
            }
            None => false,
        }
    }

    /// Make room for one more session of `agent`: its own least recently used first when it
    /// is at its bound, then the agent with the most sessions while the totals are exceeded.
    fn make_room(&mut self, agent: &str, bytes: usize) {
        if self
            .agents
            .get(agent)
            .is_some_and(|m| m.len() >= MAX_SESSIONS_PER_AGENT)
        {
            self.evict_from(agent);
        }
        while self.count >= MAX_SESSIONS || self.bytes + bytes > MAX_TEXT_BYTES {
            let mut by_size: Vec<(usize, String)> = self
                .agents
                .iter()
                .map(|(a, m)| (m.len(), a.clone()))
                .collect();
            by_size.sort_unstable_by(|a, b| b.cmp(a));
            if !by_size.iter().any(|(_, a)| self.evict_from(a)) {
                break;
            }
        }
    }

    fn insert(&mut self, agent: &str, session: &str, state: SessionState, version: u64) -> Shared {
        self.remove(agent, session);
        let bytes = state.text_bytes() + ENTRY_OVERHEAD;
        self.make_room(agent, bytes);
        self.tick += 1;
        let shared = Arc::new(Mutex::new(state));
        self.agents.entry(agent.to_string()).or_default().insert(
            session.to_string(),
            Entry {
                state: Arc::clone(&shared),
                version,
                used: self.tick,
                bytes,
                unsaved: false,
            },
        );
        self.count += 1;
        self.bytes += bytes;
        shared
    }
}

/// Why a session's state is not available: the call is refused with this, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

/// The taint state of agent sessions: the store's, cached in memory.
pub struct SessionTable {
    cache: Mutex<Cache>,
    idle_expiry_ms: i64,
    last_sweep_ms: AtomicI64,
}

impl Default for SessionTable {
    fn default() -> Self {
        Self::new(7 * 24)
    }
}

impl SessionTable {
    /// A table whose stored sessions expire `idle_expiry_hours` after their last update.
    pub fn new(idle_expiry_hours: u64) -> Self {
        let ms = i64::try_from(idle_expiry_hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX);
        Self {
            cache: Mutex::new(Cache::default()),
            idle_expiry_ms: ms,
            last_sweep_ms: AtomicI64::new(i64::MIN),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Cache>, Unavailable> {
        self.cache.lock().map_err(|_| {
            Unavailable("the session's taint state could not be read (its cache is poisoned), so the call is refused (fail closed)".into())
        })
    }

    /// The state of one session: the cached copy when the store says it is current, else
    /// loaded from the store (clean if the store has none). Fails when the store cannot be
    /// read, or the session's last tightening update is not stored yet and still cannot be.
    pub async fn get(
        &self,
        store: &Store,
        agent: &str,
        session: Option<&str>,
    ) -> Result<Shared, Unavailable> {
        let session = session.unwrap_or_default();
        let cached = self
            .lock()?
            .entry(agent, session)
            .map(|e| (Arc::clone(&e.state), e.version, e.unsaved));
        if let Some((state, _, true)) = &cached {
            return self.resave(store, agent, session, state).await;
        }
        let stored = store
            .sessions()
            .session_version(agent, session)
            .await
            .map_err(|error| {
                tracing::error!(message = "session state not readable; call refused", %error, agent = %agent);
                Unavailable("the session's taint state could not be read from the store, so the call is refused (fail closed)".into())
            })?;
        match (cached, stored) {
            (Some((state, have, _)), Some(v)) if have == v => Ok(state),
            (Some((state, 0, _)), None) => Ok(state),
            (_, None) => Ok(self
                .lock()?
                .insert(agent, session, SessionState::default(), 0)),
            (_, Some(_)) => {
                let loaded = store
                    .sessions()
                    .load_session(agent, session)
                    .await
                    .map_err(|error| {
                        tracing::error!(message = "session state not loadable; call refused", %error, agent = %agent);
                        Unavailable("the session's taint state could not be loaded from the store, so the call is refused (fail closed)".into())
                    })?;
                let (state, version) = match loaded {
                    Some(s) => (
                        SessionState::restore(s.taint, s.read_classes, s.texts),
                        s.version,
                    ),
                    None => (SessionState::default(), 0),
                };
                Ok(self.lock()?.insert(agent, session, state, version))
            }
        }
    }

    /// Store the taint and data classes of a session whose last update could not be stored.
    async fn resave(
        &self,
        store: &Store,
        agent: &str,
        session: &str,
        state: &Shared,
    ) -> Result<Shared, Unavailable> {
        let refused = || {
            Unavailable("the session's taint could not be stored after its last tool output, so calls in it are refused until the store accepts it (fail closed)".into())
        };
        let update = {
            let s = state.lock().map_err(|_| refused())?;
            SessionUpdate {
                taint: s.taint(),
                read_classes: s.read_classes().iter().cloned().collect(),
                text: None,
                tool: None,
            }
        };
        let now = store.clock().unix_ms();
        match store
            .sessions()
            .update_session(agent, session, update, now)
            .await
        {
            Ok(v) => {
                let mut c = self.lock()?;
                if let Some(e) = c.entry(agent, session) {
                    e.unsaved = false;
                    e.version = v;
                }
                Ok(Arc::clone(state))
            }
            Err(error) => {
                tracing::error!(message = "session taint still not stored; call refused", %error, agent = %agent);
                Err(refused())
            }
        }
    }

    /// Store an update of a session, then apply it (`apply`) to the cached copy, or to `held`
    /// (a copy the caller already holds) when none is cached. An update that tightens the
    /// session (a taint, data classes or untrusted text) and cannot be stored is applied
    /// anyway and the session is refused until it is (see [`Self::get`]). A loosening update (trusted text)
    /// that cannot be stored is not applied. Returns what `apply` returned, if it ran, and
    /// the store's error, if any.
    pub async fn update<R>(
        &self,
        store: &Store,
        agent: &str,
        session: Option<&str>,
        update: SessionUpdate,
        held: Option<&Shared>,
        apply: impl FnOnce(&mut SessionState) -> R,
    ) -> (Option<R>, Result<(), warden_store::StoreError>) {
        let session = session.unwrap_or_default();
        let tightens = update.taint > warden_core::Taint::Clean
            || !update.read_classes.is_empty()
            || update.text.as_ref().is_some_and(|t| t.source.is_some());
        let now = store.clock().unix_ms();
        let stored = store
            .sessions()
            .update_session(agent, session, update, now)
            .await;
        self.sweep(store, now);
        let Ok(mut c) = self.cache.lock() else {
            // A poisoned cache serves no session any more (every `get` refuses).
            return (None, stored.map(|_| ()));
        };
        let target = c
            .entry(agent, session)
            .map(|e| (Arc::clone(&e.state), e.version))
            .or_else(|| held.map(|h| (Arc::clone(h), u64::MAX)));
        let out = match (&stored, target) {
            (Err(_), _) if !tightens => None,
            (Err(_), None) => {
                // Not cached: keep the tightened state in memory, refused until stored.
                let mut s = SessionState::default();
                let out = apply(&mut s);
                c.insert(agent, session, s, 0);
                if let Some(e) = c.entry(agent, session) {
                    e.unsaved = true;
                }
                Some(out)
            }
            (Ok(_), None) => None,
            (result, Some((state, have))) => {
                let out = state.lock().ok().map(|mut s| {
                    let out = apply(&mut s);
                    (out, s.text_bytes() + ENTRY_OVERHEAD)
                });
                let mut stale = false;
                let mut resized = None;
                if let Some(e) = c.entry(agent, session) {
                    match result {
                        Ok(v) if have == v.saturating_sub(1) => e.version = *v,
                        // Another process updated it too: reload it on next use.
                        Ok(_) => stale = true,
                        Err(_) => e.unsaved = true,
                    }
                    if let Some((_, bytes)) = &out {
                        resized = Some((e.bytes, *bytes));
                        e.bytes = *bytes;
                    }
                }
                if let Some((was, now)) = resized {
                    c.bytes = c.bytes.saturating_sub(was) + now;
                }
                if stale {
                    c.remove(agent, session);
                }
                out.map(|(o, _)| o)
            }
        };
        (out, stored.map(|_| ()))
    }

    /// Delete the stored sessions idle past the expiry, at most once per
    /// [`SWEEP_EVERY_MS`], in the background.
    fn sweep(&self, store: &Store, now: i64) {
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < SWEEP_EVERY_MS
            || self
                .last_sweep_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let store = store.clone();
        let before = now.saturating_sub(self.idle_expiry_ms);
        tokio::spawn(async move {
            match store.sessions().expire_sessions(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(message = "idle agent sessions expired", sessions = n),
                Err(error) => tracing::warn!(message = "idle agent sessions not expired", %error),
            }
        });
    }

    /// The cached taint and data classes of a session, without asking the store (`None`
    /// when not cached). A cached copy is never more tainted than the store.
    pub fn peek(&self, agent: &str, session: Option<&str>) -> Option<Shared> {
        let mut c = self.cache.lock().ok()?;
        c.entry(agent, session.unwrap_or_default())
            .map(|e| Arc::clone(&e.state))
    }

    /// Number of sessions cached.
    pub fn len(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.count)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Text bytes cached (with a per-session estimate of the rest).
    pub fn cached_bytes(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.bytes)
    }
}
