-- Version 17, in step with SQLite's schema_17_loyalty_versions.sql. Loyalty rules versioned
-- (issue #19): every change of the points and tier rules is kept, as the rule sets' are; the
-- rules in force when versions began are the first version.

CREATE TABLE loyalty_rules_version (
    version      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    data         TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    published_by TEXT NOT NULL,
    note         TEXT NOT NULL DEFAULT ''
);

INSERT INTO loyalty_rules_version (data, published_at, published_by, note)
SELECT data, updated_at, 'operator', 'in force when versions began' FROM loyalty_rules;
