//! The ledger's signing key: a C2SP signer key in `[ledger] key_file`, created on first use
//! (mode 0600, in a 0700 directory) and refused when others can read it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::RngCore as _;
use warden_core::config::WardenConfig;
use warden_core::ledger_config::LedgerConfig;
use warden_verify::encoding::hex_encode;
use warden_verify::{NoteSigner, NoteVerifier};

use super::ProjectStoreError;

/// Where the ledger key of the project in `dir` is: `[ledger] key_file`, relative to the
/// project unless absolute.
pub fn key_path(dir: &Path, cfg: &LedgerConfig) -> PathBuf {
    let p = PathBuf::from(&cfg.key_file);
    if p.is_absolute() {
        p
    } else {
        dir.join(p)
    }
}

/// Create a file that only its owner may read and write (mode 0600 on Unix); fails when it
/// already exists, so a key is never overwritten.
pub fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        open.mode(0o600);
    }
    open.open(path)
}

fn create_private_dir(dir: &Path) -> Result<(), ProjectStoreError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|source| ProjectStoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })
}

/// Load the ledger signing key, creating it (mode 0600, in a 0700 directory) when missing.
/// A new key is named `[ledger] origin`, or `warden-ledger-` and 8 random bytes in hex.
pub fn load_or_create_key(dir: &Path, cfg: &LedgerConfig) -> Result<NoteSigner, ProjectStoreError> {
    let path = key_path(dir, cfg);
    let key_io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| ProjectStoreError::KeyIo { path, error }
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(&path)
                    .map_err(key_io(&path))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    return Err(ProjectStoreError::KeyReadableByOthers {
                        path,
                        mode: mode & 0o777,
                    });
                }
            }
            NoteSigner::parse(text.trim())
                .map_err(|reason| ProjectStoreError::BadKey { path, reason })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let name = match &cfg.origin {
                Some(o) => o.clone(),
                None => {
                    let mut id = [0u8; 8];
                    rand::rngs::OsRng.fill_bytes(&mut id);
                    format!("warden-ledger-{}", hex_encode(&id))
                }
            };
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            let signer = NoteSigner::from_seed(&name, &seed)
                .map_err(|reason| ProjectStoreError::BadOrigin { name, reason })?;
            if let Some(parent) = path.parent() {
                create_private_dir(parent)?;
            }
            let mut f =
                create_private_file(&path).map_err(|source| ProjectStoreError::CreateKey {
                    path: path.clone(),
                    source,
                })?;
            writeln!(f, "{}", signer.to_skey()).map_err(key_io(&path))?;
            f.sync_all().map_err(key_io(&path))?;
            tracing::info!(message = "ledger signing key created", path = %path.display(), key = %signer.verifier().to_vkey());
            Ok(signer)
        }
        Err(source) => Err(ProjectStoreError::ReadKey { path, source }),
    }
}

/// The verifier key of the project's ledger. Never creates a key: a reading command that
/// found none has nothing to check against.
pub fn verifier(dir: &Path, cfg: &LedgerConfig) -> Result<NoteVerifier, ProjectStoreError> {
    let path = key_path(dir, cfg);
    if !path.exists() {
        return Err(ProjectStoreError::NoKey { path });
    }
    Ok(load_or_create_key(dir, cfg)?.verifier())
}

/// The ledger's signing key (created on first use). It signs the checkpoints and the
/// approval votes, so one public key (`warden audit pubkey`) checks both.
pub fn signer(dir: &Path, config: &WardenConfig) -> Result<Arc<NoteSigner>, ProjectStoreError> {
    Ok(Arc::new(load_or_create_key(dir, &config.ledger)?))
}
