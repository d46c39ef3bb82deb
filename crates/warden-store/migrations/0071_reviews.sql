-- The after-the-fact review queue: each call allowed at tier `review` ran at once and waits
-- here for a person to look at it (inserted in the same transaction as its decision record).
-- Times are Unix seconds. The evidence is in the ledger: the decision, then a `call_reviewed`
-- record, or a `review_overdue` alert once the deadline ([approvals] review_deadline_hours)
-- has passed.
CREATE TABLE reviews (
    decision_id     TEXT PRIMARY KEY,
    seq             INTEGER NOT NULL,
    agent           TEXT NOT NULL,
    tool            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    reviewed_at     INTEGER,
    reviewer        TEXT,
    verdict         TEXT CHECK (verdict IN ('ok', 'flagged')),
    note            TEXT,
    overdue_alerted INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX reviews_open ON reviews (created_at) WHERE reviewed_at IS NULL;
