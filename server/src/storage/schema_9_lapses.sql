-- Version 9: live lots by expiry, for the job that lapses points (members who do not come back
-- have their expired points taken out without waiting for their next visit).
CREATE INDEX points_lapsing ON points_entry (expires_at) WHERE remaining > 0;
