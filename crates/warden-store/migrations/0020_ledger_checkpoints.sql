-- Signed checkpoints of the ledger's RFC 6962 Merkle tree (C2SP tlog-checkpoint notes).
-- `frontier` is the right edge of the tree at `tree_size` (the roots of its perfect subtrees,
-- hex, comma-separated, leftmost first) so the next checkpoint extends it without rehashing.
-- Checkpoints are evidence only when held elsewhere too (witnesses): a row here can be
-- rewritten by whoever can rewrite the ledger.
CREATE TABLE ledger_checkpoints (
    tree_size  INTEGER PRIMARY KEY,
    root       TEXT NOT NULL,
    note       TEXT NOT NULL,
    frontier   TEXT NOT NULL,
    created_ms INTEGER NOT NULL
) STRICT;
