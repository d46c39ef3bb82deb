-- PostgreSQL dialect of migrations/0080_agent_sessions.sql.
CREATE TABLE agent_sessions (
    agent        TEXT NOT NULL,
    session_key  TEXT NOT NULL,
    taint        BIGINT NOT NULL,
    read_classes TEXT NOT NULL,
    version      BIGINT NOT NULL,
    updated_ms   BIGINT NOT NULL,
    PRIMARY KEY (agent, session_key)
);
CREATE INDEX agent_sessions_idle ON agent_sessions (updated_ms);

CREATE TABLE agent_session_texts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent       TEXT NOT NULL,
    session_key TEXT NOT NULL,
    trusted     BIGINT NOT NULL,
    bytes       BIGINT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX agent_session_texts_of ON agent_session_texts (agent, session_key, trusted, id);
