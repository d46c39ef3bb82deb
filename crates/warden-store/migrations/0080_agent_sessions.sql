-- Agents' session state for prompt-injection containment (issue 15): the gateway keeps a
-- bounded cache in memory; this is the truth it reloads from, so no cache eviction and no
-- restart clears a session's taint. `session_key` is a SHA-256 digest of the agent and the caller's session id (the
-- id itself is caller text and is not kept). `taint` only ever grows (0 clean, 1 untrusted,
-- 2 suspicious); `version` grows with every update so a cached copy can be checked cheaply.
-- Rows idle past `[gateway] session_idle_expiry_hours` are deleted with their texts.
CREATE TABLE agent_sessions (
    agent        TEXT NOT NULL,
    session_key  TEXT NOT NULL,
    taint        INTEGER NOT NULL,
    read_classes TEXT NOT NULL,
    version      INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL,
    PRIMARY KEY (agent, session_key)
) STRICT, WITHOUT ROWID;
CREATE INDEX agent_sessions_idle ON agent_sessions (updated_ms);

-- The texts a session read, oldest first, for argument provenance: each body sealed (`wdn1:`)
-- with the period key of its day and agent when the store seals payloads, otherwise redacted.
-- Bounded per session and kind by `bytes` (as the in-memory session is).
CREATE TABLE agent_session_texts (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    agent   TEXT NOT NULL,
    session_key TEXT NOT NULL,
    trusted INTEGER NOT NULL,
    bytes   INTEGER NOT NULL,
    body    TEXT NOT NULL
) STRICT;
CREATE INDEX agent_session_texts_of ON agent_session_texts (agent, session_key, trusted, id);
