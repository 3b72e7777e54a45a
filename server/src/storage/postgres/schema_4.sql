-- Coupons and tills (version 4), in step with SQLite's schema_4_coupons.sql.

CREATE TABLE signing_key (
    key_id     TEXT PRIMARY KEY,
    pkcs8      BYTEA NOT NULL,
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE coupon (
    id             TEXT PRIMARY KEY,
    member_id      TEXT NOT NULL,
    offer_id       TEXT NOT NULL,
    code           TEXT NOT NULL,
    issued_at      BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    redeemed_at    BIGINT,
    redeemed_store TEXT,
    redeemed_till  TEXT,
    receipt        TEXT
);
CREATE INDEX coupon_member ON coupon (member_id, offer_id);

CREATE TABLE till (
    id         TEXT PRIMARY KEY,
    store_id   TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
