//! The encrypted secret store: upstream credentials and TOTP seeds, sealed with
//! [`warden_core::envelope`] under the master key. The master key comes from the environment
//! variable `WARDEN_MASTER_KEY` (64 hex digits) or from `[identity] master_key_file`
//! (default `master.key` in the project, mode 0600). Values are returned only to the code
//! that uses them (an upstream's environment, a TOTP check); no API, log or error shows them.

use std::path::{Path, PathBuf};

use rand::RngCore;
use serde_json::json;
use warden_core::config::IdentityConfig;
use warden_core::envelope::{self, Sealed};
use warden_core::ledger::{IdentityEvent, LedgerEvent};
use warden_store::{SecretRow, Store, StoreError};

/// The environment variable that holds the master key (64 hex digits).
pub const MASTER_KEY_ENV: &str = "WARDEN_MASTER_KEY";

/// A 32-byte master key. Its `Debug` shows only its id.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id())
    }
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Self(k)
    }

    fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text.trim()).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// The key itself, for the ledger's payload vault (never printed or logged).
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key's public id.
    pub fn id(&self) -> String {
        envelope::key_id(&self.0)
    }

    fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Why a secret operation failed. Never contains a secret value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("no master key: set {MASTER_KEY_ENV} (64 hex digits) or create {0} (`warden secret set` creates it)")]
    NoMasterKey(String),
    #[error("the master key in {0} is not 64 hex digits")]
    BadMasterKey(String),
    #[error("reading or writing the master key file {path}: {error}")]
    KeyFile { path: String, error: std::io::Error },
    #[error("no secret named `{0}` (`warden secret set {0}`)")]
    Missing(String),
    #[error("secret `{0}` could not be opened with this master key (wrong key, or the stored value was altered)")]
    Open(String),
    #[error("secret names may use letters, digits, `-`, `_` and `.` only (1 to 64)")]
    BadName,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where the master key file is.
pub fn master_key_path(project: &Path, cfg: &IdentityConfig) -> PathBuf {
    project.join(&cfg.master_key_file)
}

/// Load the master key: `WARDEN_MASTER_KEY`, else the key file. `None` if neither exists.
pub fn load_master_key(
    project: &Path,
    cfg: &IdentityConfig,
) -> Result<Option<MasterKey>, SecretError> {
    if let Ok(v) = std::env::var(MASTER_KEY_ENV) {
        return MasterKey::from_hex(&v)
            .map(Some)
            .ok_or_else(|| SecretError::BadMasterKey(MASTER_KEY_ENV.to_string()));
    }
    let path = master_key_path(project, cfg);
    match std::fs::read_to_string(&path) {
        Ok(text) => MasterKey::from_hex(&text)
            .map(Some)
            .ok_or_else(|| SecretError::BadMasterKey(path.display().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(SecretError::KeyFile {
            path: path.display().to_string(),
            error,
        }),
    }
}

/// Load the master key, creating the key file (mode 0600) if there is none. Returns the key
/// and whether it was created.
pub fn load_or_create_master_key(
    project: &Path,
    cfg: &IdentityConfig,
) -> Result<(MasterKey, bool), SecretError> {
    if let Some(k) = load_master_key(project, cfg)? {
        return Ok((k, false));
    }
    let key = MasterKey::generate();
    let path = master_key_path(project, cfg);
    write_key_file(&path, &key)?;
    Ok((key, true))
}

/// Write a key file with mode 0600 (atomically: temporary file, then rename).
pub fn write_key_file(path: &Path, key: &MasterKey) -> Result<(), SecretError> {
    let err = |error| SecretError::KeyFile {
        path: path.display().to_string(),
        error,
    };
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write as _;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(err)?;
        f.write_all(format!("{}\n", key.to_hex()).as_bytes())
            .map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)
}

fn nonce() -> [u8; 24] {
    let mut n = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut n);
    n
}

/// Whether a name is acceptable for an upstream secret.
pub fn valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Seal and store a value under `name` (no record; see [`set_secret`]).
pub(crate) async fn put_sealed(
    store: &Store,
    key: &MasterKey,
    name: &str,
    value: &[u8],
    now: i64,
) -> Result<(), SecretError> {
    let mut dk = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut dk);
    let sealed = envelope::seal(&key.0, name, value, dk, [nonce(), nonce()]);
    store
        .identities()
        .put_secret(&SecretRow {
            name: name.to_string(),
            wrapped_key: sealed.wrapped_key,
            ciphertext: sealed.ciphertext,
            master_id: sealed.master_id,
            updated_at: now,
        })
        .await?;
    Ok(())
}

/// Open the value stored under `name`.
pub(crate) async fn get_sealed(
    store: &Store,
    key: &MasterKey,
    name: &str,
) -> Result<Vec<u8>, SecretError> {
    let row = store
        .identities()
        .secret(name)
        .await?
        .ok_or_else(|| SecretError::Missing(name.to_string()))?;
    envelope::open(
        &key.0,
        name,
        &Sealed {
            wrapped_key: row.wrapped_key,
            ciphertext: row.ciphertext,
            master_id: row.master_id,
        },
    )
    .map_err(|_| SecretError::Open(name.to_string()))
}

/// `warden secret set NAME`: store an upstream credential, and record that it was set (the
/// record names the secret; it never holds the value).
pub async fn set_secret(
    store: &Store,
    key: &MasterKey,
    name: &str,
    value: &[u8],
    actor: &str,
    now: i64,
) -> Result<(), SecretError> {
    if !valid_secret_name(name) {
        return Err(SecretError::BadName);
    }
    store
        .append_now(LedgerEvent::Identity(IdentityEvent {
            action: "secret_set".into(),
            actor: actor.to_string(),
            subject: name.to_string(),
            severity: "info".into(),
            break_glass: false,
            details: json!({"master_key_id": key.id(), "bytes": value.len()}),
        }))
        .await?;
    put_sealed(store, key, name, value, now).await
}

/// An upstream credential, for the code that passes it to the upstream.
pub async fn get_secret(store: &Store, key: &MasterKey, name: &str) -> Result<String, SecretError> {
    let bytes = get_sealed(store, key, name).await?;
    String::from_utf8(bytes).map_err(|_| SecretError::Open(name.to_string()))
}

/// Re-wrap every data key under `new` (one transaction). The caller then replaces the key
/// file or the environment variable.
pub async fn rotate_master(
    store: &Store,
    old: &MasterKey,
    new: &MasterKey,
    actor: &str,
    now: i64,
) -> Result<usize, SecretError> {
    let rows = store.identities().secrets().await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let sealed = Sealed {
            wrapped_key: row.wrapped_key,
            ciphertext: row.ciphertext,
            master_id: row.master_id,
        };
        let r = envelope::rewrap(&old.0, &new.0, &row.name, &sealed, nonce())
            .map_err(|_| SecretError::Open(row.name.clone()))?;
        out.push(SecretRow {
            name: row.name,
            wrapped_key: r.wrapped_key,
            ciphertext: r.ciphertext,
            master_id: r.master_id,
            updated_at: now,
        });
    }
    store
        .append_now(LedgerEvent::Identity(IdentityEvent {
            action: "master_key_rotated".into(),
            actor: actor.to_string(),
            subject: "master-key".into(),
            severity: "info".into(),
            break_glass: false,
            details: json!({"old_key_id": old.id(), "new_key_id": new.id(), "secrets": out.len()}),
        }))
        .await?;
    store.identities().replace_secrets(&out).await?;
    Ok(out.len())
}

/// Write the new master key to `path` (for [`rotate_master`] callers).
pub fn save_master_key(path: &Path, key: &MasterKey) -> Result<(), SecretError> {
    write_key_file(path, key)
}
