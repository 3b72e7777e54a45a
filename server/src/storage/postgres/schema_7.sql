-- Background work off the request path (version 7), in step with SQLite's schema_7_jobs.sql.

CREATE TABLE job (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    run_after   BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    attempts    BIGINT NOT NULL DEFAULT 0,
    error       TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (kind, subject)
);
CREATE INDEX job_due ON job (state, run_after);

ALTER TABLE campaign ADD COLUMN state TEXT NOT NULL DEFAULT 'done';
ALTER TABLE campaign ADD COLUMN cursor TEXT NOT NULL DEFAULT '';
ALTER TABLE campaign ADD COLUMN without_device BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign ADD COLUMN pending BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign ADD COLUMN finished_at BIGINT;
CREATE UNIQUE INDEX push_delivery_once ON push_delivery (campaign_id, device_id);
