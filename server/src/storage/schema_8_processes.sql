-- Version 8: the server processes alive on this database (each writes a heartbeat). Rate limits
-- are shared among them: each process allows its share of every limit.
CREATE TABLE server_process (
    id         TEXT PRIMARY KEY,
    started_at INTEGER NOT NULL,
    seen_at    INTEGER NOT NULL
) STRICT;
