//! Temporary: the old `Ledger` surface over [`Store`], so callers not yet moved to the
//! per-concern accessors keep compiling while they are. Removed once every caller uses
//! `store.ledger()`, `store.identities()`, ... (issue 14).

use std::path::Path;

use crate::{ApprovalStore, IdentityStore, LedgerLog, Lifecycle, PinStore, Store, StoreError};

/// The old name of [`Store`].
pub type Ledger = Store;

/// The old name of [`crate::StoreOptions`].
pub type LedgerOptions = crate::StoreOptions;

/// Every concern at once, so `ledger.count()` / `ledger.user(..)` resolve through
/// `Deref` as they did on the old `Ledger`.
pub trait AllConcerns: LedgerLog + IdentityStore + ApprovalStore + PinStore + Lifecycle {
    /// The database file.
    fn path(&self) -> &Path;
}

impl std::ops::Deref for Store {
    type Target = dyn AllConcerns;

    fn deref(&self) -> &Self::Target {
        self.all_concerns()
    }
}

impl Store {
    /// The old `Ledger::open_url`: [`Store::open`].
    pub async fn open_url(
        url: &str,
        base: &Path,
        opts: crate::StoreOptions,
    ) -> Result<Self, StoreError> {
        Self::open(url, base, opts).await
    }

    /// The old `Ledger::verify`, taking any closure.
    pub async fn verify(
        &self,
        progress: impl FnMut(u64) + Send + 'static,
    ) -> Result<crate::VerifyReport, StoreError> {
        self.ledger().verify(Box::new(progress)).await
    }

    /// The old `Ledger::export_raw`, taking any closure.
    pub async fn export_raw(
        &self,
        first: u64,
        last: u64,
        sink: impl FnMut(u64, &[u8]) -> std::io::Result<()> + Send + 'static,
    ) -> Result<u64, StoreError> {
        self.ledger().export_raw(first, last, Box::new(sink)).await
    }
}
