-- Points, tiers, purchases, voids and offline redemption conflicts (version 5), in step with
-- SQLite's schema_5_loyalty.sql.

CREATE TABLE loyalty_rules (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    data       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE points_entry (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id   TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('earn', 'burn', 'expire', 'adjust', 'reverse')),
    points      BIGINT NOT NULL,
    remaining   BIGINT NOT NULL DEFAULT 0 CHECK (remaining >= 0 AND remaining <= GREATEST(points, 0)),
    expires_at  BIGINT,
    qualifying  BIGINT NOT NULL DEFAULT 0,
    qualifying_total BIGINT NOT NULL DEFAULT 0,
    reason      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX points_member ON points_entry (member_id, created_at);
CREATE INDEX points_lots ON points_entry (member_id, expires_at) WHERE remaining > 0;
CREATE INDEX points_qualifying ON points_entry (member_id, created_at, qualifying_total)
    WHERE qualifying != 0;

ALTER TABLE member ADD COLUMN tier_since BIGINT NOT NULL DEFAULT 0;

CREATE TABLE purchase (
    id             TEXT PRIMARY KEY,
    store_id       TEXT NOT NULL,
    till_id        TEXT NOT NULL,
    receipt        TEXT NOT NULL,
    member_id      TEXT,
    total_cents    BIGINT NOT NULL,
    lines          TEXT NOT NULL,
    occurred_at    BIGINT NOT NULL,
    recorded_at    BIGINT NOT NULL,
    points         BIGINT NOT NULL,
    returned_cents BIGINT NOT NULL DEFAULT 0 CHECK (returned_cents <= total_cents),
    web_coupon_id  TEXT,
    voided_at      BIGINT,
    UNIQUE (store_id, receipt)
);

ALTER TABLE coupon ADD COLUMN origin TEXT NOT NULL DEFAULT 'clip';
ALTER TABLE coupon ADD COLUMN revoked_at BIGINT;
CREATE INDEX coupon_receipt ON coupon (redeemed_store, receipt) WHERE redeemed_at IS NOT NULL;

CREATE TABLE coupon_event (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    coupon_id TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('redeemed', 'voided', 'conflict')),
    store_id  TEXT NOT NULL,
    till_id   TEXT NOT NULL,
    receipt   TEXT NOT NULL,
    till_at   BIGINT,
    at        BIGINT NOT NULL
);
CREATE INDEX coupon_event_kind ON coupon_event (kind, at);
CREATE FUNCTION coupon_event_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'coupon events are append-only';
END $$;
CREATE TRIGGER coupon_event_append_only BEFORE UPDATE ON coupon_event
    FOR EACH ROW EXECUTE FUNCTION coupon_event_guard();
