//! Human approvals: held calls become requests in the store, people vote on them (logged in,
//! with a recent TOTP verification), each vote is a signed ledger record, and an approved
//! request lets exactly one call with exactly the same arguments run.
//!
//! | file | what it owns |
//! |---|---|
//! | `queue.rs` | a held call becomes a request (or joins the live one), expiry, waiting, the request as shown |
//! | `snapshot.rs` | the before-state: a card's snapshot read, or what the caller reported |
//! | `webhook.rs` | the chat notification, and the link to a request's page |
//! | `votes.rs` | approve / deny: role, MFA, self-approval, signature, the vote record, fatigue alerts and figures |
//! | `binding.rs` | the pipeline's approval-binding step: an execution must be the approved call |
//! | `hold.rs` | a held MCP call waits (with progress) and is released through the pipeline |
//! | `routes.rs` | `/v1/approvals` |
//!
//! The pipeline calls `binding.rs` and `queue.rs`; they take only its shared types
//! (`pipeline::call`) and the pin check (`pipeline::pin`), never its steps, so the two do not
//! import each other.

pub(crate) mod binding;
mod hold;
pub(crate) mod queue;
pub(crate) mod routes;
pub(crate) mod snapshot;
pub(crate) mod votes;
mod webhook;

pub(crate) use hold::{hold_mcp, progress_token, Progress};
pub(crate) use queue::{agent_view, approval_json, detail, reveal, wait_for};
pub use queue::{detail_json, reveal_json, sweep_expired};
pub(crate) use routes::ListQuery;
pub(crate) use snapshot::{ReadResult, SnapshotReader};
pub use votes::stats;
pub use votes::{vote, vote_samples, Verdict2};
pub(crate) use webhook::detail_link;
