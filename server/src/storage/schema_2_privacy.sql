-- Consent and preferences (version 2).

-- The consent ledger. Append-only: the only change ever allowed is detaching a record from an
-- erased member (member_id becomes 'erased:…'); nothing is deleted. Kept as proof of past consent.
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
    effective_ms INTEGER NOT NULL,
    recorded_at  TEXT NOT NULL,
    source       TEXT NOT NULL,
    recorded_by  TEXT,
    app_version  TEXT,
    -- The whole record as received, to tell a repeat from a reused id.
    body_hash    TEXT NOT NULL
) STRICT;
CREATE INDEX consent_record_member ON consent_record (member_id, purpose, channel, effective_ms);

CREATE TRIGGER consent_record_no_update
BEFORE UPDATE OF record_id, purpose, channel, decision, text_version, text_sha256, decided_at,
    effective_at, effective_ms, recorded_at, source, recorded_by, app_version, body_hash
ON consent_record
BEGIN
    SELECT RAISE(ABORT, 'consent records are append-only');
END;

CREATE TRIGGER consent_record_only_anonymised
BEFORE UPDATE OF member_id ON consent_record
WHEN NEW.member_id NOT LIKE 'erased:%'
BEGIN
    SELECT RAISE(ABORT, 'consent records are only detached from erased members');
END;

CREATE TRIGGER consent_record_no_delete
BEFORE DELETE ON consent_record
BEGIN
    SELECT RAISE(ABORT, 'consent records are append-only');
END;

-- The preference centre, one row per field; `seq` is the server's order of writes.
CREATE TABLE preference (
    member_id TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    field     TEXT NOT NULL,
    value     TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (member_id, field)
) STRICT, WITHOUT ROWID;

CREATE TABLE analytics_event (
    member_id   TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    event_id    TEXT NOT NULL,
    name        TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    attributes  TEXT NOT NULL,
    received_at INTEGER NOT NULL
) STRICT;
CREATE INDEX analytics_event_member ON analytics_event (member_id);

-- Proof that an erasure happened, with nothing that identifies the member.
CREATE TABLE erasure (
    id                  INTEGER PRIMARY KEY,
    erased_at           INTEGER NOT NULL,
    consents_anonymised INTEGER NOT NULL,
    requested_by        TEXT NOT NULL
) STRICT;

CREATE TABLE preference_counter (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
) STRICT;
INSERT INTO preference_counter VALUES (1, 0);
