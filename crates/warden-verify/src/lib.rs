//! Offline verification of Warden's ledger, with no server dependencies: a third party checks
//! an exported log against a signed checkpoint holding only the log's public key.
//!
//! - [`merkle`]: RFC 6962 / RFC 9162 Merkle tree hashes, inclusion and consistency proofs,
//!   and the incremental right edge ([`merkle::Frontier`]) the ledger keeps.
//! - [`note`]: C2SP signed notes (Ed25519) and tlog-checkpoint bodies.
//! - [`chain`]: the ledger's own hash chain (each record names its predecessor's hash).
//! - [`export`]: verification of a JSON Lines export against a checkpoint.
//!
//! Warden itself uses these functions for its leaf hashes, checkpoints and proofs, so the
//! verifier and the writer share one implementation.

pub mod chain;
pub mod encoding;
pub mod export;
pub mod merkle;
pub mod note;

pub use chain::{ChainBreak, ChainVerifier};
pub use export::{verify_export, ExportError, ExportReport, RangeProof};
pub use merkle::{Frontier, Hash};
pub use note::{Checkpoint, Note, NoteError, NoteSigner, NoteVerifier};
