-- Sync: the session with the server, the catalog cache, the outbox and the member's activity.

-- The enrolled device's credentials (one per install).
CREATE TABLE session (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    server_url         TEXT NOT NULL,
    member_id          TEXT NOT NULL,
    device_id          TEXT NOT NULL,
    access_token       TEXT NOT NULL,
    access_expires_at  INTEGER NOT NULL,
    refresh_token      TEXT NOT NULL,
    refresh_expires_at INTEGER NOT NULL
) STRICT;

-- Where the last sync left things. Times are milliseconds since the epoch (device clock).
CREATE TABLE sync_state (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    catalog_cursor   TEXT,
    catalog_as_of    INTEGER,
    last_attempt_at  INTEGER,
    last_success_at  INTEGER,
    last_error       TEXT,
    -- Server clock minus device clock, measured at the last sync.
    clock_offset_ms  INTEGER,
    -- The member state version of the cached member_state row.
    member_version   INTEGER
) STRICT;
INSERT INTO sync_state (id) VALUES (1);

-- The catalog cache: searchable columns plus the whole entity as JSON.
CREATE TABLE store (
    id        TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    city      TEXT NOT NULL,
    latitude  REAL NOT NULL,
    longitude REAL NOT NULL,
    radius_m  INTEGER NOT NULL,
    data      TEXT NOT NULL
) STRICT;
CREATE INDEX store_city ON store (city);

CREATE TABLE offer (
    id         TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to   TEXT NOT NULL,
    data       TEXT NOT NULL
) STRICT;

-- The member's state as the server last sent it.
CREATE TABLE member_state (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    data  TEXT NOT NULL,
    as_of INTEGER NOT NULL
) STRICT;

-- Member actions not yet acknowledged by the server, in order. The only data that must never be
-- lost: written in the same transaction as the action's local effect, deleted in the same
-- transaction as the server's answer is recorded.
CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT
) STRICT;

-- Actions the server refused for good (kept, with its reason, for the app to show or support
-- to replay).
CREATE TABLE outbox_rejected (
    seq             INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    status          INTEGER NOT NULL,
    code            TEXT NOT NULL,
    detail          TEXT,
    rejected_at     INTEGER NOT NULL
) STRICT;

-- The member's activity as done on this device (the local effect of RecordEvent).
CREATE TABLE activity (
    event_id    TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    store_id    TEXT,
    attributes  TEXT NOT NULL,
    synced_at   INTEGER
) STRICT;

CREATE TABLE favourite_store (
    store_id   TEXT PRIMARY KEY,
    updated_at INTEGER NOT NULL
) STRICT;
