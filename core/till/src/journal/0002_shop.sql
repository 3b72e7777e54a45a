-- A till's journal (version 2): its shop as the server describes it (tags, time zone), so a
-- coupon valid in tagged shops or on certain days and hours is checked offline too.
CREATE TABLE shop (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    data TEXT NOT NULL
) STRICT;
