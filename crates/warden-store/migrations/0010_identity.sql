-- Identity: agent tokens, OAuth clients, people, their sessions, the break-glass credential
-- and the encrypted secret store. Credentials are kept only as hashes (SHA-256 for random
-- 256-bit credentials, Argon2id for client secrets and passwords); secrets that must be read
-- back (upstream credentials, TOTP seeds) only sealed with XChaCha20-Poly1305 under a data key
-- that the master key wraps. Every change is also a ledger record; these tables are the fast
-- path, not the evidence. Times are Unix seconds.

CREATE TABLE agent_tokens (
    id          TEXT PRIMARY KEY,        -- public id (16 hex) inside the token
    hash        BLOB NOT NULL,           -- SHA-256 of the whole token
    agent       TEXT NOT NULL,
    environment TEXT NOT NULL,           -- the card's environment when issued
    tools       TEXT,                    -- JSON array of tool names, NULL = every tool of the card
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    issued_by   TEXT NOT NULL            -- `cli:<user>` or `oauth:<client id>`
) STRICT;
CREATE INDEX agent_tokens_agent ON agent_tokens (agent, expires_at);

CREATE TABLE oauth_clients (
    client_id   TEXT PRIMARY KEY,
    agent       TEXT NOT NULL,
    secret_hash TEXT NOT NULL,           -- Argon2id, PHC string
    created_at  INTEGER NOT NULL,
    disabled    INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE users (
    name           TEXT PRIMARY KEY,
    role           TEXT NOT NULL,        -- admin | approver | auditor | owner
    password_hash  TEXT NOT NULL,        -- Argon2id, PHC string
    mfa            INTEGER NOT NULL,     -- 1: TOTP required (always for admin and approver)
    disabled       INTEGER NOT NULL DEFAULT 0,
    failed_logins  INTEGER NOT NULL DEFAULT 0,
    locked_until   INTEGER NOT NULL DEFAULT 0,
    last_totp_step INTEGER,              -- RFC 6238 step of the last accepted code (no reuse)
    created_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE user_sessions (
    id          TEXT PRIMARY KEY,        -- public id inside the cookie value
    hash        BLOB NOT NULL,           -- SHA-256 of the cookie value
    csrf_hash   BLOB NOT NULL,           -- SHA-256 of the CSRF token
    user_name   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    totp_at     INTEGER,                 -- last TOTP verification (login or step-up)
    break_glass INTEGER NOT NULL DEFAULT 0,
    ended_at    INTEGER
) STRICT;

CREATE TABLE break_glass (
    id         TEXT PRIMARY KEY,
    hash       BLOB NOT NULL,            -- SHA-256 of the sealed credential
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

CREATE TABLE secrets (
    name        TEXT PRIMARY KEY,        -- upstream secret name, or `totp/<user>`
    wrapped_key BLOB NOT NULL,           -- nonce || data key sealed by the master key
    ciphertext  BLOB NOT NULL,           -- nonce || value sealed by the data key
    master_id   TEXT NOT NULL,           -- id of the master key that wrapped the data key
    updated_at  INTEGER NOT NULL
) STRICT;
