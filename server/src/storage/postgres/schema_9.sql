-- Live lots by expiry (version 9), in step with SQLite's schema_9_lapses.sql.
CREATE INDEX points_lapsing ON points_entry (expires_at) WHERE remaining > 0;

-- Campaign pages walk members and their consent in byte order (`COLLATE "C"`, SQLite's order,
-- whatever the database's locale): indexes in that order, or every page scans them all.
CREATE INDEX member_id_bytes ON member ((id COLLATE "C"));
CREATE INDEX consent_record_bytes ON consent_record (purpose, channel, (member_id COLLATE "C"));
