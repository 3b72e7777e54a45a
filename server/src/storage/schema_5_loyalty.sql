-- Points, tiers, purchases, voids and offline redemption conflicts (version 5).

-- The programme's points and tier rules (LoyaltyRules as JSON); absent: the defaults.
CREATE TABLE loyalty_rules (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    data       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- The points ledger. An entry with `remaining` > 0 is a lot that can still be spent (earned
-- points and positive adjustments); spending lowers `remaining` of the lots it takes from.
-- `qualifying` is what the entry counts towards tiers (earnings, and their reversal on returns).
CREATE TABLE points_entry (
    id          INTEGER PRIMARY KEY,
    member_id   TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('earn', 'burn', 'expire', 'adjust', 'reverse')),
    points      INTEGER NOT NULL,
    remaining   INTEGER NOT NULL DEFAULT 0 CHECK (remaining >= 0 AND remaining <= max(points, 0)),
    expires_at  INTEGER,
    qualifying  INTEGER NOT NULL DEFAULT 0,
    -- The member's running total of `qualifying` up to this entry (entries with qualifying != 0
    -- only): a window's sum is the difference of two totals.
    qualifying_total INTEGER NOT NULL DEFAULT 0,
    reason      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX points_member ON points_entry (member_id, created_at);
-- Live lots by expiry: lapsing and spending read only the lots they need.
CREATE INDEX points_lots ON points_entry (member_id, expires_at) WHERE remaining > 0;
-- Running totals of qualifying points by time.
CREATE INDEX points_qualifying ON points_entry (member_id, created_at, qualifying_total)
    WHERE qualifying != 0;

-- `member.points_balance` (version 1) is kept equal to what is left in live lots, changed with
-- every lot in the same transaction; no lot goes below zero, so neither does the balance.
ALTER TABLE member ADD COLUMN tier_since INTEGER NOT NULL DEFAULT 0;

-- Purchases recorded at tills. Kept after an erasure with the member detached (merchant records).
CREATE TABLE purchase (
    id             TEXT PRIMARY KEY,
    store_id       TEXT NOT NULL,
    till_id        TEXT NOT NULL,
    receipt        TEXT NOT NULL,
    member_id      TEXT,
    total_cents    INTEGER NOT NULL,
    lines          TEXT NOT NULL,
    occurred_at    INTEGER NOT NULL,
    recorded_at    INTEGER NOT NULL,
    points         INTEGER NOT NULL,
    returned_cents INTEGER NOT NULL DEFAULT 0 CHECK (returned_cents <= total_cents),
    web_coupon_id  TEXT,
    voided_at      INTEGER,
    UNIQUE (store_id, receipt)
) STRICT;

-- Where a coupon came from, and a revocation (a voided purchase takes its web coupon back).
ALTER TABLE coupon ADD COLUMN origin TEXT NOT NULL DEFAULT 'clip';
ALTER TABLE coupon ADD COLUMN revoked_at INTEGER;
CREATE INDEX coupon_receipt ON coupon (redeemed_store, receipt) WHERE redeemed_at IS NOT NULL;

-- What happened to coupons at tills: redeemed, voided, and offline redemptions that lost to an
-- earlier one (`conflict`), for the merchant to review. Append-only.
CREATE TABLE coupon_event (
    id        INTEGER PRIMARY KEY,
    coupon_id TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('redeemed', 'voided', 'conflict')),
    store_id  TEXT NOT NULL,
    till_id   TEXT NOT NULL,
    receipt   TEXT NOT NULL,
    -- The till's clock for an offline redemption.
    till_at   INTEGER,
    at        INTEGER NOT NULL
) STRICT;
CREATE INDEX coupon_event_kind ON coupon_event (kind, at);
CREATE TRIGGER coupon_event_append_only BEFORE UPDATE ON coupon_event
BEGIN
    SELECT RAISE(ABORT, 'coupon events are append-only');
END;
