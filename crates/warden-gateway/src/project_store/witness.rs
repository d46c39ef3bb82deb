//! Checkpoint witnesses (`[[ledger.witnesses]]`): every new signed checkpoint is written to a
//! file (replaced atomically), to a directory (one file per checkpoint) or POSTed to a URL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;
use warden_core::ledger_config::WitnessConfig;
use warden_store::StoredCheckpoint;

/// Why one checkpoint did not reach one witness. It is logged and the witness is tried again
/// with the next checkpoint; it never holds up the ledger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessError {
    /// The witness file or directory could not be written.
    #[error("witness file {}: {error}", .path.display())]
    File {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error (in the message: the error is only logged).
        error: std::io::Error,
    },
    /// No HTTP client could be built for a URL witness.
    #[error("no HTTP client")]
    NoClient,
    /// The POST did not complete.
    #[error("POST {url}: {error}")]
    Post {
        /// The witness URL.
        url: String,
        /// The transport error (in the message: the error is only logged).
        error: reqwest::Error,
    },
    /// The witness answered with an error status.
    #[error("POST {url}: HTTP {status}")]
    Status {
        /// The witness URL.
        url: String,
        /// Its answer.
        status: reqwest::StatusCode,
    },
}

/// Start the task that writes every checkpoint sent on the returned channel to each witness.
/// The task ends when the sender (held by the ledger's checkpointer) is dropped and every
/// checkpoint sent is delivered.
pub(super) fn spawn(
    dir: PathBuf,
    witnesses: Vec<WitnessConfig>,
) -> (UnboundedSender<StoredCheckpoint>, JoinHandle<()>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (tx, tokio::spawn(witness_task(dir, witnesses, rx)))
}

async fn witness_task(
    dir: PathBuf,
    witnesses: Vec<WitnessConfig>,
    mut rx: UnboundedReceiver<StoredCheckpoint>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok();
    while let Some(cp) = rx.recv().await {
        for w in &witnesses {
            if let Err(error) = publish_one(&dir, w, &cp, client.as_ref()).await {
                tracing::warn!(message = "checkpoint witness failed", %error, size = cp.size);
            }
        }
    }
}

async fn publish_one(
    dir: &Path,
    w: &WitnessConfig,
    cp: &StoredCheckpoint,
    client: Option<&reqwest::Client>,
) -> Result<(), WitnessError> {
    let resolve = |p: &str| {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            dir.join(p)
        }
    };
    let file_error = |path: &Path| {
        let path = path.to_path_buf();
        move |error| WitnessError::File { path, error }
    };
    if let Some(file) = &w.file {
        let path = resolve(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(file_error(&path))?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &cp.note).map_err(file_error(&path))?;
        std::fs::rename(&tmp, &path).map_err(file_error(&path))?;
    } else if let Some(d) = &w.dir {
        let d = resolve(d);
        std::fs::create_dir_all(&d).map_err(file_error(&d))?;
        let path = d.join(format!("{:012}.checkpoint", cp.size));
        if !path.exists() {
            std::fs::write(&path, &cp.note).map_err(file_error(&path))?;
        }
    } else if let Some(url) = &w.url {
        let Some(client) = client else {
            return Err(WitnessError::NoClient);
        };
        let resp = client
            .post(url)
            .header("content-type", "text/plain; charset=utf-8")
            .body(cp.note.clone())
            .send()
            .await
            .map_err(|error| WitnessError::Post {
                url: url.clone(),
                error,
            })?;
        if !resp.status().is_success() {
            return Err(WitnessError::Status {
                url: url.clone(),
                status: resp.status(),
            });
        }
    }
    Ok(())
}
