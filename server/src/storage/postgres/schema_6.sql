-- Challenges (version 6), in step with SQLite's schema_6_rules.sql (which rebuilds two tables to
-- change a CHECK; PostgreSQL changes the constraints in place).

ALTER TABLE catalog_entity DROP CONSTRAINT catalog_entity_kind_check;
ALTER TABLE catalog_entity ADD CONSTRAINT catalog_entity_kind_check
    CHECK (kind IN ('program', 'store', 'offer', 'rules'));

ALTER TABLE points_entry DROP CONSTRAINT points_entry_kind_check;
ALTER TABLE points_entry ADD CONSTRAINT points_entry_kind_check
    CHECK (kind IN ('earn', 'burn', 'expire', 'adjust', 'reverse', 'bonus'));

CREATE TABLE challenge_join (
    member_id    TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    challenge_id TEXT NOT NULL,
    joined_at    BIGINT NOT NULL,
    PRIMARY KEY (member_id, challenge_id)
);

CREATE TABLE challenge_reward (
    member_id    TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    challenge_id TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    event_id     TEXT NOT NULL,
    completed_at BIGINT NOT NULL,
    title        TEXT NOT NULL,
    reward       TEXT NOT NULL,
    badge        TEXT,
    paid_at      BIGINT NOT NULL,
    PRIMARY KEY (member_id, challenge_id, seq)
);

CREATE TABLE rule_event (
    member_id   TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    event_id    TEXT NOT NULL,
    at_ms       BIGINT NOT NULL,
    data        TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (member_id, event_id)
);
CREATE INDEX purchase_member ON purchase (member_id, occurred_at) WHERE member_id IS NOT NULL;

ALTER TABLE member ADD COLUMN birthday TEXT;
