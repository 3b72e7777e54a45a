-- The programme's challenges as the catalog feed last sent them (the whole rule set, JSON).
CREATE TABLE rule_set (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    data TEXT NOT NULL
) STRICT;
