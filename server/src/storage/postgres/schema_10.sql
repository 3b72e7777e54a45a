-- Version 10, in step with SQLite's schema_10_rule_state.sql: challenges evaluated one event at
-- a time (issue #17), whatever the history's length.

-- Per member, the rules engine kept between events (tessera_domain::rules::EngineState as JSON)
-- and what it was built for: the rule set's catalog sequence number, the member's time zone and
-- joins. Another basis, an event older than the last one applied, or a voided purchase: rebuilt
-- from the history.
CREATE TABLE rule_state (
    member_id TEXT PRIMARY KEY REFERENCES member (id) ON DELETE CASCADE,
    rules_seq BIGINT NOT NULL,
    time_zone TEXT NOT NULL,
    joins     TEXT NOT NULL,
    state     TEXT NOT NULL
);

-- Every event id in the member's history as the rules count it, at its earliest time: an id
-- that arrives again (a second purchase in a shop on one day is the same visit) counts once.
-- Complete for every member rule_state holds (rewritten with it on a rebuild).
CREATE TABLE rule_applied (
    member_id TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    event_id  TEXT NOT NULL,
    at_ms     BIGINT NOT NULL,
    PRIMARY KEY (member_id, event_id)
);
