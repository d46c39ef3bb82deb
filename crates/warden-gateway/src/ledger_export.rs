//! Exports of a project's ledger (`warden audit export`): the records exactly as hashed, a
//! bundle that `warden-verify` checks anywhere (records, signed checkpoint, public key and,
//! for a part of the log, a range proof), OCSF API Activity events, and OpenTelemetry GenAI
//! `execute_tool` spans as OTLP/HTTP JSON.
//!
//! Every export is of a range of records covered by a checkpoint signed for it
//! ([`checkpointed_range`]); OCSF and OTel keep exactly to the time [`Window`], the records
//! and the bundle to the contiguous seq range the window spans (a proof covers a range).
//!
//! The event shapes are not written here: OCSF events come from `warden_core::ocsf` and spans
//! from `warden_core::otel`, which the live exporter uses too, so an export and the live
//! spans of the same calls agree. This module only reads the records and writes them out.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use warden_core::ledger::{DecisionEvent, LedgerEvent, LedgerRecord};
use warden_core::otel::{otlp_json, Resource, ToolCallSpan};
use warden_store::{Store, StoreError, StoredCheckpoint};
use warden_verify::merkle::{self, consistency_proof, ProofError};
use warden_verify::{Frontier, NoteVerifier, RangeProof};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The store could not be read or checkpointed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Checkpoints are off for this ledger (it was not opened as a writer).
    #[error("the ledger could not be checkpointed")]
    NoCheckpoint,
    /// An output file or directory could not be created.
    #[error("creating {}", .path.display())]
    Create {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing the output failed.
    #[error(transparent)]
    Write(#[from] std::io::Error),
    /// An event could not be serialised.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A stored record does not parse: the store was altered.
    #[error("ledger record {seq} is not a record; run `warden audit verify`")]
    NotARecord {
        /// Its seq.
        seq: u64,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The stored leaves do not produce the checkpoint's root: the store was altered.
    #[error("the stored leaves do not produce the checkpoint's root; run `warden audit verify`")]
    LeavesMismatch,
    /// The range does not fit the checkpointed tree.
    #[error("range out of bounds")]
    RangeOutOfBounds,
    /// A range proof could not be made.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The task reading the records stopped.
    #[error(transparent)]
    Reader(#[from] tokio::task::JoinError),
    /// A writer was poisoned by a panic while records were written.
    #[error("writer poisoned")]
    WriterPoisoned,
}

/// A `--since`/`--until` window, as ledger timestamps (`since <= ts < until`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Window<'a> {
    /// The first timestamp in the window (RFC 3339, as the ledger writes it).
    pub since: Option<&'a str>,
    /// The first timestamp after the window.
    pub until: Option<&'a str>,
}

impl Window<'_> {
    /// Whether a record stamped `ts` is in the window.
    ///
    /// Records are numbered in append order and stamped just before; two calls can stamp in
    /// one order and append in the other, so the seq range of a window may hold a record
    /// stamped a moment outside it. Event exports keep to the window exactly.
    pub fn holds(&self, ts: &str) -> bool {
        self.since.is_none_or(|s| ts >= s) && self.until.is_none_or(|u| ts < u)
    }
}

/// The records to export and the checkpoint that covers them.
#[derive(Debug, Clone)]
pub struct CheckpointedRange {
    /// A checkpoint signed now, covering every record.
    pub checkpoint: StoredCheckpoint,
    /// The first seq of the range.
    pub first: u64,
    /// The last seq of the range (at most the checkpoint's size).
    pub last: u64,
}

/// Sign a checkpoint of every record now and find the seq range the window spans within it.
/// `None` when no record falls in the window. The ledger must have been opened with
/// checkpoints on (`ProjectStore`).
pub async fn checkpointed_range(
    store: &Store,
    window: Window<'_>,
) -> Result<Option<CheckpointedRange>, ExportError> {
    let checkpoint = store
        .ledger()
        .checkpoint_now()
        .await?
        .ok_or(ExportError::NoCheckpoint)?;
    let range = if window.since.is_none() && window.until.is_none() {
        (checkpoint.size > 0).then_some((1, checkpoint.size))
    } else {
        store
            .ledger()
            .seq_range(window.since, window.until)
            .await?
            .map(|(a, b)| (a, b.min(checkpoint.size)))
            .filter(|(a, b)| a <= b)
    };
    Ok(range.map(|(first, last)| CheckpointedRange {
        checkpoint,
        first,
        last,
    }))
}

/// Write records `first..=last` to `out`, one per line, exactly as stored (and hashed).
/// Returns how many were written.
pub async fn write_records<W: Write + Send + 'static>(
    store: &Store,
    first: u64,
    last: u64,
    out: W,
) -> Result<u64, ExportError> {
    // The store reads in a blocking task that owns its sink; the writer is shared with it so
    // that it can be flushed (and its error seen) once the task is done.
    let w = Arc::new(Mutex::new(out));
    let writer = Arc::clone(&w);
    let n = store
        .ledger()
        .export_raw(
            first,
            last,
            Box::new(move |_, rec| {
                let mut w = writer
                    .lock()
                    .map_err(|_| std::io::Error::other("writer poisoned"))?;
                w.write_all(rec)?;
                w.write_all(b"\n")
            }),
        )
        .await?;
    w.lock().map_err(|_| ExportError::WriterPoisoned)?.flush()?;
    Ok(n)
}

fn create_file(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, ExportError> {
    std::fs::File::create(path)
        .map(std::io::BufWriter::new)
        .map_err(|source| ExportError::Create {
            path: path.to_path_buf(),
            source,
        })
}

/// What [`write_bundle`] wrote.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// How many records.
    pub records: u64,
    /// `ledger.jsonl`: the records.
    pub log: PathBuf,
    /// `checkpoint.txt`: the signed checkpoint.
    pub checkpoint: PathBuf,
    /// `ledger.vkey`: the ledger's public key.
    pub key: PathBuf,
    /// `proof.json`: the range proof, when the range is not the whole checkpointed log.
    pub proof: Option<PathBuf>,
}

/// Write a bundle that `warden-verify` checks without the store: `ledger.jsonl`,
/// `checkpoint.txt`, `ledger.vkey` and, for a part of the log, `proof.json` (the left edge
/// of the tree before the range and a consistency proof from its end to the checkpoint).
pub async fn write_bundle(
    store: &Store,
    range: &CheckpointedRange,
    key: &NoteVerifier,
    out_dir: &Path,
) -> Result<Bundle, ExportError> {
    let CheckpointedRange {
        checkpoint: cp,
        first,
        last,
    } = range;
    let (first, last) = (*first, *last);
    std::fs::create_dir_all(out_dir).map_err(|source| ExportError::Create {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let log = out_dir.join("ledger.jsonl");
    let records = write_records(store, first, last, create_file(&log)?).await?;
    let checkpoint = out_dir.join("checkpoint.txt");
    std::fs::write(&checkpoint, &cp.note)?;
    let key_file = out_dir.join("ledger.vkey");
    std::fs::write(&key_file, format!("{}\n", key.to_vkey()))?;
    let mut proof_file = None;
    if first > 1 || last < cp.size {
        let leaves = store.ledger().leaf_hashes(cp.size).await?;
        if merkle::root(&leaves) != cp.root {
            return Err(ExportError::LeavesMismatch);
        }
        let before = leaves
            .get(..usize::try_from(first - 1).unwrap_or(usize::MAX))
            .ok_or(ExportError::RangeOutOfBounds)?;
        let proof = RangeProof {
            first_seq: first,
            left: Frontier::from_leaves(before).hashes().to_vec(),
            consistency: consistency_proof(&leaves, last)?,
        };
        let p = out_dir.join("proof.json");
        std::fs::write(&p, proof.to_json())?;
        proof_file = Some(p);
    }
    Ok(Bundle {
        records,
        log,
        checkpoint,
        key: key_file,
        proof: proof_file,
    })
}

/// The records a blocking task reads off the store, as (seq, leaf bytes).
type RecordStream = tokio::sync::mpsc::Receiver<(u64, Vec<u8>)>;
/// The task reading them; its result is the number read.
type RecordReader = tokio::task::JoinHandle<Result<u64, StoreError>>;

/// Records `first..=last`, read off the store in a blocking task.
fn read_records(store: &Store, first: u64, last: u64) -> (RecordStream, RecordReader) {
    let (tx, rx) = tokio::sync::mpsc::channel::<(u64, Vec<u8>)>(1024);
    let store = store.clone();
    let reader = tokio::spawn(async move {
        store
            .ledger()
            .export_raw(
                first,
                last,
                Box::new(move |seq, rec| {
                    tx.blocking_send((seq, rec.to_vec()))
                        .map_err(|_| std::io::Error::other("export stopped"))
                }),
            )
            .await
    });
    (rx, reader)
}

fn parse_record(seq: u64, rec: &[u8]) -> Result<LedgerRecord, ExportError> {
    serde_json::from_slice(rec).map_err(|source| ExportError::NotARecord { seq, source })
}

/// What [`write_ocsf`] wrote.
#[derive(Debug, Clone, Copy)]
pub struct OcsfSummary {
    /// OCSF events written (one per decision in the window).
    pub events: u64,
    /// Records of other kinds, not mapped.
    pub skipped: u64,
}

/// Write the decision records among `first..=last` that fall in `window` as OCSF API
/// Activity (class 6003) events with the security_control profile, one per line.
pub async fn write_ocsf<W: Write>(
    store: &Store,
    first: u64,
    last: u64,
    window: Window<'_>,
    mut out: W,
) -> Result<OcsfSummary, ExportError> {
    let (mut rx, reader) = read_records(store, first, last);
    let (mut events, mut skipped) = (0u64, 0u64);
    while let Some((seq, rec)) = rx.recv().await {
        let record = parse_record(seq, &rec)?;
        let LedgerEvent::Decision(d) = &record.event else {
            skipped += 1;
            continue;
        };
        if !window.holds(&record.ts) {
            continue;
        }
        let time_ms = OffsetDateTime::parse(&record.ts, &Rfc3339)
            .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0))
            .unwrap_or(0);
        let hash = warden_core::ledger::leaf_hash(&rec);
        let event = warden_core::ocsf::decision_event(
            d,
            time_ms,
            warden_core::ocsf::LedgerPosition {
                seq,
                hash: &hash,
                ts: &record.ts,
            },
        );
        serde_json::to_writer(&mut out, &event)?;
        out.write_all(b"\n")?;
        events += 1;
    }
    reader.await??;
    out.flush()?;
    Ok(OcsfSummary { events, skipped })
}

/// What [`write_otel`] wrote.
#[derive(Debug, Clone, Copy)]
pub struct OtelSummary {
    /// `execute_tool` spans written.
    pub spans: u64,
    /// Allowed calls in the window whose outcome is not in the range (not exported).
    pub without_outcome: usize,
}

/// Write OpenTelemetry GenAI `execute_tool` spans rebuilt from the decisions in `window` among
/// records `first..=last` and their outcomes, as OTLP/HTTP JSON: one
/// ExportTraceServiceRequest per line (at most 512 spans each), as the collector's
/// otlpjsonfile receiver reads.
pub async fn write_otel<W: Write>(
    store: &Store,
    first: u64,
    last: u64,
    window: Window<'_>,
    resource: &Resource,
    mut out: W,
) -> Result<OtelSummary, ExportError> {
    let nanos = |ts: &str| {
        OffsetDateTime::parse(ts, &Rfc3339)
            .ok()
            .and_then(|t| u64::try_from(t.unix_timestamp_nanos()).ok())
            .unwrap_or(0)
    };
    let (mut rx, reader) = read_records(store, first, last);
    // Allowed calls wait for their outcome record to end their span.
    let mut running: HashMap<String, (DecisionEvent, u64)> = HashMap::new();
    let mut batch: Vec<ToolCallSpan> = Vec::new();
    let mut spans = 0u64;
    let mut flush = |batch: &mut Vec<ToolCallSpan>| -> Result<(), ExportError> {
        if !batch.is_empty() {
            serde_json::to_writer(&mut out, &otlp_json(resource, batch))?;
            out.write_all(b"\n")?;
            batch.clear();
        }
        Ok(())
    };
    while let Some((seq, rec)) = rx.recv().await {
        let record = parse_record(seq, &rec)?;
        match record.event {
            LedgerEvent::Decision(d) if window.holds(&record.ts) => {
                let at = nanos(&record.ts);
                if d.decision.decision == warden_core::Verdict::Allow {
                    running.insert(d.decision_id.clone(), (*d, at));
                } else if let Some(span) = ToolCallSpan::from_ledger(&d, at, None) {
                    batch.push(span);
                }
            }
            LedgerEvent::Outcome(o) => {
                if let Some((d, at)) = running.remove(&o.decision_id) {
                    let end = nanos(&record.ts);
                    if let Some(span) = ToolCallSpan::from_ledger(&d, at, Some((&o, end))) {
                        batch.push(span);
                    }
                }
            }
            _ => {}
        }
        if batch.len() >= 512 {
            spans += batch.len() as u64;
            flush(&mut batch)?;
        }
    }
    reader.await??;
    spans += batch.len() as u64;
    flush(&mut batch)?;
    out.flush()?;
    Ok(OtelSummary {
        spans,
        without_outcome: running.len(),
    })
}
