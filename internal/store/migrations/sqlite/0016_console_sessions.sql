-- Signed-in sessions of the web console. The browser holds a random secret
-- in a __Host- cookie; only its SHA-256 is kept here, so a copy of the
-- database signs nobody in. A session names how it signed in (auth:
-- "token:ID"), never a credential; each request checks that credential
-- again. Rows are kept after they end, for the record, until pruned.
CREATE TABLE console_sessions (
    id_hash      TEXT    NOT NULL PRIMARY KEY, -- lower-case hex SHA-256 of the cookie's secret
    principal_id TEXT    NOT NULL,
    auth         TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL, -- the absolute end
    ended_at     INTEGER,
    end_reason   TEXT    NOT NULL DEFAULT ''
) STRICT, WITHOUT ROWID;
CREATE INDEX console_sessions_principal ON console_sessions (principal_id, ended_at);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
