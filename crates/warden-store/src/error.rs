//! [`StoreError`]: why the store failed, one variant per thing a caller can act on.

use std::sync::Arc;

/// Why the store failed. Callers deny the call they were recording (fail closed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A statement through sqlx failed (the database is unreachable, locked, or refused it).
    #[error("ledger database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The backend's own driver failed outside sqlx (SQLite: the writer's and the verifier's
    /// synchronous handles). Shared, because one failed commit answers every call in it.
    #[error("ledger database error ({what}): {source}")]
    Driver {
        /// What was being done: `commit`, `write lock`, `reading the ledger`, ...
        what: &'static str,
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// The schema could not be brought up to date.
    #[error("ledger migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A record or a stored value could not be (de)serialised.
    #[error("ledger record could not be serialised: {0}")]
    Serialise(#[from] serde_json::Error),
    /// The writer is not running (closed, or it stopped): nothing can be made durable.
    #[error("the ledger writer has stopped; no record can be made durable")]
    WriterGone,
    /// A thread or file operation of the store failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the file where there is one.
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A blocking task of the store panicked or was cancelled.
    #[error("a ledger task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The redaction engine could not start.
    #[error("redaction engine: {0}")]
    Redaction(#[from] warden_core::redact::RedactError),

    // ---- opening ---------------------------------------------------------------------------
    /// The store URL names a kind of store this build does not have.
    #[error("unsupported store url `{0}`: the gateway runs on sqlite://PATH (postgres:// is accepted by `warden migrate` only, for now)")]
    UnsupportedScheme(String),
    /// The store holds a migration this build does not know: a newer Warden wrote it.
    #[error("the store has schema migration {0}, which this version of Warden does not know; run the newer Warden, or restore a backup taken before it migrated")]
    UnknownMigration(i64),
    /// A migration the store applied differs from this build's text of it.
    #[error("schema migration {0} in the store differs from this version's; the store was migrated by a different build")]
    ChangedMigration(i64),
    /// The store URL is not `scheme://location`, or its location is empty.
    #[error("malformed store url `{0}`: use sqlite://PATH")]
    BadUrl(String),

    // ---- integrity (run `warden audit verify`) ---------------------------------------------
    /// A record is missing, or its stored hash is malformed.
    #[error("ledger record {seq} is missing or its hash is malformed; run `warden audit verify`")]
    BadRecord {
        /// The sequence number expected next.
        seq: u64,
    },
    /// Records are missing where a checkpoint was to be signed.
    #[error(
        "ledger record {expected} is missing (found {found}); no checkpoint is signed over a gap"
    )]
    Gap {
        /// The sequence number expected next.
        expected: u64,
        /// The one found instead.
        found: u64,
    },
    /// Fewer records than a proof or checkpoint needs.
    #[error("the ledger holds {held} records, fewer than {wanted}")]
    TooFewRecords {
        /// Records held.
        held: u64,
        /// Records asked for.
        wanted: u64,
    },
    /// A stored checkpoint's root or right edge is malformed or does not match.
    #[error("checkpoint {size}: {what}; run `warden audit verify`")]
    BadCheckpoint {
        /// The checkpoint's tree size.
        size: u64,
        /// What is wrong with it.
        what: &'static str,
    },

    // ---- checkpoints -----------------------------------------------------------------------
    /// A checkpoint was asked of a store opened without a signing key.
    #[error("no ledger signing key: checkpoints are made only by a ledger opened with one")]
    NoSigner,
    /// The signing key refused the checkpoint note.
    #[error("signing the checkpoint: {0}")]
    Sign(#[source] warden_verify::NoteError),

    // ---- the payload vault ----------------------------------------------------------------
    /// Retention, erasure or a subject export on a store opened without a master key.
    #[error("payload sealing is not enabled for this ledger (no master key loaded)")]
    VaultDisabled,
    /// The master key does not open the store's payload keys.
    #[error(
        "payload vault: the ledger's payload keys could not be opened with this master key (a different master key, or the key rows were altered)"
    )]
    WrongMasterKey,
    /// One payload key does not open with the master key (during rotation).
    #[error("payload vault: payload key `{id}` does not open with the current master key")]
    KeyDoesNotOpen {
        /// The key's id.
        id: String,
    },
    /// Today's payload key was destroyed already (by a retention run set in the future): the
    /// record is refused rather than sealed with a destroyed key.
    #[error("payload vault: the payload key for {day} was already destroyed by retention")]
    KeyDestroyed {
        /// `YYYY-MM-DD`.
        day: String,
    },
    /// A payload key could not be stored.
    #[error("payload vault: {what} could not be stored")]
    KeyNotStored {
        /// Which key.
        what: &'static str,
    },
    /// A record to seal has no date in its timestamp.
    #[error("payload vault: a record without a date")]
    UndatedRecord,
    /// An erasure or subject export named an empty or oversized subject.
    #[error("payload vault: the subject is empty or longer than 256 bytes")]
    BadSubject,

    // ---- data residency -------------------------------------------------------------------
    /// A record about an agent whose records belong to another region's store.
    #[error(
        "data residency: agent `{agent}` keeps its records in {}, not in this store ({}); nothing was recorded",
        region_name(.kept_in),
        region_name(.store)
    )]
    Residency {
        /// The agent.
        agent: String,
        /// The region keeping its records (`None`: the home store).
        kept_in: Option<String>,
        /// This store's region (`None`: the home store).
        store: Option<String>,
    },
}

fn region_name(r: &Option<String>) -> String {
    match r {
        Some(r) => format!("region `{r}`"),
        None => "the home store".to_string(),
    }
}

impl StoreError {
    /// A failure of the backend's own driver, doing `what`.
    pub(crate) fn driver(
        what: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Driver {
            what,
            source: Arc::new(source),
        }
    }

    /// A failed thread or file operation, doing `what`.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
