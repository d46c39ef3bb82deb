-- PostgreSQL dialect of migrations/0070_vault.sql.
CREATE TABLE vault_keys (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    wrapped      BYTEA,
    master_id    TEXT NOT NULL,
    agent        TEXT,
    classes      TEXT,
    day          TEXT,
    subject_ref  TEXT,
    generation   BIGINT,
    created_ms   BIGINT NOT NULL,
    destroyed_ms BIGINT,
    destroyed_by TEXT,
    recorded     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX vault_keys_subject ON vault_keys (subject_ref, generation) WHERE subject_ref IS NOT NULL;
CREATE INDEX vault_keys_live_period ON vault_keys (day) WHERE kind = 'period' AND wrapped IS NOT NULL;
