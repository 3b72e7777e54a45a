-- Offers that reach the member: what the member did with each offer, per-store notification
-- cooldowns, and the push messages already handled.

-- Clipped (web-to-store) and used offers, for eligibility and per-member limits.
CREATE TABLE offer_state (
    offer_id   TEXT PRIMARY KEY,
    clipped_at INTEGER,
    used_count INTEGER NOT NULL DEFAULT 0
) STRICT;

-- The store a geofence notification was about (per-store cooldown); NULL for other notifications.
ALTER TABLE notification_log ADD COLUMN store_id TEXT;
CREATE INDEX notification_log_store ON notification_log (store_id, sent_at);
-- The offer a notification was about: the same offer is not pushed again at the next shop.
ALTER TABLE notification_log ADD COLUMN offer_id TEXT;
CREATE INDEX notification_log_offer ON notification_log (offer_id, sent_at);

-- Push messages seen, by their id: a repeat is suppressed. Kept 30 days.
CREATE TABLE push_seen (
    push_id     TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL
) STRICT;
ALTER TABLE sync_state ADD COLUMN push_token TEXT;
