-- Live lots by expiry (version 9), in step with SQLite's schema_9_lapses.sql.
CREATE INDEX points_lapsing ON points_entry (expires_at) WHERE remaining > 0;
