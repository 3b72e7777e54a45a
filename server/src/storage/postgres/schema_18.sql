-- Version 18, in step with SQLite's schema_18_two_factor.sql. Two-factor sign-in to the
-- console: an account's TOTP secret (null: off) and the last time step a code was accepted for.

ALTER TABLE staff_account ADD COLUMN totp_secret TEXT;
ALTER TABLE staff_account ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;
