-- Consent and preferences: the member's consent ledger, preference centre, the notifications
-- shown (for frequency caps), and the clock that orders this device's consent records.

-- Append-only: a row is never changed or removed, except `recorded_at`, set once when the
-- server stores the record. Erasure removes the whole database file.
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
CREATE INDEX consent_record_pair ON consent_record (purpose, channel, effective_ms);

CREATE TRIGGER consent_record_no_update
BEFORE UPDATE OF record_id, member_id, purpose, channel, decision, text_version, text_sha256,
    decided_at, effective_at, effective_ms, source, recorded_by, app_version ON consent_record
BEGIN
    SELECT RAISE(ABORT, 'consent records are append-only');
END;

CREATE TRIGGER consent_record_recorded_once
BEFORE UPDATE OF recorded_at ON consent_record
WHEN OLD.recorded_at IS NOT NULL AND NEW.recorded_at IS NOT OLD.recorded_at
BEGIN
    SELECT RAISE(ABORT, 'consent records are append-only');
END;

CREATE TRIGGER consent_record_no_delete
BEFORE DELETE ON consent_record
BEGIN
    SELECT RAISE(ABORT, 'consent records are append-only');
END;

-- The preference centre: one row per field, its value as JSON.
CREATE TABLE preference (
    field      TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- Notifications shown, for the frequency caps.
CREATE TABLE notification_log (
    id      INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    purpose TEXT NOT NULL,
    sent_at INTEGER NOT NULL
) STRICT;
CREATE INDEX notification_log_channel ON notification_log (channel, sent_at);

-- The last effective_ms this device gave a consent record: the next one is never earlier, even
-- if the device clock goes back.
ALTER TABLE sync_state ADD COLUMN consent_clock_ms INTEGER;
ALTER TABLE sync_state ADD COLUMN app_version TEXT;
