-- table member_card
CREATE TABLE member_card (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    -- As printed on the card and typed by the member.
    card_number   TEXT NOT NULL,
    -- What the barcode carries (an EAN check digit may have been appended).
    encoded_value TEXT NOT NULL,
    holder_name   TEXT NOT NULL,
    member_since  TEXT NOT NULL,
    tier_label    TEXT,
    updated_at    INTEGER NOT NULL
) STRICT;
-- table program
CREATE TABLE program (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    program_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    brand_color TEXT NOT NULL,
    symbology   TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
