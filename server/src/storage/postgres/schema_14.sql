-- Version 14, in step with SQLite's schema_14_console.sql: the merchant console (issue #19): staff
-- accounts, their sessions, the audit log of what staff did, and their decisions on redemption
-- conflicts.

-- `password_hash`: Argon2id, PHC string. `email` lower case.
CREATE TABLE staff_account (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    store_id      TEXT,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    disabled      BIGINT NOT NULL DEFAULT 0
);

-- A signed-in browser: the SHA-256 of its cookie's token, its CSRF token, and when it ends
-- (idle: `last_seen` + the idle timeout; at the latest `expires_at`).
CREATE TABLE staff_session (
    token_hash TEXT PRIMARY KEY,
    staff_id   TEXT NOT NULL REFERENCES staff_account (id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX staff_session_staff ON staff_session (staff_id);

-- Every sign-in (and failed one), sign-out and action of staff; never changed. `staff` is the
-- account's e-mail address as it was (an account deleted later stays readable here).
CREATE TABLE audit_log (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      BIGINT NOT NULL,
    staff   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL
);

-- A redemption conflict (a `coupon_event` of kind `conflict`) reviewed by staff: decided once.
CREATE TABLE conflict_resolution (
    event_id    BIGINT PRIMARY KEY,
    outcome     TEXT NOT NULL,
    note        TEXT NOT NULL,
    resolved_by TEXT NOT NULL,
    resolved_at BIGINT NOT NULL
);

-- The KPIs' counters: per shop (`*`: all shops together), day (days since the epoch, UTC) and
-- metric (`tessera_domain::api::kpi`). A change appends its increments to `kpi_delta` in its own
-- transaction (inserts only: concurrent changes never touch the same row); a fold moves them
-- into `kpi`, summed, every few seconds. A report reads both: exact at once, a few rows a day.
CREATE TABLE kpi (
    shop   TEXT NOT NULL,
    day    BIGINT NOT NULL,
    metric TEXT NOT NULL,
    value  BIGINT NOT NULL,
    PRIMARY KEY (shop, day, metric)
);

-- A metric's days, for the sums over a period (the coupon funnel, the points liability).
CREATE INDEX kpi_metric ON kpi (shop, metric, day);

CREATE TABLE kpi_delta (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shop   TEXT NOT NULL,
    day    BIGINT NOT NULL,
    metric TEXT NOT NULL,
    value  BIGINT NOT NULL
);
CREATE INDEX kpi_delta_shop ON kpi_delta (shop, day);
