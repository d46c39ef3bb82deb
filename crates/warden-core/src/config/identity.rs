//! `[identity]` (token and session lifetimes, lock-out, the master key), `[agent_keys]` (the
//! static per-agent API keys, stored hashed) and `[redaction]` (the redaction HMAC key).

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::FileError;

/// `[identity]`: lifetimes of tokens and sessions, lock-out, the master key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// Lifetime of an agent token when `--ttl` is not given, in seconds (default 1 h).
    #[serde(default = "default_token_ttl")]
    pub token_ttl_secs: u64,
    /// No token lives longer than this, whatever is asked, in seconds (default 24 h; at most
    /// 30 days).
    #[serde(default = "default_token_ttl_max")]
    pub token_ttl_max_secs: u64,
    /// A human session ends after this long without a request, in seconds (default 30 min).
    #[serde(default = "default_session_idle")]
    pub session_idle_secs: u64,
    /// A human session ends this long after login whatever happens, in seconds (default 12 h).
    #[serde(default = "default_session_absolute")]
    pub session_absolute_secs: u64,
    /// Failed logins in a row before an account is locked (with doubling back-off).
    #[serde(default = "default_max_failed")]
    pub max_failed_logins: u32,
    /// File holding the 32-byte master key (64 hex digits), relative to the project; the
    /// environment variable `WARDEN_MASTER_KEY` takes precedence.
    #[serde(default = "default_master_key_file")]
    pub master_key_file: String,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            token_ttl_secs: default_token_ttl(),
            token_ttl_max_secs: default_token_ttl_max(),
            session_idle_secs: default_session_idle(),
            session_absolute_secs: default_session_absolute(),
            max_failed_logins: default_max_failed(),
            master_key_file: default_master_key_file(),
        }
    }
}

/// The hard ceiling on `token_ttl_max_secs`: 30 days.
pub const TOKEN_TTL_CEILING_SECS: u64 = 30 * 86_400;

fn default_token_ttl() -> u64 {
    3600
}
fn default_token_ttl_max() -> u64 {
    86_400
}
fn default_session_idle() -> u64 {
    1800
}
fn default_session_absolute() -> u64 {
    12 * 3600
}
fn default_max_failed() -> u32 {
    5
}
fn default_master_key_file() -> String {
    "master.key".to_string()
}

/// `[redaction]`: where the HMAC key of redaction tokens comes from. Everything stored is
/// redacted; the key only decides which tokens equal values get, so records can be
/// correlated without revealing the values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionConfig {
    /// A file holding the key as hex (at least 16 bytes), relative to the project directory.
    /// Created with 32 random bytes, mode 0600, when it does not exist.
    #[serde(default = "default_redaction_key_file")]
    pub key_file: String,
    /// An environment variable that, when set, holds the key as hex and takes precedence
    /// over `key_file`.
    #[serde(default = "default_redaction_key_env")]
    pub key_env: String,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        Self {
            key_file: default_redaction_key_file(),
            key_env: default_redaction_key_env(),
        }
    }
}

fn default_redaction_key_file() -> String {
    "redaction.key".to_string()
}

fn default_redaction_key_env() -> String {
    "WARDEN_REDACTION_KEY".to_string()
}

/// Each agent key is stored as `sha256:` and 64 hex digits.
pub(super) fn check_agent_keys(
    path: &str,
    source: &str,
    agent_keys: &BTreeMap<String, Spanned<String>>,
    errors: &mut Vec<FileError>,
) {
    // A key must name one agent: with two agents on one hash, which of them a call came from
    // would be a guess.
    let mut first_with: BTreeMap<String, &str> = BTreeMap::new();
    for (agent, key) in agent_keys {
        let k = key.get_ref();
        match first_with.get(&k.to_ascii_lowercase()) {
            Some(other) => errors.push(
                FileError::at(
                    path,
                    source,
                    key.span().start,
                    format!("agent `{agent}` has the same key as agent `{other}`"),
                )
                .with_hint("give every agent a key of its own (`warden init` prints how to make one); a shared key makes its calls impossible to tell apart"),
            ),
            None => {
                first_with.insert(k.to_ascii_lowercase(), agent);
            }
        }
        let ok = k
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()));
        if !ok {
            errors.push(
                FileError::at(
                    path,
                    source,
                    key.span().start,
                    format!("agent key for `{agent}` must be `sha256:` and 64 hex digits"),
                )
                .with_hint("store only the hash of a key; `warden init` shows how"),
            );
        }
    }
}

/// Token lifetimes within the ceiling, session idle time within the absolute lifetime, at
/// least one failed login before a lock-out.
pub(super) fn check_identity(path: &str, id: &IdentityConfig, errors: &mut Vec<FileError>) {
    if id.token_ttl_max_secs == 0 || id.token_ttl_max_secs > TOKEN_TTL_CEILING_SECS {
        errors.push(
            FileError::whole(
                path,
                "[identity] token_ttl_max_secs must be between 1 and 2592000 (30 days)",
            )
            .with_hint("short-lived tokens: the default is 86400 (24 h)"),
        );
    }
    if id.token_ttl_secs == 0 || id.token_ttl_secs > id.token_ttl_max_secs {
        errors.push(
            FileError::whole(
                path,
                "[identity] token_ttl_secs must be at least 1 and at most token_ttl_max_secs",
            )
            .with_hint("the default is 3600 (1 h)"),
        );
    }
    if id.session_idle_secs == 0 || id.session_idle_secs > id.session_absolute_secs {
        errors.push(FileError::whole(
            path,
            "[identity] session_idle_secs must be at least 1 and at most session_absolute_secs",
        ));
    }
    if id.max_failed_logins == 0 {
        errors.push(FileError::whole(
            path,
            "[identity] max_failed_logins must be at least 1",
        ));
    }
}
