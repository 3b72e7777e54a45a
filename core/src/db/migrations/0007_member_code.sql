-- The rotating member code (issue #18): this device's Ed25519 key and the programme's
-- certificate of it. The private key (PKCS#8, base64url) is in the app's SecretStore under the
-- session's namespace when the tokens are ('' here), else in this file (the CLI), as the tokens.
CREATE TABLE device_key (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    pkcs8       TEXT NOT NULL,
    certificate BLOB,
    serial      INTEGER,
    not_after   INTEGER
) STRICT;
