-- Offers that reach the member (version 3), in step with SQLite's schema_3_offers.sql.

ALTER TABLE member ADD COLUMN segments TEXT NOT NULL DEFAULT '[]';

CREATE TABLE push_token (
    device_id  TEXT PRIMARY KEY REFERENCES device (id) ON DELETE CASCADE,
    member_id  TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    provider   TEXT NOT NULL CHECK (provider IN ('fcm', 'apns')),
    token      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX push_token_member ON push_token (member_id);

CREATE TABLE campaign (
    id         TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    body       TEXT NOT NULL,
    targeted   BIGINT NOT NULL,
    sent       BIGINT NOT NULL,
    failed     BIGINT NOT NULL
);

CREATE TABLE push_delivery (
    campaign_id TEXT NOT NULL REFERENCES campaign (id),
    member_id   TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    device_id   TEXT NOT NULL,
    provider    TEXT NOT NULL,
    status      BIGINT NOT NULL,
    error       TEXT,
    sent_at     BIGINT NOT NULL
);
