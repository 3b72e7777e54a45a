-- Loyalty rules versioned (issue #19, version 17): every change of the points and tier rules
-- (points per euro, validity, tiers, the void window, the web coupon) is kept, as the rule
-- sets' are (rule_version): the console lists them and restores one by publishing it again.
-- The rules in force when versions began are the first version.

CREATE TABLE loyalty_rules_version (
    version      INTEGER PRIMARY KEY AUTOINCREMENT,
    data         TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    published_by TEXT NOT NULL,
    note         TEXT NOT NULL DEFAULT ''
) STRICT;

INSERT INTO loyalty_rules_version (data, published_at, published_by, note)
SELECT data, updated_at, 'operator', 'in force when versions began' FROM loyalty_rules;
