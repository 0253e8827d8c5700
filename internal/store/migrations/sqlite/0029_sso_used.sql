-- Single sign-on keeps no state for a console sign-in begun: the browser
-- keeps it, sealed, in its cookie. What may be used once is recorded
-- here, for every replica, by digest: an ID token the CLI exchanged
-- ('id_token:' and its SHA-256) and the nonce of a console sign-in
-- completed ('console_nonce:'), each until it could not be used anyway.
DROP TABLE sso_logins;

CREATE TABLE sso_used (
    digest     TEXT    NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sso_used_expires ON sso_used (expires_at);
