-- PostgreSQL dialect of migrations/0001_ledger.sql (same tables, same meaning).
-- The ledger: one row per record. `record` is the canonical JSON (RFC 8785) that `hash`
-- (RFC 6962 leaf hash, hex) covers; it holds its own seq and the previous record's hash.
-- Every replica appends to this one chain: a writer takes the ledger's advisory lock for the
-- length of its transaction and links its batch onto the head it then reads.
CREATE TABLE ledger (
    seq    BIGINT PRIMARY KEY,
    hash   TEXT NOT NULL,
    record TEXT NOT NULL
);

-- Which records are about which decision, written in the same transaction as the records.
-- A lookup aid only: the chain does not cover it, so readers check the record names it.
CREATE TABLE decision_records (
    decision_id TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    PRIMARY KEY (decision_id, seq)
);
