-- Consent and preferences (version 2), in step with SQLite's schema_2_privacy.sql.

CREATE TABLE consent_record (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record_id    TEXT NOT NULL UNIQUE,
    member_id    TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    channel      TEXT NOT NULL,
    decision     TEXT NOT NULL CHECK (decision IN ('granted', 'denied', 'withdrawn')),
    text_version TEXT NOT NULL,
    text_sha256  TEXT NOT NULL,
    decided_at   TEXT NOT NULL,
    effective_at TEXT NOT NULL,
    effective_ms BIGINT NOT NULL,
    recorded_at  TEXT NOT NULL,
    source       TEXT NOT NULL,
    recorded_by  TEXT,
    app_version  TEXT,
    body_hash    TEXT NOT NULL
);
CREATE INDEX consent_record_member ON consent_record (member_id, purpose, channel, effective_ms);

-- Append-only: the only change allowed is detaching a record from an erased member.
CREATE FUNCTION consent_record_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'consent records are append-only';
    END IF;
    IF (NEW.record_id, NEW.purpose, NEW.channel, NEW.decision, NEW.text_version, NEW.text_sha256,
        NEW.decided_at, NEW.effective_at, NEW.effective_ms, NEW.recorded_at, NEW.source,
        NEW.recorded_by, NEW.app_version, NEW.body_hash)
       IS DISTINCT FROM
       (OLD.record_id, OLD.purpose, OLD.channel, OLD.decision, OLD.text_version, OLD.text_sha256,
        OLD.decided_at, OLD.effective_at, OLD.effective_ms, OLD.recorded_at, OLD.source,
        OLD.recorded_by, OLD.app_version, OLD.body_hash) THEN
        RAISE EXCEPTION 'consent records are append-only';
    END IF;
    IF NEW.member_id IS DISTINCT FROM OLD.member_id AND NEW.member_id NOT LIKE 'erased:%' THEN
        RAISE EXCEPTION 'consent records are only detached from erased members';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER consent_record_append_only BEFORE UPDATE OR DELETE ON consent_record
    FOR EACH ROW EXECUTE FUNCTION consent_record_guard();

CREATE TABLE preference (
    member_id TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    field     TEXT NOT NULL,
    value     TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    PRIMARY KEY (member_id, field)
);

CREATE TABLE analytics_event (
    member_id   TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    event_id    TEXT NOT NULL,
    name        TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    attributes  TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX analytics_event_member ON analytics_event (member_id);

CREATE TABLE erasure (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    erased_at           BIGINT NOT NULL,
    consents_anonymised BIGINT NOT NULL,
    requested_by        TEXT NOT NULL
);

-- SQLite counts preference writes in a one-row table (preference_counter); here a sequence gives
-- the same order of writes without making every member's preference write wait on one row.
CREATE SEQUENCE preference_seq;
