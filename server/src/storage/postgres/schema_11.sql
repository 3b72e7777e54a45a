-- Version 11, in step with SQLite's schema_11_certificates.sql: device certificates for the
-- rotating member code (issue #18).

-- Every device key the programme certified. A revoked certificate stays until it expires: tills
-- get the serials revoked and not yet expired with their keys. Erasing a member revokes theirs
-- and detaches them (member_id NULL).
CREATE TABLE device_certificate (
    serial     BIGINT PRIMARY KEY,
    member_id  TEXT,
    device_id  TEXT NOT NULL,
    public_key TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    not_after  BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX device_certificate_member ON device_certificate (member_id, device_id);
CREATE INDEX device_certificate_revoked ON device_certificate (not_after)
    WHERE revoked_at IS NOT NULL;
