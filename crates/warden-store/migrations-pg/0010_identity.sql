-- PostgreSQL dialect of migrations/0010_identity.sql: agent tokens, OAuth clients, people,
-- their sessions, the break-glass credential and sealed secrets.
CREATE TABLE agent_tokens (
    id          TEXT PRIMARY KEY,
    hash        BYTEA NOT NULL,
    agent       TEXT NOT NULL,
    environment TEXT NOT NULL,
    tools       TEXT,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    issued_by   TEXT NOT NULL
);
CREATE INDEX agent_tokens_agent ON agent_tokens (agent, expires_at);

CREATE TABLE oauth_clients (
    client_id   TEXT PRIMARY KEY,
    agent       TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    disabled    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE users (
    name           TEXT PRIMARY KEY,
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    mfa            BIGINT NOT NULL,
    disabled       BIGINT NOT NULL DEFAULT 0,
    failed_logins  BIGINT NOT NULL DEFAULT 0,
    locked_until   BIGINT NOT NULL DEFAULT 0,
    last_totp_step BIGINT,
    created_at     BIGINT NOT NULL
);

CREATE TABLE user_sessions (
    id          TEXT PRIMARY KEY,
    hash        BYTEA NOT NULL,
    csrf_hash   BYTEA NOT NULL,
    user_name   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    totp_at     BIGINT,
    break_glass BIGINT NOT NULL DEFAULT 0,
    ended_at    BIGINT
);

CREATE TABLE break_glass (
    id         TEXT PRIMARY KEY,
    hash       BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE secrets (
    name        TEXT PRIMARY KEY,
    wrapped_key BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    master_id   TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
