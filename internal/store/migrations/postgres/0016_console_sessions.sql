-- Signed-in sessions of the web console. The browser holds a random secret
-- in a __Host- cookie; only its SHA-256 is kept here, so a copy of the
-- database signs nobody in. A session names how it signed in (auth:
-- "token:ID"), never a credential; each request checks that credential
-- again. Rows are kept after they end, for the record, until pruned.
CREATE TABLE console_sessions (
    id_hash      text COLLATE "C" NOT NULL PRIMARY KEY, -- lower-case hex SHA-256 of the cookie's secret
    principal_id text        NOT NULL,
    auth         text        NOT NULL,
    source       text        NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL, -- the absolute end
    ended_at     timestamptz,
    end_reason   text        NOT NULL DEFAULT ''
);
CREATE INDEX console_sessions_principal ON console_sessions (principal_id, ended_at);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
