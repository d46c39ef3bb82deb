-- Tool pinning: the definition hash of each upstream tool as first seen (or last approved).
-- A different hash blocks the tool until a person approves it; every change is also a ledger
-- record, so this table is the fast path, not the evidence.
CREATE TABLE tool_pins (
    server     TEXT NOT NULL,
    tool       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    -- 'approved' or 'blocked'
    status     TEXT NOT NULL,
    -- The pinned definition (name, description, inputSchema) as canonical JSON.
    definition TEXT NOT NULL,
    -- The announced hash and definition that blocked it, while blocked.
    new_hash   TEXT,
    new_definition TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (server, tool)
) STRICT, WITHOUT ROWID;
