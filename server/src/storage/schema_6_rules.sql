-- Version 6: challenges (issue #7).

-- The rule set travels with the catalog feed (kind 'rules', id 'rules'): the CHECK gains it.
CREATE TABLE catalog_entity_v6 (
    kind TEXT NOT NULL CHECK (kind IN ('program', 'store', 'offer', 'rules')),
    id   TEXT NOT NULL,
    seq  INTEGER NOT NULL UNIQUE,
    data TEXT,
    PRIMARY KEY (kind, id)
) STRICT, WITHOUT ROWID;
INSERT INTO catalog_entity_v6 (kind, id, seq, data) SELECT kind, id, seq, data FROM catalog_entity;
DROP TABLE catalog_entity;
ALTER TABLE catalog_entity_v6 RENAME TO catalog_entity;

-- Challenge rewards in points are ledger entries of their own kind.
CREATE TABLE points_entry_v6 (
    id          INTEGER PRIMARY KEY,
    member_id   TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL
                CHECK (kind IN ('earn', 'burn', 'expire', 'adjust', 'reverse', 'bonus')),
    points      INTEGER NOT NULL,
    remaining   INTEGER NOT NULL DEFAULT 0 CHECK (remaining >= 0 AND remaining <= max(points, 0)),
    expires_at  INTEGER,
    qualifying  INTEGER NOT NULL DEFAULT 0,
    qualifying_total INTEGER NOT NULL DEFAULT 0,
    reason      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
INSERT INTO points_entry_v6 SELECT id, member_id, kind, points, remaining, expires_at, qualifying,
    qualifying_total, reason, created_at FROM points_entry;
DROP TABLE points_entry;
ALTER TABLE points_entry_v6 RENAME TO points_entry;
CREATE INDEX points_member ON points_entry (member_id, created_at);
CREATE INDEX points_lots ON points_entry (member_id, expires_at) WHERE remaining > 0;
CREATE INDEX points_qualifying ON points_entry (member_id, created_at, qualifying_total)
    WHERE qualifying != 0;

-- Opt-in challenges the member joined (events from then on count).
CREATE TABLE challenge_join (
    member_id    TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    challenge_id TEXT NOT NULL,
    joined_at    INTEGER NOT NULL,
    PRIMARY KEY (member_id, challenge_id)
) STRICT, WITHOUT ROWID;

-- Completions paid. The n-th completion of a challenge is paid once (`seq` = n), whatever
-- history arrives later: an offline event that moves a completion earlier does not pay twice.
CREATE TABLE challenge_reward (
    member_id    TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    challenge_id TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    event_id     TEXT NOT NULL,
    completed_at INTEGER NOT NULL,
    title        TEXT NOT NULL,
    reward       TEXT NOT NULL,
    badge        TEXT,
    paid_at      INTEGER NOT NULL,
    PRIMARY KEY (member_id, challenge_id, seq)
) STRICT, WITHOUT ROWID;

-- Events the programme's own systems report for a member (online orders, late deliveries,
-- referrals): once per event id.
CREATE TABLE rule_event (
    member_id   TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    event_id    TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    data        TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (member_id, event_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX purchase_member ON purchase (member_id, occurred_at) WHERE member_id IS NOT NULL;

-- The member's birthday (`MM-DD`), from the programme's CRM: purchases that day may earn more.
ALTER TABLE member ADD COLUMN birthday TEXT;
