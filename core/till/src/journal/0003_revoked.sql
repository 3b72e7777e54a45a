-- A till's journal (version 3): the device certificates the programme revoked (the rotating
-- member code, issue #18), fetched with the keys, so that a lost phone's code is refused offline.
CREATE TABLE revoked_certificate (
    serial INTEGER PRIMARY KEY
) STRICT;
