-- The ledger: one row per record. `record` is the canonical JSON (RFC 8785) that `hash`
-- (RFC 6962 leaf hash, hex) covers; it holds its own seq and the previous record's hash.
CREATE TABLE ledger (
    seq    INTEGER PRIMARY KEY,
    hash   TEXT NOT NULL,
    record TEXT NOT NULL
) STRICT;

-- Which records are about which decision (its decision record and its outcome), written in
-- the same transaction as the records. A lookup aid only: the chain does not cover it, so
-- readers check the record itself names the decision.
CREATE TABLE decision_records (
    decision_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (decision_id, seq)
) STRICT, WITHOUT ROWID;
