-- Where the session's tokens are: NULL, in this file (no SecretStore given: the CLI, desktop
-- tools); otherwise the namespace of their keys in the app's SecretStore (Android Keystore, iOS
-- Keychain), and the token columns hold ''.
ALTER TABLE session ADD COLUMN secrets TEXT;
