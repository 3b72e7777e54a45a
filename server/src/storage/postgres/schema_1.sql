-- The server's database on PostgreSQL (version 1), in step with SQLite's schema.sql: the same
-- tables, columns and meanings; times are milliseconds since the epoch in BIGINT.

CREATE TABLE catalog_entity (
    kind TEXT NOT NULL CHECK (kind IN ('program', 'store', 'offer')),
    id   TEXT NOT NULL,
    seq  BIGINT NOT NULL UNIQUE,
    data TEXT,
    PRIMARY KEY (kind, id)
);

CREATE TABLE feed_counter (
    id  BIGINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO feed_counter VALUES (1, 0);

CREATE TABLE member (
    id             TEXT PRIMARY KEY,
    card_number    TEXT NOT NULL UNIQUE,
    holder_name    TEXT NOT NULL,
    member_since   TEXT NOT NULL,
    tier           TEXT NOT NULL,
    points_balance BIGINT NOT NULL DEFAULT 0,
    mutations      BIGINT NOT NULL DEFAULT 0,
    version        BIGINT NOT NULL DEFAULT 1,
    created_at     BIGINT NOT NULL
);

CREATE TABLE device (
    id              TEXT PRIMARY KEY,
    member_id       TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    platform        TEXT NOT NULL,
    app_version     TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    access_hash     TEXT NOT NULL UNIQUE,
    access_expires  BIGINT NOT NULL,
    refresh_hash    TEXT NOT NULL UNIQUE,
    refresh_expires BIGINT NOT NULL
);
CREATE INDEX device_member ON device (member_id);

CREATE TABLE idempotency_key (
    member_id  TEXT NOT NULL,
    key        TEXT NOT NULL,
    body_hash  TEXT NOT NULL,
    status     BIGINT NOT NULL,
    response   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (member_id, key)
);
CREATE INDEX idempotency_key_age ON idempotency_key (created_at);

-- Deliberately no UNIQUE on (member_id, event_id): exactly-once is the idempotency key's job,
-- and the crash tests count rows here to prove it.
CREATE TABLE event (
    member_id   TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    event_id    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    store_id    TEXT,
    attributes  TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX event_member ON event (member_id, event_id);

CREATE TABLE favourite_store (
    member_id TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    store_id  TEXT NOT NULL,
    PRIMARY KEY (member_id, store_id)
);
