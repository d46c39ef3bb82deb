-- PostgreSQL dialect of migrations/0071_reviews.sql.
CREATE TABLE reviews (
    decision_id     TEXT PRIMARY KEY,
    seq             BIGINT NOT NULL,
    agent           TEXT NOT NULL,
    tool            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    reviewed_at     BIGINT,
    reviewer        TEXT,
    verdict         TEXT CHECK (verdict IN ('ok', 'flagged')),
    note            TEXT,
    overdue_alerted BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX reviews_open ON reviews (created_at) WHERE reviewed_at IS NULL;
