-- Keys of sealed ledger payloads (see warden_core::vault), each wrapped by the master key.
-- `kind`: `period` (one per day, agent and data classes; destroyed by retention), `subject`
-- (one per data subject and generation; destroyed by erasure) or `index` (the HMAC key of
-- subject references). Destroying a key sets `wrapped` to NULL; the row stays as evidence of
-- when and why. `recorded` is 1 once the ledger holds the record of the destruction, so a
-- destruction whose record failed is recorded by the next run.
CREATE TABLE vault_keys (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    wrapped      BLOB,
    master_id    TEXT NOT NULL,
    agent        TEXT,
    classes      TEXT,
    day          TEXT,
    subject_ref  TEXT,
    generation   INTEGER,
    created_ms   INTEGER NOT NULL,
    destroyed_ms INTEGER,
    destroyed_by TEXT,
    recorded     INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX vault_keys_subject ON vault_keys (subject_ref, generation) WHERE subject_ref IS NOT NULL;
CREATE INDEX vault_keys_live_period ON vault_keys (day) WHERE kind = 'period' AND wrapped IS NOT NULL;
