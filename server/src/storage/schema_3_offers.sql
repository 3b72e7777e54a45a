-- Offers that reach the member (version 3): segments, push tokens, campaigns and deliveries.

ALTER TABLE member ADD COLUMN segments TEXT NOT NULL DEFAULT '[]';

-- One push token per device (the OS rotates them; the latest wins).
CREATE TABLE push_token (
    device_id  TEXT PRIMARY KEY REFERENCES device (id) ON DELETE CASCADE,
    member_id  TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    provider   TEXT NOT NULL CHECK (provider IN ('fcm', 'apns')),
    token      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX push_token_member ON push_token (member_id);

CREATE TABLE campaign (
    id         TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    body       TEXT NOT NULL,
    targeted   INTEGER NOT NULL,
    sent       INTEGER NOT NULL,
    failed     INTEGER NOT NULL
) STRICT;

-- Each push sent for a campaign (deleted with the member on erasure).
CREATE TABLE push_delivery (
    campaign_id TEXT NOT NULL REFERENCES campaign (id),
    member_id   TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    device_id   TEXT NOT NULL,
    provider    TEXT NOT NULL,
    status      INTEGER NOT NULL,
    error       TEXT,
    sent_at     INTEGER NOT NULL
) STRICT;
