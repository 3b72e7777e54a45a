-- index consent_record_pair
CREATE INDEX consent_record_pair ON consent_record (purpose, channel, effective_ms);
-- index notification_log_channel
CREATE INDEX notification_log_channel ON notification_log (channel, sent_at);
-- index store_city
CREATE INDEX store_city ON store (city);
-- table activity
CREATE TABLE activity (
    event_id    TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    store_id    TEXT,
    attributes  TEXT NOT NULL,
    synced_at   INTEGER
) STRICT;
-- table consent_record
CREATE TABLE consent_record (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id    TEXT NOT NULL UNIQUE,
    member_id    TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    channel      TEXT NOT NULL,
    decision     TEXT NOT NULL CHECK (decision IN ('granted', 'denied', 'withdrawn')),
    text_version TEXT NOT NULL,
    text_sha256  TEXT NOT NULL,
    decided_at   TEXT NOT NULL,
    effective_at TEXT NOT NULL,
    -- Milliseconds of effective_at, for ordering.
    effective_ms INTEGER NOT NULL,
    recorded_at  TEXT,
    source       TEXT NOT NULL,
    recorded_by  TEXT,
    app_version  TEXT
) STRICT;
-- table favourite_store
CREATE TABLE favourite_store (
    store_id   TEXT PRIMARY KEY,
    updated_at INTEGER NOT NULL
) STRICT;
-- table member_card
CREATE TABLE member_card (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    -- As printed on the card and typed by the member.
    card_number   TEXT NOT NULL,
    -- What the barcode carries (an EAN check digit may have been appended).
    encoded_value TEXT NOT NULL,
    holder_name   TEXT NOT NULL,
    member_since  TEXT NOT NULL,
    tier_label    TEXT,
    updated_at    INTEGER NOT NULL
) STRICT;
-- table member_state
CREATE TABLE member_state (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    data  TEXT NOT NULL,
    as_of INTEGER NOT NULL
) STRICT;
-- table notification_log
CREATE TABLE notification_log (
    id      INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    purpose TEXT NOT NULL,
    sent_at INTEGER NOT NULL
) STRICT;
-- table offer
CREATE TABLE offer (
    id         TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to   TEXT NOT NULL,
    data       TEXT NOT NULL
) STRICT;
-- table outbox
CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT
) STRICT;
-- table outbox_rejected
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
-- table preference
CREATE TABLE preference (
    field      TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
-- table program
CREATE TABLE program (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    program_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    brand_color TEXT NOT NULL,
    symbology   TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
-- table session
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
-- table store
CREATE TABLE store (
    id        TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    city      TEXT NOT NULL,
    latitude  REAL NOT NULL,
    longitude REAL NOT NULL,
    radius_m  INTEGER NOT NULL,
    data      TEXT NOT NULL
) STRICT;
-- table sync_state
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
, consent_clock_ms INTEGER, app_version TEXT) STRICT;
-- trigger consent_record_no_delete
CREATE TRIGGER consent_record_no_delete
BEFORE DELETE ON consent_record
BEGIN
    SELECT RAISE(ABORT, 'consent records are append-only');
END;
-- trigger consent_record_no_update
CREATE TRIGGER consent_record_no_update
BEFORE UPDATE OF record_id, member_id, purpose, channel, decision, text_version, text_sha256,
    decided_at, effective_at, effective_ms, source, recorded_by, app_version ON consent_record
BEGIN
    SELECT RAISE(ABORT, 'consent records are append-only');
END;
-- trigger consent_record_recorded_once
CREATE TRIGGER consent_record_recorded_once
BEFORE UPDATE OF recorded_at ON consent_record
WHEN OLD.recorded_at IS NOT NULL AND NEW.recorded_at IS NOT OLD.recorded_at
BEGIN
    SELECT RAISE(ABORT, 'consent records are append-only');
END;
