//! Agent authentication by static per-agent key (tokens: `identity.rs`).
//!
//! Only SHA-256 hashes of keys are held. A presented key is hashed and compared against every
//! agent's hash in constant time, without stopping at a match, so timing reveals nothing.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The credential of an `Authorization: Bearer <credential>` header. The scheme name is matched
/// without regard to case (RFC 9110 §11.1: `bearer`, `BEARER` and `Bearer` are the same).
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, credential) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credential.trim())
}

/// `sha256:<hex>` of a key, as stored in `warden.toml`.
pub fn hash_key(key: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// The agents' key hashes.
#[derive(Debug, Clone, Default)]
pub struct AgentKeys {
    keys: Vec<(String, [u8; 32])>,
}

impl AgentKeys {
    /// From `warden.toml` `[agent_keys]` values (`sha256:<hex>`); malformed ones are skipped
    /// (the config parser has already rejected them).
    pub fn from_config<'a>(entries: impl IntoIterator<Item = (&'a String, &'a str)>) -> Self {
        let keys = entries
            .into_iter()
            .filter_map(|(agent, h)| {
                let hex_part = h.strip_prefix("sha256:")?;
                let bytes = hex::decode(hex_part).ok()?;
                let arr: [u8; 32] = bytes.try_into().ok()?;
                Some((agent.clone(), arr))
            })
            .collect();
        Self { keys }
    }

    /// The agent a presented static key belongs to.
    pub fn authenticate_key(&self, presented: &str) -> Option<String> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found: Option<&str> = None;
        for (agent, hash) in &self.keys {
            let eq: bool = hash.ct_eq(&digest).into();
            if eq {
                found = Some(agent);
            }
        }
        found.map(str::to_string)
    }
}
