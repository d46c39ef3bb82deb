//! The project's redaction engine: its key (`[redaction] key_env` or `key_file`) and what the
//! scope cards and `[retention]` say not to store.

use std::io::Write as _;
use std::path::Path;

use rand::RngCore as _;
use warden_core::config::RedactionConfig;
use warden_core::redact::{Redactor, Withholding};
use warden_core::FileErrors;

use super::{create_private_file, ProjectStoreError};

/// The project's `[redaction]` settings (`None` when the project has no warden.toml).
fn redaction_config(dir: &Path) -> Result<Option<RedactionConfig>, ProjectStoreError> {
    let path = dir.join("warden.toml");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ProjectStoreError::ReadConfig { path, source }),
    };
    match warden_core::config::parse_config("warden.toml", &text) {
        Ok(c) => Ok(Some(c.redaction)),
        Err(errors) => Err(ProjectStoreError::InvalidConfig(FileErrors(errors))),
    }
}

fn decode_key(hex_text: &str, origin: &str) -> Result<Vec<u8>, ProjectStoreError> {
    let key =
        hex::decode(hex_text.trim()).map_err(|source| ProjectStoreError::RedactionKeyNotHex {
            origin: origin.to_string(),
            source,
        })?;
    if key.len() < 16 {
        return Err(ProjectStoreError::RedactionKeyTooShort {
            origin: origin.to_string(),
        });
    }
    Ok(key)
}

/// The project's redaction key: from the environment variable named by `[redaction]
/// key_env` if set, else from `key_file`, which is created (32 random bytes, mode 0600)
/// when it does not exist.
fn project_key(dir: &Path, cfg: &RedactionConfig) -> Result<Vec<u8>, ProjectStoreError> {
    if let Ok(v) = std::env::var(&cfg.key_env) {
        return decode_key(&v, &format!("${}", cfg.key_env));
    }
    let path = dir.join(&cfg.key_file);
    match std::fs::read_to_string(&path) {
        Ok(text) => decode_key(&text, &path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| ProjectStoreError::CreateDir {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            let mut f = create_private_file(&path).map_err(|source| {
                ProjectStoreError::CreateRedactionKey {
                    path: path.clone(),
                    source,
                }
            })?;
            writeln!(f, "{}", hex::encode(key)).map_err(|error| ProjectStoreError::KeyIo {
                path: path.clone(),
                error,
            })?;
            tracing::info!(message = "redaction key created", path = %path.display());
            Ok(key.to_vec())
        }
        Err(source) => Err(ProjectStoreError::ReadRedactionKey { path, source }),
    }
}

/// What the project says not to store: the cards' `store_arguments` / `store_output`, and
/// `[retention] not_stored` data classes (cards that do not parse are skipped here; loading
/// the project reports them).
fn withholding(dir: &Path) -> Withholding {
    let Ok(sources) = crate::project::read_sources(dir) else {
        return Withholding::default();
    };
    let cards: Vec<_> = sources
        .cards
        .iter()
        .filter_map(|f| warden_core::scope_card::parse_scope_card(&f.path, &f.text).ok())
        .collect();
    let not_stored = std::fs::read_to_string(dir.join("warden.toml"))
        .ok()
        .and_then(|text| warden_core::config::parse_config("warden.toml", &text).ok())
        .map(|c| c.retention.not_stored())
        .unwrap_or_default();
    Withholding::from_cards(&cards, &not_stored)
}

/// The redactor for the project in `dir`, with its scope cards' `store_arguments` /
/// `store_output` settings. Without a project, the key comes from `$WARDEN_REDACTION_KEY` or
/// is random for this run.
pub fn redactor_for(dir: &Path) -> Result<Redactor, ProjectStoreError> {
    let key = match redaction_config(dir)? {
        Some(cfg) => project_key(dir, &cfg)?,
        None => match std::env::var(RedactionConfig::default().key_env) {
            Ok(v) => decode_key(&v, "$WARDEN_REDACTION_KEY")?,
            Err(_) => {
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                key.to_vec()
            }
        },
    };
    Ok(Redactor::new(&key)
        .map_err(ProjectStoreError::RedactionEngine)?
        .with_withholding(withholding(dir)))
}
