-- The programme's challenges as the catalog feed last sent them (the whole rule set, JSON).
CREATE TABLE rule_set (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    data TEXT NOT NULL
) STRICT;

-- The member's rule history from `/v1/me`, apart from the rest of the state: every screen reads
-- the state, only the challenges screen reads the history (which can be long).
ALTER TABLE member_state ADD COLUMN rule_events TEXT NOT NULL DEFAULT '[]';
