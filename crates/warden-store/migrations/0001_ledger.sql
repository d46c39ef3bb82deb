-- The ledger: one row per record. `record` is the canonical JSON (RFC 8785) that `hash`
-- (RFC 6962 leaf hash, hex) covers; it holds its own seq and the previous record's hash.
CREATE TABLE ledger (
    seq    INTEGER PRIMARY KEY,
    hash   TEXT NOT NULL,
    record TEXT NOT NULL
) STRICT;

CREATE INDEX ledger_decision_id ON ledger (json_extract(record, '$.event.decision_id'));
CREATE INDEX ledger_agent_ts ON ledger (json_extract(record, '$.event.agent'), json_extract(record, '$.ts'));
