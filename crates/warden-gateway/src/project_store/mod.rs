//! A project's store, opened the way every Warden command opens it.
//!
//! From a project directory and the region a process works on, this module reads
//! `warden.toml` ([`read_config`]) or the whole project ([`load_project`]), builds the
//! [`StoreOptions`] a store of the project is given (payload sealing, the residency guard,
//! the redactor, the clock: [`store_options`]) and opens the store: read-only
//! ([`open_store`], [`open_existing`]) or as a writer with the signing key, checkpoints and
//! witnesses ([`ProjectStore`]). Nothing here is process-wide: the region is an argument, and the
//! witness tasks belong to the [`ProjectStore`] that started them.
//!
//! ```no_run
//! # async fn run(dir: &std::path::Path) -> Result<(), warden_gateway::project_store::ProjectStoreError> {
//! use warden_gateway::project_store::{read_config, ProjectStore};
//! let config = read_config(dir, None)?;
//! let store = ProjectStore::open(dir, &config).await?;
//! println!("{} records", store.store().ledger().count().await?);
//! store.close().await;
//! # Ok(()) }
//! ```

mod keys;
mod redaction;
mod witness;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use warden_core::clock::Clock;
use warden_core::config::{parse_config, WardenConfig};
use warden_core::diagnostic::FileError;
use warden_core::project::Project;
use warden_core::vault::PayloadPlan;
use warden_core::FileErrors;
use warden_store::{CheckpointOptions, Residency, Store, StoreError, StoreOptions, VaultOptions};
use warden_verify::NoteSigner;

pub use keys::{create_private_file, key_path, load_or_create_key, signer, verifier};
pub use redaction::redactor_for;
pub use witness::WitnessError;

use crate::secrets::SecretError;

/// Why a project's settings, keys or store could not be read or opened. Messages name the
/// file or the `warden.toml` setting at fault; none contains a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectStoreError {
    /// `warden.toml` (or another settings file) could not be read.
    #[error("reading {}", .path.display())]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `warden.toml` does not parse; the errors are located.
    #[error("{0}")]
    InvalidConfig(FileErrors),
    /// The selected region is not declared in `warden.toml`.
    #[error("{0}")]
    Region(String),
    /// A directory for a key could not be created.
    #[error("creating {}", .path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The ledger signing key file is readable by group or others.
    #[error(
        "the ledger key {path} is readable by others (mode {mode:o}); run `chmod 600 {path}`",
        path = .path.display()
    )]
    KeyReadableByOthers {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The ledger signing key file does not hold a signer key.
    #[error("{} ([ledger] key_file): {reason}", .path.display())]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: warden_verify::NoteError,
    },
    /// `[ledger] origin` is not a valid key name.
    #[error("[ledger] origin `{name}`: {reason}")]
    BadOrigin {
        /// The origin.
        name: String,
        /// Why it was refused.
        reason: warden_verify::NoteError,
    },
    /// The ledger signing key could not be created.
    #[error("creating the ledger key {}", .path.display())]
    CreateKey {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The ledger signing key could not be read.
    #[error("reading the ledger key {}", .path.display())]
    ReadKey {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing or inspecting a key file failed (the message is the I/O error's, as before
    /// the move to this module).
    #[error("{error}")]
    KeyIo {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A command that only reads needs the ledger key, and there is none yet.
    #[error(
        "no ledger key at {} ([ledger] key_file); it is created when the gateway first starts, or by `warden audit pubkey`",
        .path.display()
    )]
    NoKey {
        /// Where the key was looked for.
        path: PathBuf,
    },
    /// The redaction key is not hex.
    #[error("the redaction key in {origin} is not hex")]
    RedactionKeyNotHex {
        /// The file or `$VARIABLE` it came from.
        origin: String,
        /// The decoding error.
        source: hex::FromHexError,
    },
    /// The redaction key is too short.
    #[error("the redaction key in {origin} is shorter than 16 bytes; generate one with `openssl rand -hex 32`")]
    RedactionKeyTooShort {
        /// The file or `$VARIABLE` it came from.
        origin: String,
    },
    /// The redaction key file could not be created.
    #[error("warden.toml [redaction] key_file: creating the redaction key: creating {}", .path.display())]
    CreateRedactionKey {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The redaction key file could not be read.
    #[error("reading the redaction key {} (warden.toml [redaction] key_file)", .path.display())]
    ReadRedactionKey {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The redaction engine refused the key or its rules.
    #[error("starting the redaction engine")]
    RedactionEngine(#[source] warden_core::redact::RedactError),
    /// The master key (payload sealing) could not be read or created.
    #[error(transparent)]
    MasterKey(#[from] SecretError),
    /// `[store] url` names no store, or a nothing-recorded check failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store exists but could not be opened.
    #[error("opening the ledger `{url}` (warden.toml [store] url)")]
    OpenLedger {
        /// `[store] url` (of the selected region).
        url: String,
        /// Why the store did not open.
        source: StoreError,
    },
    /// A command that reads records found no store: nothing has been recorded yet.
    #[error(
        "no ledger at {} (warden.toml [store] url = \"{url}\"); nothing has been recorded yet",
        .path.display()
    )]
    NoLedger {
        /// The database file looked for.
        path: PathBuf,
        /// `[store] url` (of the selected region).
        url: String,
    },
}

/// `warden.toml` alone, pointed at `region`'s store (`None`: the home store of `[store]`).
/// Auditing must work even when a card or policy does not compile, so nothing else is read.
pub fn read_config(dir: &Path, region: Option<&str>) -> Result<WardenConfig, ProjectStoreError> {
    let path = dir.join("warden.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|source| ProjectStoreError::ReadConfig { path, source })?;
    let mut config = parse_config("warden.toml", &text)
        .map_err(|e| ProjectStoreError::InvalidConfig(FileErrors(e)))?;
    if let Some(r) = region {
        config.select_region(r).map_err(ProjectStoreError::Region)?;
    }
    Ok(config)
}

/// Load and compile the whole project, pointed at `region`'s store. A region that is not
/// declared is reported as an error of `warden.toml`.
pub fn load_project(dir: &Path, region: Option<&str>) -> Result<Project, FileErrors> {
    let mut project = crate::project::load_dir(dir)?;
    if let Some(r) = region {
        project
            .config
            .select_region(r)
            .map_err(|e| FileErrors(vec![FileError::whole("warden.toml", e)]))?;
    }
    Ok(project)
}

/// The residency guard of the store a loaded project selected: every agent whose card keeps
/// its records elsewhere. `None` when the project declares no regions.
pub fn residency(project: &Project) -> Option<Residency> {
    if project.config.regions.is_empty() {
        return None;
    }
    let region = project.config.region.clone();
    let elsewhere = project
        .policy
        .cards
        .values()
        .filter(|c| c.region != region)
        .map(|c| (c.id.clone(), c.region.clone()))
        .collect();
    Some(Residency { region, elsewhere })
}

/// What a store opened for the project in `dir` is given besides its settings, from one load
/// of the project in the region `config` selected: payload sealing (the master key, created
/// when `create_master_key` and missing, and the retention plan), the residency guard and the
/// project's redactor. Sealing is off when the project does not load, or has no master key and
/// none may be created (read-only commands on a project that never sealed). The store reads
/// the system clock; a gateway built on it takes that clock (`AppState::new`).
pub fn store_options(
    dir: &Path,
    config: &WardenConfig,
    create_master_key: bool,
) -> Result<StoreOptions, ProjectStoreError> {
    let (vault, residency) = match load_project(dir, config.region.as_deref()) {
        Err(_) => (None, None),
        Ok(project) => {
            let cfg = &project.config.identity;
            let master = if create_master_key {
                Some(crate::secrets::load_or_create_master_key(dir, cfg)?.0)
            } else {
                crate::secrets::load_master_key(dir, cfg)?
            };
            let vault = master.map(|m| VaultOptions {
                master: *m.bytes(),
                plan: PayloadPlan::from_project(&project.config, project.policy.cards.values()),
            });
            (vault, residency(&project))
        }
    };
    Ok(StoreOptions {
        durability: config.store.durability,
        redactor: Some(redactor_for(dir)?),
        vault,
        residency,
        clock: Clock::system(),
        ..Default::default()
    })
}

async fn open_url(
    dir: &Path,
    config: &WardenConfig,
    opts: StoreOptions,
) -> Result<Store, ProjectStoreError> {
    Store::open(&config.store.url, dir, opts)
        .await
        .map_err(|source| ProjectStoreError::OpenLedger {
            url: config.store.url.clone(),
            source,
        })
}

/// Open the store `config` names without signing anything (read-only commands, and those
/// that only write identities or approvals): a tampered store is never checkpointed by an
/// auditor's command. Never creates the master key.
pub async fn open_store(dir: &Path, config: &WardenConfig) -> Result<Store, ProjectStoreError> {
    open_url(dir, config, store_options(dir, config, false)?).await
}

/// Refuse a store that does not exist yet, so a reading command does not create one.
fn ensure_recorded(dir: &Path, config: &WardenConfig) -> Result<(), ProjectStoreError> {
    let path = warden_store::sqlite_path(&config.store.url, dir)?;
    if !path.exists() {
        return Err(ProjectStoreError::NoLedger {
            path,
            url: config.store.url.clone(),
        });
    }
    Ok(())
}

/// [`open_store`] for a store that must already hold records.
pub async fn open_existing(dir: &Path, config: &WardenConfig) -> Result<Store, ProjectStoreError> {
    ensure_recorded(dir, config)?;
    open_store(dir, config).await
}

/// A project's ledger opened as a writer: with the signing key, checkpoints every N records
/// or T seconds, and the configured witnesses. [`ProjectStore::close`] signs the final
/// checkpoint and waits for the witnesses to receive it.
#[derive(Debug)]
pub struct ProjectStore {
    store: Store,
    signer: Arc<NoteSigner>,
    /// The task delivering this ledger's checkpoints to `[ledger] witnesses`, when any are
    /// configured. It ends once the ledger's last handle is gone and every checkpoint is
    /// delivered.
    witnesses: Option<tokio::task::JoinHandle<()>>,
}

impl ProjectStore {
    /// Open the store `config` names as its writer. The signing key is created on first use;
    /// so is the master key that seals payloads.
    pub async fn open(dir: &Path, config: &WardenConfig) -> Result<Self, ProjectStoreError> {
        let signer = signer(dir, config)?;
        let mut opts = store_options(dir, config, true)?;
        let (publish, witnesses) = if config.ledger.witnesses.is_empty() {
            (None, None)
        } else {
            let (tx, task) = witness::spawn(dir.to_path_buf(), config.ledger.witnesses.clone());
            (Some(tx), Some(task))
        };
        opts.checkpoints = Some(CheckpointOptions {
            signer: Arc::clone(&signer),
            every_records: config.ledger.checkpoint_every_records,
            every: Duration::from_secs(config.ledger.checkpoint_every_secs),
            publish,
        });
        let store = open_url(dir, config, opts).await?;
        Ok(Self {
            store,
            signer,
            witnesses,
        })
    }

    /// [`ProjectStore::open`] for a store that must already hold records.
    pub async fn open_existing(
        dir: &Path,
        config: &WardenConfig,
    ) -> Result<Self, ProjectStoreError> {
        ensure_recorded(dir, config)?;
        Self::open(dir, config).await
    }

    /// The store. Clones share it; close the [`ProjectStore`], not a clone, when done.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The ledger's signing key. It signs the checkpoints and the approval votes, so one
    /// public key (`warden audit pubkey`) checks both.
    pub fn signer(&self) -> &Arc<NoteSigner> {
        &self.signer
    }

    /// Close the ledger: its final checkpoint is signed and, once every other handle is gone,
    /// delivered to the witnesses before this returns (at most 10 s).
    pub async fn close(self) {
        self.store.close().await;
        if let Some(task) = self.witnesses {
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                tracing::warn!(message = "a checkpoint witness did not finish within 10 s");
            }
        }
    }
}
