-- The server's embedded database (version 1).

-- The catalog: one row per entity; `seq` moves to the top of the feed at every change, and a
-- deletion keeps the row with `data` NULL (a tombstone) so that phones learn of it.
CREATE TABLE catalog_entity (
    kind TEXT NOT NULL CHECK (kind IN ('program', 'store', 'offer')),
    id   TEXT NOT NULL,
    seq  INTEGER NOT NULL UNIQUE,
    data TEXT,
    PRIMARY KEY (kind, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE feed_counter (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
) STRICT;
INSERT INTO feed_counter VALUES (1, 0);

CREATE TABLE member (
    id             TEXT PRIMARY KEY,
    card_number    TEXT NOT NULL UNIQUE,
    holder_name    TEXT NOT NULL,
    member_since   TEXT NOT NULL,
    tier           TEXT NOT NULL,
    points_balance INTEGER NOT NULL DEFAULT 0,
    -- Mutations applied for this member: the `sequence` of the next answer minus one.
    mutations      INTEGER NOT NULL DEFAULT 0,
    -- Bumped by every change to what GET /v1/me returns; sent with each catalog answer so that
    -- a phone skips /v1/me when nothing changed.
    version        INTEGER NOT NULL DEFAULT 1,
    created_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE device (
    id              TEXT PRIMARY KEY,
    member_id       TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    platform        TEXT NOT NULL,
    app_version     TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    -- SHA-256 of the tokens, never the tokens.
    access_hash     TEXT NOT NULL UNIQUE,
    access_expires  INTEGER NOT NULL,
    refresh_hash    TEXT NOT NULL UNIQUE,
    refresh_expires INTEGER NOT NULL
) STRICT;
CREATE INDEX device_member ON device (member_id);

-- The first answer to each (member, key), replayed for repeats; kept for the retention period.
CREATE TABLE idempotency_key (
    member_id  TEXT NOT NULL,
    key        TEXT NOT NULL,
    body_hash  TEXT NOT NULL,
    status     INTEGER NOT NULL,
    response   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (member_id, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX idempotency_key_age ON idempotency_key (created_at);

-- Activity events as applied. Deliberately no UNIQUE on (member_id, event_id): exactly-once is
-- the idempotency key's job, and the crash tests count rows here to prove it.
CREATE TABLE event (
    member_id   TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    event_id    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    store_id    TEXT,
    attributes  TEXT NOT NULL,
    received_at INTEGER NOT NULL
) STRICT;
CREATE INDEX event_member ON event (member_id, event_id);

CREATE TABLE favourite_store (
    member_id TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    store_id  TEXT NOT NULL,
    PRIMARY KEY (member_id, store_id)
) STRICT, WITHOUT ROWID;
