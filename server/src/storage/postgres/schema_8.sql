-- The server processes alive on this database (version 8), in step with SQLite's
-- schema_8_processes.sql.
CREATE TABLE server_process (
    id         TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    seen_at    BIGINT NOT NULL
);
