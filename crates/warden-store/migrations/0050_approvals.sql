-- Human approvals: one row per held call (its id is the id of the held decision), one row per
-- person's vote. These tables are the working queue; the evidence is in the ledger (the held
-- decision, each signed vote, expiry, and the decision of the execution that used it).
-- Times are Unix seconds.

CREATE TABLE approvals (
    id             TEXT PRIMARY KEY,      -- the held decision's id
    agent          TEXT NOT NULL,
    on_behalf_of   TEXT,                  -- the person the agent acted for, if named
    tool           TEXT NOT NULL,         -- as the agent named it
    qualified_tool TEXT NOT NULL,         -- server/name
    upstream       TEXT NOT NULL,
    arguments      TEXT NOT NULL,         -- JSON, exactly as proposed
    arguments_hash TEXT NOT NULL,         -- SHA-256 of the canonical arguments (RFC 8785)
    reasons        TEXT NOT NULL,         -- JSON array of policy reasons
    policies       TEXT NOT NULL,         -- JSON array of determining policy ids
    tier           TEXT NOT NULL,         -- approve | two_person
    required       INTEGER NOT NULL,      -- approvals needed (1 or 2)
    session        TEXT,
    correlation_id TEXT,
    source         TEXT NOT NULL,         -- api | mcp-http | ...
    before_state   TEXT,                  -- JSON, when a before-state was read or reported
    ledger_seq     INTEGER NOT NULL,      -- seq of the held decision record
    state          TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'expired')),
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    decided_at     INTEGER,
    deny_reason    TEXT,
    used_at        INTEGER,               -- when an execution consumed the approval
    used_by        TEXT                   -- the id of the decision that consumed it
) STRICT;
CREATE INDEX approvals_state ON approvals (state, expires_at);
CREATE INDEX approvals_agent ON approvals (agent, qualified_tool, arguments_hash);

CREATE TABLE approval_votes (
    approval_id TEXT NOT NULL REFERENCES approvals (id),
    approver    TEXT NOT NULL,
    verdict     TEXT NOT NULL CHECK (verdict IN ('approve', 'deny')),
    reason      TEXT,
    at          INTEGER NOT NULL,
    mfa_at      INTEGER NOT NULL,
    ledger_seq  INTEGER NOT NULL,
    PRIMARY KEY (approval_id, approver)   -- one vote per person: two_person needs two people
) STRICT;
