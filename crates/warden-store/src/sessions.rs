//! [`SessionStore`]: agents' session state for prompt-injection containment (taint, data
//! classes read, the texts kept for argument provenance), the truth behind the gateway's
//! bounded in-memory cache. Not to be confused with people's login sessions
//! ([`crate::IdentityStore`]).
//!
//! A session is named by (agent, session id). Its taint only grows; every update raises a
//! version number, so a process holding a cached copy checks it with one small read
//! ([`SessionStore::session_version`]) and reloads only when another process (a `warden mcp
//! stdio` gate beside `warden serve`, or another replica) changed it.

use async_trait::async_trait;
use warden_core::{StoredText, Taint};

use crate::StoreError;

/// A session as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredSession {
    /// Grows with every update; a new session's first version is the time of its creation
    /// (Unix ms), so a session created again after it expired never repeats one.
    pub version: u64,
    pub taint: Taint,
    pub read_classes: Vec<String>,
    /// Oldest first, trusted and untrusted interleaved as read. A text that can no longer be
    /// opened (its key destroyed by retention) is left out; the taint stays.
    pub texts: Vec<StoredText>,
    /// Unix milliseconds of the last update.
    pub updated_ms: i64,
}

/// One update of a session: its taint raised to at least `taint`, the data classes read
/// added, and a text kept (sealed or redacted by the store).
#[derive(Debug, Clone, Default)]
pub struct SessionUpdate {
    pub taint: Taint,
    pub read_classes: Vec<String>,
    pub text: Option<StoredText>,
    /// The tool the text came from (`server/name`), whose data classes its seal follows;
    /// `None` for the user's own request.
    pub tool: Option<String>,
}

/// Agents' session state.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// The session's version, `None` if it has no stored state (never updated, or expired).
    async fn session_version(&self, agent: &str, session: &str) -> Result<Option<u64>, StoreError>;

    /// The whole stored session, its texts opened.
    async fn load_session(
        &self,
        agent: &str,
        session: &str,
    ) -> Result<Option<StoredSession>, StoreError>;

    /// Apply an update (creating the session), durable when this returns (with the store's
    /// durability). Returns the new version.
    async fn update_session(
        &self,
        agent: &str,
        session: &str,
        update: SessionUpdate,
        now_ms: i64,
    ) -> Result<u64, StoreError>;

    /// Delete the sessions not updated since `idle_before_ms`, with their texts. Returns how
    /// many were deleted.
    async fn expire_sessions(&self, idle_before_ms: i64) -> Result<u64, StoreError>;
}
