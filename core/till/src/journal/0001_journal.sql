-- A till's journal (version 1): what it needs to work offline and to report later.

-- The programme's public keys, as last fetched: coupons verify offline with them.
CREATE TABLE coupon_key (
    key_id     TEXT PRIMARY KEY,
    public_key TEXT NOT NULL
) STRICT;

-- Coupons this till redeemed (online or offline): a second scan is refused even offline.
CREATE TABLE seen_coupon (
    coupon_id TEXT PRIMARY KEY,
    receipt   TEXT NOT NULL,
    at        INTEGER NOT NULL
) STRICT;

-- Receipts the server has learnt something under: a void of any other receipt is the till's
-- business alone (what it voids never left the journal).
CREATE TABLE sent_receipt (
    receipt TEXT PRIMARY KEY,
    at      INTEGER NOT NULL
) STRICT;

-- Requests to report to the server, in order: made offline, or whose answer was lost. Each
-- keeps its idempotency key, so a report that reached the server is not applied twice.
CREATE TABLE pending (
    seq             INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('redemption', 'purchase', 'void', 'return')),
    receipt         TEXT NOT NULL,
    coupon_id       TEXT,
    path            TEXT NOT NULL,
    body            TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL
) STRICT;

-- What the server answered to reports: the till learns its conflicts and refusals.
CREATE TABLE outcome (
    seq         INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    receipt     TEXT NOT NULL,
    coupon_id   TEXT,
    status      INTEGER NOT NULL,
    code        TEXT,
    detail      TEXT,
    reported_at INTEGER NOT NULL
) STRICT;
