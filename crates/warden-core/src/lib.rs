//! Warden's decision core.
//!
//! No I/O lives here: scope cards, `warden.toml` and Cedar policies come in as text, decisions
//! and ledger hashes go out as values. Time, identity and randomness are passed in by the
//! caller, so every decision and hash is deterministic and can be snapshot-tested.
//!
//! - [`scope_card`]: parse and validate `agents/<id>.toml`.
//! - [`config`]: parse and validate `warden.toml`.
//! - [`args`]: check call arguments against a card's constraints.
//! - [`policy`]: compile cards and `policies/*.cedar` into a validated Cedar policy set and
//!   decide calls against it.
//! - [`clock`]: the injectable source of "now" that the gateway and the store share.
//! - [`canonical`]: canonical JSON (RFC 8785), what every hash and signature is over.
//! - [`ledger`]: ledger records, RFC 6962 leaf hashes, chain checks.
//! - [`project`]: load a whole project from its files' text.
//! - [`identity`]: credential formats, TOTP (RFC 6238), the OAuth client-credentials request.
//! - [`envelope`]: envelope encryption (XChaCha20-Poly1305) of secrets at rest.
//! - [`access`]: the access review (granted vs used).
//! - [`redact`]: the redaction engine (secrets and personal data out of stored records).
//! - [`injection`]: the detector for instructions planted in untrusted tool output.
//! - [`session`]: per-session taint, data classes read, argument provenance, egress lists.
//! - [`approval`]: human approvals: argument hash, signed votes, fatigue figures.
//! - [`otel`]: OpenTelemetry GenAI `execute_tool` spans and their OTLP/HTTP JSON encoding.

pub mod access;
pub mod approval;
pub mod args;
pub mod canonical;
pub mod clock;
pub mod config;
pub mod diagnostic;
pub mod envelope;
pub mod example;
pub mod identity;
pub mod injection;
pub mod ledger;
pub mod ledger_config;
pub mod ocsf;
pub mod otel;
pub mod policy;
pub mod project;
pub mod redact;
pub mod scope_card;
pub mod session;
pub mod tools;
pub mod vault;

pub use diagnostic::{FileError, FileErrors};
pub use policy::{CallRequest, CompiledPolicy, Decision, ReadTarget, SourceFile, Verdict};
pub use scope_card::{ScopeCard, Tier};
pub use session::{SessionState, StoredText, Taint};
