-- Version 7: background work off the request path (issue #17): a job queue in the database, and
-- campaigns sent in batches by it.

-- One row per job. A worker (of any server process) claims a due job by writing its name and a
-- lease; a job whose lease ran out (its process died) is claimed again and resumes.
CREATE TABLE job (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    run_after   INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (kind, subject)
) STRICT;
CREATE INDEX job_due ON job (state, run_after);

-- A campaign's progress: members handled up to `cursor` (in id order); deliveries written as
-- pending (-1) before they are handed to the push service, then sent (1) or failed (0). A pending
-- delivery is never sent again: each device at most once, whatever crashes.
ALTER TABLE campaign ADD COLUMN state TEXT NOT NULL DEFAULT 'done';
ALTER TABLE campaign ADD COLUMN cursor TEXT NOT NULL DEFAULT '';
ALTER TABLE campaign ADD COLUMN without_device INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaign ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaign ADD COLUMN finished_at INTEGER;
CREATE UNIQUE INDEX push_delivery_once ON push_delivery (campaign_id, device_id);
