//! [`Store`]: the handle callers hold, one accessor per concern, and [`StoreOptions`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use warden_core::clock::Clock;
use warden_core::config::Durability;
use warden_core::ledger::LedgerEvent;
use warden_core::redact::Redactor;
use warden_core::vault::PayloadPlan;
use warden_verify::NoteSigner;

use crate::{
    Appended, ApprovalStore, IdentityStore, LedgerLog, Lifecycle, PinStore, SessionStore,
    StoreError, StoredCheckpoint,
};

/// How a store is opened.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// What an acknowledged append survives: a crash of Warden, or a power loss.
    pub durability: Durability,
    /// Most records in one group commit.
    pub max_batch: usize,
    /// Bytes appended after which the WAL is checkpointed even under constant load.
    pub wal_cap_bytes: u64,
    /// Signed Merkle checkpoints; `None` for read-only uses (audit commands).
    pub checkpoints: Option<CheckpointOptions>,
    /// The redaction engine every event passes through before it is serialised. `None`
    /// still redacts, with a random key for this process only (tokens then correlate within
    /// one run, not across restarts).
    pub redactor: Option<Redactor>,
    /// Seal payloads (arguments, outputs, the user's request) with per-day and per-subject
    /// keys wrapped by this master key, for retention and erasure. `None`: stored redacted
    /// but not sealed.
    pub vault: Option<VaultOptions>,
    /// Data residency: records about these agents belong to other regions' stores and are
    /// refused here (fail closed), whoever tries to append them.
    pub residency: Option<Residency>,
    /// Where the store's own timestamps come from (checkpoint and key creation times, the
    /// review queue); the gateway passes the clock of its `AppState`.
    pub clock: Clock,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Process,
            max_batch: 256,
            wal_cap_bytes: 16 * 1024 * 1024,
            checkpoints: None,
            redactor: None,
            vault: None,
            residency: None,
            clock: Clock::system(),
        }
    }
}

/// Which store this is, and the agents whose records must never land in it.
#[derive(Debug, Clone, Default)]
pub struct Residency {
    /// This store's region (`None`: the home store).
    pub region: Option<String>,
    /// Agent → the region that keeps its records (`None`: the home store), for every agent
    /// whose records are kept elsewhere.
    pub elsewhere: HashMap<String, Option<String>>,
}

impl Residency {
    /// Refuse anything about an agent whose records are kept in another region's store.
    pub(crate) fn check(&self, agent: &str) -> Result<(), StoreError> {
        match self.elsewhere.get(agent) {
            None => Ok(()),
            Some(home) => Err(StoreError::Residency {
                agent: agent.to_string(),
                kept_in: home.clone(),
                store: self.region.clone(),
            }),
        }
    }
}

/// How checkpoints are made.
#[derive(Debug, Clone)]
pub struct CheckpointOptions {
    /// Signs the notes; its key name is the checkpoint's origin line.
    pub signer: Arc<NoteSigner>,
    /// A checkpoint after this many new records...
    pub every_records: u64,
    /// ... or after this long when any record is new.
    pub every: Duration,
    /// Receives each new checkpoint after it is stored (for witnesses).
    pub publish: Option<mpsc::UnboundedSender<StoredCheckpoint>>,
}

/// Turns sealing of payloads on for a store.
#[derive(Clone)]
pub struct VaultOptions {
    /// The master key that wraps every payload key (`warden secret`'s master key).
    pub master: [u8; 32],
    /// Retention and subjects, from warden.toml and the scope cards.
    pub plan: PayloadPlan,
}

impl std::fmt::Debug for VaultOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultOptions").finish_non_exhaustive()
    }
}

/// Handle to a store: the ledger and the tables beside it, one accessor per concern. Cheap
/// to clone; every clone shares the one writer. [`Store::close`] (or dropping the last
/// clone) stops it.
#[derive(Clone)]
pub struct Store {
    ledger: Arc<dyn LedgerLog>,
    identities: Arc<dyn IdentityStore>,
    approvals: Arc<dyn ApprovalStore>,
    pins: Arc<dyn PinStore>,
    sessions: Arc<dyn SessionStore>,
    lifecycle: Arc<dyn Lifecycle>,
    clock: Clock,
    /// The database file, for a store kept in one.
    path: Option<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A store URL as it may be shown: a password in it (`postgres://user:pw@host/db`) replaced.
pub(crate) fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(parts) => parts,
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// The scheme and location of a store URL (`sqlite://PATH` → `("sqlite", "PATH")`).
pub(crate) fn split_url(url: &str) -> Result<(&str, &str), StoreError> {
    match url.split_once("://") {
        Some((scheme, rest))
            if !scheme.is_empty() && !rest.is_empty() && !scheme.contains(['/', ' ']) =>
        {
            Ok((scheme, rest))
        }
        _ => Err(StoreError::BadUrl(without_password(url))),
    }
}

/// Resolve `sqlite://PATH` against the project directory `base`.
pub fn sqlite_path(url: &str, base: &Path) -> Result<PathBuf, StoreError> {
    let (scheme, rest) = split_url(url)?;
    if scheme != "sqlite" {
        return Err(StoreError::UnsupportedScheme(without_password(url)));
    }
    let p = PathBuf::from(rest);
    Ok(if p.is_absolute() { p } else { base.join(p) })
}

impl Store {
    /// Open (creating and migrating if needed) the store named by `url`, a relative location
    /// resolved against `base` (the project directory). `sqlite://PATH` is the one scheme of
    /// this build; any other is [`StoreError::UnsupportedScheme`], a URL that is not
    /// `scheme://location` is [`StoreError::BadUrl`].
    pub async fn open(url: &str, base: &Path, opts: StoreOptions) -> Result<Self, StoreError> {
        let (scheme, _) = split_url(url)?;
        match scheme {
            "sqlite" => Self::open_sqlite(&sqlite_path(url, base)?, opts).await,
            _ => Err(StoreError::UnsupportedScheme(without_password(url))),
        }
    }

    /// Open (creating and migrating if needed) the SQLite store at `path`.
    pub async fn open_sqlite(path: &Path, opts: StoreOptions) -> Result<Self, StoreError> {
        let clock = opts.clock.clone();
        let backend = Arc::new(crate::sqlite::SqliteStore::open(path, opts).await?);
        Ok(Self::from_backend(backend, clock, Some(path.to_path_buf())))
    }

    /// A handle over one backend that implements every concern.
    fn from_backend<B>(backend: Arc<B>, clock: Clock, path: Option<PathBuf>) -> Self
    where
        B: LedgerLog
            + IdentityStore
            + ApprovalStore
            + PinStore
            + SessionStore
            + Lifecycle
            + 'static,
    {
        Self {
            ledger: backend.clone(),
            identities: backend.clone(),
            approvals: backend.clone(),
            pins: backend.clone(),
            sessions: backend.clone(),
            lifecycle: backend,
            clock,
            path,
        }
    }

    /// The ledger: append, read, verify, checkpoints.
    pub fn ledger(&self) -> &dyn LedgerLog {
        self.ledger.as_ref()
    }

    /// Agent tokens, OAuth clients, people, sessions, break-glass, sealed secrets.
    pub fn identities(&self) -> &dyn IdentityStore {
        self.identities.as_ref()
    }

    /// The approval queue and votes.
    pub fn approvals(&self) -> &dyn ApprovalStore {
        self.approvals.as_ref()
    }

    /// Tool pins and the review queue.
    pub fn pins(&self) -> &dyn PinStore {
        self.pins.as_ref()
    }

    /// Agents' session taint (the truth behind the gateway's cache).
    pub fn sessions(&self) -> &dyn SessionStore {
        self.sessions.as_ref()
    }

    /// Retention, erasure, payload-key rotation.
    pub fn lifecycle(&self) -> &dyn Lifecycle {
        self.lifecycle.as_ref()
    }

    /// The clock the store was opened with ([`StoreOptions::clock`]).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Append `event` stamped with this store's clock, and wait until it is durable.
    pub async fn append_now(&self, event: LedgerEvent) -> Result<Appended, StoreError> {
        self.ledger.append(self.clock.rfc3339(), event).await
    }

    /// The database file, for a store kept in one (SQLite).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Stop accepting appends, commit those queued and, when checkpoints are on, sign a
    /// final checkpoint over them (see [`LedgerLog::close`]).
    pub async fn close(self) {
        self.ledger.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        let base = Path::new("/proj");
        assert_eq!(
            sqlite_path("sqlite://.warden/w.db", base).unwrap(),
            PathBuf::from("/proj/.warden/w.db")
        );
        assert_eq!(
            sqlite_path("sqlite:///var/w.db", base).unwrap(),
            PathBuf::from("/var/w.db")
        );
        assert!(matches!(
            sqlite_path("postgres://db/warden", base),
            Err(StoreError::UnsupportedScheme(_))
        ));
        for bad in ["sqlite://", "w.db", "://w.db", ""] {
            assert!(
                matches!(sqlite_path(bad, base), Err(StoreError::BadUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn urls_in_errors_never_show_a_password() {
        assert_eq!(
            without_password("postgres://warden:s3cret@db:5432/w"),
            "postgres://warden:***@db:5432/w"
        );
        assert_eq!(without_password("postgres://db/w"), "postgres://db/w");
        let err = sqlite_path("mysql://u:s3cret@db/w", Path::new("/")).unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[tokio::test]
    async fn open_dispatches_on_the_scheme() {
        let dir = tempfile::tempdir().unwrap();
        let err = Store::open("postgres://db/warden", dir.path(), StoreOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UnsupportedScheme(_)), "{err}");
        let err = Store::open("nonsense", dir.path(), StoreOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::BadUrl(_)), "{err}");
        let store = Store::open("sqlite://s/w.db", dir.path(), StoreOptions::default())
            .await
            .unwrap();
        assert_eq!(store.path(), Some(dir.path().join("s/w.db").as_path()));
        assert_eq!(store.ledger().count().await.unwrap(), 0);
        store.close().await;
    }
}
