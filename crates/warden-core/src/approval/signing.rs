//! Signed votes: what an approver signed off, signed with the ledger's key (Ed25519 over the
//! canonical JSON, RFC 8785, behind a context string of its own).

use serde::{Deserialize, Serialize};
use warden_verify::{NoteSigner, NoteVerifier};

use crate::canonical::canonical_json;

/// What an approver signed off: every field of an approval or denial record except the
/// signature. The signature is Ed25519 over the canonical JSON (RFC 8785) of this struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoteStatement {
    /// The approval request (the id of the held decision).
    pub approval_id: String,
    /// `approve` or `deny`.
    pub verdict: String,
    /// The person who voted, and their role.
    pub approver: String,
    pub role: String,
    /// MFA at vote time: method and when the TOTP code was verified (Unix seconds).
    pub mfa: MfaAssertion,
    /// Required for denials and for `two_person` approvals.
    pub reason: Option<String>,
    pub agent: String,
    pub tool: String,
    /// SHA-256 of the canonical arguments the vote is bound to.
    pub arguments_hash: String,
    pub tier: String,
    /// When the vote was made (Unix seconds).
    pub at: i64,
    /// The signing key (C2SP key name and key id).
    pub key_name: String,
    pub key_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaAssertion {
    /// `totp` (RFC 6238).
    pub method: String,
    pub verified: bool,
    /// Unix seconds of the TOTP verification this vote relies on.
    pub verified_at: i64,
    /// Seconds between that verification and the vote.
    pub age_secs: i64,
}

/// A signed vote: the statement and the base64 Ed25519 signature over its canonical JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedVote {
    #[serde(flatten)]
    pub statement: VoteStatement,
    pub signature: String,
}

/// What every vote signature starts with: a context string of its own (domain separation).
/// The message is this prefix and the canonical JSON of the statement, which never ends in a
/// newline, so a vote signature cannot pass as a signature of a checkpoint note made with the
/// same ledger key, nor the other way round.
pub const VOTE_SIGNING_CONTEXT: &str = "warden/approval-vote/v1\n";

/// The signed message: the context string and the statement's canonical JSON.
fn vote_message(statement: &VoteStatement) -> Result<String, serde_json::Error> {
    let text = canonical_json(statement)?;
    Ok(format!("{VOTE_SIGNING_CONTEXT}{text}"))
}

/// Sign a vote statement with the ledger's key (Ed25519, the key that signs the ledger's
/// checkpoints). The statement's `key_name` and `key_id` are set to that key's.
pub fn sign_vote(mut statement: VoteStatement, key: &NoteSigner) -> Result<SignedVote, String> {
    use base64::Engine as _;
    statement.key_name = key.name().to_string();
    statement.key_id = hex::encode(key.key_id());
    // The signature stays `Result<_, String>`: the gateway maps the text to its API error.
    let message = vote_message(&statement).map_err(|e| e.to_string())?;
    let sig = key.sign_detached(message.as_bytes());
    Ok(SignedVote {
        statement,
        signature: base64::engine::general_purpose::STANDARD.encode(sig),
    })
}

/// Check a signed vote against the ledger's verifier key: the statement must name that key
/// and the signature must verify over the statement.
pub fn verify_vote(vote: &SignedVote, key: &NoteVerifier) -> bool {
    use base64::Engine as _;
    if vote.statement.key_name != key.name() || vote.statement.key_id != hex::encode(key.key_id()) {
        return false;
    }
    let Ok(message) = vote_message(&vote.statement) else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&vote.signature) else {
        return false;
    };
    key.verify_detached(message.as_bytes(), &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement() -> VoteStatement {
        VoteStatement {
            approval_id: "a".into(),
            verdict: "approve".into(),
            approver: "ann".into(),
            role: "approver".into(),
            mfa: MfaAssertion {
                method: "totp".into(),
                verified: true,
                verified_at: 10,
                age_secs: 2,
            },
            reason: None,
            agent: "crm".into(),
            tool: "payments/issue_refund".into(),
            arguments_hash: "00".into(),
            tier: "approve".into(),
            at: 12,
            key_name: String::new(),
            key_id: String::new(),
        }
    }

    #[test]
    fn signature_covers_every_field_and_names_the_ledger_key() {
        let key = NoteSigner::from_seed("acme.example/warden", &[7u8; 32]).unwrap();
        let v = sign_vote(statement(), &key).unwrap();
        assert_eq!(v.statement.key_name, "acme.example/warden");
        assert_eq!(v.statement.key_id, hex::encode(key.key_id()));
        assert!(verify_vote(&v, &key.verifier()));
        let mut bad = v.clone();
        bad.statement.arguments_hash = "01".into();
        assert!(!verify_vote(&bad, &key.verifier()));
        let mut bad = v.clone();
        bad.statement.mfa.verified_at = 11;
        assert!(!verify_vote(&bad, &key.verifier()));
        // Another key, even under the same name, does not verify it.
        let other = NoteSigner::from_seed("acme.example/warden", &[8u8; 32]).unwrap();
        assert!(!verify_vote(&v, &other.verifier()));
        // One flipped bit of the signature is caught.
        use base64::Engine as _;
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(&v.signature)
            .unwrap();
        raw[10] ^= 1;
        let mut bad = v;
        bad.signature = base64::engine::general_purpose::STANDARD.encode(raw);
        assert!(!verify_vote(&bad, &key.verifier()));
    }

    #[test]
    fn a_vote_signature_is_not_a_note_signature() {
        // Domain separation: the signed message is never a valid note text.
        let key = NoteSigner::from_seed("log", &[3u8; 32]).unwrap();
        let v = sign_vote(statement(), &key).unwrap();
        let message = vote_message(&v.statement).unwrap();
        assert!(message.starts_with(VOTE_SIGNING_CONTEXT));
        assert!(!message.ends_with('\n'));
    }
}
