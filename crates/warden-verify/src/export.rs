//! Verify an exported ledger (JSON Lines: one canonical record per line, exactly the bytes the
//! ledger hashed) against a signed checkpoint, with only the log's public key.
//!
//! A whole export (from record 1) is checked by recomputing every leaf hash, the chain links
//! and the Merkle root at the checkpoint's size. An export of a range (records `a+1..=b`)
//! comes with a [`RangeProof`]: the right edge of the tree before the range (the roots of the
//! perfect subtrees covering records `1..=a`), from which the range's leaves rebuild the root
//! at size `b`, and a consistency proof from size `b` to the checkpoint's size. A wrong edge,
//! a changed, missing or reordered record all lead to another root, which the signed
//! checkpoint refuses.

use std::io::BufRead;

use crate::chain::{ChainBreak, ChainVerifier};
use crate::encoding::{hash_from_hex, hex_encode};
use crate::merkle::{verify_consistency, Frontier, Hash, ProofError};
use crate::note::{Checkpoint, NoteError, NoteVerifier};

/// Why an export did not verify.
#[derive(Debug)]
pub enum ExportError {
    /// A checkpoint is not signed by the key, or malformed.
    Checkpoint(&'static str, NoteError),
    /// The records do not form an unbroken chain.
    Chain(ChainBreak),
    /// The records do not produce the checkpoint's root.
    Root(String),
    /// The range proof is malformed or does not verify.
    Proof(String),
    /// The log could not be read or a line is not a record.
    Input(String),
}

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Checkpoint(which, e) => write!(f, "{which} checkpoint: {e}"),
            Self::Chain(b) => write!(f, "{b}"),
            Self::Root(why) => write!(f, "Merkle root mismatch: {why}"),
            Self::Proof(why) => write!(f, "range proof: {why}"),
            Self::Input(why) => write!(f, "reading the log: {why}"),
        }
    }
}

impl std::error::Error for ExportError {}

impl From<ProofError> for ExportError {
    fn from(e: ProofError) -> Self {
        Self::Proof(e.to_string())
    }
}

/// What proves a range export is part of the checkpointed log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangeProof {
    /// The sequence number of the export's first record.
    pub first_seq: u64,
    /// Roots of the perfect subtrees covering the records before it, leftmost first.
    pub left: Vec<Hash>,
    /// Consistency proof from the tree ending at the export's last record to the checkpoint.
    pub consistency: Vec<Hash>,
}

impl RangeProof {
    /// As JSON: `{"first_seq":N,"left":[hex…],"consistency":[hex…]}`.
    pub fn to_json(&self) -> String {
        let hexes = |v: &[Hash]| {
            serde_json::Value::Array(
                v.iter()
                    .map(|h| serde_json::Value::String(hex_encode(h)))
                    .collect(),
            )
        };
        serde_json::json!({
            "first_seq": self.first_seq,
            "left": hexes(&self.left),
            "consistency": hexes(&self.consistency),
        })
        .to_string()
    }

    pub fn from_json(text: &str) -> Result<Self, ExportError> {
        let bad = |why: &str| ExportError::Proof(why.to_string());
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ExportError::Proof(e.to_string()))?;
        let first_seq = v
            .get("first_seq")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| bad("`first_seq` is missing"))?;
        let hashes = |key: &str| -> Result<Vec<Hash>, ExportError> {
            v.get(key)
                .and_then(serde_json::Value::as_array)
                .ok_or_else(|| bad("a hash list is missing"))?
                .iter()
                .map(|h| {
                    h.as_str()
                        .and_then(hash_from_hex)
                        .ok_or_else(|| bad("a hash is not 64 lower-case hex digits"))
                })
                .collect()
        };
        Ok(Self {
            first_seq,
            left: hashes("left")?,
            consistency: hashes("consistency")?,
        })
    }
}

/// What a successful verification established.
#[derive(Debug, Clone)]
pub struct ExportReport {
    pub checkpoint: Checkpoint,
    /// First and last sequence numbers in the export (0, 0 when empty).
    pub first_seq: u64,
    pub last_seq: u64,
    pub records: u64,
    /// The older checkpoint, when given and shown to be a prefix of the newer one.
    pub older: Option<Checkpoint>,
}

/// Verify an export. `older`, when given, must be a checkpoint of the same log by the same
/// key that the newer one extends (checked against the records themselves).
pub fn verify_export(
    key: &NoteVerifier,
    log: impl BufRead,
    checkpoint_note: &str,
    older_note: Option<&str>,
    proof: Option<&RangeProof>,
) -> Result<ExportReport, ExportError> {
    let cp =
        Checkpoint::open(checkpoint_note, key).map_err(|e| ExportError::Checkpoint("the", e))?;
    let older = older_note
        .map(|n| Checkpoint::open(n, key).map_err(|e| ExportError::Checkpoint("the older", e)))
        .transpose()?;
    if let Some(o) = &older {
        if o.origin != cp.origin {
            return Err(ExportError::Root(format!(
                "the older checkpoint is of another log (`{}`, not `{}`)",
                o.origin, cp.origin
            )));
        }
        if o.size > cp.size {
            return Err(ExportError::Root(format!(
                "the log shrank: the older checkpoint covers {} records, the newer one {}",
                o.size, cp.size
            )));
        }
    }
    let (mut frontier, mut chain) = match proof {
        Some(p) if p.first_seq > 1 => (
            Frontier::from_parts(p.first_seq - 1, p.left.clone()).ok_or_else(|| {
                ExportError::Proof("the left edge has the wrong number of hashes".into())
            })?,
            ChainVerifier::starting_at(p.first_seq),
        ),
        _ => (Frontier::new(), ChainVerifier::new()),
    };
    let first_seq = chain.next_seq();
    if let Some(o) = &older {
        if o.size < frontier.size() {
            return Err(ExportError::Proof(
                "the older checkpoint ends before this range export starts; export from record 1 to check it".into(),
            ));
        }
    }
    let mut older_ok = older
        .as_ref()
        .is_some_and(|o| o.size == frontier.size() && o.root == frontier.root());
    for line in log.split(b'\n') {
        let line = line.map_err(|e| ExportError::Input(e.to_string()))?;
        if line.is_empty() {
            continue;
        }
        if frontier.size() >= cp.size {
            return Err(ExportError::Root(format!(
                "the export holds records past the checkpoint's {} (export again: it makes a checkpoint that covers them)",
                cp.size
            )));
        }
        let leaf = chain.push_record(&line).map_err(ExportError::Chain)?;
        frontier.push(leaf);
        if let Some(o) = &older {
            if o.size == frontier.size() {
                if o.root != frontier.root() {
                    return Err(ExportError::Root(format!(
                        "the first {} records do not produce the older checkpoint's root: the log was rewritten since",
                        o.size
                    )));
                }
                older_ok = true;
            }
        }
    }
    let end = frontier.size();
    let root_at_end = frontier.root();
    if end == cp.size {
        if root_at_end != cp.root {
            return Err(ExportError::Root(format!(
                "the {} records do not produce the checkpoint's root",
                cp.size
            )));
        }
    } else {
        let Some(p) = proof else {
            return Err(ExportError::Root(format!(
                "the export ends at record {end} but the checkpoint covers {} (records removed from the end, or a range export without its proof)",
                cp.size
            )));
        };
        verify_consistency(end, cp.size, &root_at_end, &cp.root, &p.consistency).map_err(|e| {
            ExportError::Root(format!(
                "records up to {end} are not a prefix of the checkpointed log: {e}"
            ))
        })?;
    }
    if let Some(o) = &older {
        if !older_ok {
            return Err(ExportError::Root(format!(
                "the older checkpoint (size {}) is not within this export",
                o.size
            )));
        }
    }
    Ok(ExportReport {
        checkpoint: cp,
        first_seq: if chain.count() == 0 { 0 } else { first_seq },
        last_seq: chain.next_seq() - 1,
        records: chain.count(),
        older,
    })
}
