-- Coupons and tills (version 4).

-- The server's Ed25519 signing keys (PKCS#8); the newest signs, all verify.
CREATE TABLE signing_key (
    key_id     TEXT PRIMARY KEY,
    pkcs8      BLOB NOT NULL,
    public_key TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- Issued coupons. Kept after an erasure with the member detached (redemptions are records the
-- merchant must keep); `redeemed_at` is set once, by one conditional UPDATE.
CREATE TABLE coupon (
    id             TEXT PRIMARY KEY,
    member_id      TEXT NOT NULL,
    offer_id       TEXT NOT NULL,
    code           TEXT NOT NULL,
    issued_at      INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    redeemed_at    INTEGER,
    redeemed_store TEXT,
    redeemed_till  TEXT,
    receipt        TEXT
) STRICT;
CREATE INDEX coupon_member ON coupon (member_id, offer_id);

CREATE TABLE till (
    id         TEXT PRIMARY KEY,
    store_id   TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
) STRICT;
