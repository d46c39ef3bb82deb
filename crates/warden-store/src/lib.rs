//! Warden's durable store: the ledger on SQLite (WAL) through sqlx.
//!
//! Appends go through one writer task that batches whatever is waiting into a single
//! transaction (group commit), so a call waits for its own commit only and throughput grows
//! with load. An append is acknowledged only after its transaction commits; with
//! [`Durability::Process`] the commit has reached the operating system (it survives a crash of
//! Warden), with [`Durability::Fsync`] it has been fsynced (it survives a power loss).
//!
//! WAL checkpoints are taken by the writer in idle gaps, never inside a commit, with a cap on
//! WAL size so it cannot grow without bound under constant load.

mod approvals;
mod checkpoints;
mod identity;
mod lifecycle;
mod pins;
mod reviews;
mod sqlite;
mod vault;

pub use checkpoints::{CheckpointOptions, StoredCheckpoint};

pub use approvals::{ApprovalFilter, ApprovalRow, VoteRow};
pub use identity::{ClientRow, SecretRow, SessionRow, TokenRow, UserRow};
pub use lifecycle::{day_start_ms, ErasureReport, RetentionReport};
pub use pins::{Pin, PinCheck};
pub use reviews::ReviewRow;
pub use vault::VaultOptions;

pub use sqlite::{
    sqlite_path, Appended, Ledger, LedgerOptions, Residency, SearchFilter, StoredRecord,
    VerifyReport,
};
pub use warden_core::config::Durability;

/// Why the store failed. Callers deny the call they were recording (fail closed).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ledger database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("ledger migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("ledger record could not be serialised: {0}")]
    Serialise(#[from] serde_json::Error),
    #[error("the ledger writer has stopped; no record can be made durable")]
    WriterGone,
    #[error("ledger verification could not read the database: {0}")]
    Verify(String),
    #[error("no ledger signing key: checkpoints are made only by a ledger opened with one")]
    NoSigner,
    #[error("unsupported store url `{0}`: use sqlite://PATH")]
    BadUrl(String),
    #[error("payload vault: {0}")]
    Vault(String),
    #[error("data residency: {0}")]
    Residency(String),
}
