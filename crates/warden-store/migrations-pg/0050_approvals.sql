-- PostgreSQL dialect of migrations/0050_approvals.sql.
CREATE TABLE approvals (
    id             TEXT PRIMARY KEY,
    agent          TEXT NOT NULL,
    on_behalf_of   TEXT,
    tool           TEXT NOT NULL,
    qualified_tool TEXT NOT NULL,
    upstream       TEXT NOT NULL,
    arguments      TEXT NOT NULL,
    arguments_hash TEXT NOT NULL,
    reasons        TEXT NOT NULL,
    policies       TEXT NOT NULL,
    tier           TEXT NOT NULL,
    required       BIGINT NOT NULL,
    session        TEXT,
    correlation_id TEXT,
    source         TEXT NOT NULL,
    before_state   TEXT,
    ledger_seq     BIGINT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'expired')),
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    decided_at     BIGINT,
    deny_reason    TEXT,
    used_at        BIGINT,
    used_by        TEXT
);
CREATE INDEX approvals_state ON approvals (state, expires_at);
CREATE INDEX approvals_agent ON approvals (agent, qualified_tool, arguments_hash);

CREATE TABLE approval_votes (
    approval_id TEXT NOT NULL REFERENCES approvals (id),
    approver    TEXT NOT NULL,
    verdict     TEXT NOT NULL CHECK (verdict IN ('approve', 'deny')),
    reason      TEXT,
    at          BIGINT NOT NULL,
    mfa_at      BIGINT NOT NULL,
    ledger_seq  BIGINT NOT NULL,
    PRIMARY KEY (approval_id, approver)
);
