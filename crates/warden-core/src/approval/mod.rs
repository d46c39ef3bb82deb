//! Human approvals, the pure parts: settings, the argument hash an approval is bound to, the
//! signed statement of an approver's vote (signed with the ledger's key), the parsers of the
//! votes people send over the network, the before-state a snapshot read returns and its diff
//! against the proposed call, and approval-fatigue statistics.
//!
//! No I/O: the gateway passes in times, identities and the signing key.
//!
//! Where things are: `config.rs` (`[approvals]`), `signing.rs` (signed votes),
//! `vote_input.rs` (vote bodies and forms from the network), `before_state.rs` (snapshot
//! results and their diff against the call), `fatigue.rs` (rubber-stamping figures).

mod before_state;
mod config;
mod fatigue;
mod signing;
mod vote_input;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::canonical::canonical_json;

pub use before_state::{snapshot_state, state_diff, DiffRow, FieldChange};
pub use config::ApprovalsConfig;
pub use fatigue::{fatigue, rubber_stamping, FatigueStats, VoteSample};
pub use signing::{
    sign_vote, verify_vote, MfaAssertion, SignedVote, VoteStatement, VOTE_SIGNING_CONTEXT,
};
pub use vote_input::{
    parse_vote_form, parse_vote_json, VoteForm, VoteInput, VoteParseError, VoteVerdict,
    MAX_REASON_CHARS, MAX_VOTE_BODY,
};

/// SHA-256 (hex) of the canonical JSON (RFC 8785) of a call's arguments. An approval is bound
/// to this hash: a call with any other arguments needs a new approval.
pub fn arguments_hash(args: &Value) -> String {
    let text = canonical_json(args).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Approvals needed for a tier (`two_person` → 2, otherwise 1).
pub fn required_approvals(tier: crate::Tier) -> u32 {
    match tier {
        crate::Tier::TwoPerson => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hash_ignores_member_order_but_not_values() {
        let a = arguments_hash(&json!({"a": 1, "b": "x"}));
        let b = arguments_hash(&json!({"b": "x", "a": 1}));
        let c = arguments_hash(&json!({"b": "x", "a": 2}));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
