-- PostgreSQL dialect of migrations/0020_ledger_checkpoints.sql.
CREATE TABLE ledger_checkpoints (
    tree_size  BIGINT PRIMARY KEY,
    root       TEXT NOT NULL,
    note       TEXT NOT NULL,
    frontier   TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
