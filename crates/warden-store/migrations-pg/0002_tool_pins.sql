-- PostgreSQL dialect of migrations/0002_tool_pins.sql.
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
);
