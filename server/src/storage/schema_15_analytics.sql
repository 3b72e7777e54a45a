-- Analytics (issue #19, version 15): the operator's settings, the latest report, and each
-- member's scores and segments; the rule sets' published versions (at the end). A run writes its rows under a new generation a batch at a time
-- (no long write transaction for the tills to wait on), then publishes the report that names
-- it; readers read the published generation; older ones are deleted after.

CREATE TABLE analytics_settings (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    data       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE analytics_report (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  INTEGER NOT NULL,
    data        TEXT NOT NULL,
    computed_at INTEGER NOT NULL
) STRICT;

-- `data`: the MemberScore as JSON (audiences by churn risk go through segments, as
-- `likely_to_churn`). Deleted with the member on erasure.
CREATE TABLE member_score (
    generation INTEGER NOT NULL,
    member_id  TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    data       TEXT NOT NULL,
    PRIMARY KEY (member_id, generation)
) STRICT;
CREATE INDEX member_score_generation ON member_score (generation);

-- Members by named segment (`vip`) and RFM class (`rfm:champions`): campaign audiences.
CREATE TABLE member_segment (
    generation INTEGER NOT NULL,
    segment    TEXT NOT NULL,
    member_id  TEXT NOT NULL REFERENCES member (id) ON DELETE CASCADE,
    PRIMARY KEY (generation, segment, member_id)
) STRICT;
CREATE INDEX member_segment_member ON member_segment (member_id);

-- Every rule set published (challenges and earning rules), kept: the console lists them and
-- restores one by publishing it again as a new version (history is never rewritten).
CREATE TABLE rule_version (
    version      INTEGER PRIMARY KEY,
    data         TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    published_by TEXT NOT NULL,
    note         TEXT NOT NULL DEFAULT ''
) STRICT;
