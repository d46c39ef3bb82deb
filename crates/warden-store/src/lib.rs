//! Warden's durable store: the ledger and the tables beside it, behind one narrow trait per
//! concern, with SQLite (WAL, through sqlx) as the implementation of this build.
//!
//! Callers hold a [`Store`] (cheap to clone) opened from a URL with [`Store::open`], and reach
//! each concern through it: [`Store::ledger`] ([`LedgerLog`]: append, read, verify,
//! checkpoints), [`Store::identities`] ([`IdentityStore`]), [`Store::approvals`]
//! ([`ApprovalStore`]), [`Store::pins`] ([`PinStore`]: tool pins and the review queue),
//! [`Store::sessions`] ([`SessionStore`]: agents' session taint) and [`Store::lifecycle`]
//! ([`Lifecycle`]: retention, erasure, key rotation). Another database is
//! another implementation of the same traits, chosen by the URL's scheme; callers do not
//! change.
//!
//! In the SQLite store, appends go through one writer thread that batches whatever is waiting
//! into a single transaction (group commit), so a call waits for its own commit only and
//! throughput grows with load. An append is acknowledged only after its transaction commits;
//! with [`Durability::Process`] the commit has reached the operating system (it survives a
//! crash of Warden), with [`Durability::Fsync`] it has been fsynced (it survives a power
//! loss). WAL checkpoints are taken in idle gaps, never inside a commit, with a cap on WAL
//! size so it cannot grow without bound under constant load.
//!
//! Every timestamp the store writes itself comes from [`StoreOptions::clock`].

mod approvals;
mod error;
mod identities;
mod ledger;
mod lifecycle;
mod pins;
mod schema;
mod sessions;
mod sqlite;
mod store;

pub use approvals::{ApprovalFilter, ApprovalRow, ApprovalStore, VoteRow};
pub use error::StoreError;
pub use identities::{Attempt, ClientRow, IdentityStore, SecretRow, SessionRow, TokenRow, UserRow};
pub use ledger::{
    Appended, ExportSink, LedgerLog, Progress, SearchFilter, StoredCheckpoint, StoredRecord,
    VerifyReport,
};
pub use lifecycle::{day_start_ms, ErasureReport, Lifecycle, RetentionReport};
pub use pins::{Pin, PinCheck, PinStore, ReviewRow};
pub use schema::{migrate, MigrationReport, MigrationStep};
pub use sessions::{SessionStore, SessionUpdate, StoredSession};
pub use store::{sqlite_path, CheckpointOptions, Residency, Store, StoreOptions, VaultOptions};
pub use warden_core::config::Durability;
