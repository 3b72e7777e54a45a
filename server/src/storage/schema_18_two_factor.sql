-- Two-factor sign-in to the console (issue #19, version 18): an account's TOTP secret (RFC
-- 6238, base32; null: two-factor is off) and the last time step a code was accepted for, so
-- that a code is accepted once.

ALTER TABLE staff_account ADD COLUMN totp_secret TEXT;
ALTER TABLE staff_account ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;
