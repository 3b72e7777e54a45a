-- Version 12, in step with SQLite's schema_12_wallet.sql: wallet passes (issue #18): Apple Wallet passes and Google Wallet objects of members'
-- cards and coupons, and the devices registered for a pass's updates.

-- One row per pass issued (a card: `coupon_id` NULL). `shops` is what the pass lists (chosen
-- when it was issued); `digest` the content last written, `updated_at` when it last changed
-- (Last-Modified, the update tag); `pushed_digest` the content the wallets were last told of.
-- `stale` counts changes to the member's state not looked at yet (0: none): every change to the
-- member marks their passes, the server's worker recomputes them, tells the wallets, and
-- clears the count it saw.
CREATE TABLE wallet_pass (
    serial        TEXT PRIMARY KEY,
    member_id     TEXT NOT NULL,
    coupon_id     TEXT,
    auth_token    TEXT NOT NULL,
    shops         TEXT NOT NULL,
    digest        TEXT NOT NULL,
    pushed_digest TEXT NOT NULL,
    updated_at    BIGINT NOT NULL,
    stale         BIGINT NOT NULL DEFAULT 0,
    google        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX wallet_pass_member ON wallet_pass (member_id);
CREATE INDEX wallet_pass_stale ON wallet_pass (serial) WHERE stale > 0;

-- A device's Wallet registered for a pass's updates (the PassKit web service).
CREATE TABLE wallet_registration (
    device_id     TEXT NOT NULL,
    serial        TEXT NOT NULL REFERENCES wallet_pass (serial) ON DELETE CASCADE,
    push_token    TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, serial)
);
CREATE INDEX wallet_registration_serial ON wallet_registration (serial);
