//! Human approvals: held calls become requests in the store, people vote on them (logged in,
//! with a recent TOTP verification), each vote is a signed ledger record, and an approved
//! request lets exactly one call with exactly the same arguments run.
//!
//! | file | what it owns |
//! |---|---|
//! | `queue.rs` | a held call becomes a request (or joins the live one), expiry, waiting, the request as shown |
//! | `snapshot.rs` | the before-state: a card's snapshot read, or what the caller reported |
//! | `webhook.rs` | the chat notification |
//! | `votes.rs` | approve / deny: role, MFA, self-approval, signature, the vote record, fatigue alerts |
//! | `binding.rs` | the pipeline's approval-binding step: an execution must be the approved call |
//! | `hold.rs` | a held MCP call waits (with progress) and is released through the pipeline |
//! | `routes.rs` | `/v1/approvals` |

pub(crate) mod binding;
mod hold;
pub(crate) mod queue;
pub(crate) mod routes;
mod snapshot;
mod votes;
mod webhook;

pub(crate) use hold::{hold_mcp, progress_token, Progress};
pub(crate) use queue::{agent_view, approval_json, detail, detail_link, wait_for};
pub use queue::{detail_json, stats, sweep_expired};
pub(crate) use routes::ListQuery;
pub(crate) use snapshot::{ReadResult, SnapshotReader};
pub use votes::{vote, vote_samples, Verdict2};

use crate::error::ApiError;

fn unavailable(e: warden_store::StoreError) -> ApiError {
    ApiError::ledger_unavailable(e.to_string())
}
