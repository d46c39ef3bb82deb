//! Tool pins: first-seen definition hashes of upstream tools.

use std::collections::HashSet;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use sqlx::Row;

use crate::{Ledger, StoreError};

/// How long the set of blocked tools is trusted before it is read again: a block made by
/// another process (a replica) or an approval from the CLI takes effect within this time; a
/// block made by this process takes effect at once.
const BLOCKED_TTL: Duration = Duration::from_secs(1);

/// (server, tool) pairs.
type ToolSet = HashSet<(String, String)>;

/// The blocked tools, read from the store at most once per [`BLOCKED_TTL`].
#[derive(Debug, Default)]
pub struct BlockedCache {
    inner: RwLock<Option<(Instant, ToolSet)>>,
}

impl BlockedCache {
    fn lookup(&self, server: &str, tool: &str) -> Option<bool> {
        let guard = self.inner.read().ok()?;
        let (at, set) = guard.as_ref()?;
        if at.elapsed() > BLOCKED_TTL {
            return None;
        }
        Some(set.contains(&(server.to_string(), tool.to_string())))
    }

    fn store(&self, set: ToolSet) {
        if let Ok(mut g) = self.inner.write() {
            *g = Some((Instant::now(), set));
        }
    }

    fn invalidate(&self) {
        if let Ok(mut g) = self.inner.write() {
            *g = None;
        }
    }
}

/// What comparing an announced definition with its pin found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinCheck {
    /// Never seen before; pinned now.
    New,
    /// Same as the pin.
    Same,
    /// Different from an approved pin: the tool is blocked from now on.
    Changed { previous: String },
    /// Already blocked, awaiting review.
    Blocked,
}

/// A pin as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub server: String,
    pub tool: String,
    pub hash: String,
    pub blocked: bool,
    pub new_hash: Option<String>,
    pub updated_at: String,
    /// The pinned definition, canonical JSON.
    pub definition: String,
    /// The announced definition that blocked it, while blocked.
    pub new_definition: Option<String>,
}

impl Ledger {
    /// Compare an announced tool definition hash with its pin, pinning it if new and blocking
    /// the tool if it changed.
    pub async fn check_pin(
        &self,
        server: &str,
        tool: &str,
        hash: &str,
        definition: &str,
        now: &str,
    ) -> Result<PinCheck, StoreError> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query("SELECT hash, status FROM tool_pins WHERE server = ? AND tool = ?")
            .bind(server)
            .bind(tool)
            .fetch_optional(&mut *tx)
            .await?;
        let check = match row {
            None => {
                sqlx::query("INSERT INTO tool_pins (server, tool, hash, status, definition, new_hash, new_definition, updated_at) VALUES (?, ?, ?, 'approved', ?, NULL, NULL, ?)")
                    .bind(server)
                    .bind(tool)
                    .bind(hash)
                    .bind(definition)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                PinCheck::New
            }
            Some(r) => {
                let pinned: String = r.try_get(0)?;
                let status: String = r.try_get(1)?;
                if status == "blocked" {
                    sqlx::query("UPDATE tool_pins SET new_hash = ?, new_definition = ? WHERE server = ? AND tool = ?")
                        .bind(hash)
                        .bind(definition)
                        .bind(server)
                        .bind(tool)
                        .execute(&mut *tx)
                        .await?;
                    PinCheck::Blocked
                } else if pinned == hash {
                    PinCheck::Same
                } else {
                    sqlx::query("UPDATE tool_pins SET status = 'blocked', new_hash = ?, new_definition = ?, updated_at = ? WHERE server = ? AND tool = ?")
                        .bind(hash)
                        .bind(definition)
                        .bind(now)
                        .bind(server)
                        .bind(tool)
                        .execute(&mut *tx)
                        .await?;
                    PinCheck::Changed { previous: pinned }
                }
            }
        };
        tx.commit().await?;
        if matches!(check, PinCheck::Changed { .. }) {
            self.blocked_cache.invalidate();
        }
        Ok(check)
    }

    /// Whether a tool is blocked by its pin (unknown tools are not). Served from memory,
    /// re-read from the store at most once a second.
    pub async fn is_blocked(&self, server: &str, tool: &str) -> Result<bool, StoreError> {
        if let Some(answer) = self.blocked_cache.lookup(server, tool) {
            return Ok(answer);
        }
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT server, tool FROM tool_pins WHERE status = 'blocked'")
                .fetch_all(self.pool())
                .await?;
        let set: HashSet<(String, String)> = rows.into_iter().collect();
        let answer = set.contains(&(server.to_string(), tool.to_string()));
        self.blocked_cache.store(set);
        Ok(answer)
    }

    /// Every pin, blocked ones first.
    pub async fn pins(&self) -> Result<Vec<Pin>, StoreError> {
        let rows = sqlx::query("SELECT server, tool, hash, status, new_hash, updated_at, definition, new_definition FROM tool_pins ORDER BY status = 'approved', server, tool")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Pin {
                    server: r.try_get(0)?,
                    tool: r.try_get(1)?,
                    hash: r.try_get(2)?,
                    blocked: r.try_get::<String, _>(3)? == "blocked",
                    new_hash: r.try_get(4)?,
                    updated_at: r.try_get(5)?,
                    definition: r.try_get(6)?,
                    new_definition: r.try_get(7)?,
                })
            })
            .collect()
    }

    /// Approve the announced definition of a blocked tool: it becomes the pin. Returns
    /// `(previous, approved)` hashes, or `None` if the tool is not blocked.
    pub async fn approve_pin(
        &self,
        server: &str,
        tool: &str,
        now: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query("SELECT hash, new_hash, new_definition FROM tool_pins WHERE server = ? AND tool = ? AND status = 'blocked'")
            .bind(server)
            .bind(tool)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let previous: String = r.try_get(0)?;
        let Some(new_hash): Option<String> = r.try_get(1)? else {
            return Ok(None);
        };
        let new_definition: Option<String> = r.try_get(2)?;
        sqlx::query("UPDATE tool_pins SET hash = ?, definition = COALESCE(?, definition), status = 'approved', new_hash = NULL, new_definition = NULL, updated_at = ? WHERE server = ? AND tool = ?")
            .bind(&new_hash)
            .bind(new_definition)
            .bind(now)
            .bind(server)
            .bind(tool)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.blocked_cache.invalidate();
        Ok(Some((previous, new_hash)))
    }
}
