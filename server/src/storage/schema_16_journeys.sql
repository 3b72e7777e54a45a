-- Journeys (issue #19, version 16): the operator's settings, and each member's entries (and, at
-- the end, the KPI levels counted from what the database holds). A member enters a journey once
-- per occurrence (the primary key): the job that finds them may run again and again. An entry
-- waits `due` (the welcome's delay, quiet hours, caps), then is sent or given up, with the
-- reason.

CREATE TABLE journey_settings (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    data       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE journey_entry (
    journey    TEXT NOT NULL,
    member_id  TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    occurrence TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('due', 'sent', 'skipped')),
    -- Due: when to look at it again; sent or skipped: null.
    due_at     INTEGER,
    -- Not sent after it.
    expires_at INTEGER NOT NULL,
    -- Why it waits (due) or was given up (skipped).
    reason     TEXT,
    pushes     INTEGER NOT NULL DEFAULT 0,
    failed     INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    done_at    INTEGER,
    PRIMARY KEY (journey, member_id, occurrence)
) STRICT;
CREATE INDEX journey_entry_due ON journey_entry (due_at) WHERE state = 'due';
-- A member's sends (caps and cooldowns), and the report by period.
CREATE INDEX journey_entry_member ON journey_entry (member_id, done_at) WHERE state = 'sent';
CREATE INDEX journey_entry_created ON journey_entry (created_at);

-- Who the journeys find: birthdays and recent enrolments.
CREATE INDEX member_birthday ON member (birthday) WHERE birthday IS NOT NULL;
CREATE INDEX member_created ON member (created_at);

-- Failed sign-ins of an address, for the console's throttle per account.
CREATE INDEX audit_log_staff ON audit_log (staff, action, at);

-- KPI levels (issue #19): members (+1 at enrolment, −1 at erasure) and consent per purpose and
-- channel (`consent:<purpose>:<channel>`: members whose latest decision is a grant), counted by
-- the services from now on; what the database holds already is counted here, on the day each
-- member enrolled and each grant took effect.
INSERT INTO kpi_delta (shop, day, metric, value)
SELECT '*', created_at / 86400000, 'members', count(*) FROM member GROUP BY created_at / 86400000;

INSERT INTO kpi_delta (shop, day, metric, value)
SELECT '*', effective_ms / 86400000, 'consent:' || purpose || ':' || channel, count(*)
FROM (
    SELECT purpose, channel, decision, effective_ms,
        row_number() OVER (PARTITION BY member_id, purpose, channel
                           ORDER BY effective_ms DESC, seq DESC) AS n
    FROM consent_record WHERE member_id NOT LIKE 'erased:%'
) latest
WHERE n = 1 AND decision = 'granted'
GROUP BY effective_ms / 86400000, 'consent:' || purpose || ':' || channel;
